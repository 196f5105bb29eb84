//! The links from a recurring group to its ticket, kept for new incidents
//! of the group: what ingest looks up when it opens an incident. Kept apart
//! from the work items (which render, post and open tickets) so that ingest
//! depends on this lookup alone.

use firewatch_types::{Alert, TenantId, TicketLink};
use serde::{Deserialize, Serialize};

use crate::incidents::RecurrenceBy;
pub use crate::keys::group_links_pk as links_pk;
use crate::{keys, DomainError, Services};

/// The hash of a group's key by `by`.
pub fn key_hash(by: RecurrenceBy, key: &str) -> String {
    crate::auth::sha256_hex(format!("{}:{key}", by.as_str()).as_bytes())
}

/// A group link's sort key.
pub fn link_sk(by: RecurrenceBy, key: &str) -> String {
    format!("{}:{}", by.as_str(), &key_hash(by, key)[..32])
}

/// The ticket a group's handoff linked, for a new incident of the group:
/// looked up by each dimension's key of `alert`.
pub async fn linked_ticket(
    svc: &Services,
    tenant: &TenantId,
    alert: &Alert,
) -> Result<Option<TicketLink>, DomainError> {
    let gets = RecurrenceBy::ALL.into_iter().filter_map(|by| {
        let key = by.key_of_parts(&alert.fingerprint, &alert.title, &alert.labels)?;
        Some(async move { svc.store.get(&links_pk(tenant), &link_sk(by, &key)).await })
    });
    for item in futures_util::future::join_all(gets).await {
        if let Some(item) = item? {
            let link: GroupLink = keys::decode(&item)?;
            if let Some(t) = link.ticket {
                return Ok(Some(t));
            }
        }
    }
    Ok(None)
}

/// What a handoff links to its group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupLink {
    pub work_item: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketLink>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_url: Option<String>,
}
