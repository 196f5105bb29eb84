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
pub mod parts;
mod sentry;

use firewatch_types::{Alert, SourceKind};

use crate::DomainError;

pub use cloudwatch::is_sns_url;
pub use pagerduty::routing_key as pagerduty_routing_key;
pub use parts::{fingerprint_of_labels, Envelope, Normalized, SnsSubscription};

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
