//! Secrets never reach the log: not API keys, not signing secrets, not secret
//! fields of a webhook, whatever happens to the request.

use axum::body::Body;
use axum::http::{Method, Request};
use firewatch_domain::settings::Secret;
use firewatch_domain::Settings;
use firewatch_types::{SourceKind, TenantId};
use firewatch_web::testing::{capture_logs, fixture, json_request, send, services_and_keys};

#[tokio::test]
async fn no_secret_appears_in_any_log_line() {
    let (captured, _guard) = capture_logs();

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

    let logs = captured.text();
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

#[tokio::test]
async fn secrets_inside_alert_text_reach_no_incident_timeline_card_answer_or_log() {
    let (captured, _guard) = capture_logs();
    let (svc, keys) = services_and_keys(firewatch_local::services_in_memory()).await;
    let app = firewatch_ingest::router(svc.clone());

    let secrets = [
        "pa55w0rd",
        "ghp_T0KEN1234567",
        "s3cr3tTwo",
        "eyJhbGciOiJIUzI1NiJ9",
        "hunter22",
        "XXXXwebhookXXXX",
        "AKIAIOSFODNN7EXAMPLE",
        "9f8e7d6c5b4a",
    ];
    let alert = serde_json::json!({
        "title": "db https://admin:pa55w0rd@db.internal down \u{1b}[2J, see https://ghp_T0KEN1234567@github.com/o/r",
        "fingerprint": "fp https://u:s3cr3tTwo@x.example/",
        "labels": {"note": "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9", "cmd": "login password=hunter22", "alertname": "DbDown"},
        "annotations": {"hook": "https://hooks.slack.com/services/T0/B0/XXXXwebhookXXXX", "key": "AKIAIOSFODNN7EXAMPLE"},
        "links": [{"href": "https://grafana.example/d/1", "text": "X-Auth: 9f8e7d6c5b4a"}]
    });
    let a = send(
        &app,
        json_request(
            Method::POST,
            "/v1/alerts/generic",
            Some(&keys.responder),
            alert.to_string(),
        ),
    )
    .await;
    assert_eq!(a.status, axum::http::StatusCode::ACCEPTED, "{}", a.text);
    let id = firewatch_types::IncidentId::parse(a.json["incidents"][0].as_str().unwrap()).unwrap();
    let inc = firewatch_domain::incidents::get(&svc, &TenantId::default_tenant(), &id)
        .await
        .unwrap();
    let timeline =
        firewatch_domain::incidents::timeline(&svc, &TenantId::default_tenant(), &id, None, 50)
            .await
            .unwrap();
    let card = firewatch_domain::chat::card(&inc, false);
    let seen = format!(
        "{}\n{}\n{}\n{}\n{}",
        serde_json::to_string(&inc).unwrap(),
        serde_json::to_string(&timeline.items).unwrap(),
        firewatch_domain::chat::card_text(&card),
        a.text,
        captured.text()
    );
    for secret in secrets {
        assert!(!seen.contains(secret), "{secret} leaked: {seen}");
    }
    assert!(
        !inc.title.contains('\u{1b}'),
        "no terminal escape in the title"
    );

    // A payload of the wrong shape is described, not echoed.
    let bad = serde_json::json!({"title": "x", "labels": {"db_password": 987654321}});
    let a = send(
        &app,
        json_request(
            Method::POST,
            "/v1/alerts/generic",
            Some(&keys.responder),
            bad.to_string(),
        ),
    )
    .await;
    assert_eq!(a.status, axum::http::StatusCode::BAD_REQUEST);
    let logs = captured.text();
    assert!(!a.text.contains("987654321"), "{}", a.text);
    assert!(!logs.contains("987654321"));
    assert_eq!(a.code(), "invalid_payload", "{}", a.text);
}
