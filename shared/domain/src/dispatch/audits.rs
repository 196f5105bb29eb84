//! Filing the audit events other functions queued (`{t}#AUDITQ`) into
//! the audit log, once each.

use crate::ports::{Condition, Query};
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// Queued audit events filed per page.
const AUDIT_PAGE: usize = 100;

/// Files queued audit event `id` of `tenant` into the audit log (the
/// stream handler calls it for each new queued event): written only if
/// absent, and taken from the queue in the same transaction. `false` when
/// there was nothing to file.
pub async fn file_audit(
    svc: &Services,
    tenant: &firewatch_types::TenantId,
    id: &str,
) -> Result<bool, DomainError> {
    crate::recording::scope("job:stream", file_audit_scoped(svc, tenant, id)).await
}

async fn file_audit_scoped(
    svc: &Services,
    tenant: &firewatch_types::TenantId,
    id: &str,
) -> Result<bool, DomainError> {
    let queue = keys::audit_queue_pk(tenant);
    let Some(item) = svc.store.get(&queue, id).await? else {
        return Ok(false);
    };
    // Only an event of this tenant under its own id is filed; anything
    // else in the queue is left there and reported.
    match keys::decode::<firewatch_types::AuditEvent>(&item) {
        Ok(ev) if &ev.tenant == tenant && ev.id == id => {}
        _ => {
            tracing::error!(tenant = %tenant, event = %id, "a queued audit event is not this tenant's under its own id; not filed");
            return Ok(false);
        }
    }
    let mut filed = item.clone();
    filed.pk = keys::audit_pk(tenant);
    filed.version = 1;
    filed.expires_at = None;
    filed.kind = None;
    let mut work = Work::new(svc);
    work.put(filed, Condition::Absent);
    work.delete(queue.clone(), id, Condition::Version(item.version));
    match work.commit().await {
        Ok(()) => Ok(true),
        // Filed already (a redelivery, or another dispatcher): only the
        // queue's copy is left to take.
        Err(e) if e.is_lost_race() => {
            match crate::work::delete(svc, &queue, id, Condition::Version(item.version)).await {
                Ok(()) => Ok(false),
                Err(e) if e.is_lost_race() => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Files every queued audit event of every tenant: the retries sweep's
/// part, so none waits on a stream record that was lost.
pub async fn file_audits(svc: &Services) -> Result<usize, DomainError> {
    crate::recording::scope("job:retries", file_audits_scoped(svc)).await
}

async fn file_audits_scoped(svc: &Services) -> Result<usize, DomainError> {
    let mut filed = 0;
    for tenant in crate::auth::known_tenants(svc).await? {
        let page = svc
            .store
            .query(Query::all(keys::audit_queue_pk(&tenant), AUDIT_PAGE))
            .await?;
        for item in page.items {
            if file_audit(svc, &tenant, &item.sk).await? {
                filed += 1;
            }
        }
    }
    Ok(filed)
}
