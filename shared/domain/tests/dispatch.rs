//! The dispatcher turns incident changes into one living chat thread per
//! destination, each effect once, retried with backoff, dead-lettered when
//! the platform stays down, and retried from the dead letters.

mod common;

use chrono::Duration;
use common::*;
use firewatch_domain::chat::ChatError;
use firewatch_domain::dispatch::{self, drain, Drained};
use firewatch_domain::incidents;
use firewatch_types::{Destination, IncidentAction, SourceKind};

#[tokio::test]
async fn an_alert_opens_a_thread_and_later_events_reply_in_it_and_edit_the_root() {
    let (w, chat) = chat_world().await;
    let r = post(
        &w.svc,
        SourceKind::Generic,
        &generic("t1", "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(
        drain(&w.svc).await.unwrap(),
        Drained {
            delivered: 1,
            retrying: 0,
            dead: 0
        }
    );
    assert_eq!(
        chat.calls(),
        [Call::Root("slack:C0INCIDENTS".into(), "open|1".into())]
    );

    post(
        &w.svc,
        SourceKind::Generic,
        &generic("t1", "firing", "2026-11-20T11:30:00Z"),
    )
    .await
    .unwrap();
    incidents::act(
        &w.svc,
        &responder(),
        &r.incidents[0],
        IncidentAction::Ack,
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(drain(&w.svc).await.unwrap().delivered, 2);
    let calls = chat.calls();
    assert!(
        matches!(&calls[1], Call::Reply(root, text) if root == "m0" && text.contains("fired again")),
        "{calls:?}"
    );
    // The root always shows the incident as it is when the effect runs.
    assert_eq!(calls[2], Call::Update("m0".into(), "acknowledged|2".into()));
    assert!(
        matches!(&calls[3], Call::Reply(root, text) if root == "m0" && text.contains("open → acknowledged") && text.contains("alice"))
    );
    assert_eq!(calls[4], Call::Update("m0".into(), "acknowledged|2".into()));
    assert_eq!(
        drain(&w.svc).await.unwrap(),
        Drained::default(),
        "nothing left"
    );
}

#[tokio::test]
async fn delivering_the_same_record_twice_has_one_effect() {
    let (w, chat) = chat_world().await;
    post(
        &w.svc,
        SourceKind::Generic,
        &generic("t2", "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    let page = w
        .svc
        .store
        .query(firewatch_domain::ports::Query::all(
            firewatch_domain::keys::outbox_pk(&responder().tenant),
            10,
        ))
        .await
        .unwrap();
    let record: firewatch_domain::outbox::OutboxRecord =
        firewatch_domain::keys::decode(&page.items[0]).unwrap();
    dispatch::deliver(&w.svc, &record).await.unwrap();
    dispatch::deliver(&w.svc, &record).await.unwrap();
    assert_eq!(chat.calls().len(), 1);
}

#[tokio::test]
async fn a_rate_limited_post_is_retried_after_retry_after_and_delivered_once() {
    let (w, chat) = chat_world().await;
    chat.failures.lock().unwrap().push(ChatError::RateLimited {
        retry_after: Some(std::time::Duration::from_secs(30)),
    });
    post(
        &w.svc,
        SourceKind::Generic,
        &generic("t3", "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(drain(&w.svc).await.unwrap().retrying, 1);
    assert_eq!(
        drain(&w.svc).await.unwrap(),
        Drained::default(),
        "not before Retry-After"
    );
    w.clock.advance(Duration::seconds(31));
    assert_eq!(drain(&w.svc).await.unwrap().delivered, 1);
    assert_eq!(chat.calls().len(), 1, "delivered exactly once");
}

#[tokio::test]
async fn a_platform_that_stays_down_dead_letters_the_record_and_a_retry_delivers_it() {
    let (w, chat) = chat_world().await;
    *chat.down.lock().unwrap() = true;
    post(
        &w.svc,
        SourceKind::Generic,
        &generic("t4", "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    let mut dead = 0;
    for _ in 0..dispatch::MAX_ATTEMPTS {
        dead += drain(&w.svc).await.unwrap().dead;
        w.clock.advance(Duration::minutes(10));
    }
    assert_eq!(dead, 1);
    let letters = dispatch::dead_letters(&w.svc, &responder().tenant)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, dispatch::MAX_ATTEMPTS);
    assert!(letters[0].last_error.contains("503"));

    *chat.down.lock().unwrap() = false;
    dispatch::retry_dead_letter(&w.svc, &responder(), &letters[0].id)
        .await
        .unwrap();
    assert!(dispatch::dead_letters(&w.svc, &responder().tenant)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(drain(&w.svc).await.unwrap().delivered, 1);
    assert_eq!(chat.calls().len(), 1, "nothing lost, nothing doubled");
}

#[tokio::test]
async fn a_refused_request_is_dead_lettered_at_once() {
    let (w, chat) = chat_world().await;
    chat.failures
        .lock()
        .unwrap()
        .push(ChatError::Rejected("channel_not_found".into()));
    post(
        &w.svc,
        SourceKind::Generic,
        &generic("t5", "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(drain(&w.svc).await.unwrap().dead, 1);
}

#[tokio::test]
async fn a_later_event_waits_behind_a_retry_so_the_thread_stays_in_order() {
    let (w, chat) = chat_world().await;
    chat.failures
        .lock()
        .unwrap()
        .push(ChatError::Unavailable("502".into()));
    let r = post(
        &w.svc,
        SourceKind::Generic,
        &generic("t6", "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    incidents::comment(&w.svc, &responder(), &r.incidents[0], "first look")
        .await
        .unwrap();
    assert_eq!(
        drain(&w.svc).await.unwrap(),
        Drained {
            delivered: 0,
            retrying: 1,
            dead: 0
        }
    );
    assert!(chat.calls().is_empty());
    w.clock.advance(Duration::seconds(5));
    assert_eq!(drain(&w.svc).await.unwrap().delivered, 2);
    let calls = chat.calls();
    assert!(matches!(&calls[0], Call::Root(..)));
    assert!(matches!(&calls[1], Call::Reply(_, t) if t.contains("first look")));
}

#[tokio::test]
async fn routing_rules_pick_destinations_and_defaults_apply_when_none_match() {
    use firewatch_domain::routing::routes::{self, Match, Route};
    let (w, chat) = chat_world().await;
    let admin = firewatch_types::Principal {
        role: firewatch_types::Role::Admin,
        ..responder()
    };
    let route = Route {
        id: String::new(),
        when: Match {
            severities: vec![firewatch_types::Severity::Sev1],
            ..Default::default()
        },
        destinations: vec![Destination::Discord {
            channel_id: "1000000000000000001".into(),
        }],
        ticket: false,
        escalation: None,
        flapping: None,
        version: 0,
    };
    firewatch_domain::routing::links::link_destination_directly(
        &w.svc,
        &admin.tenant,
        &route.destinations[0],
    )
    .await
    .unwrap();
    routes::put(&w.svc, &admin, "sev1-to-discord", route)
        .await
        .unwrap();

    let critical =
        serde_json::json!({"title": "down", "fingerprint": "r1", "severity": "critical"})
            .to_string();
    post(&w.svc, SourceKind::Generic, critical.as_bytes())
        .await
        .unwrap();
    post(
        &w.svc,
        SourceKind::Generic,
        &generic("r2", "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    drain(&w.svc).await.unwrap();
    let roots: Vec<String> = chat
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Root(dest, _) => Some(dest),
            _ => None,
        })
        .collect();
    assert_eq!(
        roots,
        ["discord:1000000000000000001", "slack:C0INCIDENTS"],
        "sev1 by the rule, sev2 by the defaults"
    );
}

fn outbox_ids(items: &[firewatch_domain::ports::Item]) -> Vec<String> {
    items.iter().map(|i| i.sk.clone()).collect()
}

async fn outbox(w: &World) -> Vec<firewatch_domain::ports::Item> {
    w.svc
        .store
        .query(firewatch_domain::ports::Query::all(
            firewatch_domain::keys::outbox_pk(&responder().tenant),
            100,
        ))
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn on_the_stream_path_a_record_waits_behind_an_earlier_retry_of_its_incident_only() {
    use firewatch_domain::dispatch::{process_new, sweep, Processed};
    let (w, chat) = chat_world().await;
    let t = responder().tenant;
    let first = post(
        &w.svc,
        SourceKind::Generic,
        &generic("o1", "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    let other = post(
        &w.svc,
        SourceKind::Generic,
        &generic("o2", "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    let ids = outbox_ids(&outbox(&w).await);
    // The first incident's record fails: it waits for its retry.
    chat.failures
        .lock()
        .unwrap()
        .push(ChatError::Unavailable("503".into()));
    assert_eq!(
        process_new(&w.svc, &t, &ids[0]).await.unwrap(),
        Processed::Retrying
    );
    // A later change of that incident is parked behind it, without an attempt.
    incidents::comment(&w.svc, &responder(), &first.incidents[0], "later")
        .await
        .unwrap();
    let later = outbox_ids(&outbox(&w).await).pop().unwrap();
    assert_eq!(
        process_new(&w.svc, &t, &later).await.unwrap(),
        Processed::Waiting
    );
    // Another incident's record is not held up.
    assert_eq!(
        process_new(&w.svc, &t, &ids[1]).await.unwrap(),
        Processed::Delivered
    );
    assert!(chat.calls().iter().any(|c| matches!(c, Call::Root(_, _))));
    assert_eq!(other.incidents.len(), 1);
    // A redelivered stream record does nothing: the sweep owns it now.
    assert_eq!(
        process_new(&w.svc, &t, &ids[0]).await.unwrap(),
        Processed::Skipped
    );

    // When due, the sweep delivers both, in order.
    w.clock.advance(Duration::seconds(5));
    let done = sweep(&w.svc, Duration::seconds(60)).await.unwrap();
    assert_eq!(done.delivered, 2);
    assert!(outbox(&w).await.is_empty());
    let replies: Vec<String> = chat
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Reply(_, text) => Some(text),
            _ => None,
        })
        .collect();
    assert!(replies.last().unwrap().contains("later"), "{replies:?}");
}

#[test]
fn the_one_policy_backs_off_honours_retry_after_and_gives_up() {
    use firewatch_domain::dispatch::{decide, Decision, DeliveryError, MAX_ATTEMPTS};
    let now = chrono::Utc::now();
    let passing = DeliveryError {
        retryable: true,
        retry_after: None,
        message: "503".into(),
    };
    assert_eq!(
        decide(0, &passing, now),
        Decision::RetryAt(now + Duration::seconds(1))
    );
    assert_eq!(
        decide(3, &passing, now),
        Decision::RetryAt(now + Duration::seconds(8))
    );
    let limited = DeliveryError {
        retry_after: Some(std::time::Duration::from_secs(30)),
        ..passing.clone()
    };
    assert_eq!(
        decide(0, &limited, now),
        Decision::RetryAt(now + Duration::seconds(30))
    );
    assert_eq!(decide(MAX_ATTEMPTS - 1, &passing, now), Decision::Dead);
    let refused = DeliveryError {
        retryable: false,
        ..passing
    };
    assert_eq!(decide(0, &refused, now), Decision::Dead);
}

#[tokio::test]
async fn jobs_over_every_tenant_see_past_the_first_thousand() {
    let svc = firewatch_local::services_in_memory();
    for i in 0..1_005 {
        let t = firewatch_types::TenantId::parse(&format!("t{i:04}")).unwrap();
        firewatch_domain::auth::ensure_tenant(&svc, &t)
            .await
            .unwrap();
    }
    let all = firewatch_domain::auth::known_tenants(&svc).await.unwrap();
    assert_eq!(all.len(), 1_005);
    assert_eq!(all.last().unwrap().as_str(), "t1004");
}

#[tokio::test]
async fn a_record_that_cannot_be_read_is_dead_lettered_and_stops_no_other_delivery() {
    use firewatch_domain::ports::{Condition, Item};
    let (w, chat) = chat_world().await;
    let t = responder().tenant;
    // An item in the outbox that is not a record (written by a newer or
    // broken version), ahead of every real one.
    w.svc
        .store
        .put(
            Item {
                pk: firewatch_domain::keys::outbox_pk(&t),
                sk: "00000000000000000000000000".into(),
                version: 1,
                expires_at: None,
                data: r#"{"id": 7}"#.into(),
                kind: None,
            },
            Condition::Always,
        )
        .await
        .unwrap();
    post(
        &w.svc,
        SourceKind::Generic,
        &generic("u1", "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    let drained = drain(&w.svc).await.unwrap();
    assert_eq!((drained.delivered, drained.dead), (1, 1));
    assert_eq!(chat.calls().len(), 1, "the real record was delivered");
    assert!(outbox(&w).await.is_empty());
    let letters = dispatch::dead_letters(&w.svc, &t).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].record.is_none());
    assert_eq!(letters[0].raw.as_deref(), Some(r#"{"id": 7}"#));
    let refused = dispatch::retry_dead_letter(&w.svc, &responder(), &letters[0].id)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("cannot be retried"));
}

#[tokio::test]
async fn the_operators_default_channels_serve_only_the_tenants_the_operator_names() {
    use firewatch_domain::routing::routes::destinations;
    use firewatch_domain::settings::TenantScope;
    let (w, _chat) = chat_world().await;
    let report = post(
        &w.svc,
        SourceKind::Generic,
        &generic("d1", "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    let ours = incidents::get(&w.svc, &responder().tenant, &report.incidents[0])
        .await
        .unwrap();
    let acme = firewatch_types::TenantId::parse("acme").unwrap();
    let theirs = firewatch_types::Incident {
        tenant: acme.clone(),
        ..ours.clone()
    };
    let slack = Destination::Slack {
        channel: "C0INCIDENTS".into(),
    };
    // By default the channels are the default tenant's alone.
    assert_eq!(
        destinations(&w.svc, &ours).await.unwrap(),
        std::slice::from_ref(&slack)
    );
    assert!(destinations(&w.svc, &theirs).await.unwrap().is_empty());
    for (scope, ours_too, theirs_too) in
        [("*", true, true), ("acme", false, true), ("", false, false)]
    {
        let mut settings = (*w.svc.settings).clone();
        settings.default_channel_tenants =
            TenantScope::parse("FIREWATCH_DEFAULT_CHANNEL_TENANTS", scope).unwrap();
        let svc = w.svc.clone().with_settings(settings);
        let want = |yes: bool| if yes { vec![slack.clone()] } else { vec![] };
        assert_eq!(
            destinations(&svc, &ours).await.unwrap(),
            want(ours_too),
            "{scope:?}"
        );
        assert_eq!(
            destinations(&svc, &theirs).await.unwrap(),
            want(theirs_too),
            "{scope:?}"
        );
    }
    // The console of `firewatch dev` shows every tenant's threads.
    let mut settings = (*w.svc.settings).clone();
    settings.default_destinations = vec![slack, Destination::Console];
    let svc = w.svc.clone().with_settings(settings);
    assert_eq!(
        destinations(&svc, &theirs).await.unwrap(),
        [Destination::Console]
    );
}
