//! The ingest routes, in process through the real router: every provider is
//! accepted, and every kind of bad input gets a clear 4xx and stores nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use firewatch_domain::incidents::{self, ListFilter};
use firewatch_domain::settings::Secret;
use firewatch_domain::{auth, Services, Settings};
use firewatch_types::{SourceKind, TenantId};
use firewatch_web::testing::{
    fixture, json_request, send, services_and_keys, services_with_keys, Answer,
};

async fn incident_count(svc: &Services) -> usize {
    incidents::list(
        svc,
        &TenantId::default_tenant(),
        &ListFilter::default(),
        None,
        200,
    )
    .await
    .unwrap()
    .items
    .len()
}

async fn post(svc: &Services, uri: &str, token: Option<&str>, body: Vec<u8>) -> Answer {
    send(
        &firewatch_ingest::router(svc.clone()),
        json_request(Method::POST, uri, token, body),
    )
    .await
}

#[tokio::test]
async fn every_provider_webhook_is_accepted_and_opens_incidents() {
    let (svc, keys) = services_with_keys().await;
    for (source, file, alerts) in [
        ("alertmanager", "alertmanager/firing.json", 2),
        ("grafana", "grafana/firing.json", 1),
        ("signoz", "signoz/firing.json", 1),
        ("pagerduty", "pagerduty/trigger.json", 1),
        ("sentry", "sentry/event_alert.json", 1),
        ("cloudwatch", "cloudwatch/alarm.json", 1),
        ("generic", "generic/firing.json", 1),
    ] {
        let a = post(
            &svc,
            &format!("/v1/alerts/{source}"),
            Some(&keys.responder),
            fixture(file),
        )
        .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{source}: {}", a.text);
        assert_eq!(a.json["accepted"], alerts, "{source}");
        assert_eq!(a.json["results"][0]["outcome"], "opened", "{source}");
        assert!(a.json["incidents"][0].as_str().unwrap().starts_with("inc_"));
        assert_eq!(a.json["envelope_sha256"].as_str().unwrap().len(), 64);
    }
    assert_eq!(incident_count(&svc).await, 8);
}

#[tokio::test]
async fn resolved_variants_resolve_what_the_firing_ones_opened() {
    let (svc, keys) = services_with_keys().await;
    for (source, firing, resolved) in [
        (
            "alertmanager",
            "alertmanager/firing.json",
            "alertmanager/resolved.json",
        ),
        ("grafana", "grafana/firing.json", "grafana/resolved.json"),
        ("signoz", "signoz/firing.json", "signoz/resolved.json"),
        (
            "pagerduty",
            "pagerduty/trigger.json",
            "pagerduty/resolve.json",
        ),
        (
            "sentry",
            "sentry/metric_alert_critical.json",
            "sentry/metric_alert_resolved.json",
        ),
        ("cloudwatch", "cloudwatch/alarm.json", "cloudwatch/ok.json"),
        ("generic", "generic/firing.json", "generic/resolved.json"),
    ] {
        let uri = format!("/v1/alerts/{source}");
        post(&svc, &uri, Some(&keys.responder), fixture(firing)).await;
        let a = post(&svc, &uri, Some(&keys.responder), fixture(resolved)).await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{source}: {}", a.text);
        let last = a.json["results"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["outcome"], "incident_resolved", "{source}: {}", a.text);
    }
}

#[tokio::test]
async fn a_redelivery_is_answered_as_a_duplicate() {
    let (svc, keys) = services_with_keys().await;
    let body = fixture("alertmanager/firing.json");
    post(
        &svc,
        "/v1/alerts/alertmanager",
        Some(&keys.responder),
        body.clone(),
    )
    .await;
    let a = post(&svc, "/v1/alerts/alertmanager", Some(&keys.responder), body).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(a.json["duplicate"], true);
    assert_eq!(incident_count(&svc).await, 2);
}

