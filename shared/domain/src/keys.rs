//! Where every domain value lives in the item store. One place, so that the
//! single-table layout (documented in docs/STORAGE.md) can be read at once.
//!
//! Every tenant-owned key starts with `{tenant}#`, so no query of one tenant
//! can reach another's items.

use firewatch_types::{IncidentId, IncidentState, SourceKind, TenantId};
use serde::{de::DeserializeOwned, Serialize};

use crate::ports::Item;
use crate::DomainError;

/// Incidents of a tenant, newest last by sort key (`inc_<ulid>`).
pub fn incidents_pk(t: &TenantId) -> String {
    format!("{t}#INC")
}

/// Timeline entries of one incident, sort key `TL#<ulid>`.
pub fn incident_pk(t: &TenantId, id: &IncidentId) -> String {
    format!("{t}#INC#{id}")
}

pub const TIMELINE_PREFIX: &str = "TL#";

/// A ticket request being created in the tracker, in its incident's
/// partition (sort key `TKTCLAIM#<key>`): claimed before the tracker is
/// called, so a stop between its answer and the link opens no second ticket.
pub fn ticket_claim_sk(key: &str) -> String {
    format!("TKTCLAIM#{key}")
}

/// The incidents of a tenant in one state, sort key the incident id: the
/// index `GET /v1/incidents?state=` reads instead of scanning every incident.
/// Kept by the change model in the transaction of every state change.
pub fn incidents_by_state_pk(t: &TenantId, state: IncidentState) -> String {
    format!("{t}#INCST#{state}")
}

/// The incidents one alert group opened, sort key the incident id: what
/// triage reads for the group's history instead of scanning.
pub fn group_incidents_pk(t: &TenantId, source: SourceKind, group_key: &str) -> String {
    format!("{t}#GINC#{source}#{group_key}")
}

/// Group key → open incident pointer and recent opens (rate limit).
pub fn groups_pk(t: &TenantId) -> String {
    format!("{t}#GRP")
}

pub fn group_sk(source: SourceKind, group_key: &str) -> String {
    format!("{source}#{group_key}")
}

/// Envelopes already processed, by sha256 of the raw body (expires).
pub fn envelopes_pk(t: &TenantId) -> String {
    format!("{t}#ENV")
}

/// Bodies signed without a timestamp (Sentry) already accepted, by sha256
/// of the body (expires after [`crate::auth::BODY_SIGNATURE_MEMORY_DAYS`]).
pub fn signed_bodies_pk(t: &TenantId) -> String {
    format!("{t}#SIGNED")
}

/// Rate counts of a tenant, sort key `{action}#{window start}` (expires).
pub fn rate_pk(t: &TenantId) -> String {
    format!("{t}#RATE")
}

/// Audit events waiting to be filed into the audit log, sort key the
/// event's id: where the functions that may not write the log (on AWS,
/// every function but the dispatcher and the scheduler, with
/// `FIREWATCH_AUDIT_VIA_DISPATCHER`) put theirs, in the transaction of the
/// change; the dispatcher files them (`dispatch::file_audit`).
pub fn audit_queue_pk(t: &TenantId) -> String {
    format!("{t}#AUDITQ")
}

/// Append-only audit log, sort key a ULID.
pub fn audit_pk(t: &TenantId) -> String {
    format!("{t}#AUDIT")
}

/// Side effects waiting for the dispatcher, sort key a ULID.
pub fn outbox_pk(t: &TenantId) -> String {
    format!("{t}#OUTBOX")
}

/// What a raw item is, for the code that sees items rather than asking for
/// them (the dispatch function reading the table's stream). The layouts
/// stay here: a caller matches on the kind, not on a key's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A side effect waiting for the dispatcher ([`outbox_pk`]).
    Outbox(TenantId),
    /// An audit event waiting to be filed ([`audit_queue_pk`]).
    AuditQueue(TenantId),
    /// Anything else: no work for a stream consumer.
    Other,
}

impl Kind {
    /// The kind of the item whose partition key is `pk`.
    pub fn of(pk: &str) -> Self {
        let tenant = |t: &str| TenantId::parse(t).ok();
        if let Some(t) = pk.strip_suffix("#OUTBOX").and_then(tenant) {
            Kind::Outbox(t)
        } else if let Some(t) = pk.strip_suffix("#AUDITQ").and_then(tenant) {
            Kind::AuditQueue(t)
        } else {
            Kind::Other
        }
    }
}

