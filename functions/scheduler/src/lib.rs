//! The scheduler family: jobs that EventBridge Scheduler invokes with a small
//! JSON input naming the job.
//!
//! - `retries` runs the dispatch policy over every outbox record that is
//!   due: deliveries waiting for their backoff, records parked behind an
//!   earlier one of their incident, and any record the stream handler did
//!   not finish (older than [`STREAM_GRACE_SECS`]), so no record is ever
//!   left behind. Every record it takes is re-decided under a version
//!   condition.
//! - `heartbeats` raises alerts for heartbeats overdue past their grace
//!   (and ingests alert events a crash left pending).
//! - `smoke` runs the smoke checks whose interval has come, raising an
//!   alert for a failing one and resolving it when it passes again.
//! - `freshness` raises an alert for each watched provider silent past its
//!   window, and resolves it once it sends again.
//! - `pipelines` evaluates every pipeline's SLA (late, missed, too long,
//!   stale outputs) and cost anomalies, raising an alert for each new breach
//!   and resolving those that cleared.
//! - `silences` warns in a silence's incident thread ten minutes before it
//!   ends and, at its end, releases the alerts it held that still fire
//!   (opening their incidents) and says so in the thread.
//! - `reminders` runs the due steps of each active incident's escalation
//!   policy (reminders, on-call mentions, other destinations, PagerDuty
//!   pages) and keeps pages in step with their incidents.
//!
//! The input is the job, `{"job": "heartbeats"}`, optionally with the
//! schedule's time (`"scheduled_time": "<aws.scheduler.scheduled-time>"`, as
//! the SAM template passes it), or an EventBridge event whose `detail` names
//! the job (a rule's scheduled event). The checking jobs first claim a tick
//! (job and minute of the scheduled time): a retried or duplicated
//! invocation of the same tick does nothing. Each job stops taking items at
//! [`JOB_BUDGET`]; what is left is due at the next tick.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use firewatch_domain::dispatch::{self, Drained};
use firewatch_domain::pipelines::sla;
use firewatch_domain::schedules::{self, freshness, heartbeats, smoke, Budget};
use firewatch_domain::{silence_ends, silences};
use firewatch_domain::{DomainError, Services};
use serde::{Deserialize, Serialize};

/// Records younger than this are the stream handler's; the sweep leaves them.
pub const STREAM_GRACE_SECS: i64 = 60;

/// How long a checking job keeps taking due items (the function's timeout
/// is 60 s).
pub const JOB_BUDGET: std::time::Duration = std::time::Duration::from_secs(40);

/// The input of a scheduled invocation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct JobInput {
    pub job: String,
    /// The schedule's time for this invocation; retries of it carry the
    /// same time.
    #[serde(default)]
    pub scheduled_time: Option<DateTime<Utc>>,
}

/// The jobs this function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Due delivery retries and the sweep of stranded outbox records.
    Retries,
    Heartbeats,
    Smoke,
    Freshness,
    /// Pipeline SLAs and cost anomalies.
    Pipelines,
    /// Silence warnings and ends.
    Silences,
    /// Escalation steps and pages.
    Reminders,
    /// The compiled playbook catalog the chat functions read, written when
    /// the YAML definitions changed (the checks function, on AWS).
    Playbooks,
}

/// One invocation: the job and its tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invocation {
    pub job: Job,
    pub tick: Option<DateTime<Utc>>,
}

