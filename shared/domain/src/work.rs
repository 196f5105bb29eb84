//! The unit of work: the writes of one change, built here and nowhere else.
//!
//! A [`Work`] gathers what one change writes — records saved over the
//! version they were read at, records removed, audit events, outbox records
//! — and [`Work::commit`] writes it after enforcing the size budgets
//! ([`MAX_WRITES`], [`ITEM_BUDGET`]): a lone write as itself, more as one
//! store transaction. A lost race (a condition
//! that no longer holds) comes back as the one error for it,
//! [`CommitError::is_lost_race`], which [`crate::retry`] turns into another
//! attempt.
//!
//! A stored record implements [`Record`]: it knows its kind, its partition
//! (from [`crate::keys`]) and its key; its version is the item's (its data
//! may carry a copy, which is not read). [`Work::save`] bumps the version
//! once, conditional on the version read; [`decode`] puts the stored
//! version back on the record.
//! Incident changes are described with [`crate::change::Change`], which
//! builds on this. Versioned, audited configuration records share one
//! create/update/delete path in [`crate::config`].

use firewatch_types::{AuditEvent, TenantId};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::outbox::OutboxRecord;
use crate::ports::{Condition, Item, StoreError, WriteOp};
use crate::{keys, DomainError, Services};

/// Writes in one transaction (DynamoDB's limit).
pub const MAX_WRITES: usize = 100;
/// Largest item a unit of work writes: DynamoDB stops at 400 KB including
/// attribute names, so this leaves room for the envelope of the item.
pub const ITEM_BUDGET: usize = 350 * 1024;

/// A record kept in the store under its own key, with its version.
pub trait Record: Serialize + DeserializeOwned {
    /// The record's kind as audit targets name it (`oncall-schedule/{key}`).
    const KIND: &'static str;
    /// The partition that holds a tenant's records of this kind.
    fn partition(tenant: &TenantId) -> String;
    /// Its sort key within the partition.
    fn key(&self) -> &str;
    /// The version it was read at (0: not stored yet).
    fn version(&self) -> u64;
    fn set_version(&mut self, version: u64);

    /// When the store may drop it (seconds since the epoch), if ever.
    fn expires_at(&self) -> Option<i64> {
        None
    }

    /// What an audit event names it by.
    fn target(&self) -> String {
        format!("{}/{}", Self::KIND, self.key())
    }
}

/// Implements [`Record`] for a struct with an `id: String` key and a
/// `version: u64` field: `record!(Schedule, "oncall-schedule", schedules_pk)`;
/// `key: CONST` gives every record of the kind one constant key (a tenant's
/// current storm), `expires_at: FN` its time to live (a function of the
/// record).
macro_rules! record {
    ($ty:ty, $kind:literal, $partition:path $(, key: $key:expr)? $(, expires_at: $exp:expr)?) => {
        impl $crate::work::Record for $ty {
            const KIND: &'static str = $kind;
            fn partition(tenant: &firewatch_types::TenantId) -> String {
                $partition(tenant)
            }
            fn key(&self) -> &str {
                $crate::work::record!(@key self $(, $key)?)
            }
            fn version(&self) -> u64 {
                self.version
            }
            fn set_version(&mut self, version: u64) {
                self.version = version;
            }
            $(
                fn expires_at(&self) -> Option<i64> {
                    ($exp)(self)
                }
            )?
        }
    };
    (@key $record:ident) => {
        &$record.id
    };
    (@key $record:ident, $key:expr) => {
        $key
    };
}
pub(crate) use record;

/// A record from its item, with the item's version.
pub fn decode<R: Record>(item: &Item) -> Result<R, DomainError> {
    let mut r: R = keys::decode(item)?;
    r.set_version(item.version);
    Ok(r)
}

/// The record of kind `R` under `key`, with its version, when there is one.
pub async fn find<R: Record>(
    svc: &Services,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<R>, DomainError> {
    svc.store
        .get(&R::partition(tenant), key)
        .await?
        .map(|i| decode(&i))
        .transpose()
}

/// The writes of one change, committed together or not at all.
#[derive(Clone)]
pub struct Work<'a> {
    svc: &'a Services,
    ops: Vec<WriteOp>,
    wakes_dispatcher: bool,
}

