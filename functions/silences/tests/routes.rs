//! The silences routes in process through the real routers, with alerts
//! posted to the ingest router as providers send them and a fake clock
//! driving the silences job; and `amtool` itself against a served router.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use chrono::{Duration, SecondsFormat, Utc};
use firewatch_domain::ports::FixedClock;
use firewatch_domain::schedules::Budget;
use firewatch_domain::Services;
use firewatch_types::{Role, TenantId};
use firewatch_web::testing::{fixture, get, json_request, send, services_and_keys, Answer, Keys};
use serde_json::{json, Value};

struct World {
    svc: Services,
    clock: Arc<FixedClock>,
    keys: Keys,
    app: axum::Router,
    ingest: axum::Router,
    incidents: axum::Router,
}

async fn world() -> World {
    let clock = Arc::new(FixedClock::new(Utc::now()));
    let svc = firewatch_local::services_in_memory().with_clock(clock.clone());
    let (svc, keys) = services_and_keys(svc).await;
    World {
        app: firewatch_silences::router(svc.clone()),
        ingest: firewatch_ingest::router(svc.clone()),
        incidents: firewatch_incidents::router(svc.clone()),
        svc,
        clock,
        keys,
    }
}

fn ts(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl World {
    fn now(&self) -> chrono::DateTime<Utc> {
        firewatch_domain::ports::Clock::now(self.clock.as_ref())
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Value) -> Answer {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        send(&self.app, json_request(method, path, Some(token), body)).await
    }

    async fn alerts(&self, body: &[u8]) -> Value {
        let a = send(
            &self.ingest,
            json_request(
                Method::POST,
                "/v1/alerts/alertmanager",
                Some(&self.keys.responder),
                body.to_vec(),
            ),
        )
        .await;
        assert!(a.status.is_success(), "{} {}", a.status, a.text);
        a.json
    }

    async fn incidents(&self) -> Vec<Value> {
        let a = send(&self.incidents, get("/v1/incidents", &self.keys.viewer)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.json["items"].as_array().cloned().unwrap_or_default()
    }

    async fn job(&self) -> firewatch_domain::schedules::JobReport {
        firewatch_domain::silence_ends::run_due(
            &self.svc,
            &Budget::new(std::time::Duration::from_secs(5)),
        )
        .await
        .unwrap()
    }
}

/// The body amtool 0.25 posts for `amtool silence add alertname=Foo
/// 'env=~prod|stage' 'team!=x' --duration 2h --comment maint -a alice`.
fn amtool_add(now: chrono::DateTime<Utc>) -> Value {
    json!({
        "comment": "maint",
        "createdBy": "alice",
        "endsAt": ts(now + Duration::hours(2)),
        "matchers": [
            {"isEqual": true, "isRegex": false, "name": "alertname", "value": "Foo"},
            {"isEqual": true, "isRegex": true, "name": "env", "value": "prod|stage"},
            {"isEqual": false, "isRegex": false, "name": "team", "value": "x"}
        ],
        "startsAt": ts(now)
    })
}

#[tokio::test]
async fn amtool_shaped_requests_add_query_update_and_expire() {
    let w = world().await;
    let r = &w.keys.responder;
    let status = w.call(Method::GET, "/api/v2/status", r, Value::Null).await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.json["cluster"]["status"], "disabled");
    assert!(status.json["versionInfo"]["version"].is_string());
    assert!(status.json["config"]["original"].is_string());
    assert!(status.json["uptime"].is_string());

    let added = w
        .call(Method::POST, "/api/v2/silences", r, amtool_add(w.now()))
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text);
    let id = added.json["silenceID"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");

    let q = w
        .call(
            Method::GET,
            "/api/v2/silences?filter=alertname%3DFoo",
            r,
            Value::Null,
        )
        .await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.text);
    let list = q.json.as_array().unwrap();
    assert_eq!(list.len(), 1);
    let s = &list[0];
    // Every field of gettableSilence.
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["status"]["state"], "active");
    assert!(s["updatedAt"].is_string() && s["startsAt"].is_string() && s["endsAt"].is_string());
    assert_eq!(s["createdBy"], "alice");
    assert_eq!(s["comment"], "maint");
    assert!(s["annotations"].is_object());
    assert_eq!(
        s["matchers"][1],
        json!({"name": "env", "value": "prod|stage", "isRegex": true, "isEqual": true})
    );
    assert_eq!(s["matchers"][2]["isEqual"], false);
    // A filter names an equivalent matcher of the silence.
    for (filter, n) in [
        ("filter=alertname%3DBar", 0),
        ("filter=env%3D~%22prod%7Cstage%22", 1),
        ("filter=env%3Dprod", 0),
        ("active=false", 0),
        ("expired=false&pending=false", 1),
    ] {
        let q = w
            .call(
                Method::GET,
                &format!("/api/v2/silences?{filter}"),
                r,
                Value::Null,
            )
            .await;
        assert_eq!(
            q.json.as_array().map(Vec::len),
            Some(n),
            "{filter}: {}",
            q.text
        );
    }

    // amtool silence update: the same id, a later end.
    let mut update = amtool_add(w.now());
    update["id"] = json!(id);
    update["endsAt"] = json!(ts(w.now() + Duration::hours(4)));
    let updated = w.call(Method::POST, "/api/v2/silences", r, update).await;
    assert_eq!(updated.json["silenceID"], id.as_str(), "{}", updated.text);

    let one = w
        .call(
            Method::GET,
            &format!("/api/v2/silence/{id}"),
            r,
            Value::Null,
        )
        .await;
    assert_eq!(
        one.json["endsAt"],
        ts(w.now() + Duration::hours(4)),
        "{}",
        one.text
    );

    let gone = w
        .call(
            Method::DELETE,
            &format!("/api/v2/silence/{id}"),
            r,
            Value::Null,
        )
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    let one = w
        .call(
            Method::GET,
            &format!("/api/v2/silence/{id}"),
            r,
            Value::Null,
        )
        .await;
    assert_eq!(one.json["status"]["state"], "expired");
    // Expiring again changes nothing.
    let again = w
        .call(
            Method::DELETE,
            &format!("/api/v2/silence/{id}"),
            r,
            Value::Null,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
}

