//! The dispatcher: turns outbox records into chat threads.
//!
//! For each record and each destination of its incident, the effect is keyed
//! (`{record id}#{destination}`) and remembered once done, so delivering the
//! same record twice (a stream redelivery, a retry after a crash) has one
//! effect. The first effect for an incident at a destination posts the root
//! card and stores the platform's ids with the incident; every later one is a
//! reply in that thread plus an edit of the root card to the current state.
//!
//! Locally, [`drain`] runs the outbox with exponential backoff (honouring the
//! platform's `Retry-After`) and moves a record to the dead letters after
//! [`MAX_ATTEMPTS`]. In AWS the table's stream feeds [`deliver`] directly.

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{Destination, Incident, ThreadRef, TimelineKind};
use serde::{Deserialize, Serialize};

use crate::chat::{card, reply_text, ChatError};
use crate::outbox::OutboxRecord;
use crate::ports::{Condition, Query, StoreError, WriteOp};
use crate::{incidents, keys, DomainError, Services};

/// Attempts before a record becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 6;

/// Days an effect is remembered as done.
const EFFECT_TTL_DAYS: i64 = 14;

/// Why a delivery did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub retryable: bool,
    /// The platform's `Retry-After`, when it sent one.
    pub retry_after: Option<std::time::Duration>,
    pub message: String,
}

impl From<ChatError> for DeliveryError {
    fn from(e: ChatError) -> Self {
        Self {
            retryable: e.is_retryable(),
            retry_after: match &e {
                ChatError::RateLimited { retry_after } => *retry_after,
                _ => None,
            },
            message: e.to_string(),
        }
    }
}

impl From<DomainError> for DeliveryError {
    fn from(e: DomainError) -> Self {
        Self {
            retryable: matches!(
                e,
                DomainError::Unavailable(_) | DomainError::Conflict { .. }
            ),
            retry_after: None,
            message: e.to_string(),
        }
    }
}

impl From<StoreError> for DeliveryError {
    fn from(e: StoreError) -> Self {
        DomainError::from(e).into()
    }
}

fn effects_pk(t: &firewatch_types::TenantId) -> String {
    format!("{t}#FX")
}

fn thread_sk(dest: &Destination) -> String {
    format!("CHAT#{}", dest.key())
}

/// The thread of an incident at a destination, if one was posted.
pub async fn thread(
    svc: &Services,
    inc: &Incident,
    dest: &Destination,
) -> Result<Option<ThreadRef>, DomainError> {
    match svc
        .store
        .get(&keys::incident_pk(&inc.tenant, &inc.id), &thread_sk(dest))
        .await?
    {
        Some(item) => Ok(Some(keys::decode(&item)?)),
        None => Ok(None),
    }
}

async fn done(svc: &Services, inc: &Incident, key: &str) -> Result<bool, DomainError> {
    Ok(svc
        .store
        .get(&effects_pk(&inc.tenant), key)
        .await?
        .is_some())
}