/// Why a job could not run.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(
        "unknown job {0:?}; known jobs: retries, heartbeats, smoke, freshness, pipelines, silences, reminders, playbooks"
    )]
    Unknown(String),
    #[error("job {0} runs in {1}, not in this function")]
    Elsewhere(&'static str, &'static str),
    #[error("input is not a job: {0}")]
    BadInput(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl Job {
    /// Parses an invocation's input; see [`Invocation::parse`].
    pub fn parse(input: &serde_json::Value) -> Result<Self, JobError> {
        Invocation::parse(input).map(|i| i.job)
    }

    fn named(name: &str) -> Result<Self, JobError> {
        match name {
            "retries" => Ok(Self::Retries),
            "heartbeats" => Ok(Self::Heartbeats),
            "smoke" => Ok(Self::Smoke),
            "freshness" => Ok(Self::Freshness),
            "pipelines" => Ok(Self::Pipelines),
            "silences" => Ok(Self::Silences),
            "playbooks" => Ok(Self::Playbooks),
            "reminders" => Ok(Self::Reminders),
            _ => Err(JobError::Unknown(name.chars().take(40).collect())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Retries => "retries",
            Self::Heartbeats => heartbeats::JOB,
            Self::Smoke => smoke::JOB,
            Self::Freshness => freshness::JOB,
            Self::Pipelines => sla::JOB,
            Self::Silences => silences::JOB,
            Self::Reminders => firewatch_domain::escalation::reminders::JOB,
            Self::Playbooks => "playbooks",
        }
    }
}

impl Invocation {
    /// Parses EventBridge Scheduler's input (`{"job", "scheduled_time"?}`)
    /// or an EventBridge event whose `detail` is such an input (its `time`
    /// is the tick).
    pub fn parse(input: &serde_json::Value) -> Result<Self, JobError> {
        let bad = |e: serde_json::Error| {
            JobError::BadInput(firewatch_domain::redact::error_without_values(
                &e.to_string(),
            ))
        };
        if input.get("detail-type").is_some() {
            let ev: EventBridgeEvent<JobInput> =
                serde_json::from_value(input.clone()).map_err(bad)?;
            return Ok(Self {
                job: Job::named(&ev.detail.job)?,
                tick: ev.detail.scheduled_time.or(ev.time),
            });
        }
        let input: JobInput = serde_json::from_value(input.clone()).map_err(bad)?;
        Ok(Self {
            job: Job::named(&input.job)?,
            tick: input.scheduled_time,
        })
    }
}

/// What the retries job did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetriesReport {
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
}

impl From<Drained> for RetriesReport {
    fn from(d: Drained) -> Self {
        Self {
            delivered: d.delivered,
            retrying: d.retrying,
            dead: d.dead,
        }
    }
}

/// What a job did, returned as the invocation's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum JobReport {
    Retries(RetriesReport),
    Checks(schedules::JobReport),
}

/// Syncs the smoke checks of tenant `default` defined as files in the
/// state bucket (`FIREWATCH_SMOKE_CHECKS_PREFIX`, default `smoke-checks/`)
/// and, with `FIREWATCH_PUBLIC_URL`, firewatch's own `/health` and
/// `/version`. The Lambda does this before its first `smoke` job.
#[cfg(feature = "lambda")]
pub async fn sync_smoke_checks(
    svc: &Services,
    s3: &firewatch_aws::S3Client,
    bucket: &str,
) -> Result<usize, String> {
    use firewatch_domain::schedules::smoke::{builtin, sync_defined, Origin};
    let prefix =
        std::env::var("FIREWATCH_SMOKE_CHECKS_PREFIX").unwrap_or_else(|_| "smoke-checks/".into());
    let files = firewatch_aws::smoke_checks_from_s3(s3, bucket, &prefix).await?;
    for e in &files.errors {
        tracing::warn!(error = %e, "smoke check file refused");
    }
    let tenant = firewatch_types::TenantId::default_tenant();
    let mut changed = sync_defined(svc, &tenant, Origin::File, files.defs)
        .await
        .map_err(|e| e.to_string())?;
    let own = svc
        .settings
        .public_url
        .as_deref()
        .map(builtin)
        .unwrap_or_default();
    changed += sync_defined(svc, &tenant, Origin::Builtin, own)
        .await
        .map_err(|e| e.to_string())?;
    Ok(changed)
}

/// The `playbooks` job on AWS: compiles the playbook definitions under
/// `FIREWATCH_PLAYBOOKS_PREFIX` (default `playbooks/`) into the JSON
/// catalog the chat functions read, when they changed. `checked` counts the
/// playbooks written (0 when the catalog was current).
#[cfg(feature = "lambda")]
pub async fn publish_playbooks(
    s3: &firewatch_aws::S3Client,
    bucket: &str,
) -> Result<schedules::JobReport, JobError> {
    let prefix =
        std::env::var("FIREWATCH_PLAYBOOKS_PREFIX").unwrap_or_else(|_| "playbooks/".into());
    let written = firewatch_aws::publish_playbooks(s3, bucket, &prefix)
        .await
        .map_err(|e| JobError::Domain(DomainError::Unavailable(e)))?;
    match written {
        Some(n) => tracing::info!(playbooks = n, "playbook catalog compiled"),
        None => tracing::debug!("playbook catalog current"),
    }
    Ok(schedules::JobReport {
        checked: written.unwrap_or(0),
        ..Default::default()
    })
}

