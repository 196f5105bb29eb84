//! Incidents, their state machine, timeline and audit events.

use crate::{AlertStatus, IncidentId, Link, Severity, SourceKind, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// `open → acknowledged → mitigated → resolved → closed`; `reopen` takes a
/// resolved incident back to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Open,
    Acknowledged,
    Mitigated,
    Resolved,
    Closed,
}

impl IncidentState {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "acknowledged" => Some(Self::Acknowledged),
            "mitigated" => Some(Self::Mitigated),
            "resolved" => Some(Self::Resolved),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Mitigated => "mitigated",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }

    /// Open, acknowledged and mitigated incidents still hold their group key:
    /// new alerts for the key join them instead of opening another.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Open | Self::Acknowledged | Self::Mitigated)
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a person (or an alert) can do to an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentAction {
    Ack,
    Mitigate,
    Resolve,
    Close,
    Reopen,
}

impl IncidentAction {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ack" | "acknowledge" => Some(Self::Ack),
            "mitigate" => Some(Self::Mitigate),
            "resolve" => Some(Self::Resolve),
            "close" => Some(Self::Close),
            "reopen" => Some(Self::Reopen),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ack => "ack",
            Self::Mitigate => "mitigate",
            Self::Resolve => "resolve",
            Self::Close => "close",
            Self::Reopen => "reopen",
        }
    }

    /// The state this action leads to from `from`, or `None` when the
    /// transition is not allowed.
    pub fn apply(self, from: IncidentState) -> Option<IncidentState> {
        use IncidentState::*;
        match (self, from) {
            (Self::Ack, Open) => Some(Acknowledged),
            (Self::Mitigate, Open | Acknowledged) => Some(Mitigated),
            (Self::Resolve, Open | Acknowledged | Mitigated) => Some(Resolved),
            (Self::Close, Resolved) => Some(Closed),
            (Self::Reopen, Resolved) => Some(Open),
            _ => None,
        }
    }
}

impl fmt::Display for IncidentAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The latest we know of one alert that belongs to an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSnapshot {
    pub status: AlertStatus,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    pub last_seen: DateTime<Utc>,
    /// sha256 of the webhook that last changed this alert; a redelivery of it
    /// changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_envelope: Option<String>,
}

/// An incident: one per open group key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub tenant: TenantId,
    pub state: IncidentState,
    pub severity: Severity,
    pub title: String,
    pub source: SourceKind,
    pub group_key: String,
    /// The fingerprint of the alert that opened the incident.
    pub fingerprint: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The annotations of the alert that opened the incident.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub links: Vec<Link>,
    /// Every alert that joined, by fingerprint (at most
    /// [`Incident::MAX_TRACKED_ALERTS`]).
    #[serde(default)]
    pub alerts: BTreeMap<String, AlertSnapshot>,
    /// More distinct alerts joined than are tracked one by one; the
    /// incident then no longer resolves by itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alerts_truncated: bool,
    /// Distinct alerts that joined but are no longer tracked one by one (the
    /// oldest give way so the incident stays within its size budget).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub untracked_alerts: u64,
    /// How many times an alert fired for this incident (the first included).
    pub occurrences: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// The tracker ticket linked to the incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketLink>,
    /// The key of a ticket asked for and not yet created: a second request
    /// meanwhile gets this one instead of a second ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_requested: Option<String>,
    /// Set while the incident's alerts flap: it stays open, quietly, until
    /// they have been stable for the hold period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapping: Option<Flapping>,
    /// Reminders and escalation pause until then (`/fw snooze`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snoozed_until: Option<DateTime<Utc>>,
    /// Bumped by every write; pass it back as `expected_version` to make a
    /// change conditional on nobody else having changed the incident.
    pub version: u64,
}

/// A ticket in an issue tracker, linked to an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLink {
    /// The request that created it (`tkt_<ULID>`).
    pub key: String,
    /// `github`, `gitlab` or `jira`.
    pub tracker: String,
    /// The tracker's name for it: `owner/repo#12`, `group/project#3`, `OPS-7`.
    pub id: String,
    pub url: String,
    pub created_at: DateTime<Utc>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Incident {
    /// Distinct alerts tracked per incident. Keeps the incident item far from
    /// DynamoDB's 400 KB item limit (a snapshot is about 150 bytes).
    pub const MAX_TRACKED_ALERTS: usize = 1000;

    /// True when every alert of the incident has resolved (never for an
    /// incident with more alerts than it tracks: some may still fire).
    pub fn all_alerts_resolved(&self) -> bool {
        !self.alerts_truncated
            && !self.alerts.is_empty()
            && self
                .alerts
                .values()
                .all(|a| a.status == AlertStatus::Resolved)
    }
}

