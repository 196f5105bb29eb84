//! The end of a silence: expiring one now, the `silences` job that warns
//! before and handles each end, and the release of the alerts a silence
//! held through the incident flow. It sits above [`crate::ingest`] (which
//! consults silences) so that ingest never reaches back into it.

use firewatch_types::{AlertStatus, Principal, Role, TenantId};

use crate::auth::require_role;
use crate::due::{Budget, DueRef, JobReport};
use crate::ports::{Condition, Query};
use crate::silences::{
    commit_with_thread, get, held_pk, load, put_work, Cache, Held, State, View, JOB, WARN_BEFORE,
};
use crate::{keys, DomainError, Services};

/// When the alerts an expired silence held are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// At once, by the caller (the API).
    Now,
    /// By the `silences` job at its next tick: what the chat functions ask
    /// for, since releasing an alert keeps its raw event and they write
    /// none.
    ByTheJob,
}

/// Expires a silence now (responders): its held alerts still firing open
/// their incidents, at once or at the job's next tick (`release`).
/// Expiring an expired silence changes nothing.
pub async fn expire(
    svc: &Services,
    p: &Principal,
    id: &str,
    release: Release,
) -> Result<View, DomainError> {
    require_role(p, Role::Responder, "expire silences")?;
    let tenant = &p.tenant;
    crate::retry::until_won!(
        crate::retry::ATTEMPTS,
        || DomainError::Unavailable("the silence kept changing; retry".into()),
        async || -> Result<_, crate::retry::Retry> {
            let mut s = load(svc, tenant, id)
                .await?
                .ok_or_else(|| DomainError::NotFound(format!("no silence {id}")))?;
            let now = svc.clock.now();
            if s.state(now) != State::Expired {
                s.starts_at = s.starts_at.min(now);
                s.ends_at = now;
                s.updated_at = now;
                s.warned = true;
                let mut work = put_work(svc, &mut s, tenant)?;
                work.audit(
                    tenant,
                    &p.name,
                    "silence.expire",
                    &format!("silence/{id}"),
                    serde_json::Value::Null,
                    serde_json::json!({"ends_at": now}),
                )?;
                let done = work.commit().await;
                svc.memos.get::<Cache>().forget(tenant);
                done.map_err(crate::retry::Retry::from_commit)?;
            }
            // The end is handled now rather than at the next tick; the job
            // would do the same (and finds nothing left).
            if release == Release::Now {
                close(svc, tenant, id, &p.name).await?;
            }
            Ok(get(svc, p, id).await?)
        },
    )
    .await
}

/// The `silences` job: warns before and handles the end of each silence
/// that is due.
pub async fn run_due(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    crate::recording::scope("job:silences", run_due_scoped(svc, budget)).await
}

async fn run_due_scoped(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    crate::due::run_due_index(svc, JOB, budget, |due, sk| {
        let svc = svc.clone();
        async move { check_one(&svc, &due, &sk).await }
    })
    .await
}

async fn check_one(svc: &Services, due: &DueRef, sk: &str) -> Result<bool, DomainError> {
    let loaded = load(svc, &due.tenant, &due.id).await?;
    let Some(s) = crate::due::current(svc, JOB, sk, loaded, |s| s.due_sk.as_deref()).await? else {
        return Ok(false);
    };
    let now = svc.clock.now();
    if now >= s.ends_at {
        return close(svc, &due.tenant, &s.id, "firewatch").await;
    }
    if !s.warned && now >= s.ends_at - WARN_BEFORE {
        let mut s = s;
        s.warned = true;
        let work = put_work(svc, &mut s, &due.tenant)?;
        let said = s.incident.is_some();
        match commit_with_thread(svc, &due.tenant, &s, work, "firewatch", "expiring", None).await {
            Ok(()) => return Ok(said),
            Err(DomainError::Conflict { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Handles the end of silence `id`: each held alert still firing goes
/// through the incident flow (opening its incident, unless another silence
/// holds it), then the silence is closed with a message in its thread.
/// Idempotent: a release is a replay of a fixed body, so doing it twice
/// changes nothing twice. Returns whether anything was done.
pub async fn close(
    svc: &Services,
    tenant: &TenantId,
    id: &str,
    actor: &str,
) -> Result<bool, DomainError> {
    let Some(mut s) = load(svc, tenant, id).await? else {
        return Ok(false);
    };
    if s.closed || svc.clock.now() < s.ends_at {
        return Ok(false);
    }
    // Released alerts meet the silences as they are now.
    svc.memos.get::<Cache>().forget(tenant);
    let mut after = None;
    loop {
        let page = svc
            .store
            .query(Query {
                pk: held_pk(tenant),
                sk_prefix: format!("{id}#"),
                after,
                limit: 100,
                descending: false,
            })
            .await?;
        for item in &page.items {
            let mut h: Held = keys::decode(item)?;
            if h.released || h.alert.status != AlertStatus::Firing || h.incident.is_some() {
                continue;
            }
            crate::ingest::release(svc, tenant, &s.id, &h.alert).await?;
            h.released = true;
            let mut item = item.clone();
            item.data = serde_json::to_string(&h)?;
            crate::work::put(svc, item, Condition::Always).await?;
        }
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    s.closed = true;
    s.warned = true;
    let work = put_work(svc, &mut s, tenant)?;
    match commit_with_thread(svc, tenant, &s, work, actor, "expired", None).await {
        Ok(()) => Ok(true),
        // Closed meanwhile by another run.
        Err(DomainError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