/// The Lambda handler: parses the invocation's input and runs it.
pub async fn handle(svc: &Services, input: &serde_json::Value) -> Result<JobReport, JobError> {
    run(svc, Invocation::parse(input)?).await
}

/// Runs one invocation: claims its tick (the checking jobs), then the job.
pub async fn run(svc: &Services, inv: Invocation) -> Result<JobReport, JobError> {
    match inv.job {
        Job::Retries => run_retries(svc).await.map(JobReport::Retries),
        _ => run_checks_tick(svc, inv).await.map(JobReport::Checks),
    }
}

/// The `retries` job: what the scheduler function runs (it holds the chat
/// clients that deliver).
pub async fn run_retries(svc: &Services) -> Result<RetriesReport, JobError> {
    firewatch_domain::recording::scope("job:retries", retries(svc)).await
}

async fn retries(svc: &Services) -> Result<RetriesReport, JobError> {
    let grace = chrono::Duration::seconds(STREAM_GRACE_SECS);
    let drained = dispatch::sweep(svc, grace).await?;
    // Audit events the chat functions queued, should a stream record of
    // theirs have been lost.
    let audits = dispatch::file_audits(svc).await?;
    tracing::info!(
        delivered = drained.delivered,
        retrying = drained.retrying,
        dead = drained.dead,
        audits_filed = audits,
        "retries job"
    );
    Ok(drained.into())
}

/// A checking job's tick (`heartbeats`, `smoke`, `freshness`, `pipelines`): claims the
/// tick, then runs the job within [`JOB_BUDGET`]. What the checks function
/// runs: the alerts it raises are delivered by the dispatcher, so it links
/// no chat client.
pub async fn run_checks_tick(
    svc: &Services,
    inv: Invocation,
) -> Result<schedules::JobReport, JobError> {
    let scope = format!("job:{}", inv.job.name());
    firewatch_domain::recording::scope(&scope, checks_tick(svc, inv)).await
}

async fn checks_tick(svc: &Services, inv: Invocation) -> Result<schedules::JobReport, JobError> {
    let job = inv.job;
    let tick = inv.tick.unwrap_or_else(|| svc.clock.now());
    if !schedules::claim_tick(svc, job.name(), tick).await? {
        tracing::info!(job = job.name(), %tick, "tick already run");
        return Ok(schedules::JobReport {
            already_run: true,
            ..Default::default()
        });
    }
    let report = run_checks(svc, job, &Budget::new(JOB_BUDGET)).await?;
    tracing::info!(
        job = job.name(),
        checked = report.checked,
        alerts = report.alerts,
        failed = report.failed,
        more = report.more,
        "scheduled job"
    );
    Ok(report)
}

/// Runs a checking job without a tick: what `firewatch dev` does every
/// second.
pub async fn run_checks(
    svc: &Services,
    job: Job,
    budget: &Budget,
) -> Result<schedules::JobReport, JobError> {
    Ok(match job {
        Job::Heartbeats => heartbeats::run_due(svc, budget).await?,
        Job::Smoke => smoke::run_due(svc, budget).await?,
        Job::Freshness => freshness::run(svc, budget).await?,
        Job::Pipelines => sla::run(svc, budget).await?,
        Job::Silences => silence_ends::run_due(svc, budget).await?,
        Job::Reminders => firewatch_domain::escalation::reminders::run(svc, budget).await?,
        // Playbooks live in the state bucket: published by the checks
        // function ([`publish_playbooks`]); `firewatch dev` reads them
        // from their directory.
        Job::Retries | Job::Playbooks => schedules::JobReport::default(),
    })
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
            unknown.to_string().contains(
                "known jobs: retries, heartbeats, smoke, freshness, pipelines, silences, reminders"
            ),
            "{unknown}"
        );
        let shapeless = Job::parse(&serde_json::json!({"job": 42})).unwrap_err();
        assert!(!shapeless.to_string().contains("42"), "{shapeless}");
    }

    #[tokio::test]
    async fn the_retries_job_over_an_empty_outbox_does_nothing() {
        let svc = firewatch_local::services_in_memory();
        let inv = Invocation {
            job: Job::Retries,
            tick: None,
        };
        assert_eq!(
            run(&svc, inv).await.unwrap(),
            JobReport::Retries(RetriesReport::default())
        );
    }
}
