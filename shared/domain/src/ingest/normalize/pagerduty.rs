//! PagerDuty Events API v2 (`POST /v2/enqueue` body).
//!
//! `dedup_key` is the alert's identity. A `trigger` without one gets a key
//! derived from the body's sha256, returned in the response, so an identical
//! redelivery maps to the same alert. `acknowledge` and `resolve` need a key.

use chrono::{DateTime, NaiveDateTime, Utc};
use firewatch_types::{Alert, AlertStatus, Link, Severity, SourceKind};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

use super::parts::{invalid, parse_json, Envelope, Normalized};
use crate::DomainError;

const SOURCE: SourceKind = SourceKind::Pagerduty;

#[derive(Deserialize)]
struct Event {
    event_action: String,
    #[serde(default)]
    dedup_key: Option<String>,
    #[serde(default)]
    payload: Option<Payload>,
    #[serde(default)]
    links: Vec<PdLink>,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    client_url: Option<String>,
}

#[derive(Deserialize)]
struct Payload {
    summary: String,
    source: String,
    severity: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    component: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    custom_details: Option<Value>,
}

#[derive(Deserialize)]
struct PdLink {
    href: String,
    #[serde(default)]
    text: Option<String>,
}

/// The routing key of an Events v2 body, if it has one; `/v2/enqueue`
/// authenticates with it.
pub fn routing_key(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Rk {
        routing_key: Option<String>,
    }
    serde_json::from_slice::<Rk>(body).ok()?.routing_key
}

pub(super) fn parse(body: &[u8], env: &Envelope<'_>) -> Result<Normalized, DomainError> {
    let ev: Event = parse_json(SOURCE, body)?;
    let status = match ev.event_action.as_str() {
        "trigger" => AlertStatus::Firing,
        "acknowledge" => AlertStatus::Acknowledged,
        "resolve" => AlertStatus::Resolved,
        _ => {
            return Err(invalid(
                SOURCE,
                "event_action must be trigger, acknowledge or resolve".to_owned(),
            ))
        }
    };
    let dedup_key = match ev.dedup_key.filter(|k| !k.is_empty()) {
        Some(k) if k.len() > 255 => {
            return Err(invalid(SOURCE, "dedup_key is longer than 255 characters"))
        }
        Some(k) => k,
        None if status == AlertStatus::Firing => env.sha256.chars().take(32).collect(),
        None => {
            return Err(invalid(
                SOURCE,
                format!("{} events need a dedup_key", ev.event_action),
            ))
        }
    };
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    let (title, severity, starts_at) = match ev.payload {
        Some(p) => {
            let severity = match p.severity.as_str() {
                "critical" => Severity::Sev1,
                "error" => Severity::Sev2,
                "warning" => Severity::Sev3,
                "info" => Severity::Sev4,
                _ => {
                    return Err(invalid(
                        SOURCE,
                        "payload.severity must be critical, error, warning or info".to_owned(),
                    ))
                }
            };
            labels.insert("source".to_owned(), p.source);
            for (k, v) in [
                ("component", p.component),
                ("group", p.group),
                ("class", p.class),
            ] {
                if let Some(v) = v {
                    labels.insert(k.to_owned(), v);
                }
            }
            if let Some(Value::Object(details)) = p.custom_details {
                for (k, v) in details {
                    let text = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    annotations.insert(k, text);
                }
            } else if let Some(other) = p.custom_details {
                annotations.insert("details".to_owned(), other.to_string());
            }
            let starts_at = p.timestamp.as_deref().and_then(parse_pd_time);
            (p.summary, severity, starts_at)
        }
        None if status == AlertStatus::Firing => {
            return Err(invalid(
                SOURCE,
                "trigger events need a payload with summary, source and severity",
            ))
        }
        None => (String::new(), Severity::Sev3, None),
    };
    let mut links: Vec<Link> = ev
        .links
        .into_iter()
        .map(|l| Link {
            href: l.href,
            text: l.text,
        })
        .collect();
    if let Some(href) = ev.client_url {
        links.push(Link {
            href,
            text: ev.client,
        });
    }
    Ok(Normalized {
        alerts: vec![Alert {
            source: SOURCE,
            fingerprint: dedup_key.clone(),
            status,
            severity,
            title,
            labels,
            annotations,
            links,
            starts_at,
            ends_at: None,
        }],
        dedup_key: Some(dedup_key),
        ..Default::default()
    })
}

/// PagerDuty documents ISO 8601 such as `2015-07-17T08:42:58.315+0000`,
/// which is not RFC 3339 (no colon in the offset); accept both.
fn parse_pd_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}
