//! The pipelines routes, in process through the real router: OpenLineage
//! events as the spec's examples show them, plain run reports, incidents
//! from failed runs, lineage impact, and bad input.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use firewatch_domain::Services;
use firewatch_types::{IncidentState, Role, SourceKind, TenantId};
use firewatch_web::testing::{fixture, get, json_request, send, services_with_keys, Answer, Keys};
use serde_json::{json, Value};

async fn setup() -> (Services, Keys, axum::Router) {
    let (svc, keys) = services_with_keys().await;
    let app = firewatch_pipelines::router(svc.clone());
    (svc, keys, app)
}

async fn post(app: &axum::Router, token: &str, path: &str, body: &Value) -> Answer {
    send(
        app,
        json_request(Method::POST, path, Some(token), body.to_string()),
    )
    .await
}

/// A run event as the OpenLineage clients send it.
fn ol(kind: &str, time: &str, run: &str, job: &str, inputs: &[&str], outputs: &[&str]) -> Value {
    let ds = |names: &[&str]| -> Vec<Value> {
        names
            .iter()
            .map(|n| json!({"namespace": "warehouse", "name": n, "facets": {}}))
            .collect()
    };
    json!({
        "eventType": kind,
        "eventTime": time,
        "run": {"runId": run, "facets": {}},
        "job": {"namespace": "airflow", "name": job, "facets": {}},
        "inputs": ds(inputs),
        "outputs": ds(outputs),
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.30.0/client/python",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
    })
}

/// `mins` minutes before the real clock's now (which these services use),
/// truncated to the minute.
fn minutes_ago(mins: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::DurationRound;
    (chrono::Utc::now() - chrono::Duration::minutes(mins))
        .duration_trunc(chrono::Duration::minutes(1))
        .expect("a representable time")
}

/// As the API writes times: RFC 3339, UTC, `Z`, no fraction when it is zero.
fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

const RUN1: &str = "01934b6e-0000-7000-8000-000000000001";
const RUN2: &str = "01934b6e-0000-7000-8000-000000000002";

async fn incidents_of(svc: &Services) -> Vec<firewatch_types::Incident> {
    firewatch_domain::incidents::list(
        svc,
        &TenantId::default_tenant(),
        &Default::default(),
        None,
        100,
    )
    .await
    .unwrap()
    .items
    .into_iter()
    .filter(|i| i.source == SourceKind::Pipelines)
    .collect()
}

