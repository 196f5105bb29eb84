//! Noise: a flapping alert keeps one incident open, quietly, until it is
//! stable.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use firewatch_domain::dispatch::drain;
use firewatch_domain::ingest::Outcome;
use firewatch_domain::ports::Clock;
use firewatch_domain::routing::routes;
use firewatch_domain::schedules::Budget;
use firewatch_domain::settings::FlapRule;
use firewatch_types::{Destination, IncidentState, Principal, Role, SourceKind, TenantId};

fn admin() -> Principal {
    Principal {
        tenant: TenantId::default_tenant(),
        name: "admin".into(),
        role: Role::Admin,
    }
}

/// One flip a minute: firing at even minutes, resolved at odd ones.
async fn flip(w: &World, minute: i64, start: DateTime<Utc>) -> Outcome {
    w.clock
        .advance(start + Duration::minutes(minute) - w.clock.now());
    let status = if minute % 2 == 0 {
        "firing"
    } else {
        "resolved"
    };
    // Each firing is a new start, as a flapping rule's alert is.
    let starts = (start + Duration::minutes(minute - minute % 2)).to_rfc3339();
    let r = post(
        &w.svc,
        SourceKind::Generic,
        &generic("disk", status, &starts),
    )
    .await
    .unwrap();
    drain(&w.svc).await.unwrap();
    r.results[0].outcome
}

async fn incidents(w: &World) -> Vec<firewatch_types::Incident> {
    firewatch_domain::incidents::list(
        &w.svc,
        &TenantId::default_tenant(),
        &Default::default(),
        None,
        100,
    )
    .await
    .unwrap()
    .items
}

fn replies(chat: &FakeChat) -> Vec<String> {
    chat.calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Reply(_, t) => Some(t),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_flapping_alert_gives_one_incident_and_no_churn() {
    let (w, chat) = chat_world().await;
    let start = w.clock.now();
    // A routing rule for these alerts: more than one flip in 10 minutes is
    // flapping, stable after 15 quiet minutes.
    let dest = Destination::Slack {
        channel: "C0INCIDENTS".into(),
    };
    firewatch_domain::routing::links::link_destination_directly(&w.svc, &admin().tenant, &dest)
        .await
        .unwrap();
    routes::put(
        &w.svc,
        &admin(),
        "disks",
        routes::Route {
            id: String::new(),
            when: Default::default(),
            destinations: vec![dest],
            ticket: false,
            escalation: None,
            flapping: Some(FlapRule {
                max_flips: 1,
                window_secs: 600,
                hold_secs: 900,
            }),
            version: 0,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(flip(&w, 0, start).await, Outcome::Opened);
    assert_eq!(flip(&w, 1, start).await, Outcome::IncidentResolved);
    // Firing again a minute after resolving: the group flaps, and the same
    // incident is reopened instead of a new one.
    assert_eq!(flip(&w, 2, start).await, Outcome::Flapping);
    let said = replies(&chat).len();
    let flapping = replies(&chat)
        .into_iter()
        .find(|r| r.starts_with("〰️ Flapping"))
        .unwrap();
    assert_eq!(
        flapping,
        "〰️ Flapping: 2 flips in 10 min; the incident stays open and changes go on its timeline until its alerts are stable"
    );
    // Twenty more flips: nothing opens, resolves or is said.
    for m in 3..24 {
        assert_eq!(flip(&w, m, start).await, Outcome::Flapping, "minute {m}");
    }
    let list = incidents(&w).await;
    assert_eq!(list.len(), 1, "one incident");
    assert_eq!(list[0].state, IncidentState::Open);
    assert_eq!(replies(&chat).len(), said, "{:?}", &replies(&chat)[said..]);
    let card = chat
        .calls()
        .into_iter()
        .rfind(|c| matches!(c, Call::Update(..)))
        .unwrap();
    assert!(
        matches!(card, Call::Update(_, ref s) if s.starts_with("open|")),
        "{card:?}"
    );

    // Minute 23 resolved it; 15 quiet minutes later it is stable: resolved,
    // said once.
    let run = |w: &World| {
        let svc = w.svc.clone();
        async move {
            firewatch_domain::escalation::reminders::run(
                &svc,
                &Budget::new(std::time::Duration::from_secs(5)),
            )
            .await
            .unwrap();
            drain(&svc).await.unwrap();
        }
    };
    w.clock
        .advance(start + Duration::minutes(37) - w.clock.now());
    run(&w).await;
    assert_eq!(incidents(&w).await[0].state, IncidentState::Open, "not yet");
    w.clock.advance(Duration::minutes(1));
    run(&w).await;
    run(&w).await;
    let inc = &incidents(&w).await[0];
    assert_eq!(inc.state, IncidentState::Resolved);
    assert!(inc.flapping.is_none());
    let after: Vec<String> = replies(&chat)[said..].to_vec();
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after[0].starts_with("〰️ Stable again: no flip for 15 min"),
        "{after:?}"
    );
    assert!(after[1].contains("resolved"), "{after:?}");
}

#[tokio::test]
async fn with_the_default_rule_a_flapping_alert_opens_at_most_two_incidents() {
    let (w, chat) = chat_world().await;
    let start = w.clock.now();
    for m in 0..30 {
        flip(&w, m, start).await;
    }
    let list = incidents(&w).await;
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list
        .iter()
        .any(|i| i.flapping.is_some() && i.state == IncidentState::Open));
    // Two roots, and after the flapping message nothing but card edits.
    let roots = chat
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Root(..)))
        .count();
    assert_eq!(roots, 2);
    let r = replies(&chat);
    let at = r.iter().position(|t| t.starts_with("〰️ Flapping")).unwrap();
    assert!(r.len() - at <= 3, "{:?}", &r[at..]);
}

