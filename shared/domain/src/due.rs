//! The due index the scheduled jobs work through: one global partition
//! per job whose sort keys start with the due time, so a job reads only
//! what is due, oldest first, and stops when its time budget runs out;
//! what is left stays due for the next tick (the index is the cursor). Each
//! item is re-decided under its version condition, and each scheduled
//! invocation claims a tick key (job and minute) first, so a retried or
//! duplicated invocation raises nothing twice.

use std::future::Future;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use firewatch_types::TenantId;
use serde::{Deserialize, Serialize};

use crate::ports::{Condition, Query};
use crate::{keys, DomainError, Services};

/// How long a job may keep taking items.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    until: Instant,
}

impl Budget {
    pub fn new(limit: std::time::Duration) -> Self {
        Self {
            until: Instant::now() + limit,
        }
    }

    pub fn exhausted(&self) -> bool {
        Instant::now() >= self.until
    }
}

/// What a job did, returned as the invocation's result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JobReport {
    /// Due items looked at.
    pub checked: usize,
    /// Alert events (raise or resolve) ingested.
    pub alerts: usize,
    /// Items that failed; they stay due for the next tick.
    pub failed: usize,
    /// True when the budget ran out with due items left.
    pub more: bool,
    /// True when this tick had already been run (a retried invocation).
    pub already_run: bool,
}

/// An entry of a due index: which item to look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueRef {
    pub tenant: TenantId,
    pub id: String,
}

/// The sort key of a due entry: the due time first, so the index is read
/// in time order.
pub fn due_sk(at: DateTime<Utc>, tenant: &TenantId, id: &str) -> String {
    format!("{:012}#{tenant}#{id}", at.timestamp().max(0))
}

fn due_time(sk: &str) -> Option<i64> {
    sk.split('#').next()?.parse().ok()
}

/// Claims the tick of `job` for the minute of `at`: `true` the first time,
/// `false` for a retried or duplicated invocation of the same tick.
pub async fn claim_tick(svc: &Services, job: &str, at: DateTime<Utc>) -> Result<bool, DomainError> {
    let minute = at.format("%Y-%m-%dT%H:%M").to_string();
    let mut item = keys::item(
        keys::TICKS_PK.into(),
        format!("{job}#{minute}"),
        1,
        &serde_json::json!({"claimed_at": svc.clock.now()}),
    )?;
    item.expires_at = Some((at + Duration::days(2)).timestamp());
    match crate::work::put(svc, item, Condition::Absent).await {
        Ok(()) => Ok(true),
        Err(e) if e.is_lost_race() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The writes that move an item's entry in `job`'s due index from
/// `before` to `at` (none when unchanged); returns the new sort key.
pub fn move_due(
    job: &str,
    tenant: &TenantId,
    id: &str,
    before: Option<&str>,
    at: Option<DateTime<Utc>>,
    work: &mut crate::work::Work<'_>,
) -> Result<Option<String>, DomainError> {
    let after = at.map(|t| due_sk(t, tenant, id));
    if before != after.as_deref() {
        if let Some(old) = before {
            work.delete(keys::due_pk(job), old, Condition::Always);
        }
        if let Some(new) = &after {
            let due = DueRef {
                tenant: tenant.clone(),
                id: id.to_owned(),
            };
            work.put(
                keys::item(keys::due_pk(job), new.clone(), 1, &due)?,
                Condition::Always,
            );
        }
    }
    Ok(after)
}

/// One page of a partition, decoded.
pub async fn page_of<T: serde::de::DeserializeOwned>(
    svc: &Services,
    pk: String,
    sk_prefix: &str,
    after: Option<String>,
    limit: usize,
    descending: bool,
) -> Result<(Vec<T>, Option<String>), DomainError> {
    let page = svc
        .store
        .query(Query {
            pk,
            sk_prefix: sk_prefix.into(),
            after,
            limit,
            descending,
        })
        .await?;
    let items = page
        .items
        .iter()
        .map(keys::decode)
        .collect::<Result<_, _>>()?;
    Ok((items, page.next))
}

pub async fn drop_due(svc: &Services, job: &str, sk: &str) -> Result<(), DomainError> {
    crate::work::delete(svc, &keys::due_pk(job), sk, Condition::Always)
        .await
        .map_err(Into::into)
}

/// The record a due entry points to, when the entry is still the record's
/// current one (`due_sk_of` gives the sort key the record last scheduled).
/// Otherwise the entry was left behind (the record is gone, or a later write
/// moved it), so it is dropped and the answer is `None`.
pub async fn current<T>(
    svc: &Services,
    job: &str,
    sk: &str,
    record: Option<T>,
    due_sk_of: impl FnOnce(&T) -> Option<&str>,
) -> Result<Option<T>, DomainError> {
    match record {
        Some(r) if due_sk_of(&r) == Some(sk) => Ok(Some(r)),
        _ => {
            drop_due(svc, job, sk).await?;
            Ok(None)
        }
    }
}

/// Runs `check` over the due entries of `job`'s index, oldest first, while
/// the budget lasts. A failing entry is counted and skipped (it stays due).
pub async fn run_due_index<F, Fut>(
    svc: &Services,
    job: &str,
    budget: &Budget,
    check: F,
) -> Result<JobReport, DomainError>
where
    F: Fn(DueRef, String) -> Fut,
    Fut: Future<Output = Result<bool, DomainError>>,
{
    let mut report = JobReport::default();
    let now = svc.clock.now().timestamp();
    let mut after = None;
    loop {
        let page = svc
            .store
            .query(Query {
                pk: keys::due_pk(job),
                sk_prefix: String::new(),
                after: after.clone(),
                limit: 50,
                descending: false,
            })
            .await?;
        for item in &page.items {
            if due_time(&item.sk).is_none_or(|t| t > now) {
                return Ok(report);
            }
            if budget.exhausted() {
                report.more = true;
                return Ok(report);
            }
            after = Some(item.sk.clone());
            report.checked += 1;
            let due: DueRef = match keys::decode(item) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(job, error = %e, "due entry does not decode; dropped");
                    drop_due(svc, job, &item.sk).await?;
                    continue;
                }
            };
            match check(due, item.sk.clone()).await {
                Ok(true) => report.alerts += 1,
                Ok(false) => {}
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(job, error = %e, "due check failed; it stays due");
                }
            }
        }
        if page.next.is_none() {
            return Ok(report);
        }
    }
}
