//! Each provider's documented payloads become the alerts a user expects.

mod common;

use common::fixture;
use firewatch_domain::ingest::normalize::{normalize, Envelope, Normalized};
use firewatch_domain::DomainError;
use firewatch_types::{AlertStatus, Severity, SourceKind};

fn norm(source: SourceKind, name: &str) -> Normalized {
    normalize(
        source,
        &fixture(name),
        &Envelope {
            sha256: "ab".repeat(32).as_str(),
            sentry_resource: None,
        },
    )
    .unwrap()
}

fn norm_err(source: SourceKind, body: &[u8]) -> DomainError {
    normalize(
        source,
        body,
        &Envelope {
            sha256: "00",
            sentry_resource: None,
        },
    )
    .unwrap_err()
}

#[test]
fn alertmanager_webhooks_yield_one_alert_per_entry_with_the_provider_fingerprint() {
    let n = norm(SourceKind::Alertmanager, "alertmanager/firing.json");
    assert_eq!(n.alerts.len(), 2);
    let a = &n.alerts[0];
    assert_eq!(a.fingerprint, "7b3c2a1d9e8f6a54");
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(a.severity, Severity::Sev1);
    assert_eq!(a.title, "db-1:9100 is down");
    assert_eq!(a.labels["instance"], "db-1:9100");
    assert!(a.ends_at.is_none(), "the zero endsAt means not set");
    assert!(a.links.iter().any(|l| l.text.as_deref() == Some("runbook")));
    assert_eq!(n.alerts[1].fingerprint, "0f1e2d3c4b5a6978");
}

#[test]
fn resolved_alertmanager_alerts_carry_their_end_time() {
    let n = norm(SourceKind::Alertmanager, "alertmanager/resolved.json");
    assert!(n
        .alerts
        .iter()
        .all(|a| a.status == AlertStatus::Resolved && a.ends_at.is_some()));
}

#[test]
fn alertmanager_payloads_of_another_version_are_refused() {
    let body = String::from_utf8(fixture("alertmanager/firing.json"))
        .unwrap()
        .replace("\"version\": \"4\"", "\"version\": \"3\"");
    assert!(matches!(
        norm_err(SourceKind::Alertmanager, body.as_bytes()),
        DomainError::BadInput {
            code: "invalid_payload",
            ..
        }
    ));
}

#[test]
fn grafana_alerts_keep_their_fingerprint_and_dashboard_links() {
    let n = norm(SourceKind::Grafana, "grafana/firing.json");
    let a = &n.alerts[0];
    assert_eq!(a.fingerprint, "c6eadffa33fcdf37");
    assert_eq!(a.severity, Severity::Sev3);
    assert_eq!(a.title, "This alert was triggered for zone us-1");
    let texts: Vec<_> = a.links.iter().filter_map(|l| l.text.as_deref()).collect();
    assert!(
        texts.contains(&"dashboard") && texts.contains(&"panel") && texts.contains(&"silence"),
        "{texts:?}"
    );
    assert_eq!(
        norm(SourceKind::Grafana, "grafana/resolved.json").alerts[0].status,
        AlertStatus::Resolved
    );
}

#[test]
fn signoz_alerts_use_the_alertmanager_shape() {
    let n = norm(SourceKind::Signoz, "signoz/firing.json");
    assert_eq!(n.alerts[0].fingerprint, "a1b2c3d4e5f60718");
    assert_eq!(n.alerts[0].severity, Severity::Sev2);
    assert_eq!(
        norm(SourceKind::Signoz, "signoz/resolved.json").alerts[0].status,
        AlertStatus::Resolved
    );
}

#[test]
fn pagerduty_triggers_use_the_dedup_key_and_map_severity() {
    let n = norm(SourceKind::Pagerduty, "pagerduty/trigger.json");
    let a = &n.alerts[0];
    assert_eq!(a.fingerprint, "srv01/mysql-disk");
    assert_eq!(n.dedup_key.as_deref(), Some("srv01/mysql-disk"));
    assert_eq!(a.severity, Severity::Sev1);
    assert_eq!(a.labels["component"], "mysql");
    assert!(a.starts_at.is_some(), "PagerDuty's +0000 timestamps parse");
    assert_eq!(a.annotations["free space"], "1%");
    assert_eq!(
        a.annotations["db_password"], "[REDACTED]",
        "secret-named details are redacted"
    );
}

#[test]
fn a_pagerduty_trigger_without_dedup_key_gets_a_key_derived_from_the_body() {
    let body = fixture("pagerduty/trigger_without_dedup_key.json");
    let env = Envelope {
        sha256: &"cd".repeat(32),
        sentry_resource: None,
    };
    let a = normalize(SourceKind::Pagerduty, &body, &env).unwrap();
    let b = normalize(SourceKind::Pagerduty, &body, &env).unwrap();
    assert_eq!(a.dedup_key.as_deref().map(str::len), Some(32));
    assert_eq!(a.dedup_key, b.dedup_key, "a redelivery gets the same key");
    assert_eq!(a.alerts[0].severity, Severity::Sev3);
}

