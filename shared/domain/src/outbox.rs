//! The outbox: every incident change that people should see is written with
//! an outbox record in the same transaction, so a side effect (a chat post,
//! a ticket) can never be lost or happen without the change that caused it.
//! A dispatcher consumes the records (DynamoDB Streams in AWS, a loop locally).

use chrono::{DateTime, Utc};
use firewatch_types::{TenantId, TimelineEntry};
use serde::{Deserialize, Serialize};

use crate::keys;
use crate::ports::Item;
use crate::DomainError;

/// Days an undelivered outbox record is kept before it expires.
pub const OUTBOX_TTL_DAYS: i64 = 14;

/// One side effect to perform, keyed for idempotency by its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// A ULID; also the idempotency key of the effects it causes.
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub tenant: TenantId,
    /// The change itself; it names its incident. The dispatcher reads the
    /// incident's current state when it performs the effect, so a late
    /// effect never shows stale state.
    pub entry: TimelineEntry,
    /// Failed delivery attempts so far (the dispatch policy's count).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Not to be attempted before this time (a retry's backoff, or waiting
    /// behind an earlier record of the same incident).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// A side effect to perform before the entry goes to chat (a playbook
    /// step); the effect is idempotent by its own key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<Effect>,
    /// Whether the entry goes to chat. A record that only carries an effect
    /// (a wait step polling again) does not, and holds up no chat delivery
    /// of its incident while it waits.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub chat: bool,
}

/// A side effect other than chat that an outbox record carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Perform step `index` of a playbook run's steps (or its rollback).
    PlaybookStep {
        run_id: String,
        rollback: bool,
        index: usize,
    },
    /// Dry-run a run requested from chat (rendering and the read-only
    /// checks happen here, not in the chat request, which must answer
    /// within seconds).
    PlaybookDryRun { run_id: String },
    /// A triage asked for from chat (assisted triage may take longer than a
    /// click may wait): its report follows in the thread. Idempotent by the
    /// report id.
    Triage {
        report_id: String,
        /// `assisted` or `deterministic`.
        mode: String,
        /// Who asked, with the role their click was checked against.
        actor: String,
        role: firewatch_types::Role,
        /// The playbooks offered for the incident, which the model may name.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        playbooks: Vec<String>,
    },
    /// A tracker ticket asked for (by the API, a button, `/fw ticket`):
    /// created once per key, however often the effect runs.
    Ticket { key: String, actor: String },
    /// A page through the escalation policy's PagerDuty integration:
    /// `trigger`, `acknowledge` or `resolve` (PagerDuty's dedup key makes a
    /// repeat harmless).
    Page { policy: String, action: String },
    /// The incident's card and this entry posted at another destination
    /// (an escalation step's `notify`), once.
    Notify {
        destination: firewatch_types::Destination,
    },
    /// An alert storm ended: its card edited a last time and a reply in
    /// each of its threads.
    StormEnd { storm: String },
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl OutboxRecord {
    /// A record reporting `entry`, created when the entry was.
    pub fn new(id: String, tenant: TenantId, entry: TimelineEntry) -> Self {
        Self {
            id,
            created_at: entry.at,
            tenant,
            entry,
            attempts: 0,
            next_at: None,
            last_error: None,
            effect: None,
            chat: true,
        }
    }
}

/// The item of outbox record `record`; [`crate::work::Work::enqueue`] puts it
/// in the same transaction as the change it reports.
pub fn item(record: &OutboxRecord) -> Result<Item, DomainError> {
    let mut item: Item = keys::item(
        keys::outbox_pk(&record.tenant),
        record.id.clone(),
        1,
        record,
    )?;
    item.expires_at = Some(record.created_at.timestamp() + OUTBOX_TTL_DAYS * 86_400);
    item.kind = Some(crate::ports::ItemKind::Outbox);
    Ok(item)
}

/// Why a delivery did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub retryable: bool,
    /// The platform's `Retry-After`, when it sent one.
    pub retry_after: Option<std::time::Duration>,
    pub message: String,
}

impl From<crate::ports::ChatError> for DeliveryError {
    fn from(e: crate::ports::ChatError) -> Self {
        Self {
            retryable: e.is_retryable(),
            retry_after: match &e {
                crate::ports::ChatError::RateLimited { retry_after } => *retry_after,
                _ => None,
            },
            message: e.to_string(),
        }
    }
}

impl From<crate::DomainError> for DeliveryError {
    fn from(e: crate::DomainError) -> Self {
        Self {
            retryable: matches!(
                e,
                crate::DomainError::Unavailable(_) | crate::DomainError::Conflict { .. }
            ),
            retry_after: None,
            message: e.to_string(),
        }
    }
}

impl From<crate::ports::StoreError> for DeliveryError {
    fn from(e: crate::ports::StoreError) -> Self {
        crate::DomainError::from(e).into()
    }
}
