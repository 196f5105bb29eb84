//! The dispatcher: turns outbox records into chat threads.
//!
//! For each record and each destination of its incident, the effect is keyed
//! (`{record id}#{destination}`) and remembered once done, so delivering the
//! same record twice (a stream redelivery, a retry after a crash) has one
//! effect. The first effect for an incident at a destination posts the root
//! card and stores the platform's ids with the incident; every later one is a
//! reply in that thread plus an edit of the root card to the current state.
//!
//! One policy decides every delivery ([`decide`]: done, retry at a time, or
//! dead after [`MAX_ATTEMPTS`]), whoever performs it. The outbox item is the
//! pending delivery and carries its own attempt count and next time; it is
//! deleted once delivered, rewritten in place to wait for a retry, and moved
//! to the dead letters (visible in the API) when the policy gives up, so a
//! record is never dropped. Locally, [`drain`] runs the whole outbox in a
//! loop. On AWS the table's stream hands each new record to [`process_new`],
//! and the scheduler's `retries` job runs [`sweep`] every minute for the
//! records waiting for a retry and any the stream did not finish (those
//! older than a grace period, so it does not race the stream). See
//! docs/CHAT.md, "Delivery".

use chrono::{DateTime, Duration, Utc};
use firewatch_types::IncidentId;
use serde::{Deserialize, Serialize};

use crate::outbox::OutboxRecord;
use crate::ports::{Condition, Query};
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// Attempts before a record becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 6;

use crate::keys::dead_letters_pk as dead_pk;
pub use crate::outbox::DeliveryError;
pub use audits::{file_audit, file_audits};
pub use deliver::{deliver, thread};

pub mod audits;
pub mod deliver;

/// A record that could not be delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    /// The record; `null` for a stored item that could not be read (kept in
    /// `raw` for inspection; it cannot be retried).
    pub record: Option<OutboxRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    pub attempts: u32,
    pub last_error: String,
    pub failed_at: DateTime<Utc>,
}

/// Exponential backoff: 1 s, 2 s, 4 s ... capped at 5 minutes.
pub fn backoff(attempt: u32) -> Duration {
    Duration::seconds((1i64 << attempt.min(9)).min(300))
}

/// What the policy decides after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// Give up: the record becomes a dead letter, visible in the API.
    Dead,
}

/// The one delivery policy, for the local loop and the AWS stream handler
/// alike: a failure that can never succeed, or the [`MAX_ATTEMPTS`]th
/// failure, is dead; any other waits for the backoff of its attempt or the
/// platform's `Retry-After`, whichever is longer.
pub fn decide(attempts_before: u32, error: &DeliveryError, now: DateTime<Utc>) -> Decision {
    let count = attempts_before + 1;
    if !error.retryable || count >= MAX_ATTEMPTS {
        return Decision::Dead;
    }
    let wait = error
        .retry_after
        .and_then(|d| Duration::from_std(d).ok())
        .map_or(backoff(count - 1), |ra| ra.max(backoff(count - 1)));
    Decision::RetryAt(now + wait)
}

/// What happened to one outbox record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// Every effect was performed; the record left the outbox.
    Delivered,
    /// It failed and waits for its retry in the outbox.
    Retrying,
    /// It waits behind an earlier record of its incident.
    Waiting,
    /// It was dead-lettered.
    Dead,
    /// Nothing to do: already delivered, or in someone else's hands.
    Skipped,
}