#[test]
fn pagerduty_acknowledge_and_resolve_need_a_dedup_key() {
    assert_eq!(
        norm(SourceKind::Pagerduty, "pagerduty/acknowledge.json").alerts[0].status,
        AlertStatus::Acknowledged
    );
    assert_eq!(
        norm(SourceKind::Pagerduty, "pagerduty/resolve.json").alerts[0].status,
        AlertStatus::Resolved
    );
    let err = norm_err(
        SourceKind::Pagerduty,
        br#"{"routing_key":"x","event_action":"resolve"}"#,
    );
    assert!(err.to_string().contains("dedup_key"), "{err}");
    let err = norm_err(SourceKind::Pagerduty, br#"{"routing_key":"x","event_action":"trigger","payload":{"summary":"s","source":"s","severity":"bad"}}"#);
    assert!(err.to_string().contains("severity"), "{err}");
    let err = norm_err(
        SourceKind::Pagerduty,
        br#"{"routing_key":"x","event_action":"explode"}"#,
    );
    assert!(err.to_string().contains("event_action"), "{err}");
}

#[test]
fn sentry_issue_alerts_fire_under_the_issue_id() {
    let n = norm(SourceKind::Sentry, "sentry/event_alert.json");
    let a = &n.alerts[0];
    assert_eq!(a.fingerprint, "1170820242");
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(a.severity, Severity::Sev2);
    assert_eq!(a.labels["environment"], "production");
    assert_eq!(a.title, "ZeroDivisionError: division by zero");
}

#[test]
fn sentry_metric_alerts_are_critical_warning_or_resolved() {
    let c = norm(SourceKind::Sentry, "sentry/metric_alert_critical.json");
    assert_eq!(
        (c.alerts[0].status, c.alerts[0].severity),
        (AlertStatus::Firing, Severity::Sev1)
    );
    assert_eq!(c.alerts[0].fingerprint, "metric_alert:53");
    assert_eq!(c.alerts[0].title, "Too many errors");
    let r = norm(SourceKind::Sentry, "sentry/metric_alert_resolved.json");
    assert_eq!(r.alerts[0].status, AlertStatus::Resolved);
    assert_eq!(r.alerts[0].fingerprint, c.alerts[0].fingerprint);
}

#[test]
fn a_sentry_issue_resolved_webhook_resolves_the_issue_alert() {
    let r = norm(SourceKind::Sentry, "sentry/issue_resolved.json");
    assert_eq!(r.alerts[0].status, AlertStatus::Resolved);
    assert_eq!(
        r.alerts[0].fingerprint, "1170820242",
        "same key as the event_alert"
    );
}

#[test]
fn the_sentry_resource_header_wins_over_guessing() {
    let body = fixture("sentry/event_alert.json");
    let err = normalize(
        SourceKind::Sentry,
        &body,
        &Envelope {
            sha256: "00",
            sentry_resource: Some("installation"),
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("installation"));
}

#[test]
fn cloudwatch_alarms_arrive_as_a_json_string_inside_the_sns_message() {
    let n = norm(SourceKind::Cloudwatch, "cloudwatch/alarm.json");
    let a = &n.alerts[0];
    assert_eq!(
        a.fingerprint,
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-api-5xx"
    );
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(a.title, "orders-api-5xx");
    assert!(a.starts_at.is_some());
    let ok = norm(SourceKind::Cloudwatch, "cloudwatch/ok.json");
    assert_eq!(ok.alerts[0].status, AlertStatus::Resolved);
    assert_eq!(ok.alerts[0].fingerprint, a.fingerprint);
}

#[test]
fn an_sns_subscription_confirmation_is_returned_for_checking_not_fetched() {
    let n = norm(
        SourceKind::Cloudwatch,
        "cloudwatch/subscription_confirmation.json",
    );
    let sub = n.sns_subscription.unwrap();
    assert_eq!(
        sub.topic_arn,
        "arn:aws:sns:us-east-1:123456789012:firewatch-alarms"
    );
    assert!(sub
        .subscribe_url
        .starts_with("https://sns.us-east-1.amazonaws.com/"));
    assert!(n.alerts.is_empty());
}

#[test]
fn insufficient_data_carries_no_alert() {
    let body = String::from_utf8(fixture("cloudwatch/alarm.json"))
        .unwrap()
        .replace("\\\"ALARM\\\"", "\\\"INSUFFICIENT_DATA\\\"");
    let n = normalize(
        SourceKind::Cloudwatch,
        body.as_bytes(),
        &Envelope::default(),
    )
    .unwrap();
    assert!(n.alerts.is_empty() && n.note.is_some());
}

#[test]
fn generic_alerts_follow_the_documented_shape() {
    let n = norm(SourceKind::Generic, "generic/firing.json");
    let a = &n.alerts[0];
    assert_eq!(
        (a.fingerprint.as_str(), a.severity, a.status),
        ("backup-nightly-db", Severity::Sev2, AlertStatus::Firing)
    );
    assert_eq!(
        norm(SourceKind::Generic, "generic/resolved.json").alerts[0].status,
        AlertStatus::Resolved
    );
    let single = normalize(
        SourceKind::Generic,
        br#"{"title":"x","labels":{"a":"b"}}"#,
        &Envelope::default(),
    )
    .unwrap();
    assert_eq!(single.alerts.len(), 1);
    let again = normalize(
        SourceKind::Generic,
        br#"{"title":"x","labels":{"a":"b"}}"#,
        &Envelope::default(),
    )
    .unwrap();
    assert_eq!(
        single.alerts[0].fingerprint, again.alerts[0].fingerprint,
        "fingerprints from labels are stable"
    );
}

#[test]
fn malformed_json_and_wrong_shapes_get_distinct_codes() {
    for source in SourceKind::ALL {
        match norm_err(source, b"{not json") {
            DomainError::BadInput { code, .. } => assert_eq!(code, "malformed_json", "{source}"),
            other => panic!("{source}: {other:?}"),
        }
        match norm_err(source, b"[1,2,3]") {
            DomainError::BadInput { code, .. } => assert_eq!(code, "invalid_payload", "{source}"),
            other => panic!("{source}: {other:?}"),
        }
    }
}