async fn mark_done(svc: &Services, inc: &Incident, key: &str) -> Result<(), DomainError> {
    let mut item = keys::item(effects_pk(&inc.tenant), key.to_owned(), 1, &svc.clock.now())?;
    item.expires_at = Some(svc.clock.now().timestamp() + EFFECT_TTL_DAYS * 86_400);
    match svc.store.put(item, Condition::Absent).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Performs the chat effects of one outbox record, each at most once.
pub async fn deliver(svc: &Services, record: &OutboxRecord) -> Result<(), DeliveryError> {
    let inc = match incidents::get(svc, &record.tenant, &record.entry.incident_id).await {
        Ok(inc) => inc,
        Err(DomainError::NotFound(m)) => {
            return Err(DeliveryError {
                retryable: false,
                retry_after: None,
                message: m,
            })
        }
        Err(e) => return Err(e.into()),
    };
    let card = card(&inc);
    for dest in crate::routes::destinations(svc, &inc).await? {
        let key = format!("{}#{}", record.id, dest.key());
        if done(svc, &inc, &key).await? {
            continue;
        }
        match thread(svc, &inc, &dest).await? {
            None => {
                let t = svc.chat.post_root(&dest, &card).await?;
                let item = keys::item(
                    keys::incident_pk(&inc.tenant, &inc.id),
                    thread_sk(&dest),
                    1,
                    &t,
                )?;
                match svc.store.put(item, Condition::Absent).await {
                    Ok(()) => {}
                    // Another dispatcher posted a root at the same moment;
                    // its thread is the one replies go to.
                    Err(StoreError::ConditionFailed { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                if !matches!(record.entry.kind, TimelineKind::Opened { .. }) {
                    // The root card shows the state; the change itself still
                    // belongs in the thread.
                    let t = thread(svc, &inc, &dest).await?.unwrap_or(t);
                    reply_once(svc, &inc, &t, &key, &reply_text(&record.entry)).await?;
                }
            }
            Some(t) => {
                reply_once(svc, &inc, &t, &key, &reply_text(&record.entry)).await?;
                // Editing to the current state is idempotent: safe to repeat.
                svc.chat.update_root(&t, &card).await?;
            }
        }
        mark_done(svc, &inc, &key).await?;
    }
    Ok(())
}

async fn reply_once(
    svc: &Services,
    inc: &Incident,
    t: &ThreadRef,
    key: &str,
    text: &str,
) -> Result<(), DeliveryError> {
    let reply_key = format!("{key}#reply");
    if !done(svc, inc, &reply_key).await? {
        svc.chat.reply(t, text).await?;
        mark_done(svc, inc, &reply_key).await?;
    }
    Ok(())
}

/// Delivery bookkeeping kept beside an outbox record while it is retried.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Attempts {
    count: u32,
    next_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

/// A record that could not be delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    pub record: OutboxRecord,
    pub attempts: u32,
    pub last_error: String,
    pub failed_at: DateTime<Utc>,
}

fn dead_pk(t: &firewatch_types::TenantId) -> String {
    format!("{t}#DLQ")
}

fn attempts_pk(t: &firewatch_types::TenantId) -> String {
    format!("{t}#OUTBOX-ATTEMPTS")
}

/// Exponential backoff: 1 s, 2 s, 4 s ... capped at 5 minutes.
pub fn backoff(attempt: u32) -> Duration {
    Duration::seconds((1i64 << attempt.min(9)).min(300))
}

/// The writes that take a record out of the outbox with its attempt count.
fn finished(
    outbox: &crate::ports::Item,
    tenant: &firewatch_types::TenantId,
    id: &str,
) -> Vec<WriteOp> {
    vec![
        WriteOp::Delete {
            pk: outbox.pk.clone(),
            sk: outbox.sk.clone(),
            condition: Condition::Always,
        },
        WriteOp::Delete {
            pk: attempts_pk(tenant),
            sk: id.to_owned(),
            condition: Condition::Always,
        },
    ]
}

/// What one [`drain`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
}

/// Delivers every due outbox record of every tenant once; the local
/// dispatcher loop calls it repeatedly.
pub async fn drain(svc: &Services) -> Result<Drained, DomainError> {
    let mut out = Drained::default();
    let tenants = svc
        .store
        .query(Query {
            pk: keys::TENANTS_PK.into(),
            sk_prefix: String::new(),
            after: None,
            limit: 1000,
            descending: false,
        })
        .await?;
    for t in tenants.items {
        let Ok(tenant) = firewatch_types::TenantId::parse(&t.sk) else {
            continue;
        };
        let page = svc
            .store
            .query(Query {
                pk: keys::outbox_pk(&tenant),
                sk_prefix: String::new(),
                after: None,
                limit: 100,
                descending: false,
            })
            .await?;
        let mut blocked = std::collections::HashSet::new();
        for item in page.items {
            let record: OutboxRecord = keys::decode(&item)?;
            // Keep each incident's thread in order: nothing after a record
            // that is waiting for a retry.
            if blocked.contains(&record.entry.incident_id) {
                continue;
            }
            let attempts: Attempts = match svc.store.get(&attempts_pk(&tenant), &record.id).await? {
                Some(a) => keys::decode(&a)?,
                None => Attempts::default(),
            };
            if attempts.next_at.is_some_and(|at| at > svc.clock.now()) {
                blocked.insert(record.entry.incident_id.clone());
                continue;
            }
            match deliver(svc, &record).await {
                Ok(()) => {
                    svc.store
                        .transact(finished(&item, &tenant, &record.id))
                        .await?;
                    out.delivered += 1;
                }
                Err(e) => {
                    let count = attempts.count + 1;
                    if !e.retryable || count >= MAX_ATTEMPTS {
                        let mut ops = finished(&item, &tenant, &record.id);
                        ops.push(WriteOp::Put {
                            item: dead_letter_item(svc, &record, count, &e.message)?,
                            condition: Condition::Always,
                        });
                        svc.store.transact(ops).await?;
                        tracing::warn!(record = %record.id, incident = %record.entry.incident_id, error = %e.message, "dead-lettered");
                        out.dead += 1;
                    } else {
                        let wait = e
                            .retry_after
                            .and_then(|d| Duration::from_std(d).ok())
                            .map_or(backoff(count - 1), |ra| ra.max(backoff(count - 1)));
                        let next = Attempts {
                            count,
                            next_at: Some(svc.clock.now() + wait),
                            last_error: Some(e.message.clone()),
                        };
                        svc.store
                            .put(
                                keys::item(attempts_pk(&tenant), record.id.clone(), 1, &next)?,
                                Condition::Always,
                            )
                            .await?;
                        tracing::info!(record = %record.id, attempt = count, error = %e.message, "delivery will be retried");
                        blocked.insert(record.entry.incident_id.clone());
                        out.retrying += 1;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Stores a record that could not be delivered as a dead letter.
pub async fn dead_letter(
    svc: &Services,
    record: &OutboxRecord,
    attempts: u32,
    error: &str,
) -> Result<(), DomainError> {
    svc.store
        .put(
            dead_letter_item(svc, record, attempts, error)?,
            Condition::Always,
        )
        .await?;
    Ok(())
}

fn dead_letter_item(
    svc: &Services,
    record: &OutboxRecord,
    attempts: u32,
    error: &str,
) -> Result<crate::ports::Item, DomainError> {
    let dl = DeadLetter {
        id: record.id.clone(),
        record: record.clone(),
        attempts,
        last_error: error.to_owned(),
        failed_at: svc.clock.now(),
    };
    keys::item(dead_pk(&record.tenant), dl.id.clone(), 1, &dl)
}

/// Dead letters of a tenant, oldest first.
pub async fn dead_letters(
    svc: &Services,
    tenant: &firewatch_types::TenantId,
) -> Result<Vec<DeadLetter>, DomainError> {
    let page = svc
        .store
        .query(Query {
            pk: dead_pk(tenant),
            sk_prefix: String::new(),
            after: None,
            limit: 1000,
            descending: false,
        })
        .await?;
    page.items.iter().map(keys::decode).collect()
}

/// Puts a dead letter back in the outbox with a fresh attempt count.
pub async fn retry_dead_letter(
    svc: &Services,
    principal: &firewatch_types::Principal,
    id: &str,
) -> Result<DeadLetter, DomainError> {
    crate::auth::require_role(
        principal,
        firewatch_types::Role::Responder,
        "retry a dead letter",
    )?;
    let tenant = &principal.tenant;
    let item = svc
        .store
        .get(&dead_pk(tenant), id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("no dead letter {id}")))?;
    let dl: DeadLetter = keys::decode(&item)?;
    let mut ops = vec![crate::outbox::enqueue_op(&dl.record)?];
    // The original id keeps the effect keys: what was done stays done.
    if let WriteOp::Put { item, condition } = &mut ops[0] {
        *condition = Condition::Always;
        item.expires_at =
            Some(svc.clock.now().timestamp() + crate::outbox::OUTBOX_TTL_DAYS * 86_400);
    }
    ops.push(WriteOp::Delete {
        pk: dead_pk(tenant),
        sk: id.to_owned(),
        condition: Condition::Version(item.version),
    });
    let audit = firewatch_types::AuditEvent {
        id: svc.ids.ulid(),
        tenant: tenant.clone(),
        at: svc.clock.now(),
        actor: principal.name.clone(),
        action: "dispatch.retry_dead_letter".into(),
        target: id.to_owned(),
        before: serde_json::json!({"attempts": dl.attempts, "last_error": dl.last_error}),
        after: serde_json::json!({"requeued": true}),
        reason: None,
    };
    ops.push(WriteOp::Put {
        item: keys::item(keys::audit_pk(tenant), audit.id.clone(), 1, &audit)?,
        condition: Condition::Absent,
    });
    crate::incidents::commit(svc, ops).await?;
    Ok(dl)
}
