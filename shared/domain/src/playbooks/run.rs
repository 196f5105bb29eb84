//! A playbook run as stored: its states, each step's outcome, the
//! transitions, and what a rendered step would send.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use firewatch_types::{IncidentId, TenantId};
use serde::{Deserialize, Serialize};

use super::definition::{Expect, Playbook, Risk, Step, StepKind};
use crate::DomainError;

/// Runs listed per incident.
pub const RUNS_PER_INCIDENT: usize = 50;
/// Longest response excerpt kept with a step.
pub const RESPONSE_EXCERPT: usize = 2048;
/// Default timeout of one request.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;
/// Default time a `wait_until` step keeps polling, and between polls.
pub const DEFAULT_WAIT_SECS: u64 = 60;
pub const DEFAULT_INTERVAL_SECS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Asked for from chat; the dispatcher dry-runs it.
    Requested,
    DryRunOk,
    DryRunFailed,
    AwaitingApproval,
    Approved,
    Rejected,
    Expired,
    Running,
    Succeeded,
    Failed,
    RollingBack,
    RolledBack,
    RollbackFailed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::DryRunOk => "dry_run_ok",
            Self::DryRunFailed => "dry_run_failed",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::RollingBack => "rolling_back",
            Self::RolledBack => "rolled_back",
            Self::RollbackFailed => "rollback_failed",
        }
    }
}

/// A request as it would be (or was) sent, secrets masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedRequest {
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
}

/// One step, rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedStep {
    pub name: String,
    pub kind: StepKind,
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RenderedRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// `lambda_invoke`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// `notify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub timeout_secs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    /// Claimed by a dispatcher that is sending it now.
    Sending,
    /// A `wait_until` step between polls.
    Waiting,
    Succeeded,
    Failed,
}

/// What happened at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub name: String,
    pub status: StepStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Time of the last request, start to answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Requests sent (polls of a wait step).
    #[serde(default)]
    pub attempts: u32,
    /// While `sending`: no one else touches the step before this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_until: Option<DateTime<Utc>>,
    /// What happened, secrets masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The start of the answer, secrets masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
}

impl StepOutcome {
    pub fn pending(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            status: StepStatus::Pending,
            http_status: None,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            attempts: 0,
            claimed_until: None,
            detail: None,
            response: None,
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.status, StepStatus::Succeeded | StepStatus::Failed)
    }
}

/// One state a run passed through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub at: DateTime<Utc>,
    pub state: RunState,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A playbook run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub tenant: TenantId,
    pub incident_id: IncidentId,
    pub playbook: String,
    pub title: String,
    pub risk: Risk,
    pub state: RunState,
    pub params: BTreeMap<String, String>,
    pub requested_by: String,
    pub approval_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// Every step and rollback step as it would be sent, secrets masked.
    pub preview: Vec<RenderedStep>,
    pub rollback_preview: Vec<RenderedStep>,
    /// The read-only steps the dry-run sent.
    pub preflight: Vec<StepOutcome>,
    pub steps: Vec<StepOutcome>,
    pub rollback: Vec<StepOutcome>,
    pub history: Vec<Transition>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The definition the run was made from, so that what was approved is
    /// what runs even if the file changes.
    pub definition: Playbook,
    /// The item version the run was read at (not stored).
    #[serde(skip)]
    pub version: u64,
}

impl Run {
    /// The steps (or rollback steps) of the run, as defined.
    pub fn defined_steps(&self, rollback: bool) -> &[Step] {
        if rollback {
            &self.definition.rollback
        } else {
            &self.definition.steps
        }
    }

    pub fn outcomes_mut(&mut self, rollback: bool) -> &mut Vec<StepOutcome> {
        if rollback {
            &mut self.rollback
        } else {
            &mut self.steps
        }
    }

    pub(crate) fn enter(
        &mut self,
        state: RunState,
        by: &str,
        detail: Option<String>,
        at: DateTime<Utc>,
    ) {
        self.state = state;
        self.updated_at = at;
        self.history.push(Transition {
            at,
            state,
            by: by.to_owned(),
            detail,
        });
    }
}

/// Why a step's effect did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    /// Worth another try (the request never left, the store was busy).
    pub retryable: bool,
    pub message: String,
}

impl From<DomainError> for StepError {
    fn from(e: DomainError) -> Self {
        Self {
            retryable: matches!(
                e,
                DomainError::Unavailable(_) | DomainError::Conflict { .. }
            ),
            message: e.to_string(),
        }
    }
}

impl From<crate::work::CommitError> for StepError {
    fn from(e: crate::work::CommitError) -> Self {
        DomainError::from(e).into()
    }
}

impl From<crate::ports::StoreError> for StepError {
    fn from(e: crate::ports::StoreError) -> Self {
        DomainError::from(e).into()
    }
}
