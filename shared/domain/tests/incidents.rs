//! People act on incidents: the state machine, optimistic versions, comments,
//! listing, recurrence and the audit trail.

mod common;

use common::*;
use firewatch_domain::incidents::{self, ListFilter, RecurrenceBy};
use firewatch_domain::ports::Query;
use firewatch_domain::{keys, DomainError};
use firewatch_types::{
    AuditEvent, IncidentAction, IncidentId, IncidentState, Severity, SourceKind, TimelineKind,
};

async fn open_one(w: &World, fp: &str) -> IncidentId {
    post(
        &w.svc,
        SourceKind::Generic,
        &generic(fp, "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap()
    .incidents[0]
        .clone()
}

#[tokio::test]
async fn a_responder_walks_an_incident_through_its_states() {
    let w = world();
    let id = open_one(&w, "a").await;
    let p = responder();
    for (action, state) in [
        (IncidentAction::Ack, IncidentState::Acknowledged),
        (IncidentAction::Mitigate, IncidentState::Mitigated),
        (IncidentAction::Resolve, IncidentState::Resolved),
        (IncidentAction::Reopen, IncidentState::Open),
        (IncidentAction::Resolve, IncidentState::Resolved),
        (IncidentAction::Close, IncidentState::Closed),
    ] {
        let inc = incidents::act(&w.svc, &p, &id, action, Some("because".into()), None)
            .await
            .unwrap();
        assert_eq!(inc.state, state);
    }
    let tl = incidents::timeline(&w.svc, &p.tenant, &id, None, 100)
        .await
        .unwrap();
    let changes = tl
        .items
        .iter()
        .filter(|e| matches!(e.kind, TimelineKind::StateChanged { .. }))
        .count();
    assert_eq!(changes, 6, "every change is on the timeline");
    assert!(tl
        .items
        .iter()
        .all(|e| e.actor == "alice" || e.actor.starts_with("source:")));
}

#[tokio::test]
async fn illegal_transitions_are_conflicts_and_change_nothing() {
    let w = world();
    let id = open_one(&w, "b").await;
    let before = incidents::get(&w.svc, &responder().tenant, &id)
        .await
        .unwrap();
    let err = incidents::act(&w.svc, &responder(), &id, IncidentAction::Close, None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DomainError::Conflict {
                code: "illegal_transition",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        incidents::get(&w.svc, &responder().tenant, &id)
            .await
            .unwrap(),
        before
    );
}

#[tokio::test]
async fn a_stale_expected_version_is_refused() {
    let w = world();
    let id = open_one(&w, "c").await;
    let v = incidents::get(&w.svc, &responder().tenant, &id)
        .await
        .unwrap()
        .version;
    incidents::act(
        &w.svc,
        &responder(),
        &id,
        IncidentAction::Ack,
        None,
        Some(v),
    )
    .await
    .unwrap();
    let err = incidents::act(
        &w.svc,
        &responder(),
        &id,
        IncidentAction::Resolve,
        None,
        Some(v),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            DomainError::Conflict {
                code: "stale_version",
                ..
            }
        ),
        "{err:?}"
    );
    let inc = incidents::get(&w.svc, &responder().tenant, &id)
        .await
        .unwrap();
    assert_eq!(inc.state, IncidentState::Acknowledged);
}

#[tokio::test]
async fn a_viewer_cannot_act_or_comment() {
    let w = world();
    let id = open_one(&w, "d").await;
    let err = incidents::act(&w.svc, &viewer(), &id, IncidentAction::Ack, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::Forbidden(_)));
    let err = incidents::comment(&w.svc, &viewer(), &id, "hi")
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::Forbidden(_)));
    assert_eq!(
        incidents::get(&w.svc, &responder().tenant, &id)
            .await
            .unwrap()
            .state,
        IncidentState::Open
    );
}

