//! Prometheus Alertmanager webhook (payload version 4), and the two senders
//! that reuse its shape: Grafana alerting's webhook contact point and SigNoz.

use chrono::{DateTime, Utc};
use firewatch_types::{Alert, AlertStatus, Link, Severity, SourceKind};
use serde::Deserialize;
use std::collections::BTreeMap;

use super::parts::{fingerprint_of_labels, invalid, parse_json, real_time, Normalized};
use crate::DomainError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Webhook {
    #[serde(default)]
    version: Option<String>,
    alerts: Vec<AmAlert>,
    #[serde(default)]
    external_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmAlert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    ends_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    // Grafana extras.
    #[serde(default, rename = "dashboardURL")]
    dashboard_url: Option<String>,
    #[serde(default, rename = "panelURL")]
    panel_url: Option<String>,
    #[serde(default, rename = "silenceURL")]
    silence_url: Option<String>,
}

pub(super) fn parse(source: SourceKind, body: &[u8]) -> Result<Normalized, DomainError> {
    let hook: Webhook = parse_json(source, body)?;
    if source == SourceKind::Alertmanager {
        if let Some(v) = hook.version.as_deref() {
            if v != "4" {
                return Err(invalid(
                    source,
                    "unsupported payload version (expected \"4\")".to_owned(),
                ));
            }
        }
    }
    let alerts = hook
        .alerts
        .into_iter()
        .map(|a| to_alert(source, a, hook.external_url.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Normalized {
        alerts,
        ..Default::default()
    })
}

fn to_alert(
    source: SourceKind,
    a: AmAlert,
    external_url: Option<&str>,
) -> Result<Alert, DomainError> {
    let status = match a.status.as_str() {
        "firing" => AlertStatus::Firing,
        "resolved" => AlertStatus::Resolved,
        _ => {
            return Err(invalid(
                source,
                "an alert status is neither firing nor resolved".to_owned(),
            ))
        }
    };
    let fingerprint = a
        .fingerprint
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| fingerprint_of_labels(source, &a.labels));
    let severity = a
        .labels
        .get("severity")
        .or_else(|| a.labels.get("priority"))
        .map(|w| Severity::from_provider_word(w))
        .unwrap_or(Severity::Sev3);
    let title = a
        .annotations
        .get("summary")
        .or_else(|| a.annotations.get("title"))
        .or_else(|| a.labels.get("alertname"))
        .cloned()
        .unwrap_or_default();
    let mut links = Vec::new();
    let mut push = |href: Option<String>, text: &str| {
        if let Some(href) = href.filter(|h| !h.is_empty()) {
            links.push(Link {
                href,
                text: Some(text.to_owned()),
            });
        }
    };
    push(a.generator_url, "source");
    push(a.annotations.get("runbook_url").cloned(), "runbook");
    push(a.dashboard_url, "dashboard");
    push(a.panel_url, "panel");
    push(a.silence_url, "silence");
    if source == SourceKind::Alertmanager {
        push(external_url.map(str::to_owned), "alertmanager");
    }
    Ok(Alert {
        source,
        fingerprint,
        status,
        severity,
        title,
        labels: a.labels,
        annotations: a.annotations,
        links,
        starts_at: real_time(a.starts_at),
        ends_at: real_time(a.ends_at),
    })
}
