//! Secrets never reach the log: not API keys, not signing secrets, not secret
//! fields of a webhook, whatever happens to the request.

use axum::body::Body;
use axum::http::{Method, Request};
use firewatch_domain::settings::Secret;
use firewatch_domain::Settings;
use firewatch_types::{SourceKind, TenantId};
use firewatch_web::testing::{fixture, json_request, send, services_and_keys};
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_appears_in_any_log_line() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut settings = Settings::default();
    settings.hmac_secrets.insert(
        (TenantId::default_tenant(), SourceKind::Grafana),
        Secret::new("hmac-s3cr3t-value"),
    );
    let (svc, keys) =
        services_and_keys(firewatch_local::services_in_memory().with_settings(settings)).await;
    let app = firewatch_ingest::router(svc.clone());

    let pd = String::from_utf8(fixture("pagerduty/trigger.json"))
        .unwrap()
        .replace("ROUTING_KEY_PLACEHOLDER", &keys.responder);
    send(
        &app,
        json_request(Method::POST, "/v2/enqueue", None, pd.clone()),
    )
    .await;
    send(
        &app,
        json_request(
            Method::POST,
            "/v1/alerts/pagerduty",
            Some(&keys.responder),
            pd,
        ),
    )
    .await;
    send(
        &app,
        json_request(
            Method::POST,
            "/v1/alerts/generic",
            Some(&keys.responder),
            "{broken",
        ),
    )
    .await;
    send(
        &app,
        json_request(
            Method::POST,
            "/v1/alerts/generic",
            Some("fw_wrong_but_secretish"),
            "{}",
        ),
    )
    .await;
    let bad_sig = Request::post("/v1/alerts/grafana")
        .header("content-type", "application/json")
        .header(
            "x-firewatch-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("x-firewatch-signature", "sha256=deadbeef")
        .body(Body::from(fixture("grafana/firing.json")))
        .unwrap();
    send(&app, bad_sig).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("webhook accepted"),
        "the capture works: {logs}"
    );
    for secret in [
        keys.responder.as_str(),
        "hmac-s3cr3t-value",
        "hunter2",
        "fw_wrong_but_secretish",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the log");
    }
}