/// An incident whose alerts flap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flapping {
    pub since: DateTime<Utc>,
    /// Flips seen within the window when it started, then since.
    pub flips: u32,
    pub last_flip: DateTime<Utc>,
    /// Seconds without a flip before it is stable.
    pub hold_secs: i64,
    /// Its entry in the `flapping` due index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_sk: Option<String>,
}

/// A pointer to a stored raw envelope (the source dossier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeRef {
    pub sha256: String,
    pub blob_key: String,
}

/// What happened, for the incident timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineKind {
    /// The first alert opened the incident.
    Opened {
        fingerprint: String,
    },
    /// An alert fired (again) for this incident.
    Occurrence {
        fingerprint: String,
    },
    /// An alert of this incident resolved.
    AlertResolved {
        fingerprint: String,
    },
    /// The provider acknowledged an alert (PagerDuty `acknowledge`).
    AlertAcknowledged {
        fingerprint: String,
    },
    StateChanged {
        from: IncidentState,
        to: IncidentState,
    },
    Comment {
        text: String,
    },
    /// The rate limit for the group key was reached: the alert is kept here
    /// instead of opening another incident.
    Suppressed {
        fingerprint: String,
    },
    /// Someone asked for triage; this is what it found.
    Triage {
        report: Box<crate::TriageReport>,
    },
    /// Someone asked for a triage that runs away from their click
    /// (assisted triage from chat): the report follows as its own entry.
    TriageRequested {
        /// `assisted` or `deterministic`.
        mode: String,
    },
    /// Someone asked for a tracker ticket; the link follows when created.
    TicketRequested {
        key: String,
    },
    /// A tracker ticket was created and linked to the incident.
    TicketLinked {
        tracker: String,
        /// The tracker's name for it (`owner/repo#12`, `OPS-7`).
        ticket: String,
        url: String,
    },
    /// A silence made for this incident was created (`created`), ends in
    /// ten minutes (`expiring`) or ended (`expired`).
    Silence {
        silence_id: String,
        state: String,
        until: DateTime<Utc>,
        /// The matchers as one selector, `{alertname="Foo"}`.
        matchers: String,
    },
    /// The incident's alerts started flapping (`started`: it stays open,
    /// quietly) or were stable for the hold period (`stable`).
    Flapping {
        state: String,
        flips: u32,
        window_secs: i64,
    },
    /// Someone snoozed the incident: reminders and escalation pause.
    Snoozed {
        until: DateTime<Utc>,
    },
    /// A step of the incident's escalation policy ran.
    Escalation {
        policy: String,
        /// The step's index in the policy (from 0).
        step: usize,
        /// `remind`, `mention_oncall`, `notify` or `page`.
        action: String,
        /// What was done, for people.
        detail: String,
        /// Who is pinged (participants: `slack:U0123`, an email).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<String>,
    },
    /// A playbook run of this incident changed state or finished a step.
    Playbook {
        run_id: String,
        playbook: String,
        /// The run's state after the change (`dry_run_ok`, `running`, ...).
        state: String,
        /// What happened, secrets masked: a step's outcome, who approved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub id: String,
    pub incident_id: IncidentId,
    pub at: DateTime<Utc>,
    /// Who did it: a principal name, or `source:<kind>` for alerts.
    pub actor: String,
    #[serde(flatten)]
    pub kind: TimelineKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The raw webhook that caused this entry, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<EnvelopeRef>,
}

/// An append-only record of a privileged action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub tenant: TenantId,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[serde(default)]
    pub before: serde_json::Value,
    #[serde(default)]
    pub after: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use IncidentAction::*;
    use IncidentState::*;

    #[test]
    fn the_state_machine_allows_only_the_documented_transitions() {
        assert_eq!(Ack.apply(Open), Some(Acknowledged));
        assert_eq!(Ack.apply(Acknowledged), None);
        assert_eq!(Ack.apply(Resolved), None);
        assert_eq!(Mitigate.apply(Acknowledged), Some(Mitigated));
        assert_eq!(Resolve.apply(Mitigated), Some(Resolved));
        assert_eq!(Resolve.apply(Resolved), None);
        assert_eq!(Close.apply(Resolved), Some(Closed));
        assert_eq!(Close.apply(Open), None);
        assert_eq!(Reopen.apply(Resolved), Some(Open));
        assert_eq!(Reopen.apply(Closed), None);
    }

    #[test]
    fn only_unresolved_states_hold_the_group_key() {
        assert!(Open.is_active() && Acknowledged.is_active() && Mitigated.is_active());
        assert!(!Resolved.is_active() && !Closed.is_active());
    }
}
