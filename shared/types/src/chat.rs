//! The platform-neutral chat message model: what an incident looks like in a
//! chat thread, whatever the platform. Each chat client renders it to its own
//! format (Block Kit, Discord components, Telegram inline keyboards, text).

use crate::{IncidentId, IncidentState, Link, Severity, SourceKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a thread lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "snake_case")]
pub enum Destination {
    Slack {
        channel: String,
    },
    Discord {
        channel_id: String,
    },
    Telegram {
        chat_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic_id: Option<String>,
    },
    /// The terminal of `firewatch dev`.
    Console,
}

impl Destination {
    /// A stable key naming this destination, safe inside a store key.
    pub fn key(&self) -> String {
        match self {
            Self::Slack { channel } => format!("slack:{channel}"),
            Self::Discord { channel_id } => format!("discord:{channel_id}"),
            Self::Telegram {
                chat_id,
                topic_id: None,
            } => format!("telegram:{chat_id}"),
            Self::Telegram {
                chat_id,
                topic_id: Some(t),
            } => format!("telegram:{chat_id}:{t}"),
            Self::Console => "console".into(),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// What a button does. Rendered into a short opaque payload
/// (`fw1:<action>:<target>`, at most 64 bytes: Telegram's `callback_data`
/// limit), never a secret. The target is an incident id for the card's
/// buttons, a playbook run id for a run's buttons, and `<incident id>.<n>`
/// (the n-th playbook offered) for a playbook choice, and a triage report
/// id for the feedback buttons under a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonAction {
    Ack,
    Resolve,
    Triage,
    Playbooks,
    /// Dry-run one of the playbooks offered for an incident.
    DryRun,
    Approve,
    Reject,
    Execute,
    Rollback,
    /// Feedback on a triage report: it helped.
    Helpful,
    /// Feedback on a triage report: it did not help.
    NotHelpful,
    /// Open a tracker ticket for the incident.
    Ticket,
    /// Silence the incident's alerts for an hour.
    Silence,
    /// Pause reminders and escalation for 30 minutes.
    Snooze30m,
    /// Pause reminders and escalation for 2 hours.
    Snooze2h,
}

impl ButtonAction {
    const ALL: [Self; 15] = [
        Self::Ack,
        Self::Resolve,
        Self::Triage,
        Self::Playbooks,
        Self::DryRun,
        Self::Approve,
        Self::Reject,
        Self::Execute,
        Self::Rollback,
        Self::Helpful,
        Self::NotHelpful,
        Self::Ticket,
        Self::Silence,
        Self::Snooze30m,
        Self::Snooze2h,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ack => "ack",
            Self::Resolve => "resolve",
            Self::Triage => "triage",
            Self::Playbooks => "playbooks",
            Self::DryRun => "dry",
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Execute => "run",
            Self::Rollback => "rollback",
            Self::Helpful => "up",
            Self::NotHelpful => "down",
            Self::Ticket => "ticket",
            Self::Silence => "silence",
            Self::Snooze30m => "snooze30m",
            Self::Snooze2h => "snooze2h",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Ack => "Acknowledge",
            Self::Resolve => "Resolve",
            Self::Triage => "Triage",
            Self::Playbooks => "Playbooks",
            Self::DryRun => "Dry-run",
            Self::Approve => "Approve",
            Self::Reject => "Reject",
            Self::Execute => "Run",
            Self::Rollback => "Roll back",
            Self::Helpful => "👍 Helpful",
            Self::NotHelpful => "👎 Not helpful",
            Self::Ticket => "Open ticket",
            Self::Silence => "Silence 1h",
            Self::Snooze30m => "Snooze 30m",
            Self::Snooze2h => "Snooze 2h",
        }
    }

    /// True for the buttons of an incident's card (their target is the
    /// incident).
    pub fn is_incident_action(self) -> bool {
        matches!(
            self,
            Self::Ack
                | Self::Resolve
                | Self::Triage
                | Self::Playbooks
                | Self::Ticket
                | Self::Silence
                | Self::Snooze30m
                | Self::Snooze2h
        )
    }
}

/// A button on a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub action: ButtonAction,
    pub label: String,
    /// The opaque payload the platform sends back when it is clicked.
    pub payload: String,
}