impl<'a> Work<'a> {
    pub fn new(svc: &'a Services) -> Self {
        Self {
            svc,
            ops: Vec::new(),
            wakes_dispatcher: false,
        }
    }

    /// Stores `rec` in place of the version it was read at (created when that
    /// is 0), and sets its version to the one stored: bumped once, here.
    pub fn save<R: Record>(&mut self, tenant: &TenantId, rec: &mut R) -> Result<(), DomainError> {
        let read = rec.version();
        rec.set_version(read + 1);
        let mut item = keys::item(R::partition(tenant), rec.key().to_owned(), read + 1, rec)?;
        item.expires_at = rec.expires_at();
        self.put(
            item,
            match read {
                0 => Condition::Absent,
                v => Condition::Version(v),
            },
        );
        Ok(())
    }

    /// Removes `rec`, unless it changed since it was read.
    pub fn remove<R: Record>(&mut self, tenant: &TenantId, rec: &R) {
        self.delete(
            R::partition(tenant),
            rec.key(),
            Condition::Version(rec.version()),
        );
    }

    /// Puts an item whose record is not (yet) a [`Record`].
    pub fn put(&mut self, item: Item, condition: Condition) {
        self.ops.push(WriteOp::Put { item, condition });
    }

    /// Deletes an item.
    pub fn delete(&mut self, pk: impl Into<String>, sk: impl Into<String>, condition: Condition) {
        self.ops.push(WriteOp::Delete {
            pk: pk.into(),
            sk: sk.into(),
            condition,
        });
    }

    /// Writes nothing, but the unit fails unless `condition` holds.
    pub fn check(&mut self, pk: impl Into<String>, sk: impl Into<String>, condition: Condition) {
        self.ops.push(WriteOp::Check {
            pk: pk.into(),
            sk: sk.into(),
            condition,
        });
    }

    /// Records audit event `ev` with the change.
    pub fn audit_event(&mut self, ev: &AuditEvent) -> Result<(), DomainError> {
        self.ops.push(audit_op(self.svc, ev)?);
        Ok(())
    }

    /// Records an audit event with the change: `actor` did `action` to
    /// `target` (a new id, the clock's time).
    pub fn audit(
        &mut self,
        tenant: &TenantId,
        actor: &str,
        action: &str,
        target: &str,
        before: serde_json::Value,
        after: serde_json::Value,
    ) -> Result<(), DomainError> {
        let ev = event(self.svc, tenant, actor, action, target, before, after);
        self.audit_event(&ev)
    }

    /// Enqueues `record` for the dispatcher with the change; one due now wakes
    /// the local dispatcher after the commit.
    pub fn enqueue(&mut self, record: &OutboxRecord) -> Result<(), DomainError> {
        self.put(crate::outbox::item(record)?, Condition::Absent);
        self.wakes_dispatcher |= record.next_at.is_none();
        Ok(())
    }

    /// Adds writes built elsewhere in the domain (a `Change`'s, a hold).
    pub fn extend(&mut self, ops: impl IntoIterator<Item = WriteOp>) {
        self.ops.extend(ops);
    }

    /// Adds the writes of `other`, as if they had been made here.
    pub fn append(&mut self, other: Work<'_>) {
        self.ops.extend(other.ops);
        self.wakes_dispatcher |= other.wakes_dispatcher;
    }

    /// True when the unit writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The transaction, every budget enforced.
    pub fn into_ops(self) -> Result<Vec<WriteOp>, DomainError> {
        check_budgets(&self.ops)?;
        Ok(self.ops)
    }

    /// Commits the unit as one transaction (one write alone as itself).
    pub async fn commit(self) -> Result<(), CommitError> {
        let svc = self.svc;
        let wakes = self.wakes_dispatcher;
        let ops = self.into_ops().map_err(CommitError::Domain)?;
        // One write needs no transaction (which DynamoDB bills twice).
        let mut ops = ops;
        let done = match (ops.len(), ops.pop()) {
            (_, None) => return Ok(()),
            (1, Some(WriteOp::Put { item, condition })) => svc.store.put(item, condition).await,
            (1, Some(WriteOp::Delete { pk, sk, condition })) => {
                svc.store.delete(&pk, &sk, condition).await
            }
            (_, Some(last)) => {
                ops.push(last);
                svc.store.transact(ops).await
            }
        };
        done.map_err(CommitError::Store)?;
        if wakes {
            svc.outbox_signal.notify_one();
        }
        Ok(())
    }
}