#[tokio::test]
async fn the_specs_example_events_are_accepted_as_marquez_accepts_them() {
    let (_, keys, app) = setup().await;
    for f in [
        "start_minimal.json",
        "complete_full.json",
        "job_event.json",
        "dataset_event.json",
    ] {
        let a = send(
            &app,
            json_request(
                Method::POST,
                "/api/v1/lineage",
                Some(&keys.responder),
                String::from_utf8(fixture(&format!("openlineage/{f}"))).unwrap(),
            ),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{f}: {}", a.text);
        assert!(a.text.is_empty(), "{f}: Marquez answers no body");
    }
    // The full example's job, its facets and its datasets are kept.
    let a = send(
        &app,
        get(
            "/v1/pipelines/my-scheduler-namespace%2Fmyjob.mytask",
            &keys.viewer,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["state"], "succeeded");
    assert_eq!(a.json["namespace"], "my-scheduler-namespace");
    assert_eq!(a.json["job"]["description"], "string");
    assert_eq!(
        a.json["outputs"],
        json!(["my-datasource-namespace/instance.schema.table"])
    );
    let r = send(
        &app,
        get(
            "/v1/runs/ea041791-68bc-4ae1-bd89-4c8106a157e4",
            &keys.viewer,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "completed");
    assert_eq!(
        r.json["parent"],
        json!([
            "my-scheduler-namespace/myjob.mytask",
            "3f5e83fa-3480-44ff-99c5-ff943904e5e8"
        ])
    );
    assert_eq!(r.json["nominal_time"], "2020-12-17T03:00:00.001Z");
    assert_eq!(r.json["event_log"][0]["event_type"], "COMPLETE");
    // Unknown facets are kept with the event, not refused.
    assert!(r.json["event_log"][0]["body"]["run"]["facets"]["tags"].is_object());
}

#[tokio::test]
async fn redelivered_and_out_of_order_events_give_the_same_run() {
    let (_, keys, app) = setup().await;
    // Two hours ago, to the minute: inside the 7-day window whatever the day.
    let started = minutes_ago(120);
    let ended = started + chrono::Duration::minutes(20);
    let start = ol(
        "START",
        &rfc3339(started),
        RUN1,
        "etl.orders",
        &["raw.orders"],
        &[],
    );
    let complete = ol(
        "COMPLETE",
        &rfc3339(ended),
        RUN1,
        "etl.orders",
        &[],
        &["mart.orders"],
    );
    // COMPLETE first, then START, then both again.
    for ev in [&complete, &start, &complete, &start] {
        let a = post(&app, &keys.responder, "/api/v1/lineage", ev).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    let r = send(&app, get(&format!("/v1/runs/{RUN1}"), &keys.viewer)).await;
    assert_eq!(r.json["status"], "completed", "{}", r.text);
    assert_eq!(r.json["started_at"], rfc3339(started));
    assert_eq!(r.json["ended_at"], rfc3339(ended));
    assert_eq!(
        r.json["events"],
        json!({"COMPLETE": 1, "START": 1}),
        "redeliveries are not counted"
    );
    assert_eq!(r.json["event_log"].as_array().unwrap().len(), 2);
    assert_eq!(r.json["inputs"], json!(["warehouse/raw.orders"]));
    assert_eq!(r.json["outputs"], json!(["warehouse/mart.orders"]));
    let p = send(
        &app,
        get("/v1/pipelines/airflow%2Fetl.orders", &keys.viewer),
    )
    .await;
    assert_eq!(p.json["state"], "succeeded");
    assert_eq!(p.json["runs_7d"], 1, "{}", p.text);
    assert_eq!(p.json["mean_duration_ms_7d"], 20 * 60 * 1000);
}

#[tokio::test]
async fn a_failed_run_opens_one_incident_with_impact_and_runbook_and_a_success_resolves_it() {
    let (svc, keys, app) = setup().await;
    // etl.orders feeds mart.orders, which two reports read.
    let now = chrono::Utc::now();
    let at = |mins: i64| (now - chrono::Duration::minutes(mins)).to_rfc3339();
    for (job, input) in [
        ("report.finance", "mart.orders"),
        ("report.ops", "mart.orders"),
    ] {
        let a = post(
            &app,
            &keys.responder,
            "/api/v1/lineage",
            &json!({"job": {"namespace": "airflow", "name": job}, "inputs": [{"namespace": "warehouse", "name": input}], "outputs": [], "eventTime": at(60), "producer": "p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent"}),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    let a = send(
        &app,
        json_request(
            Method::PUT,
            "/v1/pipelines/airflow%2Fetl.orders",
            Some(&keys.admin),
            json!({"team": "data", "criticality": "high", "runbook_url": "https://runbooks.example/etl-orders"}).to_string(),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);

    let mut fail = ol(
        "FAIL",
        &at(10),
        RUN1,
        "etl.orders",
        &["raw.orders"],
        &["mart.orders"],
    );
    fail["run"]["facets"]["errorMessage"] = json!({"_producer": "p", "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/ErrorMessageRunFacet.json", "message": "relation raw.orders does not exist", "programmingLanguage": "SQL"});
    for _ in 0..2 {
        let a = post(&app, &keys.responder, "/api/v1/lineage", &fail).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    let incs = incidents_of(&svc).await;
    assert_eq!(incs.len(), 1, "one incident, however often the event comes");
    let inc = &incs[0];
    assert_eq!(inc.state, IncidentState::Open);
    assert_eq!(
        inc.severity,
        firewatch_types::Severity::Sev2,
        "criticality high"
    );
    assert!(
        inc.title.contains("relation raw.orders does not exist"),
        "{}",
        inc.title
    );
    assert_eq!(inc.labels["pipeline"], "airflow/etl.orders");
    assert_eq!(inc.labels["team"], "data");
    assert!(
        inc.annotations["impact"].contains("2 downstream consumers"),
        "{:?}",
        inc.annotations
    );
    assert!(inc.annotations["impact"].contains("airflow/report.finance"));
    assert!(inc
        .links
        .iter()
        .any(|l| l.href == "https://runbooks.example/etl-orders"
            && l.text.as_deref() == Some("runbook")));

    // The summary counts it as failing, with the assets it hits.
    let s = send(&app, get("/v1/summary", &keys.viewer)).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    assert_eq!(s.json["by_state"]["failed"], 1);
    assert_eq!(s.json["failing"], json!(["airflow/etl.orders"]));
    assert_eq!(
        s.json["top_impacted_downstream_assets"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(s.json["sla_breaches"], 0, "no SLA is set");
    assert_eq!(s.json["sla_by_state"]["none"], 3);

    // A later successful run resolves it; a late START of the failed run changes nothing.
    let ok = ol(
        "COMPLETE",
        &at(2),
        RUN2,
        "etl.orders",
        &[],
        &["mart.orders"],
    );
    assert_eq!(
        post(&app, &keys.responder, "/api/v1/lineage", &ok)
            .await
            .status,
        StatusCode::CREATED
    );
    let late = ol("START", &at(30), RUN1, "etl.orders", &[], &[]);
    assert_eq!(
        post(&app, &keys.responder, "/api/v1/lineage", &late)
            .await
            .status,
        StatusCode::CREATED
    );
    let incs = incidents_of(&svc).await;
    assert_eq!(incs.len(), 1);
    assert_eq!(incs[0].state, IncidentState::Resolved);
    let p = send(
        &app,
        get("/v1/pipelines/airflow%2Fetl.orders", &keys.viewer),
    )
    .await;
    assert_eq!(p.json["state"], "succeeded", "{}", p.text);
    assert_eq!(p.json["last_run"]["run_id"], RUN2);
    assert_eq!(p.json["runs_7d"], 2);
    assert_eq!(p.json["failures_7d"], 1);

    // Its runs, newest first, by cursor and by offset.
    let r = send(
        &app,
        get(
            "/v1/pipelines/airflow%2Fetl.orders/runs?limit=1",
            &keys.viewer,
        ),
    )
    .await;
    assert_eq!(r.json["items"][0]["run_id"], RUN2, "{}", r.text);
    let cursor = r.json["next_cursor"].as_str().unwrap().to_owned();
    let r2 = send(
        &app,
        get(
            &format!(
                "/v1/pipelines/airflow%2Fetl.orders/runs?limit=1&cursor={}",
                cursor
                    .replace('#', "%23")
                    .replace(':', "%3A")
                    .replace('+', "%2B")
            ),
            &keys.viewer,
        ),
    )
    .await;
    assert_eq!(r2.json["items"][0]["run_id"], RUN1, "{}", r2.text);
    let r3 = send(
        &app,
        get(
            "/v1/pipelines/airflow%2Fetl.orders/runs?offset=1",
            &keys.viewer,
        ),
    )
    .await;
    assert_eq!(r3.json["items"][0]["run_id"], RUN1, "{}", r3.text);
    assert_eq!(r3.json["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn impact_walks_a_diamond_once_and_stops_on_a_cycle() {
    let (_, keys, app) = setup().await;
    // Diamond: a → (x) → b, c → (y, z) → d. Cycle: d → (w) → a.
    let edges: [(&str, &[&str], &[&str]); 4] = [
        ("a", &["w"], &["x"]),
        ("b", &["x"], &["y"]),
        ("c", &["x"], &["z"]),
        ("d", &["y", "z"], &["w"]),
    ];
    for (n, (job, inputs, outputs)) in edges.iter().enumerate() {
        let run = format!("01934b6e-0000-7000-8000-00000000010{n}");
        let ev = ol(
            "COMPLETE",
            "2026-11-30T06:00:00Z",
            &run,
            job,
            inputs,
            outputs,
        );
        assert_eq!(
            post(&app, &keys.responder, "/api/v1/lineage", &ev)
                .await
                .status,
            StatusCode::CREATED
        );
    }
    let a = send(&app, get("/v1/pipelines/airflow%2Fa/impact", &keys.viewer)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let consumers: Vec<(&str, u64)> = a.json["downstream_consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["pipeline"].as_str().unwrap(),
                c["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        consumers,
        [("airflow/b", 1), ("airflow/c", 1), ("airflow/d", 2)],
        "d once, though two paths reach it; a not again through the cycle"
    );
    assert_eq!(a.json["downstream_datasets"].as_array().unwrap().len(), 4);
    assert_eq!(a.json["degraded"], false);
    assert!(a.json["edges"]
        .as_array()
        .unwrap()
        .contains(&json!({"from": "warehouse/w", "to": "airflow/a"})));

    // The deprecated alias answers the same, marked.
    let l = send(&app, get("/v1/pipelines/airflow%2Fa/lineage", &keys.viewer)).await;
    assert_eq!(l.status, StatusCode::OK, "{}", l.text);
    assert_eq!(l.json["deprecated"], true);
    assert_eq!(
        l.json["replacement_endpoint"],
        "/v1/pipelines/airflow%2Fa/impact"
    );
    assert_eq!(
        l.json["downstream_consumers"],
        a.json["downstream_consumers"]
    );

    // A pipeline with no outputs known: degraded, with a warning.
    let lone = ol(
        "START",
        "2026-11-30T06:00:00Z",
        "01934b6e-0000-7000-8000-000000000199",
        "lonely",
        &[],
        &[],
    );
    post(&app, &keys.responder, "/api/v1/lineage", &lone).await;
    let g = send(
        &app,
        get("/v1/pipelines/airflow%2Flonely/impact", &keys.viewer),
    )
    .await;
    assert_eq!(g.json["degraded"], true, "{}", g.text);
    assert!(g.json["warnings"][0]
        .as_str()
        .unwrap()
        .contains("no lineage"));
}

#[tokio::test]
async fn plain_run_reports_count_cost_and_duration() {
    let (_, keys, app) = setup().await;
    let now = chrono::Utc::now();
    let report = json!({
        "pipeline": "nightly-export", "run_id": "r-1", "status": "succeeded",
        "started_at": (now - chrono::Duration::minutes(40)).to_rfc3339(),
        "ended_at": (now - chrono::Duration::minutes(10)).to_rfc3339(),
        "cost": {"amount": 12.5, "currency": "EUR"}, "outputs": ["s3://exports/nightly"]
    });
    let a = post(&app, &keys.responder, "/v1/pipelines/runs", &report).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let again = post(&app, &keys.responder, "/v1/pipelines/runs", &report).await;
    assert_eq!(again.status, StatusCode::OK, "a redelivery: {}", again.text);
    assert_eq!(again.json["duplicate"], true);
    let s = send(&app, get("/v1/summary", &keys.viewer)).await;
    assert_eq!(s.json["cost_24h"]["EUR"], 12.5, "{}", s.text);
    assert_eq!(s.json["cost_7d"]["EUR"], 12.5);
    assert_eq!(s.json["runs_24h"], 1);
    let p = send(&app, get("/v1/pipelines/nightly-export", &keys.viewer)).await;
    assert_eq!(p.json["mean_duration_ms_7d"], 30 * 60 * 1000, "{}", p.text);
    assert_eq!(p.json["cost_7d"]["EUR"], 12.5);
    let l = send(&app, get("/v1/pipelines?state=succeeded", &keys.viewer)).await;
    assert_eq!(l.json["items"].as_array().unwrap().len(), 1, "{}", l.text);
    let none = send(&app, get("/v1/pipelines?state=failed", &keys.viewer)).await;
    assert!(none.json["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bad_input_is_refused_clearly_and_changes_nothing() {
    let (_, keys, app) = setup().await;
    let good = ol(
        "START",
        "2026-11-30T06:00:00Z",
        RUN1,
        "etl.orders",
        &[],
        &[],
    );
    let mut cases: Vec<(String, Value, &str, StatusCode)> = Vec::new();
    let mut bad_type = good.clone();
    bad_type["eventType"] = json!("EXPLODE");
    cases.push((
        "eventType".into(),
        bad_type,
        &keys.responder,
        StatusCode::BAD_REQUEST,
    ));
    let mut bad_run = good.clone();
    bad_run["run"]["runId"] = json!("run-1");
    cases.push((
        "runId".into(),
        bad_run,
        &keys.responder,
        StatusCode::BAD_REQUEST,
    ));
    let mut bad_time = good.clone();
    bad_time["eventTime"] = json!("yesterday");
    cases.push((
        "eventTime".into(),
        bad_time,
        &keys.responder,
        StatusCode::BAD_REQUEST,
    ));
    cases.push((
        "no job".into(),
        json!({"run": {"runId": RUN1}, "eventTime": "2026-11-30T06:00:00Z"}),
        &keys.responder,
        StatusCode::BAD_REQUEST,
    ));
    cases.push((
        "viewer".into(),
        good.clone(),
        &keys.viewer,
        StatusCode::FORBIDDEN,
    ));
    for (what, body, token, status) in cases {
        let a = post(&app, token, "/api/v1/lineage", &body).await;
        assert_eq!(a.status, status, "{what}: {}", a.text);
    }
    for (body, status) in [
        ("{not json".to_owned(), StatusCode::BAD_REQUEST),
        ("x".repeat(2 * 1024 * 1024), StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let a = send(
            &app,
            json_request(Method::POST, "/api/v1/lineage", Some(&keys.responder), body),
        )
        .await;
        assert_eq!(a.status, status, "{}", a.text);
    }
    for (encoding, status) in [
        ("br", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("gzip", StatusCode::BAD_REQUEST),
    ] {
        let a = send(
            &app,
            Request::post("/api/v1/lineage")
                .header("authorization", format!("Bearer {}", keys.responder))
                .header("content-type", "application/json")
                .header("content-encoding", encoding)
                .body(Body::from(good.to_string()))
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, status, "{encoding}: {}", a.text);
    }
    let anon = send(
        &app,
        Request::post("/api/v1/lineage")
            .header("content-type", "application/json")
            .body(Body::from(good.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    for (body, what) in [
        (
            json!({"pipeline": "p", "run_id": "r", "status": "exploded", "ended_at": "2026-11-30T06:00:00Z"}),
            "status",
        ),
        (
            json!({"pipeline": "p", "run_id": "r", "status": "failed"}),
            "times",
        ),
        (
            json!({"pipeline": "p", "run_id": "r", "status": "succeeded", "started_at": "2026-11-30T07:00:00Z", "ended_at": "2026-11-30T06:00:00Z"}),
            "order",
        ),
        (
            json!({"pipeline": "p", "run_id": "r", "status": "succeeded", "ended_at": "2026-11-30T06:00:00Z", "cost": -3}),
            "cost",
        ),
        (
            json!({"pipeline": "p", "run_id": "r", "status": "succeeded", "ended_at": "2026-11-30T06:00:00Z", "surprise": 1}),
            "unknown field",
        ),
    ] {
        let a = post(&app, &keys.responder, "/v1/pipelines/runs", &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{what}: {}", a.text);
    }
    let cfg = send(
        &app,
        json_request(
            Method::PUT,
            "/v1/pipelines/p",
            Some(&keys.responder),
            "{}".to_owned(),
        ),
    )
    .await;
    assert_eq!(
        cfg.status,
        StatusCode::FORBIDDEN,
        "admin only: {}",
        cfg.text
    );
    let cfg = send(
        &app,
        json_request(
            Method::PUT,
            "/v1/pipelines/p",
            Some(&keys.admin),
            r#"{"sla": {"cron": "every day"}}"#.to_owned(),
        ),
    )
    .await;
    assert_eq!(cfg.status, StatusCode::BAD_REQUEST, "{}", cfg.text);
    let bad_filter = send(&app, get("/v1/pipelines?state=melting", &keys.viewer)).await;
    assert_eq!(bad_filter.status, StatusCode::BAD_REQUEST);
    let both = send(
        &app,
        get("/v1/pipelines/p/runs?offset=1&cursor=x", &keys.viewer),
    )
    .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);

    // Nothing was recorded by any of it.
    let s = send(&app, get("/v1/summary", &keys.viewer)).await;
    assert_eq!(s.json["pipelines"], 0, "{}", s.text);
}

#[tokio::test]
async fn another_tenant_sees_nothing_on_any_route() {
    let (svc, keys, app) = setup().await;
    let mut ev = ol(
        "FAIL",
        &(chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339(),
        RUN1,
        "etl.orders",
        &["raw.orders"],
        &["mart.orders"],
    );
    ev["run"]["facets"]["firewatch_cost"] =
        json!({"_producer": "p", "_schemaURL": "s", "amount": 12.5, "currency": "USD"});
    assert_eq!(
        post(&app, &keys.responder, "/api/v1/lineage", &ev)
            .await
            .status,
        StatusCode::CREATED
    );
    let other = TenantId::parse("acme").unwrap();
    let token = firewatch_domain::auth::create_api_key(&svc, &other, "acme-admin", Role::Admin)
        .await
        .unwrap();
    for path in [
        "/v1/pipelines/airflow%2Fetl.orders",
        "/v1/pipelines/airflow%2Fetl.orders/runs",
        "/v1/pipelines/airflow%2Fetl.orders/impact",
        "/v1/pipelines/airflow%2Fetl.orders/lineage",
        &format!("/v1/runs/{RUN1}"),
        &format!("/v1/runs/{RUN1}/explain"),
        "/v1/pipelines/airflow%2Fetl.orders/sla",
        "/v1/pipelines/airflow%2Fetl.orders/cost",
        "/v1/costs/anomalies/airflow%2Fetl.orders/investigate",
    ] {
        let a = send(&app, get(path, &token)).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}: {}", a.text);
    }
    let sla = send(&app, get("/v1/sla/pipelines", &token)).await;
    assert_eq!(sla.json["pipelines"], 0, "{}", sla.text);
    let mine = send(&app, get("/v1/costs", &keys.viewer)).await;
    assert_eq!(mine.json["cost_24h"]["USD"], 12.5, "{}", mine.text);
    let costs = send(&app, get("/v1/costs", &token)).await;
    assert!(
        costs.json["cost_24h"].as_object().unwrap().is_empty(),
        "{}",
        costs.text
    );
    for path in ["/v1/costs/anomalies", "/v1/costs/pipelines"] {
        let a = send(&app, get(path, &token)).await;
        assert!(
            a.json["items"].as_array().unwrap().is_empty(),
            "{path}: {}",
            a.text
        );
    }
    let trend = send(&app, get("/v1/costs/trend?days=2", &token)).await;
    assert!(
        trend.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["runs"] == 0),
        "{}",
        trend.text
    );
    let s = send(&app, get("/v1/summary", &token)).await;
    assert_eq!(s.json["pipelines"], 0, "{}", s.text);
    let l = send(&app, get("/v1/pipelines", &token)).await;
    assert!(l.json["items"].as_array().unwrap().is_empty());
    let c = send(&app, get("/v1/runbooks", &token)).await;
    assert_eq!(c.json["coverage"]["pipelines"], 0, "{}", c.text);
    let g = post(
        &app,
        &token,
        "/v1/runbooks/governance",
        &json!({"pipeline": "airflow/etl.orders", "status": "open"}),
    )
    .await;
    assert_eq!(g.status, StatusCode::NOT_FOUND, "{}", g.text);
    // The same run id from the other tenant is its own run.
    let a = post(
        &app,
        &token,
        "/api/v1/lineage",
        &ol(
            "COMPLETE",
            "2026-11-30T07:00:00Z",
            RUN1,
            "etl.orders",
            &[],
            &[],
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let mine = send(&app, get(&format!("/v1/runs/{RUN1}"), &keys.viewer)).await;
    assert_eq!(mine.json["status"], "failed");
}

#[tokio::test]
async fn a_failed_run_is_explained_with_its_cause_impact_and_runbook() {
    let (_, keys, app) = setup().await;
    let put = send(
        &app,
        json_request(
            Method::PUT,
            "/v1/pipelines/airflow%2Fetl.orders",
            Some(&keys.admin),
            json!({"runbook_url": "https://runbooks.example/etl-orders", "criticality": "critical"}).to_string(),
        ),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let mut fail = ol(
        "FAIL",
        "2026-11-30T06:10:00Z",
        RUN1,
        "etl.orders",
        &["raw.orders"],
        &["mart.orders"],
    );
    fail["run"]["facets"]["errorMessage"] = json!({"_producer": "p", "_schemaURL": "s", "message": "relation \"raw.orders\" does not exist", "programmingLanguage": "SQL"});
    assert_eq!(
        post(&app, &keys.responder, "/api/v1/lineage", &fail)
            .await
            .status,
        StatusCode::CREATED
    );
    let e = send(&app, get(&format!("/v1/runs/{RUN1}/explain"), &keys.viewer)).await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.text);
    assert!(
        e.json["likely_cause"]
            .as_str()
            .unwrap()
            .starts_with("An input it reads is missing"),
        "{}",
        e.text
    );
    assert_eq!(e.json["runbook_url"], "https://runbooks.example/etl-orders");
    assert_eq!(
        e.json["next_actions"][0],
        "Follow the runbook: https://runbooks.example/etl-orders"
    );
    assert!(e.json["next_actions"][1]
        .as_str()
        .unwrap()
        .contains("warehouse/raw.orders"));
    assert_eq!(e.json["confidence"], "medium");
    assert!(e.json["facts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f.as_str().unwrap().contains("does not exist")));
    let missing = send(&app, get("/v1/runs/nope/explain", &keys.viewer)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_runbook_catalog_counts_coverage_and_governance_is_audited() {
    let (svc, keys, app) = setup().await;
    for (id, cfg) in [
        (
            "a",
            json!({"team": "data", "owner": "ana", "runbook_url": "https://runbooks.example/a", "sla": {"max_duration": "45m"}}),
        ),
        ("b", json!({"team": "data", "runbook_url": "see the wiki"})),
        ("c", json!({"team": "web"})),
        ("d", json!({"team": "data", "criticality": "high"})),
    ] {
        let a = send(
            &app,
            json_request(
                Method::PUT,
                &format!("/v1/pipelines/{id}"),
                Some(&keys.admin),
                cfg.to_string(),
            ),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    let c = send(&app, get("/v1/runbooks", &keys.viewer)).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(
        c.json["coverage"],
        json!({"pipelines": 4, "configured": 1, "missing": 2, "invalid_format": 1, "coverage_ratio": 0.25})
    );
    let a = &c.json["items"][0];
    assert_eq!(
        (
            a["pipeline"].as_str(),
            a["runbook_status"].as_str(),
            a["sla_minutes"].as_u64()
        ),
        (Some("a"), Some("configured"), Some(45))
    );
    assert_eq!(c.json["items"][1]["runbook_status"], "invalid_format");
    let data = send(
        &app,
        get("/v1/runbooks?team=data&include_missing=false", &keys.viewer),
    )
    .await;
    assert_eq!(data.json["coverage"]["pipelines"], 3, "{}", data.text);
    assert_eq!(
        data.json["items"].as_array().unwrap().len(),
        2,
        "the missing one is left out"
    );
    let s = send(&app, get("/v1/runbooks?search=ANA", &keys.viewer)).await;
    assert_eq!(s.json["items"].as_array().unwrap().len(), 1);

    // Governance: open, then in progress, then cleared; each change audited.
    for (status, code) in [
        ("open", StatusCode::OK),
        ("in_progress", StatusCode::OK),
        ("fixed", StatusCode::BAD_REQUEST),
    ] {
        let a = post(
            &app,
            &keys.responder,
            "/v1/runbooks/governance",
            &json!({"pipeline": "d", "status": status, "note": "JIRA-12"}),
        )
        .await;
        assert_eq!(a.status, code, "{status}: {}", a.text);
    }
    let c = send(&app, get("/v1/runbooks?criticality=high", &keys.viewer)).await;
    assert_eq!(
        c.json["items"][0]["governance"], "in_progress",
        "{}",
        c.text
    );
    assert_eq!(c.json["items"][0]["governance_detail"]["note"], "JIRA-12");
    let viewer = post(
        &app,
        &keys.viewer,
        "/v1/runbooks/governance",
        &json!({"pipeline": "d", "status": "waived"}),
    )
    .await;
    assert_eq!(viewer.status, StatusCode::FORBIDDEN);
    let unknown = post(
        &app,
        &keys.responder,
        "/v1/runbooks/governance",
        &json!({"pipeline": "zz", "status": "open"}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let d = send(
        &app,
        Request::delete("/v1/runbooks/governance/d")
            .header("authorization", format!("Bearer {}", keys.responder))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    assert_eq!(d.json["governance"], "none");
    let audit = svc
        .store
        .query(firewatch_domain::ports::Query::all(
            firewatch_domain::keys::audit_pk(&TenantId::default_tenant()),
            100,
        ))
        .await
        .unwrap();
    let changes = audit
        .items
        .iter()
        .filter(|i| i.data.contains("runbook.governance"))
        .count();
    assert_eq!(changes, 3, "open, in progress, cleared");
}

#[tokio::test]
async fn costs_trend_rank_and_flag_a_day_far_above_its_baseline() {
    // Noon, so that "a minute ago" is always today.
    let now = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    let (svc, keys) = services_with_keys().await;
    let svc = svc.with_clock(std::sync::Arc::new(
        firewatch_domain::ports::FixedClock::new(now),
    ));
    let app = firewatch_pipelines::router(svc);
    let report = |pipeline: &str, run: String, ago_days: i64, cost: f64| {
        let end = now - chrono::Duration::days(ago_days) - chrono::Duration::minutes(1);
        json!({"pipeline": pipeline, "run_id": run, "status": "succeeded",
               "started_at": (end - chrono::Duration::minutes(10)).to_rfc3339(),
               "ended_at": end.to_rfc3339(), "cost": cost})
    };
    // A steady pipeline at 10 a day, and one that spends 10 a day then 40.
    for d in 0..8 {
        for (name, cost) in [
            ("steady", 10.0),
            ("spiky", if d == 0 { 40.0 } else { 10.0 }),
        ] {
            let a = post(
                &app,
                &keys.responder,
                "/v1/pipelines/runs",
                &report(name, format!("{name}-{d}"), d, cost),
            )
            .await;
            assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        }
    }
    let c = send(&app, get("/v1/costs", &keys.viewer)).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.json["cost_24h"]["USD"], 50.0);
    let t = send(&app, get("/v1/costs/trend?days=3", &keys.viewer)).await;
    assert_eq!(t.json["items"].as_array().unwrap().len(), 3, "{}", t.text);
    assert_eq!(t.json["items"][2]["cost"]["USD"], 50.0);
    assert_eq!(t.json["items"][1]["cost"]["USD"], 20.0);
    let r = send(&app, get("/v1/costs/pipelines?days=1", &keys.viewer)).await;
    assert_eq!(r.json["items"][0]["pipeline"], "spiky", "{}", r.text);
    assert_eq!(r.json["items"][0]["cost"]["USD"], 40.0);

    let a = send(
        &app,
        get("/v1/costs/anomalies?anomaly_only=true", &keys.viewer),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let items = a.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the spike: {}", a.text);
    assert_eq!(items[0]["pipeline"], "spiky");
    assert_eq!(items[0]["baseline"], 10.0);
    assert_eq!(items[0]["ratio"], 4.0);
    assert_eq!(items[0]["band"], "high");
    let all = send(&app, get("/v1/costs/anomalies", &keys.viewer)).await;
    assert_eq!(all.json["items"].as_array().unwrap().len(), 2);
    let high = send(&app, get("/v1/costs/anomalies?min_ratio=5", &keys.viewer)).await;
    assert!(
        high.json["items"].as_array().unwrap().is_empty(),
        "{}",
        high.text
    );

    let pc = send(&app, get("/v1/pipelines/spiky/cost?days=10", &keys.viewer)).await;
    assert_eq!(pc.status, StatusCode::OK, "{}", pc.text);
    assert_eq!(pc.json["total"]["USD"], 110.0);
    assert_eq!(pc.json["anomalies"][0]["band"], "high");
    for bad in [
        "/v1/costs/trend?days=0",
        "/v1/costs/trend?days=31",
        "/v1/costs/pipelines?days=x",
        "/v1/costs/anomalies?min_ratio=-1",
    ] {
        let a = send(&app, get(bad, &keys.viewer)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
    }
}

#[tokio::test]
async fn triage_of_a_pipeline_incident_cites_its_impact_cost_and_missing_runbook() {
    let (svc, keys, app) = setup().await;
    let now = chrono::Utc::now();
    let at = (now - chrono::Duration::minutes(5)).to_rfc3339();
    let reader = json!({"job": {"namespace": "airflow", "name": "report.finance"}, "inputs": [{"namespace": "warehouse", "name": "mart.orders"}], "outputs": [], "eventTime": at, "producer": "p", "schemaURL": "s"});
    assert_eq!(
        post(&app, &keys.responder, "/api/v1/lineage", &reader)
            .await
            .status,
        StatusCode::CREATED
    );
    let mut fail = ol("FAIL", &at, RUN1, "etl.orders", &[], &["mart.orders"]);
    fail["run"]["facets"]["errorMessage"] = json!({"_producer": "p", "_schemaURL": "s", "message": "OutOfMemoryError", "programmingLanguage": "JAVA"});
    fail["run"]["facets"]["firewatch_cost"] =
        json!({"_producer": "p", "_schemaURL": "s", "amount": 7.5, "currency": "USD"});
    assert_eq!(
        post(&app, &keys.responder, "/api/v1/lineage", &fail)
            .await
            .status,
        StatusCode::CREATED
    );
    let inc = incidents_of(&svc).await.remove(0);
    let responder = firewatch_types::Principal {
        tenant: TenantId::default_tenant(),
        name: "ana".into(),
        role: Role::Responder,
    };
    let r = firewatch_domain::triage::run(&svc, &responder, &inc.id)
        .await
        .unwrap();
    let fact = |field: &str| {
        r.facts_used
            .iter()
            .find(|f| f.field == field)
            .unwrap_or_else(|| panic!("no {field} fact in {:?}", r.facts_used))
            .clone()
    };
    let impact = fact("pipeline.impact");
    assert!(
        impact.value.contains("airflow/report.finance"),
        "{}",
        impact.value
    );
    assert!(r.traceability.impact_facts.contains(&impact.id));
    let cost = fact("pipeline.cost");
    assert!(cost.value.contains("7.5 USD"), "{}", cost.value);
    assert!(r.traceability.cost_facts.contains(&cost.id));
    assert!(fact("pipeline.last_run").value.contains("OutOfMemoryError"));
    assert!(fact("pipeline.runbook").value.contains("no runbook"));
    // The same through the incidents function's route, as a responder asks
    // for it (so the incidents function is seen reaching the pipeline's
    // records: its key patterns must allow them).
    let incidents = firewatch_incidents::router(svc.clone());
    let routed = send(
        &incidents,
        firewatch_web::testing::json_request(
            axum::http::Method::POST,
            &format!("/v1/incidents/{}/triage", inc.id),
            Some(&keys.responder),
            r#"{"mode": "deterministic"}"#,
        ),
    )
    .await;
    assert_eq!(routed.status, StatusCode::OK, "{}", routed.text);
    assert!(
        routed.text.contains("airflow/report.finance"),
        "{}",
        routed.text
    );
    assert!(r
        .impacted_consumers
        .contains(&"pipeline airflow/report.finance".to_owned()));
    assert!(r
        .next_actions
        .iter()
        .any(|a| a.contains(&format!("/v1/runs/{RUN1}/explain"))));
    assert!(r
        .next_actions
        .iter()
        .any(|a| a.contains("Give airflow/etl.orders a runbook")));
    // Triaged as a pipeline, not as a failing web service.
    assert_eq!(r.rule.as_deref(), Some("pipeline"));
    assert!(
        r.likely_cause.contains("data pipeline"),
        "{}",
        r.likely_cause
    );
    assert!(!r.likely_cause.contains("deploy"), "{}", r.likely_cause);
    assert!(
        !r.impact_summary.contains("not yet user-facing")
            && r.impact_summary.contains("late or missing")
            && r.impact_summary.contains("airflow/report.finance"),
        "{}",
        r.impact_summary
    );
}

#[tokio::test]
async fn runs_from_more_than_a_day_ahead_are_refused_and_change_nothing() {
    let (_, keys, app) = setup().await;
    let ahead = rfc3339(minutes_ago(-3 * 24 * 60));
    let a = post(
        &app,
        &keys.responder,
        "/api/v1/lineage",
        &ol("COMPLETE", &ahead, RUN1, "etl.orders", &[], &[]),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "time_in_future"),
        "{}",
        a.text
    );
    let a = post(
        &app,
        &keys.responder,
        "/v1/pipelines/runs",
        &json!({"pipeline": "p", "run_id": "r", "status": "succeeded", "ended_at": ahead}),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "time_in_future"),
        "{}",
        a.text
    );
    // An hour of clock skew is fine.
    let soon = rfc3339(minutes_ago(-60));
    let a = post(
        &app,
        &keys.responder,
        "/api/v1/lineage",
        &ol("COMPLETE", &soon, RUN2, "etl.orders", &[], &[]),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let r = send(&app, get(&format!("/v1/runs/{RUN1}"), &keys.viewer)).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "nothing kept of the refused run"
    );
}
