//! The scheduler family: jobs that EventBridge Scheduler invokes with a small
//! JSON input naming the job, such as `{"job": "retries"}`.
//!
//! `retries` runs the dispatch policy over every outbox record that is due:
//! deliveries waiting for their backoff, records parked behind an earlier one
//! of their incident, and any record the stream handler did not finish
//! (older than [`STREAM_GRACE_SECS`]), so no record is ever left behind. A
//! job is idempotent: every record it takes is re-decided under a version
//! condition, so a duplicated or retried invocation does no work twice.

use firewatch_domain::dispatch::{self, Drained};
use firewatch_domain::{DomainError, Services};
use serde::{Deserialize, Serialize};

/// Records younger than this are the stream handler's; the sweep leaves them.
pub const STREAM_GRACE_SECS: i64 = 60;

/// The input of a scheduled invocation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JobInput {
    pub job: String,
}

/// The jobs this function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Due delivery retries and the sweep of stranded outbox records.
    Retries,
}

/// Why a job could not run.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("unknown job {0:?}; known jobs: retries")]
    Unknown(String),
    #[error("input is not a job: {0}")]
    BadInput(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl Job {
    /// Parses an invocation's input.
    pub fn parse(input: &serde_json::Value) -> Result<Self, JobError> {
        let input: JobInput = serde_json::from_value(input.clone()).map_err(|e| {
            JobError::BadInput(firewatch_domain::redact::error_without_values(
                &e.to_string(),
            ))
        })?;
        match input.job.as_str() {
            "retries" => Ok(Self::Retries),
            _ => Err(JobError::Unknown(input.job.chars().take(40).collect())),
        }
    }
}

/// What a job did, returned as the invocation's result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JobReport {
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
}

impl From<Drained> for JobReport {
    fn from(d: Drained) -> Self {
        Self {
            delivered: d.delivered,
            retrying: d.retrying,
            dead: d.dead,
        }
    }
}

/// Runs one job.
pub async fn run(svc: &Services, job: Job) -> Result<JobReport, JobError> {
    match job {
        Job::Retries => {
            let grace = chrono::Duration::seconds(STREAM_GRACE_SECS);
            let drained = dispatch::sweep(svc, grace).await?;
            tracing::info!(
                delivered = drained.delivered,
                retrying = drained.retrying,
                dead = drained.dead,
                "retries job"
            );
            Ok(drained.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_inputs_name_a_known_job_or_are_refused_clearly() {
        assert_eq!(
            Job::parse(&serde_json::json!({"job": "retries"})).unwrap(),
            Job::Retries
        );
        let unknown = Job::parse(&serde_json::json!({"job": "reticulate"})).unwrap_err();
        assert!(
            unknown.to_string().contains("known jobs: retries"),
            "{unknown}"
        );
        let shapeless = Job::parse(&serde_json::json!({"job": 42})).unwrap_err();
        assert!(!shapeless.to_string().contains("42"), "{shapeless}");
    }

    #[tokio::test]
    async fn the_retries_job_over_an_empty_outbox_does_nothing() {
        let svc = firewatch_local::services_in_memory();
        assert_eq!(run(&svc, Job::Retries).await.unwrap(), JobReport::default());
    }
}
