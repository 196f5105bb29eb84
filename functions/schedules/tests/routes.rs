//! The schedules routes, in process through the real router: heartbeats,
//! Healthchecks.io-compatible pings, provider freshness.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::{Duration, Utc};
use firewatch_domain::ports::FixedClock;
use firewatch_domain::Services;
use firewatch_web::testing::{capture_logs, get, json_request, send, services_and_keys, Keys};

async fn setup() -> (Services, Keys, axum::Router, Arc<FixedClock>) {
    // The real time: pings have a time to live, which the store expires on
    // the real clock.
    let clock = Arc::new(FixedClock::new(Utc::now()));
    let (svc, keys) =
        services_and_keys(firewatch_local::services_in_memory().with_clock(clock.clone())).await;
    let app = firewatch_schedules::router(svc.clone());
    (svc, keys, app, clock)
}

fn ping(method: Method, path: &str, body: &'static str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("user-agent", "curl/8.5.0")
        .body(Body::from(body))
        .unwrap()
}

/// Creates a heartbeat and returns its id and ping path.
async fn create(app: &axum::Router, keys: &Keys, body: &str) -> (String, String) {
    let a = send(
        app,
        json_request(
            Method::POST,
            "/v1/heartbeats",
            Some(&keys.admin),
            body.to_owned(),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let url = a.json["ping_url"].as_str().unwrap();
    let path = url
        .strip_prefix("http://localhost")
        .unwrap_or(url)
        .to_owned();
    (a.json["id"].as_str().unwrap().to_owned(), path)
}

async fn state(app: &axum::Router, keys: &Keys, id: &str) -> serde_json::Value {
    let a = send(app, get(&format!("/v1/heartbeats/{id}"), &keys.viewer)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json
}

async fn open_heartbeat_incidents(svc: &Services) -> usize {
    let filter = firewatch_domain::incidents::ListFilter {
        source: Some(firewatch_types::SourceKind::Heartbeat),
        state: Some(firewatch_types::IncidentState::Open),
        ..Default::default()
    };
    firewatch_domain::incidents::list(
        svc,
        &firewatch_types::TenantId::default_tenant(),
        &filter,
        None,
        10,
    )
    .await
    .unwrap()
    .items
    .len()
}

#[tokio::test]
async fn a_heartbeat_is_created_listed_changed_paused_and_deleted_by_its_roles() {
    let (_svc, keys, app, _) = setup().await;
    let body = r#"{"name": "nightly-backup", "cron": "0 3 * * *", "tz": "Europe/Berlin",
                   "grace": "10m", "severity": "sev2", "labels": {"team": "data"}}"#;
    let a = send(
        &app,
        json_request(Method::POST, "/v1/heartbeats", Some(&keys.admin), body),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json["state"], "new");
    assert_eq!(a.json["cron"], "0 3 * * *");
    assert_eq!(a.json["tz"], "Europe/Berlin");
    assert_eq!(a.json["grace"], "10m");
    let id = a.json["id"].as_str().unwrap().to_owned();
    let url = a.json["ping_url"].as_str().unwrap();
    assert!(url.starts_with("http://localhost/ping/"), "{url}");
    assert_eq!(
        url.len(),
        "http://localhost/ping/".len() + 36,
        "a UUID: {url}"
    );

    // Only admins create; viewers read; no key, no entry.
    let by_viewer = send(
        &app,
        json_request(Method::POST, "/v1/heartbeats", Some(&keys.viewer), body),
    )
    .await;
    assert_eq!(by_viewer.status, StatusCode::FORBIDDEN);
    let anonymous = send(
        &app,
        json_request(Method::POST, "/v1/heartbeats", None, body),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    for (bad, code) in [
        ("{", "malformed_json"),
        (r#"{"name": "x"}"#, "invalid_schedule"),
        (
            r#"{"name": "x", "period": "5m", "colour": "red"}"#,
            "invalid_body",
        ),
        (r#"{"name": "x", "period": "often"}"#, "invalid_duration"),
        (
            r#"{"name": "x", "cron": "0 3 * * *", "tz": "Nowhere/City"}"#,
            "invalid_schedule",
        ),
        (
            r#"{"name": "x", "period": "5m", "severity": "sev9"}"#,
            "invalid_severity",
        ),
        (r#"{"name": "", "period": "5m"}"#, "invalid_name"),
    ] {
        let a = send(
            &app,
            json_request(Method::POST, "/v1/heartbeats", Some(&keys.admin), bad),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert_eq!(a.code(), code, "{bad}: {}", a.text);
    }

    let list = send(&app, get("/v1/heartbeats", &keys.viewer)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json["items"].as_array().unwrap().len(), 1);

    let patched = send(
        &app,
        json_request(
            Method::PATCH,
            &format!("/v1/heartbeats/{id}"),
            Some(&keys.admin),
            r#"{"period": "1h", "grace": "5m"}"#,
        ),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json["period"], "1h");
    assert!(patched.json.get("cron").is_none());

    let paused = send(
        &app,
        json_request(
            Method::POST,
            &format!("/v1/heartbeats/{id}/pause"),
            Some(&keys.admin),
            "",
        ),
    )
    .await;
    assert_eq!(paused.json["state"], "paused", "{}", paused.text);
    let resumed = send(
        &app,
        json_request(
            Method::POST,
            &format!("/v1/heartbeats/{id}/resume"),
            Some(&keys.admin),
            "",
        ),
    )
    .await;
    assert_eq!(resumed.json["state"], "new");

    let gone = send(
        &app,
        json_request(
            Method::DELETE,
            &format!("/v1/heartbeats/{id}"),
            Some(&keys.admin),
            "",
        ),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let a = send(&app, get(&format!("/v1/heartbeats/{id}"), &keys.viewer)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pings_speak_healthchecks_and_an_overdue_heartbeat_opens_one_incident_until_pinged() {
    let (svc, keys, app, clock) = setup().await;
    let (id, path) = create(
        &app,
        &keys,
        r#"{"name": "etl", "period": "5m", "grace": "1m"}"#,
    )
    .await;

    let ok = send(&app, ping(Method::GET, &path, "")).await;
    assert_eq!((ok.status, ok.text.as_str()), (StatusCode::OK, "OK"));
    assert!(ok.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(state(&app, &keys, &id).await["state"], "up");

    clock.advance(Duration::minutes(7));
    let report = firewatch_scheduler::handle(&svc, &serde_json::json!({"job": "heartbeats"}))
        .await
        .unwrap();
    assert_eq!(serde_json::to_value(report).unwrap()["alerts"], 1);
    assert_eq!(open_heartbeat_incidents(&svc).await, 1);
    assert_eq!(state(&app, &keys, &id).await["state"], "down");

    let ok = send(&app, ping(Method::POST, &path, "backup done")).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(open_heartbeat_incidents(&svc).await, 0);
    assert_eq!(state(&app, &keys, &id).await["state"], "up");

    // A non-zero exit status raises at once.
    clock.advance(Duration::minutes(30));
    let failed = send(&app, ping(Method::GET, &format!("{path}/7"), "")).await;
    assert_eq!(failed.status, StatusCode::OK);
    assert_eq!(open_heartbeat_incidents(&svc).await, 1);
    let s = state(&app, &keys, &id).await;
    assert_eq!(s["last_ping"]["kind"], "fail");
    assert_eq!(s["last_ping"]["exit_status"], 7);
    // Exit status 0 is a success.
    let zero = send(&app, ping(Method::GET, &format!("{path}/0"), "")).await;
    assert_eq!(zero.status, StatusCode::OK);
    assert_eq!(open_heartbeat_incidents(&svc).await, 0);

    for bad in ["256", "-1", "+1", "restart"] {
        let a = send(&app, ping(Method::GET, &format!("{path}/{bad}"), "")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let unknown = send(
        &app,
        ping(
            Method::GET,
            "/ping/0b3c56a4-1a6f-4c1e-9c39-3c1f2f0a9d11",
            "",
        ),
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.text.as_str()),
        (StatusCode::NOT_FOUND, "not found")
    );
}

#[tokio::test]
async fn start_and_finish_pair_by_rid_and_the_body_is_kept_redacted() {
    let (_svc, keys, app, clock) = setup().await;
    let (id, path) = create(&app, &keys, r#"{"name": "etl", "period": "1h"}"#).await;
    let rid = "c0f4bd2a-5f0e-4b8e-9a55-1b2c3d4e5f60";
    let a = send(
        &app,
        ping(Method::POST, &format!("{path}/start?rid={rid}"), ""),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    clock.advance(Duration::seconds(95));
    let a = send(
        &app,
        ping(
            Method::POST,
            &format!("{path}?rid={rid}"),
            "rows=120\npassword=hunter2 token=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let s = state(&app, &keys, &id).await;
    assert_eq!(s["last_ping"]["duration_ms"], 95_000);
    let body = s["pings"][0]["body"].as_str().unwrap();
    assert!(body.contains("rows=120"), "{body}");
    assert!(
        !body.contains("hunter2") && !body.contains("ghp_abc"),
        "{body}"
    );
    assert_eq!(s["pings"][0]["rid"], rid);
    assert_eq!(s["pings"][1]["kind"], "start");
    // A log ping is kept without changing the state.
    let a = send(&app, ping(Method::POST, &format!("{path}/log"), "halfway")).await;
    assert_eq!(a.status, StatusCode::OK);
    let s = state(&app, &keys, &id).await;
    assert_eq!(s["pings"][0]["kind"], "log");
    assert_eq!(s["last_ping"]["kind"], "success");
    let bad = send(&app, ping(Method::GET, &format!("{path}?rid=run-42"), "")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_ping_uuid_never_reaches_the_logs() {
    let (_svc, keys, app, _) = setup().await;
    let (_, path) = create(&app, &keys, r#"{"name": "etl", "period": "1h"}"#).await;
    let uuid = path.trim_start_matches("/ping/").to_owned();
    let (logs, _guard) = capture_logs();
    for p in [
        path.clone(),
        format!("{path}/fail"),
        format!("{path}/start"),
    ] {
        send(&app, ping(Method::GET, &p, "")).await;
    }
    let text = logs.text();
    assert!(
        text.contains("/ping/***"),
        "the request span is logged: {text}"
    );
    assert!(!text.contains(&uuid), "{text}");
}

#[tokio::test]
async fn freshness_is_listed_watched_and_proven_by_a_provider_heartbeat_that_opens_nothing() {
    let (svc, keys, app, _) = setup().await;
    let a = send(
        &app,
        json_request(
            Method::PUT,
            "/v1/freshness/alertmanager",
            Some(&keys.admin),
            r#"{"window": "15m"}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    let a = send(
        &app,
        json_request(
            Method::PUT,
            "/v1/freshness/nagios",
            Some(&keys.admin),
            r#"{"window": "15m"}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = send(
        &app,
        json_request(
            Method::PUT,
            "/v1/freshness/sentry",
            Some(&keys.viewer),
            r#"{"window": "15m"}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    let list = send(&app, get("/v1/freshness", &keys.viewer)).await;
    assert_eq!(list.json["items"][0]["provider"], "alertmanager");
    assert_eq!(list.json["items"][0]["state"], "waiting");
    assert_eq!(list.json["items"][0]["window"], "15m");

    let a = send(
        &app,
        json_request(
            Method::POST,
            "/v1/dossier/provider-heartbeat",
            Some(&keys.admin),
            r#"{"providers": ["alertmanager"]}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let key = a.json["items"][0]["envelope"].as_str().unwrap();
    assert!(svc.blobs.get(key).await.unwrap().is_some());
    let list = send(&app, get("/v1/freshness", &keys.viewer)).await;
    assert_eq!(list.json["items"][0]["state"], "fresh");
    assert_eq!(list.json["items"][0]["last_event_synthetic"], true);
    let incidents = firewatch_domain::incidents::list(
        &svc,
        &firewatch_types::TenantId::default_tenant(),
        &Default::default(),
        None,
        10,
    )
    .await
    .unwrap();
    assert!(incidents.items.is_empty());

    let a = send(
        &app,
        json_request(
            Method::POST,
            "/v1/dossier/provider-heartbeat",
            Some(&keys.responder),
            "",
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthchecks_rust_client_pings_firewatch_unchanged() {
    let (svc, keys, app, _) = setup().await;
    let (id, path) = create(&app, &keys, r#"{"name": "etl", "period": "1h"}"#).await;
    let uuid = path.trim_start_matches("/ping/").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/ping", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The `healthchecks` crate's ping client, as a job would use it.
    let sent = tokio::task::spawn_blocking(move || {
        let client = healthchecks::ping::get_client_with_url(&uuid, &base).unwrap();
        let rid = uuid::Uuid::new_v4();
        let started = client.start_timer_with_run_id(Some(&rid));
        std::thread::sleep(std::time::Duration::from_millis(20));
        let finished = client.report_success_with_run_id(Some(&rid));
        let failed = client.report_failure_with_logs("backup failed: disk full, password=hunter2");
        (started, finished, failed)
    })
    .await
    .unwrap();
    assert_eq!(sent, (true, true, true));

    let app = firewatch_schedules::router(svc.clone());
    let s = state(&app, &keys, &id).await;
    assert_eq!(s["state"], "down");
    assert_eq!(s["pings"][0]["kind"], "fail");
    let log = s["pings"][0]["body"].as_str().unwrap();
    assert!(
        log.contains("disk full") && !log.contains("hunter2"),
        "{log}"
    );
    assert_eq!(s["pings"][1]["kind"], "success");
    assert!(s["pings"][1]["duration_ms"].as_i64().unwrap() >= 0);
    assert!(s["pings"][1]["user_agent"]
        .as_str()
        .unwrap()
        .starts_with("healthcheck"));
    assert_eq!(open_heartbeat_incidents(&svc).await, 1);
}

#[tokio::test]
async fn the_ping_url_is_shown_to_responders_and_above_only() {
    let (_svc, keys, app, _) = setup().await;
    let (id, path) = create(&app, &keys, r#"{"name": "hidden", "period": "5m"}"#).await;
    let uuid = path.trim_start_matches("/ping/");
    for (key, shown) in [
        (&keys.viewer, false),
        (&keys.responder, true),
        (&keys.admin, true),
    ] {
        for uri in ["/v1/heartbeats".to_owned(), format!("/v1/heartbeats/{id}")] {
            let a = send(&app, get(&uri, key)).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            assert_eq!(a.text.contains(uuid), shown, "{uri}: {}", a.text);
        }
    }
}

#[tokio::test]
async fn pings_to_one_check_are_rate_limited_per_minute_and_change_nothing_past_it() {
    let clock = Arc::new(FixedClock::new(Utc::now()));
    let mut settings = firewatch_domain::Settings::default();
    settings.rate_limits.pings = 3;
    let (svc, keys) = services_and_keys(
        firewatch_local::services_in_memory()
            .with_clock(clock.clone())
            .with_settings(settings),
    )
    .await;
    let app = firewatch_schedules::router(svc.clone());
    let (id, path) = create(&app, &keys, r#"{"name": "chatty", "period": "5m"}"#).await;
    let (_, other) = create(&app, &keys, r#"{"name": "quiet", "period": "5m"}"#).await;
    for _ in 0..3 {
        let a = send(&app, ping(Method::POST, &path, "")).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    let before = state(&app, &keys, &id).await["pings"].clone();
    let a = send(&app, ping(Method::POST, &format!("{path}/fail"), "")).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.text, "rate limited");
    let wait: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        state(&app, &keys, &id).await["pings"],
        before,
        "not recorded"
    );
    assert_eq!(
        state(&app, &keys, &id).await["state"],
        "up",
        "the fail was refused"
    );
    // Another check is not held back by this one.
    assert_eq!(
        send(&app, ping(Method::POST, &other, "")).await.status,
        StatusCode::OK
    );
    // The next minute takes pings again.
    clock.advance(Duration::seconds(wait as i64));
    assert_eq!(
        send(&app, ping(Method::POST, &path, "")).await.status,
        StatusCode::OK
    );
}

/// Refusals of heartbeats and smoke checks say what is wrong without
/// repeating what was sent (an id, a duration).
#[tokio::test]
async fn refusals_never_echo_what_was_sent() {
    let (_svc, keys, app, _) = setup().await;
    const MARK: &str = "Zq9marker";
    let check = |field: &str| {
        let mut c =
            serde_json::json!({"name": "x", "interval": "5m", "url": "https://example.com/"});
        c[field] = serde_json::json!(MARK);
        (Method::POST, "/v1/smoke-checks".to_owned(), c.to_string())
    };
    for (method, path, body) in [
        (
            Method::GET,
            format!("/v1/heartbeats/hb_{MARK}"),
            String::new(),
        ),
        (
            Method::GET,
            format!("/v1/smoke-checks/smk_{MARK}"),
            String::new(),
        ),
        (
            Method::POST,
            "/v1/heartbeats".to_owned(),
            serde_json::json!({"name": "x", "period": MARK}).to_string(),
        ),
        check("interval"),
        check("timeout"),
        check("latency_budget"),
    ] {
        let a = send(&app, json_request(method, &path, Some(&keys.admin), body)).await;
        assert!(
            a.status.is_client_error(),
            "{path}: {} {}",
            a.status,
            a.text
        );
        assert!(!a.text.contains(MARK), "{path} echoed: {}", a.text);
    }
}

/// What SCHEDULES.md says of pausing: the resolve it sends does not close
/// an incident that is flapping; that stays open until its flapping ends,
/// as any flapping incident does.
#[tokio::test]
async fn pausing_a_flapping_heartbeat_leaves_its_incident_open() {
    let (svc, keys, app, clock) = setup().await;
    // A heartbeat re-raises at most once a period: a short one, so each
    // failure reaches the incident.
    let (id, path) = create(&app, &keys, r#"{"name": "etl", "period": "1m"}"#).await;
    // Failure, success, failure...: more than three flips in ten minutes.
    for p in [
        format!("{path}/fail"),
        path.clone(),
        format!("{path}/fail"),
        path.clone(),
        format!("{path}/fail"),
        path.clone(),
        format!("{path}/fail"),
    ] {
        clock.advance(Duration::seconds(61));
        let a = send(&app, ping(Method::GET, &p, "")).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    assert_eq!(open_heartbeat_incidents(&svc).await, 1);
    let flapping = firewatch_domain::incidents::list(
        &svc,
        &firewatch_types::TenantId::default_tenant(),
        &firewatch_domain::incidents::ListFilter::default(),
        None,
        10,
    )
    .await
    .unwrap()
    .items;
    assert!(
        flapping.iter().any(|i| i.flapping.is_some()),
        "the incident flaps: {flapping:?}"
    );
    let paused = send(
        &app,
        json_request(
            Method::POST,
            &format!("/v1/heartbeats/{id}/pause"),
            Some(&keys.admin),
            "",
        ),
    )
    .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.text);
    assert_eq!(paused.json["state"], "paused");
    assert_eq!(
        open_heartbeat_incidents(&svc).await,
        1,
        "still open while it flaps"
    );
}
