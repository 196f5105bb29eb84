//! Turns each provider's webhook into [`Alert`] values.
//!
//! Every parser takes the raw body and returns alerts with the provider's own
//! identity as fingerprint where it has one, so keys match what the provider
//! shows. Bodies that are not the provider's documented shape are a
//! `BadInput` error and nothing is stored.

mod alertmanager;
mod cloudwatch;
mod generic;
mod pagerduty;
mod sentry;

use chrono::{DateTime, Datelike, Utc};
use firewatch_types::{Alert, SourceKind};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

use crate::DomainError;

pub use cloudwatch::{is_sns_url, SnsSubscription};
pub use pagerduty::routing_key as pagerduty_routing_key;

/// What one webhook carried.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Normalized {
    pub alerts: Vec<Alert>,
    /// An SNS `SubscriptionConfirmation` to confirm instead of alerts.
    pub sns_subscription: Option<SnsSubscription>,
    /// PagerDuty: the dedup key of the event, given or generated.
    pub dedup_key: Option<String>,
    /// Why the webhook carried no alert when it carried none on purpose
    /// (for example a CloudWatch `INSUFFICIENT_DATA` transition).
    pub note: Option<String>,
}

/// Extra facts about the request that some providers put in headers.
#[derive(Debug, Clone, Default)]
pub struct Envelope<'a> {
    /// sha256 hex of the raw body; seeds generated keys so a redelivery gets
    /// the same key.
    pub sha256: &'a str,
    /// Sentry's `Sentry-Hook-Resource` header.
    pub sentry_resource: Option<&'a str>,
}

/// Normalises the body of a webhook from `source`.
pub fn normalize(
    source: SourceKind,
    body: &[u8],
    env: &Envelope<'_>,
) -> Result<Normalized, DomainError> {
    let mut out = match source {
        SourceKind::Alertmanager | SourceKind::Grafana | SourceKind::Signoz => {
            alertmanager::parse(source, body)?
        }
        SourceKind::Pagerduty => pagerduty::parse(body, env)?,
        SourceKind::Sentry => sentry::parse(body, env)?,
        SourceKind::Cloudwatch => cloudwatch::parse(body)?,
        SourceKind::Generic => generic::parse(SourceKind::Generic, body)?,
        // firewatch's own checks raise alerts in the plain JSON shape.
        SourceKind::Heartbeat
        | SourceKind::Smoke
        | SourceKind::Freshness
        | SourceKind::Pipelines => generic::parse(source, body)?,
    };
    for alert in &mut out.alerts {
        clean_alert(alert);
    }
    Ok(out)
}

/// Redacts every string of an alert and holds it to the size limits; what
/// leaves normalisation is safe to store, show in chat and log. The original
/// (redacted) webhook stays in the envelope, long fingerprints included.
pub fn clean_alert(alert: &mut Alert) {
    use crate::redact::{redact_in_place, redact_map};
    redact_in_place(&mut alert.title);
    redact_in_place(&mut alert.fingerprint);
    redact_map(&mut alert.labels);
    redact_map(&mut alert.annotations);
    for link in &mut alert.links {
        redact_in_place(&mut link.href);
        if let Some(text) = &mut link.text {
            redact_in_place(text);
        }
    }
    crate::limits::bound_alert(alert);
    if alert.title.trim().is_empty() {
        alert.title = format!("{} alert {}", alert.source, alert.fingerprint);
    }
}

/// Parses JSON into `T`, naming what is wrong in a `BadInput` error.
pub(crate) fn parse_json<T: DeserializeOwned>(
    source: SourceKind,
    body: &[u8],
) -> Result<T, DomainError> {
    // Syntax first, so "not JSON" and "JSON of the wrong shape" get distinct codes.
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        DomainError::bad_input(
            "malformed_json",
            format!(
                "body is not valid JSON: {}",
                crate::redact::error_without_values(&e.to_string())
            ),
        )
    })?;
    serde_json::from_value(value).map_err(|e| {
        DomainError::bad_input(
            "invalid_payload",
            format!(
                "body is not a {source} webhook payload: {}",
                crate::redact::error_without_values(&e.to_string())
            ),
        )
    })
}

/// A stable fingerprint from labels, for providers that send none.
pub fn fingerprint_of_labels(source: SourceKind, labels: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    h.update(source.as_str());
    for (k, v) in labels {
        h.update(b"\n");
        h.update(k);
        h.update(b"=");
        h.update(v);
    }
    hex::encode(&h.finalize()[..8])
}

/// Alertmanager and Grafana send `0001-01-01T00:00:00Z` for "not set".
pub(crate) fn real_time(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.filter(|t| t.year() > 1970)
}

/// Builds a `BadInput` error for a payload missing something it needs.
pub(crate) fn invalid(source: SourceKind, what: impl std::fmt::Display) -> DomainError {
    DomainError::bad_input("invalid_payload", format!("{source} payload: {what}"))
}