#[tokio::test]
async fn bad_input_of_every_kind_is_a_clear_4xx_and_stores_nothing() {
    let (svc, keys) = services_with_keys().await;
    let good = fixture("generic/firing.json");
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "malformed json",
            json_request(
                Method::POST,
                "/v1/alerts/generic",
                Some(&keys.responder),
                "{\"alerts\": [",
            ),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "wrong shape",
            json_request(
                Method::POST,
                "/v1/alerts/alertmanager",
                Some(&keys.responder),
                "{\"alerts\": 3}",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
        (
            "no token",
            json_request(Method::POST, "/v1/alerts/generic", None, good.clone()),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "wrong token",
            json_request(
                Method::POST,
                "/v1/alerts/generic",
                Some("fw_nope"),
                good.clone(),
            ),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "viewer key",
            json_request(
                Method::POST,
                "/v1/alerts/generic",
                Some(&keys.viewer),
                good.clone(),
            ),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "unknown source",
            json_request(
                Method::POST,
                "/v1/alerts/nagios",
                Some(&keys.responder),
                good.clone(),
            ),
            StatusCode::NOT_FOUND,
            "unknown_source",
        ),
        (
            "firewatch's own check source",
            json_request(
                Method::POST,
                "/v1/alerts/heartbeat",
                Some(&keys.responder),
                good.clone(),
            ),
            StatusCode::NOT_FOUND,
            "unknown_source",
        ),
        (
            "wrong content type",
            Request::post("/v1/alerts/generic")
                .header("authorization", format!("Bearer {}", keys.responder))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(good.clone()))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "no content type",
            Request::post("/v1/alerts/generic")
                .header("authorization", format!("Bearer {}", keys.responder))
                .body(Body::from(good.clone()))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "garbage authorization",
            Request::post("/v1/alerts/generic")
                .header("authorization", "Token abc")
                .header("content-type", "application/json")
                .body(Body::from(good.clone()))
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
    ];
    for (name, req, status, code) in cases {
        let a = send(&firewatch_ingest::router(svc.clone()), req).await;
        assert_eq!(a.status, status, "{name}: {}", a.text);
        assert_eq!(a.code(), code, "{name}");
        assert!(
            a.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name} explains itself"
        );
    }
    assert_eq!(incident_count(&svc).await, 0, "nothing was stored");
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let settings = Settings {
        max_body_bytes: 4096,
        ..Settings::default()
    };
    let (svc, keys) =
        services_and_keys(firewatch_local::services_in_memory().with_settings(settings)).await;
    let big = serde_json::json!({"title": "x".repeat(10_000)})
        .to_string()
        .into_bytes();
    let a = post(&svc, "/v1/alerts/generic", Some(&keys.responder), big).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.code(), "payload_too_large");
    assert_eq!(incident_count(&svc).await, 0);
}