/// A unit of work of one put.
pub async fn put(svc: &Services, item: Item, condition: Condition) -> Result<(), CommitError> {
    let mut work = Work::new(svc);
    work.put(item, condition);
    work.commit().await
}

/// Puts `item` unless an item is stored under its key already: `false`
/// when one was (the first writer's stands).
pub async fn put_first(svc: &Services, item: Item) -> Result<bool, DomainError> {
    match put(svc, item, Condition::Absent).await {
        Ok(()) => Ok(true),
        Err(e) if e.is_lost_race() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A unit of work of one delete.
pub async fn delete(
    svc: &Services,
    pk: &str,
    sk: &str,
    condition: Condition,
) -> Result<(), CommitError> {
    let mut work = Work::new(svc);
    work.delete(pk, sk, condition);
    work.commit().await
}

/// An audit event: `actor` did `action` to `target`, now (a new id).
pub fn event(
    svc: &Services,
    tenant: &TenantId,
    actor: &str,
    action: &str,
    target: &str,
    before: serde_json::Value,
    after: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        id: svc.ids.ulid(),
        tenant: tenant.clone(),
        at: svc.clock.now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        before,
        after,
        reason: None,
    }
}

/// The write of audit event `ev`, for the transaction of its change.
/// Append-only: an audit id is never written twice. A function that may not
/// write the audit log (`FIREWATCH_AUDIT_VIA_DISPATCHER`, the chat
/// functions on AWS) queues the event beside it instead, and the dispatcher
/// files it.
pub fn audit_op(svc: &Services, ev: &AuditEvent) -> Result<WriteOp, DomainError> {
    let (pk, kind) = if svc.settings.audit_via_dispatcher {
        (
            keys::audit_queue_pk(&ev.tenant),
            Some(crate::ports::ItemKind::QueuedAudit),
        )
    } else {
        (keys::audit_pk(&ev.tenant), None)
    };
    let mut item = keys::item(pk, ev.id.clone(), 1, ev)?;
    item.kind = kind;
    Ok(WriteOp::Put {
        item,
        condition: Condition::Absent,
    })
}

/// Why a commit failed: a lost race (re-read and re-decide) or anything else.
#[derive(Debug)]
pub enum CommitError {
    Store(StoreError),
    Domain(DomainError),
}

impl CommitError {
    /// True when another writer changed what this change read.
    pub fn is_lost_race(&self) -> bool {
        matches!(self, Self::Store(StoreError::ConditionFailed { .. }))
    }
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(e) => e.fmt(f),
            Self::Domain(e) => e.fmt(f),
        }
    }
}

impl From<CommitError> for DomainError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Store(s) => s.into(),
            CommitError::Domain(d) => d,
        }
    }
}

/// Refuses a transaction the store would refuse, before it is sent: it is a
/// bug in the change, never the sender's fault, and must not half-happen.
pub fn check_budgets(ops: &[WriteOp]) -> Result<(), DomainError> {
    if ops.len() > MAX_WRITES {
        return Err(DomainError::Internal(format!(
            "a change of {} writes exceeds the {MAX_WRITES}-write transaction limit",
            ops.len()
        )));
    }
    for op in ops {
        if let WriteOp::Put { item, .. } = op {
            check_item(item)?;
        }
    }
    Ok(())
}

/// Refuses an item over [`ITEM_BUDGET`] or with a sort key over 1 KB.
pub fn check_item(item: &Item) -> Result<(), DomainError> {
    let size = item.pk.len() + item.sk.len() + item.data.len();
    if size > ITEM_BUDGET || item.sk.len() > 1024 {
        return Err(DomainError::Internal(format!(
            "item {}/{}… of {size} bytes exceeds the item budget",
            item.pk,
            item.sk.chars().take(40).collect::<String>()
        )));
    }
    Ok(())
}
