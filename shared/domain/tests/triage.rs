//! Triage on a stored incident: history from the alert group's earlier
//! incidents, the report on the timeline and in the chat thread, roles.

mod common;

use chrono::Duration;
use common::*;
use firewatch_domain::{incidents, triage, DomainError};
use firewatch_types::{Confidence, IncidentAction, SourceKind, TimelineKind};

fn latency_alert(status: &str, starts_at: &str) -> Vec<u8> {
    serde_json::json!({
        "title": "api latency p99 above 2s",
        "fingerprint": "api-latency",
        "status": status,
        "severity": "sev2",
        "labels": {"alertname": "ApiLatencyHigh", "service": "api", "namespace": "prod"},
        "links": [{"href": "https://runbooks.example/api/latency", "text": "runbook"}],
        "starts_at": starts_at,
    })
    .to_string()
    .into_bytes()
}

async fn open(w: &World, starts_at: &str) -> firewatch_types::IncidentId {
    post(
        &w.svc,
        SourceKind::Generic,
        &latency_alert("firing", starts_at),
    )
    .await
    .unwrap()
    .incidents[0]
        .clone()
}

#[tokio::test]
async fn a_recurring_alert_is_triaged_with_its_history_and_the_report_reaches_the_thread() {
    let w = world();
    // An earlier incident of the same group, resolved 40 minutes in.
    let first = open(&w, "2026-11-20T09:00:00Z").await;
    w.clock.advance(Duration::minutes(40));
    incidents::act(
        &w.svc,
        &responder(),
        &first,
        IncidentAction::Resolve,
        Some("restarted the pool".into()),
        None,
    )
    .await
    .unwrap();
    w.clock.advance(Duration::hours(2));
    let second = open(&w, "2026-11-20T11:40:00Z").await;
    assert_ne!(first, second);

    let report = triage::run(&w.svc, &responder(), &second).await.unwrap();
    assert_eq!(report.mode, "deterministic_rules_v1");
    assert_eq!(report.rule.as_deref(), Some("latency"));
    assert_eq!(
        report.confidence,
        Confidence::High,
        "a known rule and a resolved earlier incident"
    );
    assert!(
        report
            .facts
            .iter()
            .any(|f| f.contains("1 earlier incident") && f.contains("typically in 40 min")),
        "{:?}",
        report.facts
    );
    assert!(report.impact.contains("service=api"));
    assert_eq!(
        report.runbooks[0].href,
        "https://runbooks.example/api/latency"
    );
    assert!(report
        .next_actions
        .iter()
        .any(|a| a.contains(first.as_str())));

    let timeline = incidents::timeline(&w.svc, &responder().tenant, &second, None, 100)
        .await
        .unwrap()
        .items;
    let entry = timeline
        .iter()
        .find(|e| matches!(e.kind, TimelineKind::Triage { .. }))
        .expect("the report is on the timeline");
    assert_eq!(entry.actor, "alice");
    let reply = firewatch_domain::chat::reply_text(entry);
    assert!(reply.starts_with("🔎 Triage by alice (deterministic, high confidence)"));
    assert!(reply.contains("Likely cause: Requests are slow"));
    assert!(reply.contains("\n1. Acknowledge"));

    // The first incident has no earlier one: medium confidence.
    let r = triage::run(&w.svc, &responder(), &first).await.unwrap();
    assert_eq!(r.confidence, Confidence::Medium);
    assert!(r.facts.iter().any(|f| f.contains("first incident")));
}

#[tokio::test]
async fn viewers_cannot_triage_and_unknown_incidents_are_not_found() {
    let w = world();
    let id = open(&w, "2026-11-20T09:00:00Z").await;
    assert!(matches!(
        triage::run(&w.svc, &viewer(), &id).await,
        Err(DomainError::Forbidden(_))
    ));
    let timeline = incidents::timeline(&w.svc, &viewer().tenant, &id, None, 100)
        .await
        .unwrap()
        .items;
    assert!(!timeline
        .iter()
        .any(|e| matches!(e.kind, TimelineKind::Triage { .. })));
    let missing = firewatch_types::IncidentId::parse("inc_01JD0000000000000000000009").unwrap();
    assert!(matches!(
        triage::run(&w.svc, &responder(), &missing).await,
        Err(DomainError::NotFound(_))
    ));
}
