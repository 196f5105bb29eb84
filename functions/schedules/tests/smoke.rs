//! Smoke checks through the real router, sending real requests (reqwest)
//! to a local target server whose behaviour the tests switch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use firewatch_domain::ports::{FixedClock, MapSecrets};
use firewatch_domain::Services;
use firewatch_types::{IncidentState, SourceKind, TenantId};
use firewatch_web::testing::{get as get_req, json_request, send, services_and_keys, Keys};
use serde_json::{json, Value};

#[derive(Default)]
struct Target {
    down: AtomicBool,
    ignore_offset: AtomicBool,
    /// Requests `/health` received.
    hits: std::sync::atomic::AtomicUsize,
}

async fn version(
    State(t): State<Arc<Target>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Json<Value> {
    let offset: usize = if t.ignore_offset.load(Ordering::SeqCst) {
        0
    } else {
        q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0)
    };
    let items: Vec<Value> = (offset..offset + 3)
        .map(|i| json!({"run_id": format!("run-{i}")}))
        .collect();
    Json(json!({"build_id": "b-42", "git_sha": "4f2c1e9", "release_tag": "v1.4.0", "items": items}))
}

async fn health(State(t): State<Arc<Target>>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    t.hits.fetch_add(1, Ordering::SeqCst);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer s3cr3t-token") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "no token"})));
    }
    if t.down.load(Ordering::SeqCst) {
        (
            StatusCode::OK,
            Json(json!({"status": "degraded", "db": "down", "password": "hunter2"})),
        )
    } else {
        (StatusCode::OK, Json(json!({"status": "ok"})))
    }
}

async fn setup() -> (Services, Keys, Router, Arc<Target>, String) {
    let target = Arc::new(Target::default());
    let api = Router::new()
        .route("/version", get(version))
        .route("/health", get(health))
        .with_state(target.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api).await });
    // Checks made through the API use their tenant's secrets; the
    // operator's API_TOKEN is another value, never sent by them.
    let secrets = MapSecrets(
        [("API_TOKEN".to_owned(), "operator-token".to_owned())]
            .into_iter()
            .collect(),
    );
    let svc = firewatch_local::services_in_memory()
        .with_clock(Arc::new(FixedClock::new(Utc::now())))
        .with_egress(Arc::new(firewatch_egress::HttpEgress::new(
            firewatch_domain::egress::EgressAllow::parse("127.0.0.1").unwrap(),
        )))
        .with_secrets(Arc::new(secrets));
    let (svc, keys) = services_and_keys(svc).await;
    firewatch_domain::secrets::put(&svc, &tenant_admin(), "API_TOKEN", "s3cr3t-token")
        .await
        .unwrap();
    let app = firewatch_schedules::router(svc.clone());
    (svc, keys, app, target, base)
}

fn tenant_admin() -> firewatch_types::Principal {
    firewatch_types::Principal {
        tenant: firewatch_types::TenantId::default_tenant(),
        name: "admin".into(),
        role: firewatch_types::Role::Admin,
    }
}