#[tokio::test]
async fn pagerduty_bodies_over_512_kb_are_refused() {
    let settings = Settings {
        max_body_bytes: 2 * 1024 * 1024,
        ..Settings::default()
    };
    let (svc, keys) =
        services_and_keys(firewatch_local::services_in_memory().with_settings(settings)).await;
    let mut ev: serde_json::Value =
        serde_json::from_slice(&fixture("pagerduty/trigger.json")).unwrap();
    ev["payload"]["custom_details"]["blob"] = "y".repeat(600 * 1024).into();
    for uri in ["/v1/alerts/pagerduty", "/v2/enqueue"] {
        let a = post(
            &svc,
            uri,
            Some(&keys.responder),
            ev.to_string().into_bytes(),
        )
        .await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
    }
    // The same size is fine for other sources.
    let generic =
        serde_json::json!({"title": "big", "annotations": {"blob": "y".repeat(600 * 1024)}});
    let a = post(
        &svc,
        "/v1/alerts/generic",
        Some(&keys.responder),
        generic.to_string().into_bytes(),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
}

#[tokio::test]
async fn v2_enqueue_answers_like_pagerduty_and_authenticates_with_the_routing_key() {
    let (svc, keys) = services_with_keys().await;
    let body = String::from_utf8(fixture("pagerduty/trigger.json"))
        .unwrap()
        .replace("ROUTING_KEY_PLACEHOLDER", &keys.responder);
    let a = post(&svc, "/v2/enqueue", None, body.into_bytes()).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(
        a.json,
        serde_json::json!({"status": "success", "message": "Event processed", "dedup_key": "srv01/mysql-disk"})
    );

    let body = String::from_utf8(fixture("pagerduty/trigger_without_dedup_key.json"))
        .unwrap()
        .replace("ROUTING_KEY_PLACEHOLDER", &keys.responder);
    let a = post(&svc, "/v2/enqueue", None, body.clone().into_bytes()).await;
    let key = a.json["dedup_key"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 32, "a generated key is returned");
    let resolve = serde_json::json!({"routing_key": keys.responder, "event_action": "resolve", "dedup_key": key});
    let a = post(&svc, "/v2/enqueue", None, resolve.to_string().into_bytes()).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let open = incidents::list(
        &svc,
        &TenantId::default_tenant(),
        &ListFilter {
            state: Some(firewatch_types::IncidentState::Open),
            ..Default::default()
        },
        None,
        50,
    )
    .await
    .unwrap();
    assert_eq!(
        open.items.len(),
        1,
        "the generated key resolved its incident"
    );

    let bad = String::from_utf8(fixture("pagerduty/trigger.json"))
        .unwrap()
        .replace("ROUTING_KEY_PLACEHOLDER", "not-a-key");
    // Refused as PagerDuty refuses an event, so its clients read why.
    let a = post(&svc, "/v2/enqueue", None, bad.into_bytes()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.json,
        serde_json::json!({"status": "invalid event", "message": "Event object is invalid",
               "errors": ["Invalid routing key"]})
    );
    let a = post(
        &svc,
        "/v2/enqueue",
        None,
        b"{\"event_action\":\"trigger\"".to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "no credential at all");
    assert_eq!(a.json["status"], "invalid event");
    assert_eq!(
        a.json["errors"],
        serde_json::json!(["'routing_key' is missing or blank"])
    );
    let blank = serde_json::json!({"routing_key": " ", "event_action": "trigger"});
    let a = post(&svc, "/v2/enqueue", None, blank.to_string().into_bytes()).await;
    assert_eq!(
        (a.status, a.json["errors"].clone()),
        (
            StatusCode::BAD_REQUEST,
            serde_json::json!(["'routing_key' is missing or blank"])
        )
    );
    // A routing key that may read but not post events is not a routing key.
    let body = String::from_utf8(fixture("pagerduty/trigger.json"))
        .unwrap()
        .replace("ROUTING_KEY_PLACEHOLDER", &keys.viewer);
    let a = post(&svc, "/v2/enqueue", None, body.into_bytes()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json["errors"], serde_json::json!(["Invalid routing key"]));
    // An event it cannot parse names what is wrong, in PagerDuty's shape.
    let body = serde_json::json!({"routing_key": keys.responder, "event_action": "explode"});
    let a = post(&svc, "/v2/enqueue", None, body.to_string().into_bytes()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.json["status"], "invalid event");
    assert_eq!(a.json["errors"].as_array().unwrap().len(), 1);
    assert!(
        !a.text.contains("explode"),
        "the refusal names the field, not the value: {}",
        a.text
    );
}

fn signed_request(
    uri: &str,
    secret: &str,
    ts: i64,
    body: &[u8],
    tenant: Option<&str>,
) -> Request<Body> {
    let sig = auth::sign(&Secret::new(secret), ts, body);
    let mut b = Request::post(uri)
        .header("content-type", "application/json")
        .header("x-firewatch-timestamp", ts.to_string())
        .header("x-firewatch-signature", format!("sha256={sig}"));
    if let Some(t) = tenant {
        b = b.header("x-firewatch-tenant", t);
    }
    b.body(Body::from(body.to_vec())).unwrap()
}

async fn signed_services() -> Services {
    let mut settings = Settings::default();
    settings.hmac_secrets.insert(
        (TenantId::default_tenant(), SourceKind::Grafana),
        Secret::new("grafana-secret"),
    );
    settings.hmac_secrets.insert(
        (TenantId::default_tenant(), SourceKind::Sentry),
        Secret::new("sentry-secret"),
    );
    settings.hmac_secrets.insert(
        (TenantId::parse("ghost").unwrap(), SourceKind::Grafana),
        Secret::new("ghost-secret"),
    );
    let (svc, _) =
        services_and_keys(firewatch_local::services_in_memory().with_settings(settings)).await;
    svc
}

#[tokio::test]
async fn hmac_signed_webhooks_are_accepted_and_bad_or_replayed_signatures_refused() {
    let svc = signed_services().await;
    let app = firewatch_ingest::router(svc.clone());
    let body = fixture("grafana/firing.json");
    let now = chrono::Utc::now().timestamp();

    let a = send(
        &app,
        signed_request("/v1/alerts/grafana", "grafana-secret", now, &body, None),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(incident_count(&svc).await, 1);

    let other = fixture("grafana/resolved.json");
    for (name, req) in [
        (
            "wrong secret",
            signed_request("/v1/alerts/grafana", "guess", now, &other, None),
        ),
        (
            "replayed (old timestamp)",
            signed_request(
                "/v1/alerts/grafana",
                "grafana-secret",
                now - 3600,
                &other,
                None,
            ),
        ),
        (
            "no secret for this source",
            signed_request("/v1/alerts/signoz", "grafana-secret", now, &other, None),
        ),
        (
            "unknown tenant",
            signed_request(
                "/v1/alerts/grafana",
                "ghost-secret",
                now,
                &other,
                Some("ghost"),
            ),
        ),
    ] {
        let a = send(&app, req).await;
        assert!(
            a.status == StatusCode::UNAUTHORIZED || a.status == StatusCode::NOT_FOUND,
            "{name}: {} {}",
            a.status,
            a.text
        );
        assert!(
            !a.text.contains("secret\""),
            "{name} does not echo the secret"
        );
    }
    let mut tampered = signed_request("/v1/alerts/grafana", "grafana-secret", now, &body, None);
    *tampered.body_mut() = Body::from(other.clone());
    assert_eq!(
        send(&app, tampered).await.status,
        StatusCode::UNAUTHORIZED,
        "a body that does not match its signature"
    );
    assert_eq!(
        incidents::get(
            &svc,
            &TenantId::default_tenant(),
            &incidents::list(
                &svc,
                &TenantId::default_tenant(),
                &ListFilter::default(),
                None,
                5
            )
            .await
            .unwrap()
            .items[0]
                .id
        )
        .await
        .unwrap()
        .state,
        firewatch_types::IncidentState::Open,
        "no refused request resolved anything"
    );
}

#[tokio::test]
async fn sentry_hook_signatures_are_verified_with_a_fresh_timestamp() {
    let svc = signed_services().await;
    let app = firewatch_ingest::router(svc.clone());
    let body = fixture("sentry/event_alert.json");
    let now = svc.clock.now().timestamp();
    let req = |sig: String, ts: Option<i64>| {
        let mut r = Request::post("/v1/alerts/sentry")
            .header("content-type", "application/json")
            .header("sentry-hook-resource", "event_alert")
            .header("sentry-hook-signature", sig);
        if let Some(ts) = ts {
            r = r.header("sentry-hook-timestamp", ts.to_string());
        }
        r.body(Body::from(body.clone())).unwrap()
    };
    assert_eq!(
        send(&app, req("00".repeat(32), Some(now))).await.status,
        StatusCode::UNAUTHORIZED
    );
    let good = auth::sign_body(&Secret::new("sentry-secret"), &body);
    for (ts, why) in [
        (None, "a delivery without Sentry-Hook-Timestamp"),
        (
            Some(now - 11 * 60),
            "a captured delivery replayed 11 minutes later",
        ),
    ] {
        let r = send(&app, req(good.clone(), ts)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{why}: {}", r.text);
    }
    assert_eq!(incident_count(&svc).await, 0, "nothing was stored");
    let a = send(&app, req(good.clone(), Some(now))).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    // Sentry retrying the delivery at once is answered as a redelivery.
    let again = send(&app, req(good.clone(), Some(now))).await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
    assert_eq!(again.json["duplicate"], true, "{}", again.text);
    // The signature does not cover the timestamp: a captured delivery
    // replayed past the dedup window with a fresh timestamp is refused.
    let later = now + svc.settings.dedup_window_secs + 60;
    let later_app = firewatch_ingest::router(svc.clone().with_clock(std::sync::Arc::new(
        firewatch_domain::ports::FixedClock::new(
            chrono::DateTime::from_timestamp(later, 0).unwrap(),
        ),
    )));
    let replay = send(&later_app, req(good, Some(later))).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text);
    assert!(replay.text.contains("replay"), "{}", replay.text);
    assert_eq!(incident_count(&svc).await, 1, "the replay changed nothing");
}

#[tokio::test]
async fn sns_posts_text_plain_with_basic_auth_credentials_from_the_url() {
    use base64::Engine;
    let (svc, keys) = services_with_keys().await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("sns:{}", keys.responder));
    let req = Request::post("/v1/alerts/cloudwatch")
        .header("content-type", "text/plain; charset=UTF-8")
        .header("x-amz-sns-message-type", "Notification")
        .header("authorization", format!("Basic {basic}"))
        .body(Body::from(fixture("cloudwatch/alarm.json")))
        .unwrap();
    let a = send(&firewatch_ingest::router(svc.clone()), req).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(incident_count(&svc).await, 1);
}

#[tokio::test]
async fn an_unconfirmed_topic_is_refused_without_fetching_anything() {
    let (svc, keys) = services_with_keys().await;
    let a = post(
        &svc,
        "/v1/alerts/cloudwatch",
        Some(&keys.responder),
        fixture("cloudwatch/subscription_confirmation.json"),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("FIREWATCH_SNS_TOPICS"));
}

#[tokio::test]
async fn errors_and_answers_never_echo_the_api_key() {
    let (svc, keys) = services_with_keys().await;
    let a = post(
        &svc,
        "/v1/alerts/generic",
        Some(&keys.responder),
        b"{oops".to_vec(),
    )
    .await;
    assert!(!a.text.contains(&keys.responder));
    let a = post(
        &svc,
        "/v1/alerts/generic",
        Some(&keys.responder),
        fixture("generic/firing.json"),
    )
    .await;
    assert!(!a.text.contains(&keys.responder));
}

#[tokio::test]
async fn a_payload_of_the_wrong_shape_names_the_field_and_not_the_value() {
    let (svc, keys) = services_with_keys().await;
    let cases = [
        (r#"{"severity": "critical"}"#, "missing field `title`", ""),
        (
            r#"{"title": 424242}"#,
            "invalid type: integer",
            "(at title)",
        ),
        (
            r#"{"alerts": [{"title": "ok"}, {"title": false}]}"#,
            "invalid type: boolean",
            "(at alerts[1].title)",
        ),
        (
            r#"{"title": "x", "labels": {"hunter2-secret": 7}}"#,
            "invalid type: integer",
            "(at labels.?)",
        ),
        (
            r#"{"title": "x", "labels": {"AKIAIOSFODNN7EXAMPLE": 7}}"#,
            "invalid type: integer",
            "(at labels.?)",
        ),
    ];
    for (body, what, at) in cases {
        let a = post(
            &svc,
            "/v1/alerts/generic",
            Some(&keys.responder),
            body.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.text);
        assert_eq!(a.code(), "invalid_payload");
        let message = a.json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(what) && message.contains(at),
            "{body}: {message}"
        );
        for echoed in ["424242", "hunter2", "false", "AKIA"] {
            assert!(!message.contains(echoed), "{body}: {message}");
        }
        assert!(!message.contains("variant"), "{message}");
    }
    assert_eq!(incident_count(&svc).await, 0, "nothing was stored");
}