/// Takes one outbox record through the policy: delivers it, then deletes it,
/// schedules its retry in place, or moves it to the dead letters, each
/// conditional on the version read so two dispatchers cannot both decide.
async fn process_item(
    svc: &Services,
    item: &crate::ports::Item,
    mut record: OutboxRecord,
) -> Result<Processed, DomainError> {
    let result = deliver(svc, &record).await;
    let now = svc.clock.now();
    let outcome = match result {
        Ok(()) => crate::work::delete(svc, &item.pk, &item.sk, Condition::Version(item.version))
            .await
            .map(|()| Processed::Delivered),
        Err(e) => match decide(record.attempts, &e, now) {
            Decision::RetryAt(at) => {
                record.attempts += 1;
                record.next_at = Some(at);
                record.last_error = Some(e.message.clone());
                tracing::info!(record = %record.id, attempt = record.attempts, error = %e.message, "delivery will be retried");
                let mut next =
                    keys::item(item.pk.clone(), item.sk.clone(), item.version + 1, &record)?;
                next.expires_at = item.expires_at;
                next.kind = item.kind;
                crate::work::put(svc, next, Condition::Version(item.version))
                    .await
                    .map(|()| Processed::Retrying)
            }
            Decision::Dead => {
                let attempts = record.attempts + 1;
                tracing::warn!(record = %record.id, incident = %record.entry.incident_id, error = %e.message, "dead-lettered");
                bury(
                    svc,
                    item,
                    dead_letter_item(svc, &record, attempts, &e.message)?,
                )
                .await
                .map(|()| Processed::Dead)
            }
        },
    };
    match outcome {
        // Another dispatcher decided first; its decision stands.
        Err(e) if e.is_lost_race() => Ok(Processed::Skipped),
        other => Ok(other?),
    }
}

/// Parks a record behind an earlier one of its incident until `until`,
/// without counting an attempt, so a thread never shows changes out of order.
async fn park(
    svc: &Services,
    item: &crate::ports::Item,
    mut record: OutboxRecord,
    until: DateTime<Utc>,
) -> Result<Processed, DomainError> {
    record.next_at = Some(until);
    let mut next = keys::item(item.pk.clone(), item.sk.clone(), item.version + 1, &record)?;
    next.expires_at = item.expires_at;
    next.kind = item.kind;
    match crate::work::put(svc, next, Condition::Version(item.version)).await {
        Ok(()) => Ok(Processed::Waiting),
        Err(e) if e.is_lost_race() => Ok(Processed::Skipped),
        Err(e) => Err(e.into()),
    }
}

/// When an earlier outbox record of the same incident is still waiting,
/// the time the record at `id` should wait until.
async fn earlier_waiting(
    svc: &Services,
    record: &OutboxRecord,
) -> Result<Option<DateTime<Utc>>, DomainError> {
    let page = svc
        .store
        .query(Query::all(keys::outbox_pk(&record.tenant), 100))
        .await?;
    let mut until = None;
    for item in page.items.iter().take_while(|i| i.sk < record.id) {
        // One that cannot be read holds up nothing: the sweep dead-letters it.
        let Ok(earlier) = keys::decode::<OutboxRecord>(item) else {
            continue;
        };
        // A record with no chat (a wait step's next poll) holds up nothing.
        if earlier.chat && earlier.entry.incident_id == record.entry.incident_id {
            let at = earlier.next_at.unwrap_or_else(|| svc.clock.now());
            until = Some(until.map_or(at, |u: DateTime<Utc>| u.max(at)));
        }
    }
    Ok(until)
}

/// Handles a record the moment it was enqueued (the AWS stream's path): it is
/// re-read, so a redelivered stream record, or one already taken by the
/// retry sweep, does nothing; it waits behind an earlier record of its
/// incident; otherwise it goes through [`decide`] like every delivery.
pub async fn process_new(
    svc: &Services,
    tenant: &firewatch_types::TenantId,
    id: &str,
) -> Result<Processed, DomainError> {
    crate::recording::scope("job:stream", process_new_scoped(svc, tenant, id)).await
}

async fn process_new_scoped(
    svc: &Services,
    tenant: &firewatch_types::TenantId,
    id: &str,
) -> Result<Processed, DomainError> {
    let Some(item) = svc.store.get(&keys::outbox_pk(tenant), id).await? else {
        return Ok(Processed::Skipped);
    };
    let record: OutboxRecord = keys::decode(&item)?;
    if record.attempts > 0 || record.next_at.is_some() {
        // Already under the policy: the retry sweep owns it.
        return Ok(Processed::Skipped);
    }
    if let Some(until) = earlier_waiting(svc, &record).await? {
        return park(svc, &item, record, until).await;
    }
    process_item(svc, &item, record).await
}

