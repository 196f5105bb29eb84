//! What every provider's parser shares: the result of one webhook, the
//! request's extra facts, and the helpers that read and check a payload.

use chrono::{DateTime, Datelike, Utc};
use firewatch_types::{Alert, SourceKind};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

use crate::DomainError;

/// An SNS subscription waiting for confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsSubscription {
    pub topic_arn: String,
    pub subscribe_url: String,
}

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

/// Parses JSON into `T`, naming what is wrong in a `BadInput` error.
pub fn parse_json<T: DeserializeOwned>(source: SourceKind, body: &[u8]) -> Result<T, DomainError> {
    shaped(source, json_value(body)?)
}

/// The body as JSON, or a `malformed_json` error. Syntax first, so "not
/// JSON" and "JSON of the wrong shape" get distinct codes.
pub fn json_value(body: &[u8]) -> Result<serde_json::Value, DomainError> {
    serde_json::from_slice(body).map_err(|e| {
        DomainError::bad_input(
            "malformed_json",
            format!(
                "body is not valid JSON: {}",
                crate::redact::error_without_values(&e.to_string())
            ),
        )
    })
}

/// `value` as a `T`, or an `invalid_payload` error naming the field.
pub fn shaped<T: DeserializeOwned>(
    source: SourceKind,
    value: serde_json::Value,
) -> Result<T, DomainError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        DomainError::bad_input(
            "invalid_payload",
            format!(
                "body is not a {source} webhook payload: {}{}",
                crate::redact::error_without_values(&e.inner().to_string()),
                field_path(e.path())
            ),
        )
    })
}

/// ` (at alerts[0].title)`: where in the body a wrong value is, so the
/// error names the field. A key that is not a plain word (letters and `_`,
/// at most 32 of them: a label a sender chose, a token used as a key) is
/// shown as `?`: errors never echo what was sent.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(crate::limits::shown_name(key));
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    if out.is_empty() {
        out
    } else {
        format!(" (at {out})")
    }
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
pub fn real_time(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.filter(|t| t.year() > 1970)
}

/// Builds a `BadInput` error for a payload missing something it needs.
pub fn invalid(source: SourceKind, what: impl std::fmt::Display) -> DomainError {
    DomainError::bad_input("invalid_payload", format!("{source} payload: {what}"))
}