#[tokio::test]
async fn reopening_is_refused_while_another_incident_holds_the_group_key() {
    let w = world();
    let first = open_one(&w, "e").await;
    incidents::act(
        &w.svc,
        &responder(),
        &first,
        IncidentAction::Resolve,
        None,
        None,
    )
    .await
    .unwrap();
    let second = post(
        &w.svc,
        SourceKind::Generic,
        &generic("e", "firing", "2026-11-20T11:30:00Z"),
    )
    .await
    .unwrap()
    .incidents[0]
        .clone();
    assert_ne!(first, second);
    let err = incidents::act(
        &w.svc,
        &responder(),
        &first,
        IncidentAction::Reopen,
        None,
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            DomainError::Conflict {
                code: "group_key_taken",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_manual_resolve_frees_the_group_key() {
    let w = world();
    let first = open_one(&w, "f").await;
    incidents::act(
        &w.svc,
        &responder(),
        &first,
        IncidentAction::Resolve,
        None,
        None,
    )
    .await
    .unwrap();
    let again = post(
        &w.svc,
        SourceKind::Generic,
        &generic("f", "firing", "2026-11-20T11:45:00Z"),
    )
    .await
    .unwrap();
    assert_ne!(again.incidents[0], first);
}

#[tokio::test]
async fn comments_land_on_the_timeline_and_empty_ones_are_refused() {
    let w = world();
    let id = open_one(&w, "g").await;
    let e = incidents::comment(&w.svc, &responder(), &id, "  rolled back deploy 4411 ")
        .await
        .unwrap();
    assert_eq!(
        e.kind,
        TimelineKind::Comment {
            text: "rolled back deploy 4411".into()
        }
    );
    assert!(matches!(
        incidents::comment(&w.svc, &responder(), &id, "   ").await,
        Err(DomainError::BadInput { .. })
    ));
    assert!(matches!(
        incidents::comment(&w.svc, &responder(), &id, &"x".repeat(5000)).await,
        Err(DomainError::BadInput {
            code: "text_too_long",
            ..
        })
    ));
}

#[tokio::test]
async fn every_change_by_a_person_is_an_audit_event_naming_them() {
    let w = world();
    let id = open_one(&w, "h").await;
    incidents::act(
        &w.svc,
        &responder(),
        &id,
        IncidentAction::Ack,
        Some("on it".into()),
        None,
    )
    .await
    .unwrap();
    incidents::comment(&w.svc, &responder(), &id, "looking")
        .await
        .unwrap();
    let page = w
        .svc
        .store
        .query(Query::all(keys::audit_pk(&responder().tenant), 100))
        .await
        .unwrap();
    let events: Vec<AuditEvent> = page
        .items
        .iter()
        .map(|i| keys::decode(i).unwrap())
        .collect();
    let actions: Vec<_> = events
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("alice", "incident.open"),
            ("alice", "incident.acknowledged"),
            ("alice", "incident.comment")
        ]
    );
    assert_eq!(events[1].reason.as_deref(), Some("on it"));
    assert_eq!(events[1].before["state"], "open");
    assert_eq!(events[1].after["state"], "acknowledged");
}

#[tokio::test]
async fn lists_filter_and_page_newest_first() {
    let w = world();
    for i in 0..7 {
        open_one(&w, &format!("list-{i}")).await;
    }
    let pd = post(
        &w.svc,
        SourceKind::Pagerduty,
        &fixture("pagerduty/trigger.json"),
    )
    .await
    .unwrap();
    let t = responder().tenant;
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = incidents::list(&w.svc, &t, &ListFilter::default(), cursor.as_deref(), 3)
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|i| i.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    assert_eq!(seen[0], pd.incidents[0], "newest first");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted);

    let only_pd = ListFilter {
        source: Some(SourceKind::Pagerduty),
        ..Default::default()
    };
    assert_eq!(
        incidents::list(&w.svc, &t, &only_pd, None, 50)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let sev1 = ListFilter {
        severity: Some(Severity::Sev1),
        ..Default::default()
    };
    assert_eq!(
        incidents::list(&w.svc, &t, &sev1, None, 50)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let acked = ListFilter {
        state: Some(IncidentState::Acknowledged),
        ..Default::default()
    };
    assert!(incidents::list(&w.svc, &t, &acked, None, 50)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(matches!(
        incidents::list(&w.svc, &t, &ListFilter::default(), Some("%%%"), 5).await,
        Err(DomainError::BadInput {
            code: "invalid_cursor",
            ..
        })
    ));
    assert!(matches!(
        incidents::list(&w.svc, &t, &ListFilter::default(), None, 0).await,
        Err(DomainError::BadInput {
            code: "invalid_limit",
            ..
        })
    ));
}

#[tokio::test]
async fn recurrence_groups_incidents_with_counts_and_first_and_last_seen() {
    let w = world();
    for i in 0..3 {
        let id = open_one(&w, "again").await;
        incidents::act(
            &w.svc,
            &responder(),
            &id,
            IncidentAction::Resolve,
            None,
            None,
        )
        .await
        .unwrap();
        w.clock.advance(chrono::Duration::minutes(30 + i));
    }
    open_one(&w, "once").await;
    let t = responder().tenant;
    let by_fp = incidents::recurrence(&w.svc, &t, RecurrenceBy::Fingerprint, None)
        .await
        .unwrap()
        .groups;
    assert_eq!(by_fp[0].key, "again");
    assert_eq!(by_fp[0].incidents, 3);
    assert!(by_fp[0].first_seen < by_fp[0].last_seen);
    assert_eq!(by_fp[1].key, "once");
    assert_eq!(by_fp[1].active, 1);
    let by_ns = incidents::recurrence(&w.svc, &t, RecurrenceBy::Namespace, None)
        .await
        .unwrap()
        .groups;
    assert_eq!(by_ns.len(), 1);
    assert_eq!((by_ns[0].key.as_str(), by_ns[0].incidents), ("ns1", 4));
    let by_target = incidents::recurrence(&w.svc, &t, RecurrenceBy::Target, None)
        .await
        .unwrap()
        .groups;
    assert_eq!(by_target[0].key, "host-1");
}

#[tokio::test]
async fn one_tenant_never_sees_another_tenants_incidents() {
    let w = world();
    let id = open_one(&w, "mine").await;
    let other = firewatch_types::Principal {
        tenant: firewatch_types::TenantId::parse("other").unwrap(),
        ..responder()
    };
    assert!(matches!(
        incidents::get(&w.svc, &other.tenant, &id).await,
        Err(DomainError::NotFound(_))
    ));
    assert!(
        incidents::list(&w.svc, &other.tenant, &ListFilter::default(), None, 50)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        incidents::act(&w.svc, &other, &id, IncidentAction::Ack, None, None).await,
        Err(DomainError::NotFound(_))
    ));
}

/// Opens `n` incidents with one webhook.
async fn open_many(w: &World, n: usize, severity: &str) -> Vec<IncidentId> {
    let alerts: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"title": "many", "fingerprint": format!("many-{severity}-{i}"), "severity": severity}))
        .collect();
    post(
        &w.svc,
        SourceKind::Generic,
        serde_json::json!({ "alerts": alerts })
            .to_string()
            .as_bytes(),
    )
    .await
    .unwrap()
    .incidents
}