/// What one [`drain`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
}

/// Delivers every due outbox record of every tenant once, in order per
/// incident; the local dispatcher loop calls it repeatedly.
pub async fn drain(svc: &Services) -> Result<Drained, DomainError> {
    crate::recording::scope("job:stream", drain_scoped(svc)).await
}

async fn drain_scoped(svc: &Services) -> Result<Drained, DomainError> {
    sweep(svc, Duration::zero()).await
}

/// [`drain`], leaving records younger than `fresh_grace` that were never
/// attempted: on AWS the scheduler's `retries` job runs this every minute,
/// and such records are the stream handler's.
pub async fn sweep(svc: &Services, fresh_grace: Duration) -> Result<Drained, DomainError> {
    crate::recording::scope("job:retries", sweep_scoped(svc, fresh_grace)).await
}

async fn sweep_scoped(svc: &Services, fresh_grace: Duration) -> Result<Drained, DomainError> {
    let mut out = Drained::default();
    let mut queues = Vec::new();
    for tenant in crate::auth::known_tenants(svc).await? {
        let page = svc
            .store
            .query(Query::all(keys::outbox_pk(&tenant), SWEEP_PAGE))
            .await?;
        let mut records = Vec::with_capacity(page.items.len());
        for item in page.items {
            match keys::decode::<OutboxRecord>(&item) {
                Ok(record) => records.push((item, record)),
                // One record nobody can read stops no other delivery.
                Err(_) => {
                    if dead_letter_undecodable(svc, &tenant, &item).await? {
                        out.dead += 1;
                    }
                }
            }
        }
        if !records.is_empty() {
            queues.push(fair_order(records));
        }
    }
    // Round robin across tenants: one record of each in turn.
    let mut blocked = std::collections::HashSet::new();
    let mut queues: Vec<std::collections::VecDeque<_>> =
        queues.into_iter().map(Into::into).collect();
    while queues.iter().any(|q| !q.is_empty()) {
        for q in queues.iter_mut() {
            let Some((item, record)) = q.pop_front() else {
                continue;
            };
            // Keep each incident's thread in order: nothing after a record
            // that is waiting.
            if blocked.contains(&record.entry.incident_id) {
                continue;
            }
            let now = svc.clock.now();
            let fresh = record.attempts == 0
                && record.next_at.is_none()
                && record.created_at > now - fresh_grace;
            if fresh || record.next_at.is_some_and(|at| at > now) {
                if record.chat {
                    blocked.insert(record.entry.incident_id.clone());
                }
                continue;
            }
            let incident = record.entry.incident_id.clone();
            match process_item(svc, &item, record).await? {
                Processed::Delivered => out.delivered += 1,
                Processed::Dead => out.dead += 1,
                Processed::Retrying => {
                    out.retrying += 1;
                    blocked.insert(incident);
                }
                Processed::Waiting | Processed::Skipped => {
                    blocked.insert(incident);
                }
            }
        }
    }
    Ok(out)
}

/// Outbox records read per tenant per sweep.
const SWEEP_PAGE: usize = 100;

/// A tenant's due records in a fair order: round robin across incidents
/// (each incident's records keep their order), so one busy incident does
/// not hold up another's first card.
fn fair_order<T>(records: Vec<(T, OutboxRecord)>) -> Vec<(T, OutboxRecord)> {
    let mut lanes: Vec<(IncidentId, std::collections::VecDeque<(T, OutboxRecord)>)> = Vec::new();
    for (item, record) in records {
        let id = record.entry.incident_id.clone();
        match lanes.iter_mut().find(|(i, _)| *i == id) {
            Some((_, lane)) => lane.push_back((item, record)),
            None => lanes.push((id, [(item, record)].into())),
        }
    }
    let mut out = Vec::new();
    while lanes.iter().any(|(_, l)| !l.is_empty()) {
        for (_, lane) in lanes.iter_mut() {
            if let Some(x) = lane.pop_front() {
                out.push(x);
            }
        }
    }
    out
}