impl Button {
    pub fn new(action: ButtonAction, incident: &IncidentId) -> Self {
        Self::to(action, action.label(), incident.as_str())
    }

    /// A button acting on `target` (a run id, `<incident>.<n>`).
    pub fn to(action: ButtonAction, label: &str, target: &str) -> Self {
        Self {
            action,
            label: label.to_owned(),
            payload: format!("fw1:{}:{}", action.as_str(), target),
        }
    }

    /// Reads a payload back: the action and its target.
    pub fn parse(payload: &str) -> Option<(ButtonAction, &str)> {
        let rest = payload.strip_prefix("fw1:")?;
        let (action, target) = rest.split_once(':')?;
        let ok = !target.is_empty()
            && target.len() <= 48
            && target
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
        ok.then_some((ButtonAction::parse(action)?, target))
    }

    /// Reads the payload of a card button back: the action and the incident.
    pub fn parse_payload(payload: &str) -> Option<(ButtonAction, IncidentId)> {
        let (action, target) = Self::parse(payload)?;
        if !action.is_incident_action() {
            return None;
        }
        Some((action, IncidentId::parse(target).ok()?))
    }
}

/// A message with buttons: a command's answer, or a playbook run's own
/// message in a thread (edited as the run moves on).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
}

impl ChatMessage {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            buttons: Vec::new(),
        }
    }
}

/// The root message of an incident's thread, edited in place as it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    pub incident_id: IncidentId,
    pub title: String,
    pub severity: Severity,
    pub state: IncidentState,
    pub source: SourceKind,
    /// The labels worth showing, in order.
    pub key_labels: Vec<(String, String)>,
    /// What the opening alert says beyond its title: its `description`,
    /// `reason` and `error` annotations, one to a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub links: Vec<Link>,
    pub occurrences: u64,
    pub opened_at: DateTime<Utc>,
    pub buttons: Vec<Button>,
    /// Short lines about the incident's state worth seeing on the card
    /// ("Snoozed until 10:30 UTC").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

/// The platform's ids of a posted root message, kept with the incident so
/// that replies and edits find their thread after restarts and retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRef {
    pub destination: Destination,
    /// Slack `ts`, Discord message id, Telegram message id.
    pub root_id: String,
    /// Discord: the thread channel started from the root message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_payloads_are_short_round_trip_and_hold_no_secret() {
        let id = IncidentId::parse("inc_01JD3Z8X9Q6W2T4V5R7S8P0M1N").unwrap();
        for a in [
            ButtonAction::Ack,
            ButtonAction::Resolve,
            ButtonAction::Triage,
            ButtonAction::Playbooks,
        ] {
            let b = Button::new(a, &id);
            assert!(b.payload.len() <= 64, "{} bytes", b.payload.len());
            assert_eq!(Button::parse_payload(&b.payload), Some((a, id.clone())));
        }
        assert_eq!(Button::parse_payload("fw1:delete:inc_x"), None);
        assert_eq!(Button::parse_payload("other"), None);
        // Run buttons carry a run id, never mistaken for a card button.
        let run = "run_01JD3Z8X9Q6W2T4V5R7S8P0M1N";
        for a in [
            ButtonAction::Approve,
            ButtonAction::Reject,
            ButtonAction::Execute,
            ButtonAction::Rollback,
        ] {
            let b = Button::to(a, a.label(), run);
            assert!(b.payload.len() <= 64, "{}", b.payload);
            assert_eq!(Button::parse(&b.payload), Some((a, run)));
            assert_eq!(Button::parse_payload(&b.payload), None);
        }
        let choice = Button::to(ButtonAction::DryRun, "restart-service", &format!("{id}.12"));
        assert!(choice.payload.len() <= 64);
        assert_eq!(Button::parse("fw1:run:run_1;rm -rf"), None);
    }

    #[test]
    fn destinations_have_distinct_keys() {
        let a = Destination::Telegram {
            chat_id: "-100".into(),
            topic_id: None,
        };
        let b = Destination::Telegram {
            chat_id: "-100".into(),
            topic_id: Some("7".into()),
        };
        assert_ne!(a.key(), b.key());
        assert_eq!(
            Destination::Slack {
                channel: "C1".into()
            }
            .key(),
            "slack:C1"
        );
    }
}