#[tokio::test]
async fn alertmanager_routes_answer_errors_as_json_strings() {
    let w = world().await;
    let mut past = amtool_add(w.now());
    past["endsAt"] = json!(ts(w.now() - Duration::minutes(1)));
    past["startsAt"] = json!(ts(w.now() - Duration::hours(1)));
    let a = w
        .call(Method::POST, "/api/v2/silences", &w.keys.responder, past)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json, json!("end time can't be in the past"));

    let a = w
        .call(
            Method::POST,
            "/api/v2/silences",
            &w.keys.viewer,
            amtool_add(w.now()),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.json.as_str().unwrap().contains("responder"), "{}", a.text);

    let a = w
        .call(
            Method::GET,
            "/api/v2/silence/0191d3a2-aaaa-bbbb-cccc-000000000000",
            &w.keys.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.json.is_string(), "{}", a.text);

    let a = send(
        &w.app,
        json_request(Method::GET, "/api/v2/silences", None, ""),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.json.is_string(), "{}", a.text);

    let a = w
        .call(
            Method::GET,
            "/api/v2/silences?filter=alertname",
            &w.keys.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.json.as_str().unwrap().contains("is not a matcher"),
        "{}",
        a.text
    );
    let listed = w
        .call(Method::GET, "/api/v2/silences", &w.keys.viewer, Value::Null)
        .await;
    assert_eq!(listed.json, json!([]), "nothing was created");
}

