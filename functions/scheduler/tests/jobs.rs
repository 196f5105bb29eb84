//! Scheduled invocations through the Lambda handler, with the inputs
//! EventBridge Scheduler and an EventBridge rule send.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use firewatch_domain::incidents::{self, ListFilter};
use firewatch_domain::ports::FixedClock;
use firewatch_domain::schedules::heartbeats::{self, Fields, PingKind, Received};
use firewatch_domain::Services;
use firewatch_scheduler::{handle, Invocation, Job, JobReport};
use firewatch_types::{IncidentState, Principal, Role, SourceKind, TenantId};

fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/scheduler")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn admin() -> Principal {
    Principal {
        tenant: TenantId::default_tenant(),
        name: "ops".into(),
        role: Role::Admin,
    }
}

/// Minute 0 of the tests that run jobs: the real minute, so that what the
/// store keeps for a while (tick claims) is not already past its expiry by
/// the real clock the store reads.
fn ten() -> DateTime<Utc> {
    use chrono::DurationRound;
    static TEN: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *TEN.get_or_init(|| {
        Utc::now()
            .duration_trunc(Duration::minutes(1))
            .expect("a representable time")
    })
}

/// A fixture's invocation, its tick moved to `minutes` after [`ten`].
fn tick_at(name: &str, minutes: i64) -> serde_json::Value {
    let mut v = fixture(name);
    let t = (ten() + Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for field in ["scheduled_time", "time"] {
        if v.get(field).is_some() {
            v[field] = serde_json::json!(t);
        }
    }
    v
}

/// A heartbeat every 5 minutes (grace 1 minute) pinged at minute 0.
async fn pinged_at_ten() -> (Services, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(ten()));
    let svc = firewatch_local::services_in_memory().with_clock(clock.clone());
    let hb = heartbeats::create(
        &svc,
        &admin(),
        Fields {
            name: Some("etl".into()),
            period: Some("5m".into()),
            grace: Some("1m".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ping = Received {
        uuid: &hb.ping_uuid,
        kind: PingKind::Success,
        exit_status: None,
        rid: None,
        method: "GET",
        user_agent: None,
        body: b"",
    };
    assert!(heartbeats::ping(&svc, ping).await.unwrap());
    (svc, clock)
}

fn checks(r: JobReport) -> firewatch_domain::schedules::JobReport {
    match r {
        JobReport::Checks(c) => c,
        JobReport::Retries(_) => panic!("not a checking job"),
    }
}

async fn heartbeat_incidents(svc: &Services) -> Vec<firewatch_types::Incident> {
    let filter = ListFilter {
        source: Some(SourceKind::Heartbeat),
        ..Default::default()
    };
    incidents::list(svc, &TenantId::default_tenant(), &filter, None, 10)
        .await
        .unwrap()
        .items
}

#[test]
fn both_input_shapes_name_the_job_and_its_tick() {
    let plain = Invocation::parse(&fixture("heartbeats-input.json")).unwrap();
    assert_eq!(plain.job, Job::Heartbeats);
    assert_eq!(plain.tick, Some(at("2030-06-01T10:07:00Z")));
    let event = Invocation::parse(&fixture("eventbridge-event.json")).unwrap();
    assert_eq!(event.job, Job::Heartbeats);
    assert_eq!(event.tick, Some(at("2030-06-01T10:08:00Z")));
    let e = Invocation::parse(&serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}))
        .unwrap_err();
    assert!(e.to_string().contains("job"), "{e}");
}

#[tokio::test]
async fn an_overdue_heartbeat_raises_once_and_a_retried_tick_raises_nothing() {
    let (svc, clock) = pinged_at_ten().await;
    clock.advance(Duration::minutes(7));
    let first = checks(
        handle(&svc, &tick_at("heartbeats-input.json", 7))
            .await
            .unwrap(),
    );
    assert_eq!(
        (first.checked, first.alerts, first.already_run),
        (1, 1, false)
    );
    let open = heartbeat_incidents(&svc).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].state, IncidentState::Open);

    // EventBridge Scheduler retries the same scheduled time: nothing runs.
    let retried = checks(
        handle(&svc, &tick_at("heartbeats-input.json", 7))
            .await
            .unwrap(),
    );
    assert!(retried.already_run);
    assert_eq!(retried.alerts, 0);
    // The next minute's tick runs, and finds nothing new to raise.
    clock.advance(Duration::minutes(1));
    let next = checks(
        handle(&svc, &tick_at("eventbridge-event.json", 8))
            .await
            .unwrap(),
    );
    assert!(!next.already_run);
    assert_eq!(next.alerts, 0);
    assert_eq!(heartbeat_incidents(&svc).await.len(), 1);
}

#[tokio::test]
async fn a_job_out_of_budget_leaves_the_rest_due_for_the_next_tick() {
    let (svc, clock) = pinged_at_ten().await;
    clock.advance(Duration::minutes(7));
    let none = firewatch_domain::schedules::Budget::new(std::time::Duration::ZERO);
    let r = firewatch_scheduler::run_checks(&svc, Job::Heartbeats, &none)
        .await
        .unwrap();
    assert_eq!((r.checked, r.more), (0, true));
    assert!(heartbeat_incidents(&svc).await.is_empty());
    let r = checks(
        handle(&svc, &serde_json::json!({"job": "heartbeats"}))
            .await
            .unwrap(),
    );
    assert_eq!(r.alerts, 1);
}

#[tokio::test]
async fn the_pipelines_job_raises_a_late_pipeline_once_per_tick() {
    let clock = Arc::new(FixedClock::new(ten()));
    let svc = firewatch_local::services_in_memory().with_clock(clock.clone());
    // The job looks at known tenants: those with an API key.
    firewatch_domain::auth::create_api_key(&svc, &TenantId::default_tenant(), "ops", Role::Admin)
        .await
        .unwrap();
    let config = firewatch_domain::pipelines::Config {
        sla: Some(firewatch_domain::pipelines::Sla {
            max_interval: Some("1h".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    firewatch_domain::pipelines::configure(&svc, &admin(), "nightly-export", config)
        .await
        .unwrap();
    clock.advance(Duration::minutes(61));
    let input = serde_json::json!({"job": "pipelines", "scheduled_time": (ten() + Duration::minutes(61)).to_rfc3339()});
    let first = checks(handle(&svc, &input).await.unwrap());
    assert_eq!((first.checked, first.alerts), (1, 1), "{first:?}");
    let retried = checks(handle(&svc, &input).await.unwrap());
    assert!(retried.already_run);
    let filter = ListFilter {
        source: Some(SourceKind::Pipelines),
        ..Default::default()
    };
    let open = incidents::list(&svc, &TenantId::default_tenant(), &filter, None, 10)
        .await
        .unwrap()
        .items;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].fingerprint, "pipeline-sla:nightly-export:schedule");
    assert_eq!(
        Job::parse(&serde_json::json!({"job": "pipelines"})).unwrap(),
        Job::Pipelines
    );
}