/// Stores a record that could not be delivered as a dead letter.
pub async fn dead_letter(
    svc: &Services,
    record: &OutboxRecord,
    attempts: u32,
    error: &str,
) -> Result<(), DomainError> {
    crate::work::put(
        svc,
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
        record: Some(record.clone()),
        raw: None,
        attempts,
        last_error: error.to_owned(),
        failed_at: svc.clock.now(),
    };
    keys::item(dead_pk(&record.tenant), dl.id.clone(), 1, &dl)
}

/// Moves an outbox item that does not decode to the dead letters, as it was
/// stored, so the sweep goes on for every other record and tenant; `false`
/// when another dispatcher moved it first.
async fn dead_letter_undecodable(
    svc: &Services,
    tenant: &firewatch_types::TenantId,
    item: &crate::ports::Item,
) -> Result<bool, DomainError> {
    // The decoding error may quote the stored value: it is not logged.
    tracing::error!(tenant = %tenant, record = %item.sk, "undecodable outbox record dead-lettered");
    let dl = DeadLetter {
        id: item.sk.clone(),
        record: None,
        raw: Some(item.data.clone()),
        attempts: 0,
        last_error: "the stored record could not be read".into(),
        failed_at: svc.clock.now(),
    };
    match bury(
        svc,
        item,
        keys::item(dead_pk(tenant), dl.id.clone(), 1, &dl)?,
    )
    .await
    {
        Ok(()) => Ok(true),
        Err(e) if e.is_lost_race() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Takes outbox item `item` out, unless it changed since it was read, and
/// keeps `dead` (its dead letter) in its place, in one unit.
async fn bury(
    svc: &Services,
    item: &crate::ports::Item,
    dead: crate::ports::Item,
) -> Result<(), crate::work::CommitError> {
    let mut work = Work::new(svc);
    work.delete(
        item.pk.clone(),
        item.sk.clone(),
        Condition::Version(item.version),
    );
    work.put(dead, Condition::Always);
    work.commit().await
}

/// Dead letters of a tenant, oldest first.
pub async fn dead_letters(
    svc: &Services,
    tenant: &firewatch_types::TenantId,
) -> Result<Vec<DeadLetter>, DomainError> {
    let page = svc.store.query(Query::all(dead_pk(tenant), 1000)).await?;
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
    let Some(original) = &dl.record else {
        return Err(DomainError::conflict(
            "undecodable_dead_letter",
            "this dead letter could not be read when it was stored, so it cannot be retried",
        ));
    };
    // A fresh outbox item (an INSERT on the table's stream) with the
    // original id, so the effect keys stay: what was done stays done.
    let mut record = original.clone();
    record.attempts = 0;
    record.next_at = None;
    record.last_error = None;
    let mut work = Work::new(svc);
    // An outbox item left from before dead letters deleted it is replaced;
    // the retry sweep takes it even where no stream sees it.
    let mut outbox_item = crate::outbox::item(&record)?;
    outbox_item.expires_at =
        Some(svc.clock.now().timestamp() + crate::outbox::OUTBOX_TTL_DAYS * 86_400);
    work.put(outbox_item, Condition::Always);
    work.delete(dead_pk(tenant), id, Condition::Version(item.version));
    work.audit(
        tenant,
        &principal.name,
        "dispatch.retry_dead_letter",
        id,
        serde_json::json!({"attempts": dl.attempts, "last_error": dl.last_error}),
        serde_json::json!({"requeued": true}),
    )?;
    work.commit().await?;
    svc.outbox_signal.notify_one();
    Ok(dl)
}