#[tokio::test]
async fn a_silenced_alert_opens_its_incident_when_the_silence_ends_if_still_firing() {
    let w = world().await;
    let made = w
        .call(
            Method::POST,
            "/v1/silences",
            &w.keys.responder,
            json!({
                "matchers": ["alertname=InstanceDown", {"name": "namespace", "value": "stor.*", "isRegex": true}],
                "ends_at": w.now() + Duration::hours(1),
                "comment": "storage maintenance"
            }),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    assert_eq!(made.json["state"], "active");
    assert_eq!(made.json["created_by"], "responder");
    let id = made.json["id"].as_str().unwrap().to_owned();

    // Both alerts are held: no incident, nobody told.
    let report = w.alerts(&fixture("alertmanager/firing.json")).await;
    assert_eq!(report["silenced"], 2, "{report}");
    assert_eq!(report["incidents"], json!([]));
    assert!(report["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["outcome"] == "silenced"));
    assert!(w.incidents().await.is_empty());
    // The dossier has the webhook, with what was silenced.
    let dossier = firewatch_dossier::router(w.svc.clone());
    let events = send(&dossier, get("/v1/dossier/events", &w.keys.viewer)).await;
    assert_eq!(events.json["items"][0]["silenced"], 2, "{}", events.text);

    // db-2 recovers while silenced; db-1 keeps firing.
    let mut resolved: Value =
        serde_json::from_slice(&fixture("alertmanager/resolved.json")).unwrap();
    resolved["alerts"].as_array_mut().unwrap().remove(0);
    w.alerts(resolved.to_string().as_bytes()).await;
    let one = w
        .call(
            Method::GET,
            &format!("/v1/silences/{id}"),
            &w.keys.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(one.json["matched_alerts"], 2, "{}", one.text);
    assert_eq!(one.json["firing_alerts"], 1);
    assert_eq!(one.json["silenced_notifications"], 3);
    assert_eq!(one.json["stale"], false);

    // Not yet.
    w.clock.advance(Duration::minutes(59));
    w.job().await;
    assert!(w.incidents().await.is_empty());
    // The end: db-1's incident opens, db-2's does not.
    w.clock.advance(Duration::minutes(1));
    w.job().await;
    let list = w.incidents().await;
    assert_eq!(list.len(), 1, "{list:?}");
    let inc = &list[0];
    assert_eq!(inc["title"], "db-1:9100 is down");
    assert_eq!(inc["state"], "open");
    // A retried tick opens nothing twice.
    w.job().await;
    firewatch_domain::silence_ends::close(&w.svc, &TenantId::default_tenant(), &id, "test")
        .await
        .unwrap();
    assert_eq!(w.incidents().await.len(), 1);
    let one = w
        .call(
            Method::GET,
            &format!("/v1/silences/{id}"),
            &w.keys.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(one.json["state"], "expired");
    let viewer = firewatch_types::Principal {
        tenant: TenantId::default_tenant(),
        name: "test".into(),
        role: Role::Viewer,
    };
    let kept = firewatch_domain::silences::get(&w.svc, &viewer, &id)
        .await
        .unwrap();
    assert!(kept.silence.closed, "its end was handled");
    for internal in ["closed", "warned", "due_sk", "version"] {
        assert!(one.json.get(internal).is_none(), "{internal}: {}", one.text);
    }
}

#[tokio::test]
async fn expiring_a_silence_early_releases_what_it_held_at_once() {
    let w = world().await;
    let made = w
        .call(
            Method::POST,
            "/v1/silences",
            &w.keys.responder,
            json!({"matchers": ["job=node"], "ends_at": w.now() + Duration::hours(3), "comment": "reboots"}),
        )
        .await;
    let id = made.json["id"].as_str().unwrap().to_owned();
    w.alerts(&fixture("alertmanager/firing.json")).await;
    assert!(w.incidents().await.is_empty());
    let a = w
        .call(
            Method::DELETE,
            &format!("/v1/silences/{id}"),
            &w.keys.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "viewers read only");
    assert!(w.incidents().await.is_empty());
    let a = w
        .call(
            Method::DELETE,
            &format!("/v1/silences/{id}"),
            &w.keys.responder,
            Value::Null,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["state"], "expired");
    // Each held alert opened its incident.
    let list = w.incidents().await;
    assert_eq!(list.len(), 2, "{list:?}");
    // Alertmanager's next notification of the same firing changes nothing
    // and is silenced no more.
    let mut again: Value = serde_json::from_slice(&fixture("alertmanager/firing.json")).unwrap();
    again["truncatedAlerts"] = json!(0.0);
    let report = w.alerts(again.to_string().as_bytes()).await;
    assert_eq!(report["duplicate"], false, "{report}");
    assert_eq!(report.get("silenced"), None, "{report}");
    assert_eq!(report["results"][0]["outcome"], "unchanged", "{report}");
}

#[tokio::test]
async fn stale_silences_matched_nothing_or_outlived_their_alerts() {
    let w = world().await;
    let make =
        |m: &str| json!({"matchers": [m], "ends_at": w.now() + Duration::hours(2), "comment": "c"});
    for m in [
        "alertname=Nothing",
        "instance=db-2:9100",
        "instance=db-1:9100",
    ] {
        let a = w
            .call(Method::POST, "/v1/silences", &w.keys.responder, make(m))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    w.alerts(&fixture("alertmanager/firing.json")).await;
    let mut resolved: Value =
        serde_json::from_slice(&fixture("alertmanager/resolved.json")).unwrap();
    resolved["alerts"].as_array_mut().unwrap().remove(0);
    w.alerts(resolved.to_string().as_bytes()).await;

    let a = w
        .call(
            Method::GET,
            "/v1/silences?stale=true",
            &w.keys.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let mut stale: Vec<String> = a.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["matchers"][0]["value"].as_str().unwrap().to_owned())
        .collect();
    stale.sort();
    assert_eq!(stale, ["Nothing", "db-2:9100"]);
    let all = w
        .call(
            Method::GET,
            "/v1/silences?state=active&filter=instance%3Ddb-1:9100",
            &w.keys.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(
        all.json["items"].as_array().unwrap().len(),
        1,
        "{}",
        all.text
    );
}

#[tokio::test]
async fn the_list_pages_as_every_list_does_and_shows_no_bookkeeping() {
    let w = world().await;
    for n in 1..=3 {
        let body = json!({"matchers": [format!("job=n{n}")], "comment": "c",
                          "ends_at": w.now() + Duration::hours(n)});
        let a = w
            .call(Method::POST, "/v1/silences", &w.keys.responder, body)
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    let first = w
        .call(
            Method::GET,
            "/v1/silences?limit=2",
            &w.keys.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let items = first.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    // Active ones, ending first.
    assert_eq!(items[0]["matchers"][0]["value"], "n1");
    for item in items {
        for internal in ["closed", "warned", "due_sk", "version"] {
            assert!(item.get(internal).is_none(), "{internal}: {item}");
        }
        assert_eq!(item["state"], "active");
    }
    let cursor = first.json["next_cursor"].as_str().unwrap();
    let rest = w
        .call(
            Method::GET,
            &format!("/v1/silences?limit=2&cursor={cursor}"),
            &w.keys.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(rest.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest.json["items"][0]["matchers"][0]["value"], "n3");
    assert!(rest.json["next_cursor"].is_null());
    for (query, code) in [
        ("cursor=bogus", "invalid_cursor"),
        ("cursor=s0", "invalid_cursor"),
        ("limit=0", "invalid_query"),
        ("limit=201", "invalid_query"),
    ] {
        let a = w
            .call(
                Method::GET,
                &format!("/v1/silences?{query}"),
                &w.keys.viewer,
                Value::Null,
            )
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, code),
            "{query}"
        );
    }
}

#[tokio::test]
async fn bad_silences_are_refused_and_change_nothing() {
    let w = world().await;
    let end = w.now() + Duration::hours(1);
    for (body, code, says) in [
        (
            json!({"matchers": [], "ends_at": end, "comment": "c"}),
            "invalid_matcher",
            "at least one matcher",
        ),
        (
            json!({"matchers": ["env=~.*"], "ends_at": end, "comment": "c"}),
            "invalid_matcher",
            "would match every alert",
        ),
        (
            json!({"matchers": ["a=b"], "starts_at": end, "ends_at": end, "comment": "c"}),
            "invalid_silence",
            "start time must be before end time",
        ),
        (
            json!({"matchers": ["a=b"], "ends_at": end, "comment": "c".repeat(1025)}),
            "invalid_silence",
            "comment is over",
        ),
        (
            json!({"matchers": ["a=b"], "ends_at": end, "mood": "calm"}),
            "invalid_body",
            "unknown field",
        ),
        (
            json!({"matchers": ["a"], "ends_at": end}),
            "invalid_body",
            "is not a matcher",
        ),
    ] {
        let a = w
            .call(Method::POST, "/v1/silences", &w.keys.responder, body)
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
        assert_eq!(a.code(), code, "{}", a.text);
        assert!(a.text.contains(says), "{says}: {}", a.text);
    }
    let a = w
        .call(
            Method::POST,
            "/v1/silences",
            &w.keys.viewer,
            json!({"matchers": ["a=b"], "ends_at": end}),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = w
        .call(
            Method::GET,
            "/v1/silences?state=gone",
            &w.keys.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = w
        .call(
            Method::GET,
            "/v1/silences/not-a-uuid",
            &w.keys.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let listed = w
        .call(Method::GET, "/v1/silences", &w.keys.viewer, Value::Null)
        .await;
    assert_eq!(listed.json, json!({"items": [], "next_cursor": null}));
}

#[tokio::test]
async fn another_tenant_neither_sees_nor_is_silenced_by_a_silence() {
    let w = world().await;
    let made = w
        .call(
            Method::POST,
            "/v1/silences",
            &w.keys.responder,
            json!({"matchers": ["job=node"], "ends_at": w.now() + Duration::hours(1), "comment": "c"}),
        )
        .await;
    let id = made.json["id"].as_str().unwrap().to_owned();
    let other = TenantId::parse("acme").unwrap();
    firewatch_domain::auth::ensure_tenant(&w.svc, &other)
        .await
        .unwrap();
    let token = firewatch_domain::auth::create_api_key(&w.svc, &other, "acme", Role::Responder)
        .await
        .unwrap();
    let a = w
        .call(
            Method::GET,
            &format!("/v1/silences/{id}"),
            &token,
            Value::Null,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = w
        .call(
            Method::DELETE,
            &format!("/api/v2/silence/{id}"),
            &token,
            Value::Null,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = w
        .call(Method::GET, "/api/v2/silences", &token, Value::Null)
        .await;
    assert_eq!(a.json, json!([]));
    let report = send(
        &w.ingest,
        json_request(
            Method::POST,
            "/v1/alerts/alertmanager",
            Some(&token),
            fixture("alertmanager/firing.json"),
        ),
    )
    .await;
    assert_eq!(
        report.json["results"][0]["outcome"], "opened",
        "{}",
        report.text
    );
}

/// `amtool` itself (Debian's prometheus-alertmanager, which the test
/// command installs), unchanged, against the router served on a port, with
/// its bearer token from `--http.config.file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_adds_queries_and_expires_silences() {
    if std::process::Command::new("amtool")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "amtool is missing: bash tests/run.sh installs it (apt: prometheus-alertmanager)"
        );
        eprintln!("amtool is not installed; bash tests/run.sh installs it");
        return;
    }
    let (svc, keys) = firewatch_web::testing::services_with_keys().await;
    let app = firewatch_silences::router(svc.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = std::env::temp_dir().join(format!("fw-amtool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("http.yml");
    std::fs::write(
        &config,
        format!(
            "authorization:\n  type: Bearer\n  credentials: {}\n",
            keys.responder
        ),
    )
    .unwrap();
    let amtool = |args: &[&str]| {
        let mut all = vec![
            "--alertmanager.url".to_owned(),
            url.clone(),
            "--http.config.file".to_owned(),
            config.display().to_string(),
        ];
        all.extend(args.iter().map(|s| (*s).to_owned()));
        async move {
            tokio::task::spawn_blocking(move || {
                let out = std::process::Command::new("amtool")
                    .args(&all)
                    .output()
                    .unwrap();
                // stdout is amtool's answer; stderr its complaints (and a
                // note that firewatch's version is not Alertmanager's).
                (
                    out.status.success(),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            })
            .await
            .unwrap()
        }
    };
    let (ok, out, _) = amtool(&[
        "silence",
        "add",
        "alertname=DiskFull",
        "env=~prod|stage",
        "team!=db",
        "--duration",
        "2h",
        "--comment",
        "disk swap",
        "--author",
        "alice",
    ])
    .await;
    assert!(ok, "{out}");
    let id = out.trim().to_owned();
    assert_eq!(id.len(), 36, "{out}");

    let (ok, out, _) = amtool(&["silence", "query", "alertname=DiskFull"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&id) && out.contains("alice") && out.contains("disk swap"),
        "{out}"
    );
    assert!(
        out.contains("env=~prod|stage") || out.contains("env=~\"prod|stage\""),
        "{out}"
    );
    let (ok, out, _) = amtool(&["silence", "query", "-q", "alertname=Other"]).await;
    assert!(ok && out.trim().is_empty(), "{out}");

    // The silence holds a matching alert.
    let alert = json!({"alerts": [{"title": "disk full", "fingerprint": "disk-1",
        "labels": {"alertname": "DiskFull", "env": "prod", "team": "web"}}]});
    let p = firewatch_types::Principal {
        tenant: TenantId::default_tenant(),
        name: "source:test".into(),
        role: Role::Responder,
    };
    let report = firewatch_domain::ingest::ingest(
        &svc,
        firewatch_domain::ingest::IngestRequest {
            principal: &p,
            source: firewatch_types::SourceKind::Generic,
            body: alert.to_string().as_bytes(),
            headers: vec![],
        },
    )
    .await
    .unwrap();
    assert_eq!(report.silenced, 1);

    let (ok, out, _) = amtool(&["silence", "expire", &id]).await;
    assert!(ok, "{out}");
    let (ok, out, _) = amtool(&["silence", "query", "-q"]).await;
    assert!(ok && out.trim().is_empty(), "no active silence left: {out}");
    let (ok, out, _) = amtool(&["silence", "query", "-q", "--expired"]).await;
    assert!(ok && out.trim() == id, "{out}");
    // Expired, the silence let its held alert through.
    let open = firewatch_domain::incidents::list(
        &svc,
        &TenantId::default_tenant(),
        &Default::default(),
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(open.items.len(), 1);
    assert_eq!(open.items[0].title, "disk full");

    // A viewer's token may query, not add.
    std::fs::write(
        &config,
        format!(
            "authorization:\n  type: Bearer\n  credentials: {}\n",
            keys.viewer
        ),
    )
    .unwrap();
    let (ok, _, err) = amtool(&["silence", "add", "alertname=X", "--comment", "c"]).await;
    assert!(!ok, "{err}");
    // amtool reports a status its spec does not list by number.
    assert!(err.contains("status 403"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn an_ingest_key_posts_alerts_but_cannot_silence_them() {
    let w = world().await;
    let sender = firewatch_web::testing::ingest_key(&w.svc).await;
    let a = send(
        &w.ingest,
        json_request(
            Method::POST,
            "/v1/alerts/generic",
            Some(&sender),
            json!({"title": "disk full", "fingerprint": "disk-1", "severity": "sev2"}).to_string(),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    for (method, path, body) in [
        (Method::POST, "/api/v2/silences", amtool_add(w.now())),
        (Method::GET, "/api/v2/silences", Value::Null),
        (
            Method::POST,
            "/v1/silences",
            json!({"matchers": ["alertname=Foo"], "ends_at": w.now() + Duration::hours(1), "comment": "x"}),
        ),
    ] {
        let a = w.call(method, path, &sender, body).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.text);
    }
}

#[tokio::test]
async fn silence_changes_past_the_tenants_limit_answer_429_with_retry_after() {
    let w = world().await;
    let limit = firewatch_domain::Settings::default().rate_limits.silences;
    for _ in 0..limit {
        let a = w
            .call(
                Method::POST,
                "/api/v2/silences",
                &w.keys.responder,
                amtool_add(w.now()),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    let listed = w
        .call(Method::GET, "/v1/silences", &w.keys.viewer, Value::Null)
        .await;
    let v1 = json!({"matchers": ["job=node"], "ends_at": w.now() + Duration::hours(1)});
    for (path, body) in [
        ("/api/v2/silences", amtool_add(w.now())),
        ("/v1/silences", v1),
    ] {
        let a = w.call(Method::POST, path, &w.keys.admin, body).await;
        assert_eq!(
            a.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{path}: {}",
            a.text
        );
        assert!(a.text.contains("too many silence changes"), "{}", a.text);
        assert!(a.headers.contains_key("retry-after"), "{path}");
    }
    let after = w
        .call(Method::GET, "/v1/silences", &w.keys.viewer, Value::Null)
        .await;
    assert_eq!(after.json, listed.json, "nothing was created");
    w.clock.advance(Duration::seconds(60));
    let a = w
        .call(
            Method::POST,
            "/api/v2/silences",
            &w.keys.responder,
            amtool_add(w.now()),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "the next minute: {}", a.text);
}

/// A refused silence says what is wrong without repeating what was sent:
/// not the expression, not a matcher name that is no plain word, not an
/// unknown query key.
#[tokio::test]
async fn refusals_never_echo_what_was_sent() {
    let w = world().await;
    const MARK: &str = "Zq9marker";
    let ends = ts(w.now() + chrono::Duration::hours(1));
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/silences".to_owned(),
            serde_json::json!({"matchers": [MARK], "ends_at": ends, "comment": "c"}),
        ),
        (
            Method::POST,
            "/v1/silences".to_owned(),
            serde_json::json!({"matchers": [format!("9{MARK}=x")], "ends_at": ends, "comment": "c"}),
        ),
        (Method::GET, format!("/v1/silences?{MARK}=1"), Value::Null),
        (
            Method::GET,
            format!("/api/v2/silences?filter={MARK}"),
            Value::Null,
        ),
    ] {
        let a = w.call(method, &path, &w.keys.responder, body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}: {}", a.text);
        assert!(!a.text.contains(MARK), "{path} echoed: {}", a.text);
    }
}