async fn create(app: &Router, keys: &Keys, body: Value) -> String {
    let a = send(
        app,
        json_request(
            Method::POST,
            "/v1/smoke-checks",
            Some(&keys.admin),
            body.to_string(),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    a.json["id"].as_str().unwrap().to_owned()
}

async fn run(app: &Router, keys: &Keys, id: &str) -> Value {
    let a = send(
        app,
        json_request(
            Method::POST,
            &format!("/v1/smoke-checks/{id}/run"),
            Some(&keys.responder),
            "",
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json
}

async fn smoke_incidents(svc: &Services) -> Vec<firewatch_types::Incident> {
    let filter = firewatch_domain::incidents::ListFilter {
        source: Some(SourceKind::Smoke),
        ..Default::default()
    };
    firewatch_domain::incidents::list(svc, &TenantId::default_tenant(), &filter, None, 10)
        .await
        .unwrap()
        .items
}

/// The body of the issue, pointed at the local target.
fn version_check(base: &str) -> Value {
    json!({"name": "api-version", "method": "GET", "url": format!("{base}/version"),
     "interval": "1m", "timeout": "5s", "expected_status": 200,
     "assertions": [
       {"type": "version_fingerprint", "fields": ["build_id", "git_sha", "release_tag"]},
       {"type": "json", "path": "items", "op": "array_min_len", "value": 1},
       {"type": "pagination", "param": "offset", "values": ["0", "3"],
        "items": "items", "id_field": "run_id"}]})
}

#[tokio::test]
async fn the_documented_body_is_accepted_and_the_pagination_assertion_catches_a_server_ignoring_offset(
) {
    let (svc, keys, app, target, base) = setup().await;
    let id = create(&app, &keys, version_check(&base)).await;
    let passed = run(&app, &keys, &id).await;
    assert_eq!(passed["ok"], true, "{passed}");
    assert_eq!(passed["status"], 200);

    target.ignore_offset.store(true, Ordering::SeqCst);
    let failed = run(&app, &keys, &id).await;
    assert_eq!(failed["ok"], false);
    assert_eq!(failed["failure"]["kind"], "pagination");
    assert_eq!(failed["failure"]["assertion"], 2);
    let why = failed["failure"]["message"].as_str().unwrap();
    assert!(why.contains("ignores offset"), "{why}");
    let open = smoke_incidents(&svc).await;
    assert_eq!(open.len(), 1);
    assert_eq!(
        open[0].annotations.get("failed").map(String::as_str),
        Some("assertions[2] (pagination)")
    );

    let shown = send(
        &app,
        get_req(&format!("/v1/smoke-checks/{id}"), &keys.viewer),
    )
    .await;
    assert_eq!(shown.json["state"], "failing");
    assert_eq!(shown.json["assertions"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_failing_check_opens_one_incident_naming_the_assertion_and_recovering_resolves_it() {
    let (svc, keys, app, target, base) = setup().await;
    let id = create(
        &app,
        &keys,
        json!({"name": "api-health", "url": format!("{base}/health?key={{{{ secrets.API_TOKEN }}}}"),
               "headers": {"Authorization": "Bearer {{ secrets.API_TOKEN }}"},
               "latency_budget": "2s",
               "assertions": [{"type": "json", "path": "status", "op": "equals", "value": "ok"}]}),
    )
    .await;
    target.down.store(true, Ordering::SeqCst);
    let failed = run(&app, &keys, &id).await;
    assert_eq!(failed["ok"], false, "{failed}");
    assert_eq!(failed["failure"]["kind"], "json");
    assert_eq!(failed["failure"]["assertion"], 0);
    assert!(failed["failure"]["message"]
        .as_str()
        .unwrap()
        .contains("status is \"degraded\""));
    // The secret in the URL is masked in the run; the answer kept redacted.
    assert!(
        failed["url"]
            .as_str()
            .unwrap()
            .ends_with("key=***API_TOKEN***"),
        "{failed}"
    );
    let blob = failed["body_blob"].as_str().unwrap();
    let kept = String::from_utf8(svc.blobs.get(blob).await.unwrap().unwrap()).unwrap();
    assert!(
        kept.contains("degraded") && !kept.contains("hunter2"),
        "{kept}"
    );
    assert!(!failed.to_string().contains("s3cr3t-token"));

    // Still failing: the same incident, nothing new.
    run(&app, &keys, &id).await;
    let open = smoke_incidents(&svc).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].state, IncidentState::Open);
    assert_eq!(open[0].title, "Smoke check api-health failed");
    assert!(!serde_json::to_string(&open[0])
        .unwrap()
        .contains("s3cr3t-token"));

    target.down.store(false, Ordering::SeqCst);
    let passed = run(&app, &keys, &id).await;
    assert_eq!(passed["ok"], true, "{passed}");
    let all = smoke_incidents(&svc).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, IncidentState::Resolved);

    let runs = send(
        &app,
        get_req(&format!("/v1/smoke-checks/{id}/runs?limit=2"), &keys.viewer),
    )
    .await;
    assert_eq!(runs.status, StatusCode::OK);
    assert_eq!(runs.json["items"].as_array().unwrap().len(), 2);
    assert_eq!(runs.json["items"][0]["ok"], true, "newest first");
    let next = runs.json["next_cursor"].as_str().unwrap();
    let older = send(
        &app,
        get_req(
            &format!(
                "/v1/smoke-checks/{id}/runs?limit=2&cursor={}",
                next.replace('#', "%23")
            ),
            &keys.viewer,
        ),
    )
    .await;
    assert_eq!(older.json["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_smoke_job_runs_what_is_due_and_refuses_link_local_targets_on_aws() {
    let (svc, keys, app, _target, base) = setup().await;
    create(&app, &keys, version_check(&base)).await;
    let report = firewatch_scheduler::handle(&svc, &json!({"job": "smoke"}))
        .await
        .unwrap();
    let report = serde_json::to_value(report).unwrap();
    assert_eq!(report["checked"], 1, "{report}");
    // Not due again before its interval.
    let report = firewatch_scheduler::handle(
        &svc,
        &json!({"job": "smoke", "scheduled_time": Utc::now() + chrono::Duration::minutes(1)}),
    )
    .await
    .unwrap();
    assert_eq!(serde_json::to_value(report).unwrap()["checked"], 0);

    // The metadata address is refused everywhere, whatever the allow list.
    let id = create(
        &app,
        &keys,
        json!({"name": "metadata", "url": "http://169.254.169.254/latest/meta-data/"}),
    )
    .await;
    let refused = run(&app, &keys, &id).await;
    assert_eq!(refused["ok"], false);
    assert!(
        refused["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("link-local"),
        "{refused}"
    );
    assert!(refused["status"].is_null(), "nothing was sent");
}

#[tokio::test]
async fn bad_definitions_and_missing_roles_are_refused_and_change_nothing() {
    let (_svc, keys, app, _target, base) = setup().await;
    let url = format!("{base}/version");
    for (body, code) in [
        (
            json!({"name": "x", "url": url, "assertions": [{"type": "telepathy"}]}),
            "invalid_body",
        ),
        (
            json!({"name": "x", "url": url, "assertions": [{"type": "pagination", "param": "offset", "values": ["0"], "items": "items", "id_field": "id"}]}),
            "invalid_assertion",
        ),
        (
            json!({"name": "x", "url": url, "assertions": [{"type": "json", "path": "a", "op": "matches", "value": "("}]}),
            "invalid_assertion",
        ),
        (
            json!({"name": "x", "url": url, "assertions": [{"type": "json", "path": "a", "op": "equals"}]}),
            "invalid_assertion",
        ),
        (json!({"name": "x", "url": "ftp://example/"}), "invalid_url"),
        (
            json!({"name": "x", "url": url, "timeout": "5m"}),
            "invalid_duration",
        ),
        (
            json!({"name": "x", "url": url, "expected_status": 999}),
            "invalid_status",
        ),
        (
            json!({"name": "x", "url": url, "colour": "red"}),
            "invalid_body",
        ),
        (
            json!({"name": "x", "url": "{{ secrets.NOPE "}),
            "invalid_url",
        ),
    ] {
        let a = send(
            &app,
            json_request(
                Method::POST,
                "/v1/smoke-checks",
                Some(&keys.admin),
                body.to_string(),
            ),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.text);
        assert_eq!(a.code(), code, "{body}: {}", a.text);
    }
    let a = send(
        &app,
        json_request(
            Method::POST,
            "/v1/smoke-checks",
            Some(&keys.responder),
            version_check(&base).to_string(),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let list = send(&app, get_req("/v1/smoke-checks", &keys.viewer)).await;
    assert_eq!(list.json["items"].as_array().unwrap().len(), 0);

    let id = create(&app, &keys, version_check(&base)).await;
    let mut changed = version_check(&base);
    changed["interval"] = json!("5m");
    let a = send(
        &app,
        json_request(
            Method::PUT,
            &format!("/v1/smoke-checks/{id}"),
            Some(&keys.admin),
            changed.to_string(),
        ),
    )
    .await;
    assert_eq!(a.json["interval"], "5m", "{}", a.text);
    let a = send(
        &app,
        json_request(
            Method::DELETE,
            &format!("/v1/smoke-checks/{id}"),
            Some(&keys.admin),
            "",
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = send(
        &app,
        json_request(
            Method::POST,
            &format!("/v1/smoke-checks/{id}/run"),
            Some(&keys.responder),
            "",
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn checks_from_files_and_firewatchs_own_are_synced_and_run() {
    use firewatch_domain::schedules::smoke::{self, Origin};
    let (svc, keys, app, _target, base) = setup().await;
    let dir = std::env::temp_dir().join(format!("fw-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("version.yaml"),
        format!(
            "name: api-version\nurl: {base}/version\nassertions:\n  - type: version_fingerprint\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("broken.yaml"),
        "name: broken\nurl: [not, a, url]\n",
    )
    .unwrap();
    let files = smoke::load_dir(&dir).unwrap();
    let defs = files.defs;
    assert_eq!(defs.len(), 1);
    assert!(
        files.errors[0].contains("broken.yaml"),
        "{:?}",
        files.errors
    );
    let t = TenantId::default_tenant();
    assert_eq!(
        smoke::sync_defined(&svc, &t, Origin::File, defs.clone())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        smoke::sync_defined(&svc, &t, Origin::File, defs)
            .await
            .unwrap(),
        0,
        "unchanged"
    );
    assert_eq!(
        smoke::sync_defined(&svc, &t, Origin::Builtin, smoke::builtin(&base))
            .await
            .unwrap(),
        2
    );
    let list = send(&app, get_req("/v1/smoke-checks", &keys.viewer)).await;
    let names: Vec<&str> = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["firewatch-health", "firewatch-version", "api-version"]
    );
    // A file check is changed in its file, not through the API.
    let id = smoke::defined_id(Origin::File, "api-version");
    let a = send(
        &app,
        json_request(
            Method::PUT,
            &format!("/v1/smoke-checks/{id}"),
            Some(&keys.admin),
            version_check(&base).to_string(),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    // Removed from the files: removed here.
    assert_eq!(
        smoke::sync_defined(&svc, &t, Origin::File, vec![])
            .await
            .unwrap(),
        1
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_check_made_through_the_api_uses_only_its_tenants_secrets_and_runs_no_template() {
    let (svc, keys, app, target, base) = setup().await;
    let admin_of = |token: &str| {
        let token = token.to_owned();
        let app = app.clone();
        move |body: Value| {
            let (token, app) = (token.clone(), app.clone());
            async move {
                send(
                    &app,
                    json_request(
                        Method::POST,
                        "/v1/smoke-checks",
                        Some(&token),
                        body.to_string(),
                    ),
                )
                .await
            }
        }
    };
    let create_as_default = admin_of(&keys.admin);
    // Template bombs: refused at once, nothing rendered (plain substitution).
    let started = std::time::Instant::now();
    for (body, code) in [
        (
            json!({"name": "bomb", "url": format!("{base}/health"),
                   "headers": {"X": "{{ [1, 2, 3, 4]|tojson(indent=50000000) }}"}}),
            "invalid_headers",
        ),
        (
            json!({"name": "bomb", "url": format!("{base}/health?x={{{{ 'a' * 99999999 }}}}")}),
            "invalid_url",
        ),
        (
            json!({"name": "host", "url": "https://{{ secrets.API_TOKEN }}.example/x"}),
            "invalid_url",
        ),
    ] {
        let a = create_as_default(body).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, code),
            "{}",
            a.text
        );
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // Nothing was built from them: the process's peak resident memory (every
    // test of this binary included) stays far under what one render would take.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let peak_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/self/status");
        assert!(peak_kb < 300 * 1024, "peak resident memory {peak_kb} kB");
    }

    // The operator's secrets are not the tenant's: a check made through the
    // API that names one runs without it and sends nothing.
    let a = create_as_default(
        json!({"name": "operator's", "url": format!("{base}/health"),
        "headers": {"Authorization": "Bearer {{ secrets.OPERATOR_ONLY }}"}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let r = run(&app, &keys, a.json["id"].as_str().unwrap()).await;
    assert_eq!(r["ok"], false);
    assert!(
        r["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("not one of this tenant's secrets"),
        "{r}"
    );
    // Another tenant's admin cannot use this tenant's API_TOKEN.
    let other = TenantId::parse("acme").unwrap();
    let other_admin = firewatch_domain::auth::create_api_key(
        &svc,
        &other,
        "acme-admin",
        firewatch_types::Role::Admin,
    )
    .await
    .unwrap();
    let a = admin_of(&other_admin)(json!({"name": "borrowed", "url": format!("{base}/health"),
        "headers": {"Authorization": "Bearer {{ secrets.API_TOKEN }}"}}))
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let ran = send(
        &app,
        json_request(
            Method::POST,
            &format!("/v1/smoke-checks/{}/run", a.json["id"].as_str().unwrap()),
            Some(&other_admin),
            "",
        ),
    )
    .await;
    assert_eq!(ran.json["ok"], false, "{}", ran.text);
    assert!(
        ran.text.contains("not one of this tenant's secrets"),
        "{}",
        ran.text
    );
    assert!(!ran.text.contains("s3cr3t-token"));
    assert_eq!(target.hits.load(Ordering::SeqCst), 0, "nothing was sent");
}

/// The exploits of the review, replayed through the smoke route: a check
/// carrying the tenant's secret reaches only the origin the egress guard
/// allows. Every other local form of that address (a name resolving to it,
/// the IPv4-mapped form, 0.0.0.0, another port), the metadata address and a
/// redirect to another origin are refused, and the catcher behind them
/// never hears the secret.
#[tokio::test]
async fn a_checks_secret_reaches_no_origin_but_the_allowed_one() {
    // The catcher: records every request that reaches it.
    let caught = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = caught.clone();
    let catcher = Router::new().fallback(move |headers: HeaderMap| {
        let sink = sink.clone();
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            sink.lock().unwrap().push(auth);
            "caught"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let catcher_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, catcher).await });
    // The allowed origin answers with a redirect to the catcher.
    let redirect = Router::new().fallback(move || async move {
        (
            StatusCode::FOUND,
            [(
                "location",
                format!("http://127.0.0.1:{catcher_port}/stolen"),
            )],
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let allowed_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, redirect).await });

    let svc = firewatch_local::services_in_memory()
        .with_clock(Arc::new(FixedClock::new(Utc::now())))
        .with_egress(Arc::new(firewatch_egress::HttpEgress::new(
            firewatch_domain::egress::EgressAllow::parse(&format!("127.0.0.1:{allowed_port}"))
                .unwrap(),
        )));
    let (svc, keys) = services_and_keys(svc).await;
    firewatch_domain::secrets::put(&svc, &tenant_admin(), "API_TOKEN", "s3cr3t-token")
        .await
        .unwrap();
    let app = firewatch_schedules::router(svc.clone());
    for (name, url) in [
        ("other port", format!("http://127.0.0.1:{catcher_port}/x")),
        (
            "a name for loopback",
            format!("http://localhost:{catcher_port}/x"),
        ),
        (
            "ipv4-mapped",
            format!("http://[::ffff:127.0.0.1]:{catcher_port}/x"),
        ),
        ("unspecified", format!("http://0.0.0.0:{catcher_port}/x")),
        (
            "metadata",
            "http://169.254.169.254/latest/meta-data/".to_owned(),
        ),
        ("redirect", format!("http://127.0.0.1:{allowed_port}/go")),
    ] {
        let id = create(
            &app,
            &keys,
            json!({"name": name, "url": url, "expected_status": 200,
                   "headers": {"Authorization": "Bearer {{ secrets.API_TOKEN }}"}}),
        )
        .await;
        let r = run(&app, &keys, &id).await;
        assert_eq!(r["ok"], false, "{name}: {r}");
        assert!(!r.to_string().contains("s3cr3t-token"), "{name}: {r}");
    }
    assert!(
        caught.lock().unwrap().is_empty(),
        "nothing reached the catcher: {:?}",
        caught.lock().unwrap()
    );
}
