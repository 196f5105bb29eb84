//! Pages through a policy's PagerDuty integration (Events API v2): what the
//! dispatcher does for an `Effect::Page`. The routing key is read from the
//! secrets when the event is sent and goes nowhere else.

use firewatch_types::{Incident, IncidentId, TenantId};

use crate::ports::{PageEvent, PagerError};
use crate::Services;

/// PagerDuty's limit on `summary`.
const SUMMARY_MAX: usize = 1024;

/// The dedup key of an incident's page: PagerDuty folds a repeat into the
/// same alert, and acknowledge and resolve find it.
pub fn dedup_key(inc: &Incident) -> String {
    format!("firewatch-{}-{}", inc.tenant, inc.id)
}

/// The event for `inc`.
pub fn event(inc: &Incident, routing_key: String, action: &'static str) -> PageEvent {
    let source = ["instance", "service", "host", "job"]
        .iter()
        .find_map(|k| inc.labels.get(*k))
        .cloned()
        .unwrap_or_else(|| format!("firewatch/{}", inc.source));
    let mut links = inc.links.clone();
    if let Some(t) = &inc.ticket {
        links.push(firewatch_types::Link {
            href: t.url.clone(),
            text: Some(format!("ticket {}", t.id)),
        });
    }
    PageEvent {
        routing_key,
        action,
        dedup_key: dedup_key(inc),
        summary: crate::limits::truncate(&format!("[{}] {}", inc.severity, inc.title), SUMMARY_MAX),
        source: crate::limits::truncate(&source, 255),
        severity: inc.severity,
        links: links.into_iter().take(5).collect(),
        custom_details: serde_json::json!({
            "incident": inc.id,
            "state": inc.state,
            "occurrences": inc.occurrences,
            "labels": inc.labels,
            "opened_at": inc.created_at,
        }),
    }
}

/// Sends `action` (`trigger`, `acknowledge`, `resolve`) for incident `id`
/// through policy `policy`'s integration.
pub async fn perform(
    svc: &Services,
    tenant: &TenantId,
    id: &IncidentId,
    policy: &str,
    action: &str,
) -> Result<(), PagerError> {
    let passing = |e: crate::DomainError| match e {
        crate::DomainError::Unavailable(m) => PagerError::Retryable(m),
        other => PagerError::Permanent(other.to_string()),
    };
    let action: &'static str = match action {
        "trigger" => "trigger",
        "acknowledge" => "acknowledge",
        "resolve" => "resolve",
        other => {
            return Err(PagerError::Permanent(format!(
                "unknown page action {other:?}"
            )))
        }
    };
    let pager = svc
        .pager
        .as_ref()
        .ok_or_else(|| PagerError::Permanent("no pager is configured in this process".into()))?;
    let inc = crate::incidents::get(svc, tenant, id)
        .await
        .map_err(passing)?;
    let p = super::find(svc, tenant, policy)
        .await
        .map_err(passing)?
        .ok_or_else(|| PagerError::Permanent(format!("escalation policy {policy:?} is gone")))?;
    let pd = p.pagerduty.ok_or_else(|| {
        PagerError::Permanent(format!(
            "escalation policy {policy:?} has no PagerDuty integration"
        ))
    })?;
    // The routing key is the tenant's own secret: a policy made through the
    // API never reads the operator's, nor another tenant's.
    let owner = crate::secrets::Owner::Tenant(tenant.clone());
    let name = [pd.routing_key_secret.clone()];
    let key = crate::secrets::resolve(svc, &owner, &name)
        .await
        .map_err(|e| {
            let e = format!("the PagerDuty routing key: {e}");
            if e.contains("could not be read") {
                PagerError::Retryable(e)
            } else {
                PagerError::Permanent(e)
            }
        })?
        .remove(&pd.routing_key_secret)
        .unwrap_or_default();
    pager.send(&event(&inc, key, action)).await
}
