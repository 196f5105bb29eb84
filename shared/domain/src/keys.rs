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

/// A tenant's routing rules, sort key the rule id.
pub fn routes_pk(t: &TenantId) -> String {
    format!("{t}#ROUTE")
}

/// Pending chat link codes, sort key the code's sha256. Global.
pub const LINK_CODES_PK: &str = "_#CHATLINKCODE";

/// Which tenant a chat channel is linked to, sort key `{platform}:{id}`. Global.
pub const LINKED_CHANNELS_PK: &str = "_#CHANNEL";

/// Which tenant a chat workspace is linked to, sort key `{platform}:{id}`. Global.
pub const LINKED_WORKSPACES_PK: &str = "_#WORKSPACE";

/// A tenant's dossier, sort key the item's ULID (time-ordered).
pub fn dossier_pk(t: &TenantId) -> String {
    format!("{t}#DOS")
}

/// Pipelines of a tenant, sort key the pipeline id.
pub fn pipelines_pk(t: &TenantId) -> String {
    format!("{t}#PL")
}

/// Runs of a tenant, sort key the run id.
pub fn pipeline_runs_pk(t: &TenantId) -> String {
    format!("{t}#PLRUN")
}

/// One pipeline's partition: its runs by time (`RUN#{time}#{run id}`) and
/// its daily aggregates (`DAY#{yyyy-mm-dd}`).
pub fn pipeline_pk(t: &TenantId, id: &str) -> String {
    format!("{t}#PL#{id}")
}

/// One run's events, sort key `EV#{event time}#{sha256 prefix}`.
pub fn run_events_pk(t: &TenantId, run_id: &str) -> String {
    format!("{t}#PLRUN#{run_id}")
}

/// A tenant's hourly totals, sort key `{yyyy-mm-ddThh}`.
pub fn pipeline_hours_pk(t: &TenantId) -> String {
    format!("{t}#PLHOUR")
}

/// Who reads a dataset and who writes it: sort keys `C#{pipeline}` and
/// `P#{pipeline}` under the dataset's partition.
pub fn dataset_pk(t: &TenantId, dataset: &str) -> String {
    format!("{t}#DS#{dataset}")
}

/// Group → ticket links, sort key `{dimension}:{key hash}`.
pub fn group_links_pk(t: &TenantId) -> String {
    format!("{t}#WIL")
}

/// A tenant's API keys as listed, sort key the key id.
pub fn tenant_keys_pk(t: &TenantId) -> String {
    format!("{t}#KEY")
}

/// A tenant's current alert storm, sort key `current`.
pub fn storm_pk(t: &TenantId) -> String {
    format!("{t}#STORM")
}

/// The incidents of a tenant's storms, sort key the incident id.
pub fn storm_members_pk(t: &TenantId) -> String {
    format!("{t}#STORMM")
}

/// A tenant's on-call schedules, sort key the schedule id.
pub fn oncall_schedules_pk(t: &TenantId) -> String {
    format!("{t}#ONCALL")
}

/// A tenant's silences, sort key the silence id.
pub fn silences_pk(t: &TenantId) -> String {
    format!("{t}#SIL")
}

/// The alerts a tenant's silences hold, sort key `{silence}#{fingerprint}`.
pub fn silence_held_pk(t: &TenantId) -> String {
    format!("{t}#SILA")
}

/// Chat requests handled once, sort key the platform's request id. Global.
pub const INBOUND_PK: &str = "_#INBOUND";

/// Global: the chat user (in a workspace) decides the tenant.
pub const CHAT_IDS_PK: &str = "_#CHATID";

/// A tenant's own list of its mapped users.
pub fn tenant_chat_ids_pk(t: &TenantId) -> String {
    format!("{t}#CHATID")
}

/// Effects already done (idempotency of deliveries), sort key the effect key.
pub fn effects_done_pk(t: &TenantId) -> String {
    format!("{t}#FX")
}

/// A tenant's dead letters, sort key the outbox record id.
pub fn dead_letters_pk(t: &TenantId) -> String {
    format!("{t}#DLQ")
}

/// Work item records, sort key the id.
pub fn work_items_pk(t: &TenantId) -> String {
    format!("{t}#WI")
}

/// Handoffs of the last hours (the rate limit), sort key `{time}#{id}`.
pub fn handoffs_pk(t: &TenantId) -> String {
    format!("{t}#WIH")
}

/// Votes of a tenant, sort key `{report id}#{voter}`.
pub fn triage_votes_pk(t: &TenantId) -> String {
    format!("{t}#TRIAGE#FB")
}

/// Reports of a tenant, sort key the report id: what a vote needs to know
/// about the report it is on.
pub fn triage_reports_pk(t: &TenantId) -> String {
    format!("{t}#TRIAGE#R")
}

/// Telemetry events of a tenant, sort key a ULID.
pub fn triage_events_pk(t: &TenantId) -> String {
    format!("{t}#TRIAGE#EV")
}

/// Escalation progress per incident, sort key the incident id.
pub fn escalation_progress_pk(t: &TenantId) -> String {
    format!("{t}#ESC")
}

/// A tenant's escalation policies, sort key the policy id.
pub fn escalation_policies_pk(t: &TenantId) -> String {
    format!("{t}#ESCP")
}

/// Alerts kept on their own record when a group's rate limit is zero, sort
/// key `{source}#{ulid}`.
pub fn suppressed_pk(t: &TenantId) -> String {
    format!("{t}#SUP")
}

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
        kind: None,
    })
}

/// Decodes an item's data.
pub fn decode<T: DeserializeOwned>(item: &Item) -> Result<T, DomainError> {
    serde_json::from_str(&item.data).map_err(|e| {
        DomainError::Internal(format!("item {}/{} does not decode: {e}", item.pk, item.sk))
    })
}
