//! SLA evaluation and cost-anomaly alerts, driven by a fake clock through
//! the real router and the `pipelines` scheduler job.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use firewatch_domain::pipelines::sla;
use firewatch_domain::ports::FixedClock;
use firewatch_domain::schedules::{Budget, JobReport};
use firewatch_domain::Services;
use firewatch_types::{IncidentState, SourceKind, TenantId};
use firewatch_web::testing::{get, json_request, send, services_with_keys, Answer, Keys};
use serde_json::{json, Value};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn setup(at: DateTime<Utc>) -> (Services, Keys, axum::Router, Arc<FixedClock>) {
    let (svc, keys) = services_with_keys().await;
    let clock = Arc::new(FixedClock::new(at));
    let svc = svc.with_clock(clock.clone());
    let app = firewatch_pipelines::router(svc.clone());
    (svc, keys, app, clock)
}

async fn call(app: &axum::Router, method: Method, token: &str, path: &str, body: Value) -> Answer {
    send(
        app,
        json_request(method, path, Some(token), body.to_string()),
    )
    .await
}

async fn report(app: &axum::Router, keys: &Keys, body: Value) {
    let a = call(
        app,
        Method::POST,
        &keys.responder,
        "/v1/pipelines/runs",
        body,
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
}

async fn job(svc: &Services) -> JobReport {
    sla::run(svc, &Budget::new(std::time::Duration::from_secs(30)))
        .await
        .unwrap()
}

async fn incidents(svc: &Services) -> Vec<firewatch_types::Incident> {
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

const ORDERS: &str = "/v1/pipelines/airflow%2Fetl.orders";

#[tokio::test]
async fn a_cron_sla_in_a_time_zone_is_late_then_missed_then_met_with_one_alert() {
    // 06:00 in Berlin is 05:00 UTC in December.
    let (svc, keys, app, clock) = setup(t("2026-12-01T04:00:00Z")).await;
    let a = call(
        &app,
        Method::PUT,
        &keys.admin,
        ORDERS,
        json!({"criticality": "high", "sla": {"cron": "0 6 * * *", "tz": "Europe/Berlin"}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);

    // On time: started 06:05 Berlin.
    clock.advance(Duration::minutes(85));
    report(
        &app,
        &keys,
        json!({"pipeline": "airflow/etl.orders", "run_id": "r1", "status": "succeeded",
               "started_at": "2026-12-01T05:05:00Z", "ended_at": "2026-12-01T05:20:00Z"}),
    )
    .await;
    let s = send(&app, get(&format!("{ORDERS}/sla?days=7"), &keys.viewer)).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    assert_eq!(s.json["state"], "ok", "{}", s.text);
    assert_eq!(s.json["next_expected_at"], "2026-12-02T05:00:00Z");
    assert_eq!(s.json["window"]["on_time"], 1);
    assert_eq!(s.json["window"]["on_time_ratio"], 1.0);
    assert_eq!(job(&svc).await.alerts, 0);

    // The next morning the 15-minute grace passes with no run.
    clock.advance(Duration::hours(23) + Duration::minutes(51)); // 2026-12-02T05:16Z
    let s = send(&app, get(&format!("{ORDERS}/sla"), &keys.viewer)).await;
    assert_eq!(s.json["state"], "late", "{}", s.text);
    assert_eq!(s.json["breaches"][0]["since"], "2026-12-02T05:15:00Z");
    let r = job(&svc).await;
    assert_eq!((r.checked, r.alerts, r.failed), (1, 1, 0), "{r:?}");
    let open = incidents(&svc).await;
    assert_eq!(open.len(), 1);
    assert_eq!(
        open[0].fingerprint,
        "pipeline-sla:airflow/etl.orders:schedule"
    );
    assert!(open[0].title.contains("is late"), "{}", open[0].title);
    assert_eq!(open[0].severity, firewatch_types::Severity::Sev2);
    // A tick again raises nothing twice.
    clock.advance(Duration::minutes(1));
    assert_eq!(job(&svc).await.alerts, 0);
    let counts = send(&app, get("/v1/sla/pipelines", &keys.viewer)).await;
    assert_eq!(counts.status, StatusCode::OK, "{}", counts.text);
    assert_eq!(counts.json["by_state"]["late"], 1, "{}", counts.text);
    assert_eq!(
        counts.json["breaching"][0]["pipeline"],
        "airflow/etl.orders"
    );
    let summary = send(&app, get("/v1/summary", &keys.viewer)).await;
    assert_eq!(summary.json["sla_breaches"], 1, "{}", summary.text);

    // A day later still nothing: the 2nd's run is missed, counted on its day.
    clock.advance(Duration::days(1)); // 2026-12-03T05:17Z
    let s = send(&app, get(&format!("{ORDERS}/sla"), &keys.viewer)).await;
    assert_eq!(s.json["state"], "missed", "{}", s.text);
    assert_eq!(
        job(&svc).await.alerts,
        0,
        "the schedule alert is open already"
    );
    assert_eq!(incidents(&svc).await.len(), 1);
    let s = send(&app, get(&format!("{ORDERS}/sla"), &keys.viewer)).await;
    assert_eq!(s.json["window"]["missed"], 1, "{}", s.text);
    assert_eq!(s.json["window"]["expected"], 2);
    assert_eq!(s.json["window"]["on_time_ratio"], 0.5);
    let missed_day = s.json["daily"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["day"] == "2026-12-02")
        .cloned()
        .unwrap();
    assert_eq!(missed_day["missed"], 1);
    // Ticks after that count nothing twice.
    job(&svc).await;
    let again = send(&app, get(&format!("{ORDERS}/sla"), &keys.viewer)).await;
    assert_eq!(again.json["window"]["missed"], 1);

    // A late run (06:40 Berlin) ends the breach and counts as late.
    clock.advance(Duration::minutes(38)); // 05:55Z
    report(
        &app,
        &keys,
        json!({"pipeline": "airflow/etl.orders", "run_id": "r3", "status": "succeeded",
               "started_at": "2026-12-03T05:40:00Z", "ended_at": "2026-12-03T05:50:00Z"}),
    )
    .await;
    let s = send(&app, get(&format!("{ORDERS}/sla"), &keys.viewer)).await;
    assert_eq!(s.json["state"], "ok", "{}", s.text);
    assert_eq!(s.json["window"]["late"], 1);
    assert_eq!(s.json["window"]["on_time"], 1);
    assert_eq!(job(&svc).await.alerts, 1, "resolved");
    let inc = incidents(&svc).await.remove(0);
    assert_eq!(inc.state, IncidentState::Resolved);

    for bad in [
        format!("{ORDERS}/sla?days=0"),
        format!("{ORDERS}/sla?days=91"),
        format!("{ORDERS}/sla?days=x"),
    ] {
        let a = send(&app, get(&bad, &keys.viewer)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
    }
    let a = send(&app, get("/v1/pipelines/nope/sla", &keys.viewer)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_run_too_long_and_outputs_gone_stale_raise_and_clear_their_alerts() {
    let (svc, keys, app, clock) = setup(t("2026-12-01T10:00:00Z")).await;
    let a = call(
        &app,
        Method::PUT,
        &keys.admin,
        ORDERS,
        json!({"sla": {"max_duration": "30m", "freshness": "2h"}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let start = json!({"eventType": "START", "eventTime": "2026-12-01T10:00:00Z",
        "run": {"runId": "01934b6e-0000-7000-8000-0000000000a1"},
        "job": {"namespace": "airflow", "name": "etl.orders"},
        "outputs": [{"namespace": "warehouse", "name": "mart.orders"}],
        "producer": "p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"});
    let a = call(
        &app,
        Method::POST,
        &keys.responder,
        "/api/v1/lineage",
        start.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    clock.advance(Duration::minutes(31));
    let s = send(&app, get(&format!("{ORDERS}/sla"), &keys.viewer)).await;
    assert_eq!(s.json["state"], "long_running", "{}", s.text);
    assert_eq!(job(&svc).await.alerts, 1);
    let inc = incidents(&svc).await.remove(0);
    assert_eq!(inc.fingerprint, "pipeline-sla:airflow/etl.orders:duration");

    let mut done = start;
    done["eventType"] = json!("COMPLETE");
    done["eventTime"] = json!("2026-12-01T10:40:00Z");
    let a = call(&app, Method::POST, &keys.responder, "/api/v1/lineage", done).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let s = send(&app, get(&format!("{ORDERS}/sla"), &keys.viewer)).await;
    assert_eq!(s.json["state"], "ok", "{}", s.text);
    assert_eq!(
        s.json["window"]["long"], 1,
        "judged too long when it finished"
    );
    assert_eq!(s.json["window"]["on_time"], 0);
    assert_eq!(job(&svc).await.alerts, 1, "resolved");

    // Two hours after the last completed run, its output is stale.
    clock.advance(Duration::minutes(130)); // 12:41Z
    let counts = send(&app, get("/v1/sla/pipelines", &keys.viewer)).await;
    assert_eq!(counts.json["by_state"]["stale"], 1, "{}", counts.text);
    assert_eq!(counts.json["stale_datasets"], 1);
    let summary = send(&app, get("/v1/summary", &keys.viewer)).await;
    assert_eq!(summary.json["stale_datasets"], 1, "{}", summary.text);
    let list = send(&app, get("/v1/pipelines", &keys.viewer)).await;
    assert_eq!(list.json["items"][0]["sla_state"], "stale", "{}", list.text);
    assert_eq!(job(&svc).await.alerts, 1);
    let stale: Vec<_> = incidents(&svc)
        .await
        .into_iter()
        .filter(|i| i.fingerprint.ends_with(":freshness"))
        .collect();
    assert_eq!(stale.len(), 1);
    assert!(
        stale[0].annotations["reason"].contains("warehouse/mart.orders"),
        "{:?}",
        stale[0].annotations
    );
}

#[tokio::test]
async fn a_cost_anomaly_raises_an_alert_and_is_investigated() {
    let now = t("2026-12-01T12:00:00Z");
    let (svc, keys, app, _clock) = setup(now).await;
    for d in 0..8 {
        for (name, cost) in [
            ("steady", 10.0),
            ("spiky", if d == 0 { 40.0 } else { 10.0 }),
        ] {
            let end = now - Duration::days(d) - Duration::minutes(1);
            report(
                &app,
                &keys,
                json!({"pipeline": name, "run_id": format!("{name}-{d}"), "status": "succeeded",
                       "started_at": (end - Duration::minutes(10)).to_rfc3339(),
                       "ended_at": end.to_rfc3339(), "cost": cost}),
            )
            .await;
        }
    }
    let r = job(&svc).await;
    assert_eq!(r.alerts, 1, "{r:?}");
    let inc = incidents(&svc).await.remove(0);
    assert_eq!(inc.fingerprint, "pipeline-cost:spiky");
    assert!(inc.title.contains("4x its baseline"), "{}", inc.title);
    assert_eq!(job(&svc).await.alerts, 0, "raised once");

    let i = send(
        &app,
        get("/v1/costs/anomalies/spiky/investigate", &keys.viewer),
    )
    .await;
    assert_eq!(i.status, StatusCode::OK, "{}", i.text);
    assert_eq!(i.json["anomaly"]["band"], "high");
    assert_eq!(i.json["ratio"], 4.0);
    assert_eq!(i.json["baseline"], 10.0);
    assert_eq!(i.json["baseline_delta"], 30.0);
    assert_eq!(i.json["change_24h"]["previous"], 10.0);
    assert_eq!(i.json["change_24h"]["delta"], 30.0);
    assert_eq!(i.json["trend"].as_array().unwrap().len(), 8);
    assert_eq!(i.json["top_cost_runs"][0]["run_id"], "spiky-0");
    assert_eq!(i.json["top_cost_runs"][0]["cost"]["amount"], 40.0);
    assert_eq!(
        i.json["related_incidents"][0]["fingerprint"],
        "pipeline-cost:spiky"
    );
    let actions: Vec<&str> = i.json["recommended_next_actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        actions
            .iter()
            .any(|a| a.contains("Run spiky-0 alone cost 40")),
        "{actions:?}"
    );
    assert!(actions.iter().any(|a| a.contains("is open")), "{actions:?}");
    assert!(
        i.json["triage_prefill"]["title"]
            .as_str()
            .unwrap()
            .contains("4x"),
        "{}",
        i.text
    );
    assert_eq!(i.json["degraded"], false);

    let calm = send(
        &app,
        get("/v1/costs/anomalies/steady/investigate", &keys.viewer),
    )
    .await;
    assert_eq!(calm.json["anomaly"]["anomaly"], false, "{}", calm.text);
    assert!(calm.json["recommended_next_actions"][0]
        .as_str()
        .unwrap()
        .starts_with("No anomaly"));
    let unknown = send(
        &app,
        get("/v1/costs/anomalies/nope/investigate", &keys.viewer),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // A pipeline without spend is investigated as degraded, with why.
    let a = call(
        &app,
        Method::PUT,
        &keys.admin,
        "/v1/pipelines/quiet",
        json!({}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let q = send(
        &app,
        get("/v1/costs/anomalies/quiet/investigate", &keys.viewer),
    )
    .await;
    assert_eq!(q.json["degraded"], true, "{}", q.text);
    assert!(q.json["warnings"][0]
        .as_str()
        .unwrap()
        .contains("no cost reported"));
}
