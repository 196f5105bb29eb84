//! The outbox: every incident change that people should see is written with
//! an outbox record in the same transaction, so a side effect (a chat post,
//! a ticket) can never be lost or happen without the change that caused it.
//! A dispatcher consumes the records (DynamoDB Streams in AWS, a loop locally).

use chrono::{DateTime, Utc};
use firewatch_types::{TenantId, TimelineEntry};
use serde::{Deserialize, Serialize};

use crate::keys;
use crate::ports::{Condition, Item, WriteOp};
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
        }
    }
}

/// The write that enqueues `record`; it goes into the same transaction as
/// the change it reports.
pub fn enqueue_op(record: &OutboxRecord) -> Result<WriteOp, DomainError> {
    let mut item: Item = keys::item(
        keys::outbox_pk(&record.tenant),
        record.id.clone(),
        1,
        record,
    )?;
    item.expires_at = Some(record.created_at.timestamp() + OUTBOX_TTL_DAYS * 86_400);
    Ok(WriteOp::Put {
        item,
        condition: Condition::Absent,
    })
}
