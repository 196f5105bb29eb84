//! The plain JSON shape for anything else (documented in docs/API.md):
//! `{"alerts": [ {title, status?, severity?, fingerprint?, labels?,
//! annotations?, links?, starts_at?, ends_at?} ]}` or one such alert object.

use chrono::{DateTime, Utc};
use firewatch_types::{Alert, AlertStatus, Link, Severity, SourceKind};
use serde::Deserialize;
use std::collections::BTreeMap;

use super::parts::{fingerprint_of_labels, invalid, json_value, shaped, Normalized};
use crate::DomainError;

/// `{"alerts": [...]}`.
#[derive(Deserialize)]
struct Many {
    alerts: Vec<GenericAlert>,
}

#[derive(Deserialize)]
struct GenericAlert {
    title: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    links: Vec<Link>,
    #[serde(default)]
    starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    ends_at: Option<DateTime<Utc>>,
}

pub(super) fn parse(source: SourceKind, body: &[u8]) -> Result<Normalized, DomainError> {
    // Told apart first, so an error names the field of the shape sent
    // (`missing field `title``), not "no variant matched".
    let value = json_value(body)?;
    let alerts = if value.get("alerts").is_some() {
        shaped::<Many>(source, value)?.alerts
    } else {
        vec![shaped::<GenericAlert>(source, value)?]
    };
    if alerts.is_empty() {
        return Err(invalid(source, "alerts is empty"));
    }
    let alerts = alerts
        .into_iter()
        .map(|a| to_alert(source, a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Normalized {
        alerts,
        ..Default::default()
    })
}

fn to_alert(source: SourceKind, a: GenericAlert) -> Result<Alert, DomainError> {
    if a.title.trim().is_empty() {
        return Err(invalid(source, "title is empty"));
    }
    let status = match a.status.as_deref().unwrap_or("firing") {
        "firing" | "triggered" | "open" => AlertStatus::Firing,
        "resolved" | "ok" => AlertStatus::Resolved,
        _ => {
            return Err(invalid(
                source,
                "status must be firing or resolved".to_owned(),
            ))
        }
    };
    let severity = a
        .severity
        .as_deref()
        .map(|s| Severity::parse(s).unwrap_or_else(|| Severity::from_provider_word(s)))
        .unwrap_or(Severity::Sev3);
    let fingerprint = match a.fingerprint.filter(|f| !f.is_empty()) {
        Some(f) => f,
        None => {
            let mut keyed = a.labels.clone();
            keyed.insert("__title".into(), a.title.clone());
            fingerprint_of_labels(source, &keyed)
        }
    };
    Ok(Alert {
        source,
        fingerprint,
        status,
        severity,
        title: a.title,
        labels: a.labels,
        annotations: a.annotations,
        links: a.links,
        starts_at: a.starts_at,
        ends_at: a.ends_at,
    })
}
