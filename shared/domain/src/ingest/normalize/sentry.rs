//! Sentry integration-platform webhooks: issue alerts (`event_alert`), metric
//! alerts (`metric_alert`) and issue lifecycle events (`issue`).
//!
//! The resource comes from the `Sentry-Hook-Resource` header, or from which
//! object `data` holds when the header is missing. The Sentry issue id is the
//! fingerprint for issue alerts and issue events, so an issue `resolved`
//! resolves the alert its `event_alert` opened.

use firewatch_types::{Alert, AlertStatus, Link, Severity, SourceKind};
use serde_json::Value;
use std::collections::BTreeMap;

use super::parts::{invalid, parse_json, Envelope, Normalized};
use crate::DomainError;

const SOURCE: SourceKind = SourceKind::Sentry;

pub(super) fn parse(body: &[u8], env: &Envelope<'_>) -> Result<Normalized, DomainError> {
    let v: Value = parse_json(SOURCE, body)?;
    let action = v.get("action").and_then(Value::as_str).unwrap_or_default();
    let data = v
        .get("data")
        .filter(|d| d.is_object())
        .ok_or_else(|| invalid(SOURCE, "missing the data object"))?;
    let resource = env.sentry_resource.map(str::to_owned).unwrap_or_else(|| {
        ["event", "metric_alert", "issue"]
            .into_iter()
            .find(|k| data.get(k).is_some())
            .map(|k| if k == "event" { "event_alert" } else { k })
            .unwrap_or_default()
            .to_owned()
    });
    let alert = match resource.as_str() {
        "event_alert" => event_alert(data)?,
        "metric_alert" => metric_alert(action, data)?,
        "issue" => match issue(action, data)? {
            Some(a) => a,
            None => {
                return Ok(Normalized {
                    note: Some(format!(
                        "sentry issue action {action:?} does not change an alert"
                    )),
                    ..Default::default()
                })
            }
        },
        // The Sentry-Hook-Resource header names Sentry's own resource kinds
        // (`installation`, `comment`...): said back, cut short.
        other => {
            return Err(invalid(
                SOURCE,
                format!(
                    "resource {:?} is not event_alert, metric_alert or issue",
                    crate::limits::truncate(other, 40)
                ),
            ))
        }
    };
    Ok(Normalized {
        alerts: vec![alert],
        ..Default::default()
    })
}

fn s(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn link(href: Option<String>, text: &str) -> Vec<Link> {
    href.filter(|h| !h.is_empty())
        .map(|href| Link {
            href,
            text: Some(text.to_owned()),
        })
        .into_iter()
        .collect()
}

fn event_alert(data: &Value) -> Result<Alert, DomainError> {
    let event = &data["event"];
    let issue_id = s(event, "issue_id")
        .ok_or_else(|| invalid(SOURCE, "event_alert without data.event.issue_id"))?;
    let mut labels = BTreeMap::new();
    if let Some(tags) = event.get("tags").and_then(Value::as_array) {
        for pair in tags {
            if let (Some(k), Some(v)) = (
                pair.get(0).and_then(Value::as_str),
                pair.get(1).and_then(Value::as_str),
            ) {
                labels.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    if let Some(rule) = s(data, "triggered_rule") {
        labels.insert("rule".to_owned(), rule);
    }
    let level = s(event, "level").unwrap_or_else(|| "error".into());
    labels.insert("level".to_owned(), level.clone());
    Ok(Alert {
        source: SOURCE,
        fingerprint: issue_id,
        status: AlertStatus::Firing,
        severity: Severity::from_provider_word(&level),
        title: s(event, "title").unwrap_or_default(),
        labels,
        annotations: BTreeMap::new(),
        links: link(s(event, "web_url"), "sentry"),
        starts_at: None,
        ends_at: None,
    })
}

fn metric_alert(action: &str, data: &Value) -> Result<Alert, DomainError> {
    let ma = &data["metric_alert"];
    let id =
        s(ma, "id").ok_or_else(|| invalid(SOURCE, "metric_alert without data.metric_alert.id"))?;
    let (status, severity) = match action {
        "critical" => (AlertStatus::Firing, Severity::Sev1),
        "warning" => (AlertStatus::Firing, Severity::Sev3),
        "resolved" => (AlertStatus::Resolved, Severity::Sev3),
        _ => {
            return Err(invalid(
                SOURCE,
                "metric_alert action must be critical, warning or resolved".to_owned(),
            ))
        }
    };
    let rule = ma.get("alert_rule").and_then(|r| s(r, "name"));
    let mut labels = BTreeMap::new();
    if let Some(rule) = &rule {
        labels.insert("alertname".to_owned(), rule.clone());
    }
    let mut annotations = BTreeMap::new();
    if let Some(text) = s(data, "description_text") {
        annotations.insert("description".to_owned(), text);
    }
    let title = rule
        .or_else(|| s(ma, "title"))
        .or_else(|| s(data, "description_title"))
        .unwrap_or_default();
    Ok(Alert {
        source: SOURCE,
        fingerprint: format!("metric_alert:{id}"),
        status,
        severity,
        title,
        labels,
        annotations,
        links: link(s(data, "web_url"), "sentry"),
        starts_at: None,
        ends_at: None,
    })
}

fn issue(action: &str, data: &Value) -> Result<Option<Alert>, DomainError> {
    let issue = &data["issue"];
    let id = s(issue, "id").ok_or_else(|| invalid(SOURCE, "issue without data.issue.id"))?;
    let status = match action {
        "created" | "unresolved" => AlertStatus::Firing,
        "resolved" | "ignored" | "archived" => AlertStatus::Resolved,
        _ => return Ok(None),
    };
    let level = s(issue, "level").unwrap_or_else(|| "error".into());
    let mut labels = BTreeMap::from([("level".to_owned(), level.clone())]);
    if let Some(project) = issue.get("project").and_then(|p| s(p, "slug")) {
        labels.insert("project".to_owned(), project);
    }
    Ok(Some(Alert {
        source: SOURCE,
        fingerprint: id,
        status,
        severity: Severity::from_provider_word(&level),
        title: s(issue, "title").unwrap_or_default(),
        labels,
        annotations: BTreeMap::new(),
        links: link(
            s(issue, "web_url").or_else(|| s(issue, "permalink")),
            "sentry",
        ),
        starts_at: None,
        ends_at: None,
    }))
}