/// Playbook runs of a tenant, sort key the run id (`run_<ulid>`).
pub fn playbook_runs_pk(t: &TenantId) -> String {
    format!("{t}#PBRUN")
}

/// In an incident's partition: one small item per playbook run of it,
/// sort key `PBRUN#<run id>`, what the incident's run list reads.
pub const INCIDENT_RUN_PREFIX: &str = "PBRUN#";

/// Answers to requests sent with an `Idempotency-Key`, sort key
/// `{operation}#{key}` (expires after a day).
pub fn idempotency_pk(t: &TenantId) -> String {
    format!("{t}#IDEM")
}

/// API keys by sha256 of the token. Global: the token decides the tenant.
pub const API_KEYS_PK: &str = "_#APIKEY";

/// Heartbeats of a tenant, sort key the heartbeat id (`hb_<ulid>`).
pub fn heartbeats_pk(t: &TenantId) -> String {
    format!("{t}#HB")
}

/// One heartbeat's pings, sort key `PING#<ulid>` (expire after 30 days).
pub fn heartbeat_pk(t: &TenantId, id: &str) -> String {
    format!("{t}#HB#{id}")
}

pub const PING_PREFIX: &str = "PING#";

/// Ping URL → heartbeat, by sha256 of the URL's UUID. Global: the URL
/// decides the tenant.
pub const PING_INDEX_PK: &str = "_#HBPING";

/// The due index of a scheduled job, sort key `{unix seconds:012}#{tenant}#{id}`.
/// Global: a job reads what is due across tenants in time order.
pub fn due_pk(job: &str) -> String {
    format!("_#DUE#{job}")
}

/// Claimed scheduler ticks, sort key `{job}#{minute}` (expire after 2 days).
pub const TICKS_PK: &str = "_#TICK";

/// A tenant's own secrets (values write-only through the API), sort key
/// the secret's name.
pub fn secrets_pk(t: &TenantId) -> String {
    format!("{t}#SECRET")
}

/// Smoke checks of a tenant, sort key the check id (`smk_...`).
pub fn smoke_pk(t: &TenantId) -> String {
    format!("{t}#SMK")
}

/// One smoke check's runs, sort key `RUN#<ulid>` (expire after 14 days).
pub fn smoke_runs_pk(t: &TenantId, id: &str) -> String {
    format!("{t}#SMK#{id}")
}

/// Provider freshness of a tenant: `LAST#{provider}` (last webhook),
/// `WATCH#{provider}` (a watch set through the API), `STATE#{provider}`.
pub fn freshness_pk(t: &TenantId) -> String {
    format!("{t}#FRESH")
}

/// Known tenants. Global.
pub const TENANTS_PK: &str = "_#TENANT";

/// Encodes `value` as an item.
pub fn item<T: Serialize>(
    pk: String,
    sk: String,
    version: u64,
    value: &T,
) -> Result<Item, DomainError> {
    Ok(Item {
        pk,
        sk,
        version,
        expires_at: None,
        data: serde_json::to_string(value)?,
    })
}

/// Decodes an item's data.
pub fn decode<T: DeserializeOwned>(item: &Item) -> Result<T, DomainError> {
    serde_json::from_str(&item.data).map_err(|e| {
        DomainError::Internal(format!("item {}/{} does not decode: {e}", item.pk, item.sk))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_consumer_tells_outbox_records_and_queued_audit_events_by_kind() {
        let t = TenantId::parse("acme").unwrap();
        assert_eq!(Kind::of(&outbox_pk(&t)), Kind::Outbox(t.clone()));
        assert_eq!(Kind::of(&audit_queue_pk(&t)), Kind::AuditQueue(t.clone()));
        assert_eq!(Kind::of(&audit_pk(&t)), Kind::Other);
        assert_eq!(Kind::of(&incidents_pk(&t)), Kind::Other);
        assert_eq!(Kind::of(&envelopes_pk(&t)), Kind::Other);
        assert_eq!(Kind::of("#OUTBOX"), Kind::Other, "no tenant, no work");
    }
}
