//! Versioned, audited configuration records — on-call schedules, escalation
//! policies, routing rules — created, replaced and deleted one way.
//!
//! Each write is one [`Work`]: the record saved over the version it was
//! read at (its version bumped once) with an audit event naming the actor,
//! in one transaction. A write that lost a race answers `409
//! version_conflict`; [`save`] returns the lost race itself for callers that
//! retry through [`crate::retry`].

use firewatch_types::{Principal, TenantId};

use crate::ports::Query;
use crate::work::{decode, CommitError, Record, Work};
use crate::{DomainError, Services};

/// A configuration record a tenant's admins manage.
pub trait Config: Record {
    /// What people call it in errors ("schedule").
    const NOUN: &'static str;
    /// What people call many of them ("on-call schedules").
    const PLURAL: &'static str;
    /// At most this many per tenant.
    const LIMIT: usize;
    /// The error code when a tenant has [`Self::LIMIT`] already.
    const TOO_MANY: &'static str;

    /// What the audit event of a write records besides the version.
    fn summary(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

/// Every record of kind `R` of a tenant, by key.
pub async fn all<R: Config>(svc: &Services, tenant: &TenantId) -> Result<Vec<R>, DomainError> {
    let page = svc
        .store
        .query(Query::all(R::partition(tenant), R::LIMIT))
        .await?;
    page.items.iter().map(decode).collect()
}

/// The record of kind `R` under `key`, when there is one.
pub async fn find<R: Config>(
    svc: &Services,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<R>, DomainError> {
    crate::work::find(svc, tenant, key).await
}

/// Creates `rec` or replaces the stored record under its key, whatever its
/// version: the create-or-replace of an admin's `PUT`. A tenant at
/// [`Config::LIMIT`] may replace but not create.
pub async fn put<R: Config>(svc: &Services, p: &Principal, mut rec: R) -> Result<R, DomainError> {
    let stored = svc.store.get(&R::partition(&p.tenant), rec.key()).await?;
    match &stored {
        Some(item) => rec.set_version(item.version),
        None => {
            rec.set_version(0);
            if all::<R>(svc, &p.tenant).await?.len() >= R::LIMIT {
                return Err(DomainError::conflict(
                    R::TOO_MANY,
                    format!("a tenant has at most {} {}", R::LIMIT, R::PLURAL),
                ));
            }
        }
    }
    let action = format!("{}.put", action_prefix::<R>());
    save(svc, p, &mut rec, &action)
        .await
        .map_err(conflict::<R>)?;
    Ok(rec)
}

/// Saves `rec` over the version it was read at, audited as `action`; a lost
/// race comes back as one ([`CommitError::is_lost_race`]).
pub async fn save<R: Config>(
    svc: &Services,
    p: &Principal,
    rec: &mut R,
    action: &str,
) -> Result<(), CommitError> {
    let mut work = Work::new(svc);
    work.save(&p.tenant, rec).map_err(CommitError::Domain)?;
    let mut after = rec.summary();
    after.insert("version".into(), rec.version().into());
    work.audit(
        &p.tenant,
        &p.name,
        action,
        &rec.target(),
        serde_json::Value::Null,
        serde_json::Value::Object(after),
    )
    .map_err(CommitError::Domain)?;
    work.commit().await
}

/// Deletes `rec`, unless it changed since it was read; audited.
pub async fn delete<R: Config>(svc: &Services, p: &Principal, rec: &R) -> Result<(), DomainError> {
    let mut work = Work::new(svc);
    work.remove(&p.tenant, rec);
    work.audit(
        &p.tenant,
        &p.name,
        &format!("{}.delete", action_prefix::<R>()),
        &rec.target(),
        serde_json::json!({"version": rec.version()}),
        serde_json::Value::Null,
    )?;
    work.commit().await.map_err(conflict::<R>)
}

/// The audit action's first word: the kind's first word (`oncall`,
/// `escalation`, `route`).
fn action_prefix<R: Config>() -> &'static str {
    R::KIND.split('-').next().unwrap_or(R::KIND)
}

fn conflict<R: Config>(e: CommitError) -> DomainError {
    if e.is_lost_race() {
        DomainError::conflict(
            "version_conflict",
            format!("the {} changed meanwhile; read it again", R::NOUN),
        )
    } else {
        e.into()
    }
}
