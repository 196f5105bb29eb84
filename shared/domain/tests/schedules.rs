//! Heartbeats and provider freshness through the domain, on the embedded
//! store with a fake clock.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{Incident, IncidentState, Principal, Role, SourceKind, TenantId};

use firewatch_domain::incidents::{self, ListFilter};
use firewatch_domain::ports::{Clock, FixedClock};
use firewatch_domain::schedules::heartbeats::{
    self, Edit, Fields, PingKind, Received, State, View,
};
use firewatch_domain::schedules::{claim_tick, freshness, Budget};
use firewatch_domain::Services;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Services on a fake clock starting at `start` (`now`: the real time, for
/// tests that read items with a time to live, which the store expires on
/// the real clock).
fn services(start: &str) -> (Services, Arc<FixedClock>) {
    let start = if start == "now" {
        Utc::now()
    } else {
        at(start)
    };
    let clock = Arc::new(FixedClock::new(start));
    let svc = firewatch_local::services_in_memory().with_clock(clock.clone());
    (svc, clock)
}

fn admin() -> Principal {
    Principal {
        tenant: TenantId::default_tenant(),
        name: "ops".into(),
        role: Role::Admin,
    }
}

fn budget() -> Budget {
    Budget::new(std::time::Duration::from_secs(30))
}

async fn every_5m(svc: &Services) -> heartbeats::Heartbeat {
    heartbeats::create(
        svc,
        &admin(),
        Fields {
            name: Some("nightly-backup".into()),
            period: Some("5m".into()),
            grace: Some("1m".into()),
            severity: Some("sev2".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn send(
    svc: &Services,
    uuid: &str,
    kind: PingKind,
    exit: Option<u8>,
    rid: Option<&str>,
) -> bool {
    heartbeats::ping(
        svc,
        Received {
            uuid,
            kind,
            exit_status: exit,
            rid,
            method: "POST",
            user_agent: Some("curl/8"),
            body: b"",
        },
    )
    .await
    .unwrap()
}

async fn incidents_of(svc: &Services, source: SourceKind) -> Vec<Incident> {
    let filter = ListFilter {
        source: Some(source),
        ..Default::default()
    };
    incidents::list(svc, &TenantId::default_tenant(), &filter, None, 50)
        .await
        .unwrap()
        .items
}

async fn view(svc: &Services, id: &str) -> View {
    let (hb, _) = heartbeats::get(svc, &admin(), id, 10).await.unwrap();
    View::of(&hb, svc.clock.now(), &admin())
}

#[tokio::test]
async fn an_overdue_heartbeat_opens_one_incident_and_a_success_ping_resolves_it() {
    let (svc, clock) = services("2026-06-01T10:00:00Z");
    let hb = every_5m(&svc).await;
    assert_eq!(view(&svc, &hb.id).await.state, State::New);
    // Nothing is expected of a heartbeat never pinged.
    clock.advance(Duration::hours(2));
    assert_eq!(
        heartbeats::run_due(&svc, &budget()).await.unwrap().checked,
        0
    );

    assert!(send(&svc, &hb.ping_uuid, PingKind::Success, None, None).await);
    let v = view(&svc, &hb.id).await;
    assert_eq!(v.state, State::Up);
    assert_eq!(v.next_deadline, Some(clock.now() + Duration::minutes(6)));

    clock.advance(Duration::minutes(5) + Duration::seconds(30));
    assert_eq!(view(&svc, &hb.id).await.state, State::Late);
    let r = heartbeats::run_due(&svc, &budget()).await.unwrap();
    assert_eq!(
        (r.checked, r.alerts),
        (0, 0),
        "late is within the grace period"
    );

    clock.advance(Duration::seconds(31));
    let r = heartbeats::run_due(&svc, &budget()).await.unwrap();
    assert_eq!((r.checked, r.alerts), (1, 1));
    let open = incidents_of(&svc, SourceKind::Heartbeat).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].state, IncidentState::Open);
    assert_eq!(open[0].title, "Heartbeat nightly-backup is down");
    assert_eq!(
        open[0].labels.get("heartbeat").map(String::as_str),
        Some("nightly-backup")
    );
    assert_eq!(view(&svc, &hb.id).await.state, State::Down);

    // Later ticks raise nothing more while it stays down.
    clock.advance(Duration::hours(1));
    let r = heartbeats::run_due(&svc, &budget()).await.unwrap();
    assert_eq!(r.alerts, 0);
    assert_eq!(incidents_of(&svc, SourceKind::Heartbeat).await.len(), 1);

    assert!(send(&svc, &hb.ping_uuid, PingKind::Success, None, None).await);
    let all = incidents_of(&svc, SourceKind::Heartbeat).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, IncidentState::Resolved);
    assert_eq!(view(&svc, &hb.id).await.state, State::Up);
}

#[tokio::test]
async fn a_retried_tick_raises_nothing_twice() {
    let (svc, clock) = services("now");
    let hb = every_5m(&svc).await;
    send(&svc, &hb.ping_uuid, PingKind::Success, None, None).await;
    clock.advance(Duration::minutes(7));
    let tick = clock.now();
    assert!(claim_tick(&svc, "heartbeats", tick).await.unwrap());
    // A retried invocation carries the same scheduled time.
    assert!(!claim_tick(&svc, "heartbeats", tick).await.unwrap());
    assert!(
        claim_tick(&svc, "smoke", tick).await.unwrap(),
        "ticks are per job"
    );
    // Two invocations racing over the same due item raise one incident.
    let (b1, b2) = (budget(), budget());
    let (a, b) = tokio::join!(
        heartbeats::run_due(&svc, &b1),
        heartbeats::run_due(&svc, &b2)
    );
    assert_eq!(a.unwrap().alerts + b.unwrap().alerts, 1);
    assert_eq!(
        heartbeats::run_due(&svc, &budget()).await.unwrap().alerts,
        0
    );
    assert_eq!(incidents_of(&svc, SourceKind::Heartbeat).await.len(), 1);
}

#[tokio::test]
async fn start_and_finish_pair_by_rid_and_record_the_duration() {
    let (svc, clock) = services("now");
    let hb = every_5m(&svc).await;
    let a = "3f1c1c2e-4a7e-4b8e-9f55-2b1a3c4d5e6f";
    let b = "9b2d7c1e-0a1b-4c2d-8e3f-4a5b6c7d8e9f";
    send(&svc, &hb.ping_uuid, PingKind::Start, None, Some(a)).await;
    clock.advance(Duration::seconds(1));
    send(&svc, &hb.ping_uuid, PingKind::Start, None, Some(b)).await;
    clock.advance(Duration::milliseconds(2500));
    send(&svc, &hb.ping_uuid, PingKind::Success, None, Some(a)).await;
    let v = view(&svc, &hb.id).await;
    assert_eq!(v.last_ping.as_ref().unwrap().duration_ms, Some(3500));
    clock.advance(Duration::seconds(1));
    send(&svc, &hb.ping_uuid, PingKind::Success, None, Some(b)).await;
    let (_, pings) = heartbeats::get(&svc, &admin(), &hb.id, 10).await.unwrap();
    assert_eq!(pings.len(), 4);
    assert_eq!(
        pings[0].duration_ms,
        Some(3500),
        "newest first: b ran 3.5 s too"
    );
    assert_eq!(pings[0].rid.as_deref(), Some(b));
    // Without rid, a finish pairs with the latest start sent without one.
    send(&svc, &hb.ping_uuid, PingKind::Start, None, None).await;
    clock.advance(Duration::seconds(42));
    send(&svc, &hb.ping_uuid, PingKind::Success, None, None).await;
    assert_eq!(
        view(&svc, &hb.id).await.last_ping.unwrap().duration_ms,
        Some(42_000)
    );
    // A rid that is not a UUID is refused.
    let e = heartbeats::ping(
        &svc,
        Received {
            uuid: &hb.ping_uuid,
            kind: PingKind::Success,
            exit_status: None,
            rid: Some("run-1"),
            method: "GET",
            user_agent: None,
            body: b"",
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("rid"), "{e}");
}

#[tokio::test]
async fn a_failure_raises_at_once_and_flapping_is_re_alerted_at_most_once_per_period() {
    let (svc, clock) = services("2026-06-01T10:00:00Z");
    let hb = every_5m(&svc).await;
    send(&svc, &hb.ping_uuid, PingKind::Fail, Some(3), None).await;
    let all = incidents_of(&svc, SourceKind::Heartbeat).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, IncidentState::Open);
    assert_eq!(
        view(&svc, &hb.id).await.last_ping.unwrap().exit_status,
        Some(3)
    );

    clock.advance(Duration::minutes(1));
    send(&svc, &hb.ping_uuid, PingKind::Success, None, None).await;
    clock.advance(Duration::minutes(1));
    // Failing again two minutes after the first alert: down, not re-alerted.
    send(&svc, &hb.ping_uuid, PingKind::Fail, Some(1), None).await;
    assert_eq!(view(&svc, &hb.id).await.state, State::Down);
    let all = incidents_of(&svc, SourceKind::Heartbeat).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, IncidentState::Resolved);
    // Still down when the period since the last alert ends: raised then.
    clock.advance(Duration::minutes(3));
    assert_eq!(
        heartbeats::run_due(&svc, &budget()).await.unwrap().alerts,
        1
    );
    let all = incidents_of(&svc, SourceKind::Heartbeat).await;
    assert_eq!(all.len(), 2);
    assert_eq!(
        all.iter()
            .filter(|i| i.state == IncidentState::Open)
            .count(),
        1
    );
}

#[tokio::test]
async fn unknown_uuids_are_not_found_and_pausing_stops_alerts_until_the_next_ping() {
    let (svc, clock) = services("2026-06-01T10:00:00Z");
    assert!(
        !send(
            &svc,
            "5f0c6f2a-0000-4000-8000-000000000000",
            PingKind::Success,
            None,
            None
        )
        .await
    );
    let hb = every_5m(&svc).await;
    send(&svc, &hb.ping_uuid, PingKind::Success, None, None).await;
    heartbeats::edit(&svc, &admin(), &hb.id, Edit::Pause)
        .await
        .unwrap();
    assert_eq!(view(&svc, &hb.id).await.state, State::Paused);
    clock.advance(Duration::hours(3));
    assert_eq!(
        heartbeats::run_due(&svc, &budget()).await.unwrap().alerts,
        0
    );
    assert!(incidents_of(&svc, SourceKind::Heartbeat).await.is_empty());
    // A ping resumes it, as on Healthchecks.io.
    send(&svc, &hb.ping_uuid, PingKind::Success, None, None).await;
    assert_eq!(view(&svc, &hb.id).await.state, State::Up);
    heartbeats::edit(&svc, &admin(), &hb.id, Edit::Resume)
        .await
        .unwrap();
    assert_eq!(view(&svc, &hb.id).await.state, State::New);
    // A deleted heartbeat's URL stops working.
    heartbeats::delete(&svc, &admin(), &hb.id).await.unwrap();
    assert!(!send(&svc, &hb.ping_uuid, PingKind::Success, None, None).await);
    // Viewers read, only admins change.
    let viewer = Principal {
        role: Role::Viewer,
        ..admin()
    };
    assert!(heartbeats::create(&svc, &viewer, Fields::default())
        .await
        .is_err());
}

#[tokio::test]
async fn a_cron_heartbeat_in_a_time_zone_expects_its_ping_at_the_wall_clock_time_across_dst() {
    // 03:00:10 in Berlin on Saturday 28 March 2026 (UTC+1).
    let (svc, clock) = services("2026-03-28T02:00:10Z");
    let hb = heartbeats::create(
        &svc,
        &admin(),
        Fields {
            name: Some("nightly".into()),
            cron: Some("0 3 * * *".into()),
            tz: Some("Europe/Berlin".into()),
            grace: Some("10m".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    send(&svc, &hb.ping_uuid, PingKind::Success, None, None).await;
    let v = view(&svc, &hb.id).await;
    // Sunday 03:00 Berlin is summer time (UTC+2): 01:00 UTC.
    assert_eq!(v.next_expected_at, Some(at("2026-03-29T01:00:00Z")));
    assert_eq!(v.next_deadline, Some(at("2026-03-29T01:10:00Z")));
    clock.advance(Duration::hours(23) + Duration::minutes(5));
    assert_eq!(view(&svc, &hb.id).await.state, State::Late);
    assert_eq!(
        heartbeats::run_due(&svc, &budget()).await.unwrap().alerts,
        0
    );
    clock.advance(Duration::minutes(6));
    assert_eq!(
        heartbeats::run_due(&svc, &budget()).await.unwrap().alerts,
        1
    );
}

#[tokio::test]
async fn a_silent_provider_raises_one_alert_and_sending_again_resolves_it() {
    let (mut svc, clock) = services("2026-06-01T10:00:00Z");
    let mut settings = (*svc.settings).clone();
    settings.freshness.insert(SourceKind::Generic, 15 * 60);
    svc = svc.with_settings(settings);
    firewatch_domain::auth::ensure_tenant(&svc, &TenantId::default_tenant())
        .await
        .unwrap();
    let sender = Principal {
        role: Role::Responder,
        ..admin()
    };
    let post = |title: &'static str| {
        let svc = svc.clone();
        let sender = sender.clone();
        async move {
            firewatch_domain::ingest::ingest(
                &svc,
                firewatch_domain::ingest::IngestRequest {
                    principal: &sender,
                    source: SourceKind::Generic,
                    body: format!(r#"{{"title": "{title}"}}"#).as_bytes(),
                    headers: vec![],
                },
            )
            .await
            .unwrap();
        }
    };
    // Watched from FIREWATCH_FRESHNESS: only once the tenant has sent.
    clock.advance(Duration::hours(1));
    assert_eq!(freshness::run(&svc, &budget()).await.unwrap().checked, 0);
    post("disk full").await;
    assert_eq!(freshness::run(&svc, &budget()).await.unwrap().alerts, 0);
    clock.advance(Duration::minutes(16));
    assert_eq!(freshness::run(&svc, &budget()).await.unwrap().alerts, 1);
    assert_eq!(
        freshness::run(&svc, &budget()).await.unwrap().alerts,
        0,
        "one alert"
    );
    let fresh = incidents_of(&svc, SourceKind::Freshness).await;
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].state, IncidentState::Open);
    let listed = freshness::list(&svc, &admin()).await.unwrap();
    assert_eq!(listed[0].state, "stale");
    assert!(listed[0].alerting);

    post("disk full again").await;
    assert_eq!(freshness::run(&svc, &budget()).await.unwrap().alerts, 1);
    assert_eq!(
        incidents_of(&svc, SourceKind::Freshness).await[0].state,
        IncidentState::Resolved
    );
    assert_eq!(
        freshness::list(&svc, &admin()).await.unwrap()[0].state,
        "fresh"
    );
}

#[tokio::test]
async fn a_provider_heartbeat_keeps_an_envelope_but_opens_nothing_and_sends_nothing() {
    let (svc, clock) = services("2026-06-01T10:00:00Z");
    firewatch_domain::auth::ensure_tenant(&svc, &TenantId::default_tenant())
        .await
        .unwrap();
    freshness::set_watch(&svc, &admin(), "alertmanager", Some("15m"))
        .await
        .unwrap();
    clock.advance(Duration::minutes(10));
    let kept = freshness::provider_heartbeat(&svc, &admin(), &[])
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0, SourceKind::Alertmanager);
    let blob = svc
        .blobs
        .get(&kept[0].1)
        .await
        .unwrap()
        .expect("the envelope is kept");
    let doc: serde_json::Value = serde_json::from_slice(&blob).unwrap();
    assert_eq!(doc["body"]["stage"], "heartbeat");
    let listed = freshness::list(&svc, &admin()).await.unwrap();
    assert_eq!(listed[0].state, "fresh");
    assert!(listed[0].last_event_synthetic);
    // No incident, nothing for chat.
    let all = incidents::list(
        &svc,
        &TenantId::default_tenant(),
        &ListFilter::default(),
        None,
        50,
    )
    .await
    .unwrap();
    assert!(all.items.is_empty());
    let outbox = svc
        .store
        .query(firewatch_domain::ports::Query::all(
            firewatch_domain::keys::outbox_pk(&TenantId::default_tenant()),
            10,
        ))
        .await
        .unwrap();
    assert!(outbox.items.is_empty());
    let e = freshness::provider_heartbeat(&svc, &admin(), &["heartbeat".into()])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown provider"), "{e}");
}
