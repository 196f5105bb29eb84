//! Scheduled checks: heartbeats (dead-man's switches), smoke contracts and
//! provider freshness, run as jobs by the scheduler (EventBridge Scheduler on AWS,
//! every second in `firewatch dev`).
//!
//! A job works through the due index ([`crate::due`]). Alerts go through [`crate::ingest`] with the check's own
//! source, so dedup, threads, buttons and triage apply as for any alert.

pub mod freshness;
pub mod heartbeats;
pub mod schedule;
pub mod smoke;

use firewatch_types::TenantId;

use crate::{DomainError, Services};

pub use crate::due::{claim_tick, due_sk, Budget, DueRef, JobReport};

/// Raises or resolves a check's alert through the normal incident flow:
/// `alert` is in the plain JSON alert shape, posted as `source` by
/// `actor` of `tenant`.
pub(crate) async fn ingest_alert(
    svc: &Services,
    tenant: &TenantId,
    source: firewatch_types::SourceKind,
    actor: String,
    alert: &serde_json::Value,
) -> Result<crate::ingest::IngestReport, DomainError> {
    let principal = firewatch_types::Principal {
        tenant: tenant.clone(),
        name: actor,
        role: firewatch_types::Role::Responder,
    };
    let body = serde_json::to_vec(alert)?;
    crate::ingest::ingest(
        svc,
        crate::ingest::IngestRequest {
            principal: &principal,
            source,
            body: &body,
            headers: Vec::new(),
        },
    )
    .await
}
