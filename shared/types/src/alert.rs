//! Alerts as every provider's payload is normalised into them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where an alert came from: the providers firewatch understands, named as
/// in `POST /v1/alerts/{source}`, and firewatch's own checks (heartbeats,
/// smoke checks, provider freshness), which raise alerts through the same
/// incident flow but cannot be posted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Alertmanager,
    Grafana,
    Pagerduty,
    Sentry,
    Signoz,
    Cloudwatch,
    Generic,
    /// A dead-man's switch that was not pinged in time, or reported a failure.
    Heartbeat,
    /// A smoke check whose contract did not hold.
    Smoke,
    /// A provider whose alerts stopped arriving.
    Freshness,
    /// A data pipeline run that failed or was aborted.
    Pipelines,
}

impl SourceKind {
    pub const ALL: [SourceKind; 11] = [
        Self::Alertmanager,
        Self::Grafana,
        Self::Pagerduty,
        Self::Sentry,
        Self::Signoz,
        Self::Cloudwatch,
        Self::Generic,
        Self::Heartbeat,
        Self::Smoke,
        Self::Freshness,
        Self::Pipelines,
    ];

    /// True for firewatch's own checks: their alerts are raised by the
    /// scheduler and the ping routes, never posted as webhooks.
    pub fn is_internal(self) -> bool {
        matches!(
            self,
            Self::Heartbeat | Self::Smoke | Self::Freshness | Self::Pipelines
        )
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alertmanager => "alertmanager",
            Self::Grafana => "grafana",
            Self::Pagerduty => "pagerduty",
            Self::Sentry => "sentry",
            Self::Signoz => "signoz",
            Self::Cloudwatch => "cloudwatch",
            Self::Generic => "generic",
            Self::Heartbeat => "heartbeat",
            Self::Smoke => "smoke",
            Self::Freshness => "freshness",
            Self::Pipelines => "pipelines",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// sev1 is the worst. Ordered so that `max` picks the worse of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Sev1,
    Sev2,
    Sev3,
    Sev4,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sev1" => Some(Self::Sev1),
            "sev2" => Some(Self::Sev2),
            "sev3" => Some(Self::Sev3),
            "sev4" => Some(Self::Sev4),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sev1 => "sev1",
            Self::Sev2 => "sev2",
            Self::Sev3 => "sev3",
            Self::Sev4 => "sev4",
        }
    }

    /// Maps the words providers use (`critical`, `P1`, `warning`, `info`...)
    /// to a severity. Unknown words are sev3: loud enough to be seen, not
    /// loud enough to page.
    pub fn from_provider_word(word: &str) -> Self {
        match word.trim().to_ascii_lowercase().as_str() {
            "sev1" | "p1" | "critical" | "crit" | "fatal" | "emergency" | "disaster" | "page" => {
                Self::Sev1
            }
            "sev2" | "p2" | "error" | "err" | "high" | "major" | "alarm" => Self::Sev2,
            "sev3" | "p3" | "warning" | "warn" | "medium" | "average" | "minor" => Self::Sev3,
            "sev4" | "p4" | "p5" | "info" | "informational" | "low" | "debug" | "none" | "ok" => {
                Self::Sev4
            }
            _ => Self::Sev3,
        }
    }

    /// The more severe of the two.
    pub fn worst(self, other: Self) -> Self {
        if self.rank() <= other.rank() {
            self
        } else {
            other
        }
    }

    fn rank(self) -> u8 {
        match self {
            Self::Sev1 => 1,
            Self::Sev2 => 2,
            Self::Sev3 => 3,
            Self::Sev4 => 4,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the provider says about one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    /// Only PagerDuty Events v2 `acknowledge` carries this.
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }
}

/// A link the provider attached (runbook, dashboard, generator URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub href: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One alert, whatever provider sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub source: SourceKind,
    /// The provider's own identity for this alert when it has one
    /// (Alertmanager `fingerprint`, PagerDuty `dedup_key`, Sentry issue id,
    /// CloudWatch `AlarmArn`), otherwise a hash of its labels.
    pub fingerprint: String,
    pub status: AlertStatus,
    pub severity: Severity,
    pub title: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_words_map_to_severities() {
        assert_eq!(Severity::from_provider_word("critical"), Severity::Sev1);
        assert_eq!(Severity::from_provider_word("P2"), Severity::Sev2);
        assert_eq!(Severity::from_provider_word("warning"), Severity::Sev3);
        assert_eq!(Severity::from_provider_word("info"), Severity::Sev4);
        assert_eq!(Severity::from_provider_word("banana"), Severity::Sev3);
    }

    #[test]
    fn worst_picks_the_more_severe() {
        assert_eq!(Severity::Sev3.worst(Severity::Sev1), Severity::Sev1);
        assert_eq!(Severity::Sev2.worst(Severity::Sev4), Severity::Sev2);
    }

    #[test]
    fn source_kinds_round_trip_through_their_path_names() {
        for k in SourceKind::ALL {
            assert_eq!(SourceKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(SourceKind::parse("nagios"), None);
    }
}
