//! Alerts fold into incidents: one open incident per group key under any
//! concurrency, redeliveries change nothing, resolution follows the alerts.

mod common;

use chrono::Duration;
use common::*;
use firewatch_domain::incidents::{self, ListFilter};
use firewatch_domain::ingest::Outcome;
use firewatch_domain::ports::Blobs;
use firewatch_domain::{DomainError, Settings};
use firewatch_types::{IncidentAction, IncidentState, SourceKind, TimelineKind};
use std::sync::Arc;

async fn all_incidents(svc: &firewatch_domain::Services) -> Vec<firewatch_types::Incident> {
    let t = responder().tenant;
    incidents::list(svc, &t, &ListFilter::default(), None, 200)
        .await
        .unwrap()
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_deliveries_of_one_new_alert_open_exactly_one_incident() {
    for round in 0..3 {
        let w = world();
        let body = generic(&format!("race-{round}"), "firing", "2026-11-20T11:00:00Z");
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let svc = w.svc.clone();
                let body = body.clone();
                tokio::spawn(async move { post(&svc, SourceKind::Generic, &body).await.unwrap() })
            })
            .collect();
        let mut opened = 0;
        for t in tasks {
            let report = t.await.unwrap();
            if report.duplicate {
                // A late redelivery is answered with the first delivery's report.
                continue;
            }
            opened += report
                .results
                .iter()
                .filter(|r| r.outcome == Outcome::Opened)
                .count();
        }
        let all = all_incidents(&w.svc).await;
        assert_eq!(all.len(), 1, "one incident (round {round})");
        assert_eq!(opened, 1, "one delivery reports opening it");
        assert_eq!(all[0].occurrences, 1, "redeliveries are not occurrences");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_distinct_firings_of_one_key_all_count() {
    let w = world();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let svc = w.svc.clone();
            let body = generic("busy", "firing", &format!("2026-11-20T11:{:02}:00Z", i));
            tokio::spawn(async move { post(&svc, SourceKind::Generic, &body).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let all = all_incidents(&w.svc).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].occurrences, 50, "no occurrence is lost to a race");
}

#[tokio::test]
async fn a_redelivered_identical_webhook_changes_nothing() {
    let w = world();
    let body = fixture("alertmanager/firing.json");
    let first = post(&w.svc, SourceKind::Alertmanager, &body).await.unwrap();
    assert!(!first.duplicate);
    assert_eq!(first.incidents.len(), 2);
    let before = all_incidents(&w.svc).await;
    let again = post(&w.svc, SourceKind::Alertmanager, &body).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(
        again.incidents, first.incidents,
        "the same answer as the first time"
    );
    assert_eq!(all_incidents(&w.svc).await, before, "no incident changed");
}

#[tokio::test]
async fn a_repeat_notification_of_the_same_firing_is_not_a_new_occurrence_but_a_new_start_is() {
    let w = world();
    post(
        &w.svc,
        SourceKind::Generic,
        &generic("fp", "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    // Same alert, same start, different envelope (Alertmanager repeat_interval).
    let mut repeat: serde_json::Value =
        serde_json::from_slice(&generic("fp", "firing", "2026-11-20T11:00:00Z")).unwrap();
    repeat["annotations"] = serde_json::json!({"note": "repeat"});
    let r = post(&w.svc, SourceKind::Generic, repeat.to_string().as_bytes())
        .await
        .unwrap();
    assert_eq!(r.results[0].outcome, Outcome::Unchanged);
    let r = post(
        &w.svc,
        SourceKind::Generic,
        &generic("fp", "firing", "2026-11-20T11:30:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(r.results[0].outcome, Outcome::Occurrence);
    assert_eq!(all_incidents(&w.svc).await[0].occurrences, 2);
}

#[tokio::test]
async fn an_incident_resolves_when_all_of_its_alerts_resolve() {
    let mut settings = Settings::default();
    settings
        .group_by
        .insert(SourceKind::Alertmanager, vec!["alertname".into()]);
    let w = world_with(settings);
    let opened = post(
        &w.svc,
        SourceKind::Alertmanager,
        &fixture("alertmanager/firing.json"),
    )
    .await
    .unwrap();
    assert_eq!(
        opened.incidents.len(),
        1,
        "grouped by alertname: both alerts join one incident"
    );
    assert_eq!(opened.results[1].outcome, Outcome::Occurrence);

    let mut one: serde_json::Value =
        serde_json::from_slice(&fixture("alertmanager/resolved.json")).unwrap();
    one["alerts"].as_array_mut().unwrap().truncate(1);
    let r = post(&w.svc, SourceKind::Alertmanager, one.to_string().as_bytes())
        .await
        .unwrap();
    assert_eq!(r.results[0].outcome, Outcome::AlertResolved);
    assert_eq!(
        all_incidents(&w.svc).await[0].state,
        IncidentState::Open,
        "one alert still fires"
    );

    let r = post(
        &w.svc,
        SourceKind::Alertmanager,
        &fixture("alertmanager/resolved.json"),
    )
    .await
    .unwrap();
    assert_eq!(r.results[1].outcome, Outcome::IncidentResolved);
    let inc = &all_incidents(&w.svc).await[0];
    assert_eq!(inc.state, IncidentState::Resolved);
    assert!(inc.resolved_at.is_some());
}

#[tokio::test]
async fn auto_resolve_can_be_turned_off() {
    let w = world_with(Settings {
        auto_resolve: false,
        ..Settings::default()
    });
    post(&w.svc, SourceKind::Generic, &fixture("generic/firing.json"))
        .await
        .unwrap();
    let r = post(
        &w.svc,
        SourceKind::Generic,
        &fixture("generic/resolved.json"),
    )
    .await
    .unwrap();
    assert_eq!(r.results[0].outcome, Outcome::AlertResolved);
    assert_eq!(all_incidents(&w.svc).await[0].state, IncidentState::Open);
}

#[tokio::test]
async fn a_firing_after_resolution_opens_a_new_incident() {
    let w = world();
    let a = post(
        &w.svc,
        SourceKind::Generic,
        &generic("flappy", "firing", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    post(
        &w.svc,
        SourceKind::Generic,
        &generic("flappy", "resolved", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    let b = post(
        &w.svc,
        SourceKind::Generic,
        &generic("flappy", "firing", "2026-11-20T11:10:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(b.results[0].outcome, Outcome::Opened);
    assert_ne!(a.incidents, b.incidents);
    let all = all_incidents(&w.svc).await;
    assert_eq!(
        all.iter()
            .filter(|i| i.state == IncidentState::Open)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_resolve_for_an_unknown_alert_is_recorded_but_opens_nothing() {
    let w = world();
    let r = post(
        &w.svc,
        SourceKind::Generic,
        &generic("ghost", "resolved", "2026-11-20T11:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(r.results[0].outcome, Outcome::NoOpenIncident);
    assert!(all_incidents(&w.svc).await.is_empty());
}

#[tokio::test]
async fn over_the_rate_limit_alerts_are_kept_on_the_last_incident_not_lost() {
    // Flap damping would take these fire/resolve cycles for flapping (and
    // reopen the last incident); the rate limit is what is tested here.
    let w = world_with(firewatch_domain::Settings {
        flap: firewatch_domain::settings::FlapRule {
            max_flips: 100,
            ..Default::default()
        },
        ..Default::default()
    });
    let mut ids = Vec::new();
    for i in 0..4 {
        let r = post(
            &w.svc,
            SourceKind::Generic,
            &generic("noisy", "firing", &format!("2026-11-20T11:0{i}:00Z")),
        )
        .await
        .unwrap();
        ids.push((r.results[0].outcome, r.results[0].incident_id.clone()));
        post(
            &w.svc,
            SourceKind::Generic,
            &generic("noisy", "resolved", &format!("2026-11-20T11:0{i}:00Z")),
        )
        .await
        .unwrap();
    }
    let outcomes: Vec<_> = ids.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Opened,
            Outcome::Opened,
            Outcome::Opened,
            Outcome::Suppressed
        ]
    );
    assert_eq!(
        ids[3].1, ids[2].1,
        "the suppressed alert is recorded on the last incident"
    );
    assert_eq!(all_incidents(&w.svc).await.len(), 3);
    let last = ids[2].1.clone().unwrap();
    let tl = incidents::timeline(&w.svc, &responder().tenant, &last, None, 100)
        .await
        .unwrap();
    assert!(tl
        .items
        .iter()
        .any(|e| matches!(e.kind, TimelineKind::Suppressed { .. })));

    // An hour later the key may open incidents again.
    w.clock.advance(Duration::minutes(61));
    let r = post(
        &w.svc,
        SourceKind::Generic,
        &generic("noisy", "firing", "2026-11-20T13:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(r.results[0].outcome, Outcome::Opened);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manual_ack_racing_an_automatic_resolve_leaves_a_consistent_state_and_never_reopens() {
    for round in 0..20 {
        let w = world();
        let fp = format!("race-ack-{round}");
        let opened = post(
            &w.svc,
            SourceKind::Generic,
            &generic(&fp, "firing", "2026-11-20T11:00:00Z"),
        )
        .await
        .unwrap();
        let id = opened.incidents[0].clone();
        let svc = w.svc.clone();
        let ack_id = id.clone();
        let ack = tokio::spawn(async move {
            incidents::act(&svc, &responder(), &ack_id, IncidentAction::Ack, None, None).await
        });
        let svc = w.svc.clone();
        let body = generic(&fp, "resolved", "2026-11-20T11:00:00Z");
        let resolve = tokio::spawn(async move { post(&svc, SourceKind::Generic, &body).await });
        let ack = ack.await.unwrap();
        resolve.await.unwrap().unwrap();

        let inc = incidents::get(&w.svc, &responder().tenant, &id)
            .await
            .unwrap();
        assert_eq!(
            inc.state,
            IncidentState::Resolved,
            "the resolve always lands (round {round})"
        );
        let tl = incidents::timeline(&w.svc, &responder().tenant, &id, None, 100)
            .await
            .unwrap();
        let changes: Vec<_> = tl
            .items
            .iter()
            .filter_map(|e| match e.kind {
                TimelineKind::StateChanged { from, to } => Some((from, to)),
                _ => None,
            })
            .collect();
        match ack {
            Ok(_) => assert_eq!(
                changes,
                [
                    (IncidentState::Open, IncidentState::Acknowledged),
                    (IncidentState::Acknowledged, IncidentState::Resolved)
                ]
            ),
            Err(e) => {
                assert!(e.to_string().contains("resolved"), "{e}");
                assert_eq!(changes, [(IncidentState::Open, IncidentState::Resolved)]);
            }
        }
        assert!(
            !changes.iter().any(|(_, to)| *to == IncidentState::Open),
            "never reopened"
        );
        // The group key is free: the next firing opens a new incident.
        let next = post(
            &w.svc,
            SourceKind::Generic,
            &generic(&fp, "firing", "2026-11-20T12:00:00Z"),
        )
        .await
        .unwrap();
        assert_eq!(next.results[0].outcome, Outcome::Opened);
    }
}

#[tokio::test]
async fn pagerduty_acknowledge_and_resolve_act_on_the_open_incident_with_that_key() {
    let w = world();
    let t = post(
        &w.svc,
        SourceKind::Pagerduty,
        &fixture("pagerduty/trigger.json"),
    )
    .await
    .unwrap();
    assert_eq!(t.dedup_key.as_deref(), Some("srv01/mysql-disk"));
    let a = post(
        &w.svc,
        SourceKind::Pagerduty,
        &fixture("pagerduty/acknowledge.json"),
    )
    .await
    .unwrap();
    assert_eq!(a.results[0].outcome, Outcome::Acknowledged);
    assert_eq!(
        all_incidents(&w.svc).await[0].state,
        IncidentState::Acknowledged
    );
    let r = post(
        &w.svc,
        SourceKind::Pagerduty,
        &fixture("pagerduty/resolve.json"),
    )
    .await
    .unwrap();
    assert_eq!(r.results[0].outcome, Outcome::IncidentResolved);
    // A trigger after resolve opens a new incident under the same key.
    let mut again: serde_json::Value =
        serde_json::from_slice(&fixture("pagerduty/trigger.json")).unwrap();
    again["payload"]["summary"] = "DISK at 99% again".into();
    let t2 = post(&w.svc, SourceKind::Pagerduty, again.to_string().as_bytes())
        .await
        .unwrap();
    assert_eq!(t2.results[0].outcome, Outcome::Opened);
    assert_ne!(t2.incidents, t.incidents);
}

#[tokio::test]
async fn sentry_issue_resolved_resolves_the_incident_its_issue_alert_opened() {
    let w = world();
    let o = post(
        &w.svc,
        SourceKind::Sentry,
        &fixture("sentry/event_alert.json"),
    )
    .await
    .unwrap();
    let r = post(
        &w.svc,
        SourceKind::Sentry,
        &fixture("sentry/issue_resolved.json"),
    )
    .await
    .unwrap();
    assert_eq!(r.incidents, o.incidents);
    assert_eq!(r.results[0].outcome, Outcome::IncidentResolved);
}

#[tokio::test]
async fn cloudwatch_ok_resolves_the_alarm_incident() {
    let w = world();
    let o = post(
        &w.svc,
        SourceKind::Cloudwatch,
        &fixture("cloudwatch/alarm.json"),
    )
    .await
    .unwrap();
    assert_eq!(o.results[0].outcome, Outcome::Opened);
    let r = post(
        &w.svc,
        SourceKind::Cloudwatch,
        &fixture("cloudwatch/ok.json"),
    )
    .await
    .unwrap();
    assert_eq!(r.results[0].outcome, Outcome::IncidentResolved);
}

#[tokio::test]
async fn the_raw_envelope_is_kept_redacted_with_its_sha256_and_linked_from_the_timeline() {
    let w = world();
    let body = fixture("pagerduty/trigger.json");
    let headers = vec![
        (
            "authorization".to_string(),
            "Bearer fw_supersecret".to_string(),
        ),
        ("x-custom".to_string(), "kept".to_string()),
    ];
    let r = post_with_headers(&w.svc, SourceKind::Pagerduty, &body, headers)
        .await
        .unwrap();
    let tl = incidents::timeline(&w.svc, &responder().tenant, &r.incidents[0], None, 10)
        .await
        .unwrap();
    let env = tl.items[0]
        .envelope
        .clone()
        .expect("the opening entry links its envelope");
    assert_eq!(env.sha256, r.envelope_sha256);
    assert_eq!(env.sha256, firewatch_domain::auth::sha256_hex(&body));
    let stored = String::from_utf8(w.svc.blobs.get(&env.blob_key).await.unwrap().unwrap()).unwrap();
    for secret in ["ROUTING_KEY_PLACEHOLDER", "hunter2", "fw_supersecret"] {
        assert!(
            !stored.contains(secret),
            "{secret} leaked into the stored envelope"
        );
    }
    assert!(stored.contains("kept") && stored.contains("DISK at 99%"));
    let inc = incidents::get(&w.svc, &responder().tenant, &r.incidents[0])
        .await
        .unwrap();
    assert!(
        !serde_json::to_string(&inc).unwrap().contains("hunter2"),
        "nor into the incident"
    );
}

#[tokio::test]
async fn a_viewer_cannot_post_alerts() {
    let w = world();
    let p = viewer();
    let err = firewatch_domain::ingest::ingest(
        &w.svc,
        firewatch_domain::ingest::IngestRequest {
            principal: &p,
            source: SourceKind::Generic,
            body: &fixture("generic/firing.json"),
            headers: vec![],
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, firewatch_domain::DomainError::Forbidden(_)));
    assert!(all_incidents(&w.svc).await.is_empty());
}

#[tokio::test]
async fn sns_subscriptions_are_confirmed_only_for_allowed_topics() {
    use firewatch_domain::ports::RecordingSnsConfirmer;
    use std::sync::Arc;
    let body = fixture("cloudwatch/subscription_confirmation.json");

    let w = world();
    let rec = Arc::new(RecordingSnsConfirmer::default());
    let svc = w.svc.clone().with_sns(rec.clone());
    let err = post(&svc, SourceKind::Cloudwatch, &body).await.unwrap_err();
    assert!(
        matches!(err, firewatch_domain::DomainError::Forbidden(_)),
        "{err:?}"
    );
    assert!(
        rec.0.lock().unwrap().is_empty(),
        "nothing fetched for an unknown topic"
    );

    let settings = Settings {
        sns_topic_allowlist: vec!["arn:aws:sns:us-east-1:123456789012:firewatch-alarms".into()],
        ..Settings::default()
    };
    let w = world_with(settings);
    let svc = w.svc.clone().with_sns(rec.clone());
    let r = post(&svc, SourceKind::Cloudwatch, &body).await.unwrap();
    assert!(r.note.unwrap().contains("confirmed"));
    assert_eq!(rec.0.lock().unwrap().len(), 1);

    let evil = String::from_utf8(body).unwrap().replace(
        "https://sns.us-east-1.amazonaws.com/",
        "https://attacker.example/",
    );
    let err = post(&svc, SourceKind::Cloudwatch, evil.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        firewatch_domain::DomainError::BadInput {
            code: "invalid_subscribe_url",
            ..
        }
    ));
    assert_eq!(
        rec.0.lock().unwrap().len(),
        1,
        "the attacker's URL was never fetched"
    );
}

#[tokio::test]
async fn an_identical_body_after_the_dedup_window_is_a_new_event() {
    let w = world();
    let body = fixture("pagerduty/trigger.json");
    let first = post(&w.svc, SourceKind::Pagerduty, &body).await.unwrap();
    post(
        &w.svc,
        SourceKind::Pagerduty,
        &fixture("pagerduty/resolve.json"),
    )
    .await
    .unwrap();
    let retry = post(&w.svc, SourceKind::Pagerduty, &body).await.unwrap();
    assert!(retry.duplicate, "inside the window it is a redelivery");
    w.clock.advance(Duration::seconds(601));
    let later = post(&w.svc, SourceKind::Pagerduty, &body).await.unwrap();
    assert!(!later.duplicate);
    assert_eq!(later.results[0].outcome, Outcome::Opened);
    assert_ne!(later.incidents, first.incidents);
}

#[tokio::test]
async fn an_incident_tracks_a_bounded_number_of_alerts_and_then_stops_resolving_by_itself() {
    let mut settings = Settings::default();
    settings
        .group_by
        .insert(SourceKind::Generic, vec!["alertname".into()]);
    let w = world_with(settings);
    let max = firewatch_types::Incident::MAX_TRACKED_ALERTS;
    let alerts: Vec<serde_json::Value> = (0..=max)
        .map(|i| serde_json::json!({"title": "fan-out", "fingerprint": format!("fp{i}"), "labels": {"alertname": "FanOut"}}))
        .collect();
    post(
        &w.svc,
        SourceKind::Generic,
        serde_json::json!({ "alerts": alerts })
            .to_string()
            .as_bytes(),
    )
    .await
    .unwrap();
    let inc = &all_incidents(&w.svc).await[0];
    assert!(inc.alerts.len() <= max);
    assert!(inc.alerts_truncated);
    assert_eq!(
        inc.alerts.len() as u64 + inc.untracked_alerts,
        max as u64 + 1,
        "alerts that are not tracked are counted"
    );
    assert_eq!(
        inc.occurrences as usize,
        max + 1,
        "every alert still counts"
    );
    assert!(
        serde_json::to_string(inc).unwrap().len() <= firewatch_domain::change::INCIDENT_BUDGET,
        "the item stays within its budget, far below DynamoDB's limit"
    );
    let resolved: Vec<serde_json::Value> = (0..max)
        .map(|i| serde_json::json!({"title": "fan-out", "fingerprint": format!("fp{i}"), "status": "resolved", "labels": {"alertname": "FanOut"}}))
        .collect();
    post(
        &w.svc,
        SourceKind::Generic,
        serde_json::json!({ "alerts": resolved })
            .to_string()
            .as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(
        all_incidents(&w.svc).await[0].state,
        IncidentState::Open,
        "an untracked alert may still fire"
    );
}

/// Blobs that fail their next `n` puts.
struct FlakyBlobs {
    inner: firewatch_local::MemBlobs,
    failing: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl firewatch_domain::ports::Blobs for FlakyBlobs {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), firewatch_domain::ports::BlobError> {
        use std::sync::atomic::Ordering;
        if self
            .failing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(firewatch_domain::ports::BlobError::Unavailable(
                "disk full".into(),
            ));
        }
        self.inner.put(key, bytes, content_type).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, firewatch_domain::ports::BlobError> {
        self.inner.get(key).await
    }
}

#[tokio::test]
async fn an_envelope_lost_beside_a_committed_change_is_stored_by_the_senders_retry() {
    let mut w = world();
    let blobs = Arc::new(FlakyBlobs {
        inner: Default::default(),
        failing: std::sync::atomic::AtomicU32::new(1),
    });
    w.svc.blobs = blobs.clone();
    let body = generic("env-1", "firing", "2026-11-20T11:00:00Z");
    let first = post(&w.svc, SourceKind::Generic, &body).await;
    assert!(
        matches!(first, Err(DomainError::Unavailable(_))),
        "no 202 while the envelope is not stored: {first:?}"
    );
    let retry = post(&w.svc, SourceKind::Generic, &body).await.unwrap();
    let inc = &all_incidents(&w.svc).await[0];
    assert_eq!(inc.occurrences, 1, "the retry changed nothing more");
    assert_eq!(retry.incidents[0], inc.id);
    let key = format!(
        "envelopes/{}/{}.json",
        responder().tenant,
        retry.envelope_sha256
    );
    assert!(
        blobs.get(&key).await.unwrap().is_some(),
        "the retry stored the envelope the timeline links to"
    );
}