#[tokio::test]
async fn a_state_filter_reads_the_state_index_not_every_incident() {
    let w = world();
    let first = open_many(&w, 1, "critical").await[0].clone();
    let p = responder();
    for action in [IncidentAction::Resolve, IncidentAction::Close] {
        incidents::act(&w.svc, &p, &first, action, None, None)
            .await
            .unwrap();
    }
    open_many(&w, 300, "warning").await;
    let closed = ListFilter {
        state: Some(IncidentState::Closed),
        ..Default::default()
    };
    let page = incidents::list(&w.svc, &p.tenant, &closed, None, 1)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, first);
    assert_eq!(page.next_cursor, None, "the index holds nothing else");
    // The index follows every state change.
    let open = ListFilter {
        state: Some(IncidentState::Open),
        ..Default::default()
    };
    let all_open = incidents::list(&w.svc, &p.tenant, &open, None, 200)
        .await
        .unwrap();
    assert_eq!(all_open.items.len(), 200);
    assert!(all_open
        .items
        .iter()
        .all(|i| i.state == IncidentState::Open));
    incidents::act(&w.svc, &p, &first, IncidentAction::Reopen, None, None)
        .await
        .unwrap_err(); // closed is final
    let still = incidents::list(&w.svc, &p.tenant, &closed, None, 5)
        .await
        .unwrap();
    assert_eq!(still.items.len(), 1);
}

#[tokio::test]
async fn a_filter_that_matches_rarely_stops_at_its_budget_with_a_cursor() {
    let w = world();
    let sev1 = open_many(&w, 1, "critical").await[0].clone();
    open_many(&w, incidents::SCAN_BUDGET + 200, "warning").await;
    let t = responder().tenant;
    let filter = ListFilter {
        severity: Some(Severity::Sev1),
        ..Default::default()
    };
    let first = incidents::list(&w.svc, &t, &filter, None, 10)
        .await
        .unwrap();
    assert!(
        first.items.is_empty(),
        "the budget ran out among newer incidents"
    );
    let cursor = first.next_cursor.expect("a cursor to go on from");
    let second = incidents::list(&w.svc, &t, &filter, Some(&cursor), 10)
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].id, sev1);
    assert_eq!(second.next_cursor, None);
}

#[tokio::test]
async fn recurrence_reads_a_bounded_window_and_pages_on() {
    let w = world();
    open_many(&w, incidents::RECURRENCE_SCAN_LIMIT + 10, "warning").await;
    let t = responder().tenant;
    let first = incidents::recurrence(&w.svc, &t, RecurrenceBy::Fingerprint, None)
        .await
        .unwrap();
    assert_eq!(first.scanned, incidents::RECURRENCE_SCAN_LIMIT);
    let next = incidents::recurrence(
        &w.svc,
        &t,
        RecurrenceBy::Fingerprint,
        first.next_cursor.as_deref(),
    )
    .await
    .unwrap();
    assert_eq!(next.scanned, 10);
    assert_eq!(next.next_cursor, None);
}

#[tokio::test]
async fn the_card_shows_what_the_alert_says_beyond_its_title() {
    let w = world();
    let body = serde_json::json!({
        "title": "nightly-export missed its deadline", "fingerprint": "hb-card",
        "annotations": {
            "summary": "nightly-export missed its deadline",
            "description": "the nightly export to the warehouse",
            "reason": "the job reported a failure"
        }
    });
    let report = post(&w.svc, SourceKind::Generic, body.to_string().as_bytes())
        .await
        .unwrap();
    let inc = incidents::get(&w.svc, &responder().tenant, &report.incidents[0])
        .await
        .unwrap();
    let card = firewatch_domain::chat::card(&inc, false);
    assert_eq!(
        card.summary.as_deref(),
        Some("the nightly export to the warehouse\nthe job reported a failure"),
        "description and reason, not the summary that repeats the title"
    );
    let text = firewatch_domain::chat::card_text(&card);
    assert!(text.contains("the job reported a failure"), "{text}");
}