/// A webhook of `n` distinct firing alerts, `prefix-0`…
fn many(prefix: &str, n: usize) -> Vec<u8> {
    let alerts: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"title": format!("{prefix} {i} down"), "fingerprint": format!("{prefix}-{i}"),
                               "severity": "sev3", "labels": {"instance": format!("{prefix}-{i}")}})
        })
        .collect();
    serde_json::json!({ "alerts": alerts })
        .to_string()
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_alert_storm_gives_one_storm_thread_and_others_wait_boundedly() {
    let (mut w, chat) = chat_world().await;
    // Both tenants' unrouted incidents go to the operator's channel.
    let mut settings = (*w.svc.settings).clone();
    settings.default_channel_tenants = firewatch_domain::settings::TenantScope::All;
    w.svc = w.svc.clone().with_settings(settings);
    let acme = Principal {
        tenant: TenantId::parse("acme").unwrap(),
        name: "source:test".into(),
        role: Role::Responder,
    };
    firewatch_domain::auth::ensure_tenant(&w.svc, &acme.tenant)
        .await
        .unwrap();
    for batch in 0..10 {
        let r = post(
            &w.svc,
            SourceKind::Generic,
            &many(&format!("node{batch}"), 1000),
        )
        .await
        .unwrap();
        assert_eq!(r.incidents.len(), 1000);
    }
    // Meanwhile another tenant's incident opens.
    let body = generic("acme-db", "firing", "2026-11-20T11:00:00Z");
    firewatch_domain::ingest::ingest(
        &w.svc,
        firewatch_domain::ingest::IngestRequest {
            principal: &acme,
            source: SourceKind::Generic,
            body: &body,
            headers: vec![],
        },
    )
    .await
    .unwrap();

    // One dispatcher pass: the other tenant's card comes in its first round,
    // after at most one of the storm's deliveries.
    drain(&w.svc).await.unwrap();
    let titles = chat.titles.lock().unwrap().clone();
    let at = titles.iter().position(|t| t == "alert acme-db").unwrap();
    assert!(at <= 1, "{:?}", &titles[..3]);
    // Settle the rest.
    while drain(&w.svc).await.unwrap().delivered > 0 {}
    let calls = chat.calls();
    let roots = calls.iter().filter(|c| matches!(c, Call::Root(..))).count();
    // The first 20 incidents had their own cards before the storm began;
    // then one storm thread; and the other tenant's card.
    assert_eq!(roots, 20 + 1 + 1, "{roots}");
    let titles = chat.titles.lock().unwrap().clone();
    assert_eq!(
        titles
            .iter()
            .filter(|t| t.starts_with("Alert storm"))
            .count(),
        1,
        "one storm thread"
    );
    let open = firewatch_domain::incidents::list(
        &w.svc,
        &TenantId::default_tenant(),
        &firewatch_domain::incidents::ListFilter {
            state: Some(IncidentState::Open),
            ..Default::default()
        },
        None,
        1,
    )
    .await
    .unwrap();
    assert_eq!(open.items.len(), 1, "the incidents exist");

    // Quiet for a window: the storm is over, said once in its thread.
    w.clock.advance(Duration::seconds(61));
    let budget = Budget::new(std::time::Duration::from_secs(30));
    firewatch_domain::escalation::reminders::run(&w.svc, &budget)
        .await
        .unwrap();
    while drain(&w.svc).await.unwrap().delivered > 0 {}
    firewatch_domain::escalation::reminders::run(&w.svc, &budget)
        .await
        .unwrap();
    drain(&w.svc).await.unwrap();
    let over: Vec<String> = replies(&chat)
        .into_iter()
        .filter(|r| r.starts_with("🌩️ Storm over"))
        .collect();
    assert_eq!(over.len(), 1, "{over:?}");
    assert!(
        over[0].starts_with("🌩️ Storm over: 9980 incidents"),
        "{over:?}"
    );

    // A member acknowledged after the storm gets its own card.
    let member = firewatch_domain::incidents::list(
        &w.svc,
        &TenantId::default_tenant(),
        &Default::default(),
        None,
        1,
    )
    .await
    .unwrap()
    .items[0]
        .id
        .clone();
    let before = chat
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Root(..)))
        .count();
    firewatch_domain::incidents::act(
        &w.svc,
        &responder(),
        &member,
        firewatch_types::IncidentAction::Ack,
        None,
        None,
    )
    .await
    .unwrap();
    drain(&w.svc).await.unwrap();
    let after = chat
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Root(..)))
        .count();
    assert_eq!(after, before + 1, "its own card, now");
}
