//! Pipelines: the data team's control tower. Runs arrive as OpenLineage run
//! events (exactly as Marquez accepts them on `POST /api/v1/lineage`) or as
//! plain run reports; each pipeline (an OpenLineage job: namespace + name)
//! keeps its state, its last run, the datasets it reads and writes, and its
//! configuration (team, domain, criticality, owner, runbook). A failed or
//! aborted run raises an alert (source `pipelines`) through the normal
//! incident flow; a later successful run resolves it. See docs/PIPELINES.md.
//!
//! - [`openlineage`]: the run event as the spec defines it, read into a
//!   [`RunEvent`];
//! - [`record`]: recording a run event, one unit of work each (redelivery and any
//!   order of arrival change nothing twice);
//! - [`impact`]: the downstream graph from lineage;
//! - [`read`]: the summary, pipeline and run reads.
//!
//! Aggregates (per pipeline per day, per tenant per hour: runs, failures,
//! duration, cost) are kept as events arrive, so summary reads never scan
//! runs.

pub mod costs;
pub mod explain;
pub mod impact;
pub mod openlineage;
pub mod read;
pub mod record;
pub mod runbooks;
pub mod sla;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use firewatch_types::{Principal, Role, Severity, TenantId};
use serde::{Deserialize, Serialize};

use crate::auth::require_role;
pub use crate::keys::dataset_pk;
pub use crate::keys::pipeline_hours_pk as hours_pk;
pub use crate::keys::pipeline_pk;
pub use crate::keys::pipeline_runs_pk as runs_pk;
pub use crate::keys::pipelines_pk;
pub use crate::keys::run_events_pk;
use crate::ports::Condition;
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// Longest pipeline id, run id or dataset name kept.
pub const MAX_ID: usize = 256;
/// Input and output datasets kept per run and per pipeline.
pub const MAX_DATASETS: usize = 25;
/// Bytes of an event kept with its run (redacted); larger events keep
/// their facets' names only.
pub const MAX_STORED_EVENT: usize = 32 * 1024;

/// How much a pipeline matters to the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    Low,
    Medium,
    High,
    Critical,
}

impl Criticality {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }

    /// The severity of the incident a failed run of the pipeline opens.
    pub fn severity(self) -> Severity {
        match self {
            Self::Critical => Severity::Sev1,
            Self::High => Severity::Sev2,
            Self::Medium => Severity::Sev3,
            Self::Low => Severity::Sev4,
        }
    }
}

/// A pipeline's expected timing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// A cron expression of when runs are expected to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// The IANA time zone of `cron` (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// Or: at most this long between two runs (`90m`, `1d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<String>,
    /// At most this long per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    /// Outputs older than this are stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<String>,
    /// How long after a cron time a run may start and still be on time
    /// (default 15m with `cron`, none with `max_interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<String>,
}

/// What an admin sets on a pipeline (`PUT /v1/pipelines/{id}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criticality: Option<Criticality>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<Sla>,
}

/// Where a pipeline stands: the outcome of its newest finished run, or
/// `running` while a newer run is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Known from configuration only: no run yet.
    Unknown,
    Running,
    Succeeded,
    Failed,
    Aborted,
}

impl State {
    pub const ALL: [State; 5] = [
        Self::Unknown,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Aborted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A run's status: what its newest event (by event time) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Aborted,
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        self != Self::Running
    }

    pub fn state(self) -> State {
        match self {
            Self::Running => State::Running,
            Self::Completed => State::Succeeded,
            Self::Failed => State::Failed,
            Self::Aborted => State::Aborted,
        }
    }
}

/// An amount of money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub amount: f64,
    /// ISO 4217 (`USD`).
    pub currency: String,
}

/// A run as its newest summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    pub run_id: String,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the job's facets say about the pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    /// From the `ownership` job facet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
    /// From the `documentation` job facet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// From the `jobType` job facet: `processingType`, `integration`, `jobType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_type: Option<String>,
    /// From the `processing_engine` run facet: `name version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_engine: Option<String>,
}

/// A pipeline as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub id: String,
    /// The OpenLineage job namespace, when runs come from OpenLineage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default)]
    pub config: Config,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    /// The event time of the newest finished run's last event: what decides
    /// whether a late event changes the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_finished_at: Option<DateTime<Utc>>,
    /// Newest start seen (any run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<String>,
    #[serde(default)]
    pub job: JobInfo,
    /// True while a failed run's alert is open.
    #[serde(default)]
    pub alerting: bool,
    /// Its cost by day (`yyyy-mm-dd`) and currency, the last
    /// [`costs::KEPT_DAYS`] days: what the ranking and anomalies read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cost_days: BTreeMap<String, BTreeMap<String, f64>>,
    /// Where closing its runbook gap stands (none when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governance: Option<GovernanceRecord>,
    /// When its outputs were last written: the newest end of a completed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_succeeded_at: Option<DateTime<Utc>>,
    /// What the `pipelines` job keeps: since when the SLA applies, missed
    /// slots counted, alerts open.
    #[serde(default, skip_serializing_if = "Memo::is_empty")]
    pub sla_memo: Memo,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Pipeline {
    fn new(id: &str, now: DateTime<Utc>) -> Self {
        let (namespace, name) = match id.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() => {
                (Some(ns.to_owned()), name.to_owned())
            }
            _ => (None, id.to_owned()),
        };
        Self {
            id: id.to_owned(),
            namespace,
            name,
            config: Config::default(),
            state: State::Unknown,
            last_run: None,
            last_finished_at: None,
            last_started_at: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            job: JobInfo::default(),
            alerting: false,
            governance: None,
            cost_days: BTreeMap::new(),
            last_succeeded_at: None,
            sla_memo: Memo::default(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// A pipeline's id: `{namespace}/{name}` for an OpenLineage job, or the
/// `pipeline` of a plain run report. Checked: not empty, at most
/// [`MAX_ID`] bytes, no control characters.
pub fn check_id(what: &str, id: &str) -> Result<(), DomainError> {
    if id.trim().is_empty() || id.len() > MAX_ID || id.chars().any(char::is_control) {
        return Err(DomainError::bad_input(
            "invalid_id",
            format!("{what} must be 1 to {MAX_ID} bytes without control characters"),
        ));
    }
    Ok(())
}

/// The id of OpenLineage job `namespace`/`name`.
pub fn job_id(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Pipelines one read that covers the whole tenant (summary, SLA counts,
/// cost ranking and anomalies, runbook catalog) reads at most.
pub const SCAN: usize = 20_000;

/// Calls `f` with each of the tenant's pipelines in id order, at most
/// `max`; `true` when more were left unread.
pub(crate) async fn each(
    svc: &Services,
    tenant: &TenantId,
    max: usize,
    mut f: impl FnMut(Pipeline),
) -> Result<bool, DomainError> {
    let mut after = None;
    let mut seen = 0;
    loop {
        let page = svc
            .store
            .query(crate::ports::Query {
                pk: pipelines_pk(tenant),
                sk_prefix: String::new(),
                after: after.take(),
                limit: 1000.min(max - seen).max(1),
                descending: false,
            })
            .await?;
        for item in &page.items {
            seen += 1;
            f(keys::decode(item)?);
        }
        match page.next {
            Some(n) if seen < max => after = Some(n),
            Some(_) => return Ok(true),
            None => return Ok(false),
        }
    }
}

/// Pipeline `id`'s day totals of the last `days` days before `now`,
/// oldest first, each with its day (`yyyy-mm-dd`).
pub(crate) async fn day_totals(
    svc: &Services,
    tenant: &TenantId,
    id: &str,
    now: DateTime<Utc>,
    days: i64,
) -> Result<Vec<(String, Totals)>, DomainError> {
    let from = format!(
        "DAY#{}",
        (now - chrono::Duration::days(days)).format("%Y-%m-%d")
    );
    let page = svc
        .store
        .query(crate::ports::Query {
            pk: pipeline_pk(tenant, id),
            sk_prefix: "DAY#".into(),
            after: Some(from),
            limit: usize::try_from(days).unwrap_or(0) + 1,
            descending: false,
        })
        .await?;
    page.items
        .iter()
        .map(|item| {
            Ok((
                item.sk.trim_start_matches("DAY#").to_owned(),
                keys::decode(item)?,
            ))
        })
        .collect()
}

/// Reads pipeline `id` with its version (`None`: not stored).
pub async fn load(
    svc: &Services,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<(Pipeline, u64)>, DomainError> {
    match svc.store.get(&pipelines_pk(tenant), id).await? {
        Some(item) => Ok(Some((keys::decode(&item)?, item.version))),
        None => Ok(None),
    }
}

/// Pipeline `id` for a viewer.
pub async fn get(svc: &Services, p: &Principal, id: &str) -> Result<Pipeline, DomainError> {
    require_role(p, Role::Viewer, "read pipelines")?;
    check_id("the pipeline id", id)?;
    load(svc, &p.tenant, id)
        .await?
        .map(|(pl, _)| pl)
        .ok_or_else(|| {
            DomainError::NotFound(format!("no pipeline {}", crate::limits::truncate(id, 80)))
        })
}

fn check_text(what: &str, v: &Option<String>, max: usize) -> Result<(), DomainError> {
    match v {
        Some(s) if s.len() > max || s.chars().any(char::is_control) => Err(DomainError::bad_input(
            "invalid_pipeline",
            format!("{what} must be at most {max} bytes without control characters"),
        )),
        _ => Ok(()),
    }
}

/// Checks a configuration: bounded texts and an SLA whose cron, time zone
/// and durations parse.
pub fn check_config(c: &Config) -> Result<(), DomainError> {
    check_text("team", &c.team, 100)?;
    check_text("domain", &c.domain, 100)?;
    check_text("owner", &c.owner, 200)?;
    // Any text is kept: the runbook catalog reports one that is not an
    // http(s) URL as `invalid_format`, and alerts link only valid ones.
    check_text("runbook_url", &c.runbook_url, 2000)?;
    if let Some(sla) = &c.sla {
        let bad = |m: String| DomainError::bad_input("invalid_sla", m);
        if let Some(cron) = &sla.cron {
            let spec = crate::cadence::Schedule::Cron {
                expr: cron.clone(),
                tz: sla.tz.clone().unwrap_or_else(|| "UTC".into()),
            };
            spec.check()?;
        } else if sla.tz.is_some() {
            return Err(bad("tz goes with cron".into()));
        }
        for (what, v) in [
            ("max_interval", &sla.max_interval),
            ("max_duration", &sla.max_duration),
            ("freshness", &sla.freshness),
            ("grace", &sla.grace),
        ] {
            if let Some(v) = v {
                let secs =
                    crate::units::duration_secs(v).map_err(|e| bad(format!("{what}: {e}")))?;
                if secs == 0 && what != "grace" {
                    return Err(bad(format!("{what} must be at least 1s")));
                }
            }
        }
    }
    Ok(())
}

/// Sets pipeline `id`'s configuration (admin), creating the pipeline when
/// runs have not yet; audited with the configuration before and after.
pub async fn configure(
    svc: &Services,
    p: &Principal,
    id: &str,
    config: Config,
) -> Result<Pipeline, DomainError> {
    require_role(p, Role::Admin, "configure pipelines")?;
    check_id("the pipeline id", id)?;
    check_config(&config)?;
    crate::retry::until_won!(
        crate::retry::BUSY,
        || DomainError::conflict("busy", "the pipeline kept changing; try again"),
        async || -> Result<_, crate::retry::Retry> {
            let now = svc.clock.now();
            let (mut pl, version) = match load(svc, &p.tenant, id).await? {
                Some((pl, v)) => (pl, Some(v)),
                None => (Pipeline::new(id, now), None),
            };
            let before = serde_json::to_value(&pl.config)?;
            if pl.config.sla != config.sla {
                // A new SLA judges from now on: no slot before it was missed.
                pl.sla_memo.since = config.sla.as_ref().map(|_| now);
                pl.sla_memo.missed_through = None;
            }
            pl.config = config.clone();
            pl.updated_at = now;
            let mut work = Work::new(svc);
            work.put(
                keys::item(
                    pipelines_pk(&p.tenant),
                    id.to_owned(),
                    version.map_or(1, |v| v + 1),
                    &pl,
                )?,
                version.map_or(Condition::Absent, Condition::Version),
            );
            work.audit(
                &p.tenant,
                &p.name,
                "pipeline.configure",
                id,
                before,
                serde_json::to_value(&pl.config)?,
            )?;
            work.commit()
                .await
                .map_err(crate::retry::Retry::from_commit)?;
            Ok(pl)
        },
    )
    .await
}

/// Daily (per pipeline) or hourly (per tenant) totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub runs: u64,
    pub failures: u64,
    pub aborted: u64,
    /// Runs whose duration is known, and their summed duration.
    pub timed: u64,
    pub duration_ms: u64,
    /// By currency.
    #[serde(default)]
    pub cost: BTreeMap<String, f64>,
    /// Runs that started later than their cron time's grace.
    #[serde(default)]
    pub late: u64,
    /// Runs that took longer than the SLA's `max_duration`.
    #[serde(default)]
    pub long: u64,
    /// Completed runs neither late nor too long.
    #[serde(default)]
    pub on_time: u64,
    /// Expected runs that never started (counted by the `pipelines` job on
    /// the day they were expected).
    #[serde(default)]
    pub missed: u64,
}

impl Totals {
    fn apply(&mut self, c: &Contribution, sign: i64) {
        let add = |n: &mut u64, by: u64| {
            *n = if sign > 0 {
                n.saturating_add(by)
            } else {
                n.saturating_sub(by)
            }
        };
        add(&mut self.runs, 1);
        match c.status {
            RunStatus::Failed => add(&mut self.failures, 1),
            RunStatus::Aborted => add(&mut self.aborted, 1),
            _ => {}
        }
        if c.late {
            add(&mut self.late, 1);
        }
        if c.long {
            add(&mut self.long, 1);
        }
        if c.status == RunStatus::Completed && !c.late && !c.long {
            add(&mut self.on_time, 1);
        }
        if let Some(d) = c.duration_ms {
            add(&mut self.timed, 1);
            add(&mut self.duration_ms, d);
        }
        if let Some(cost) = &c.cost {
            let e = self.cost.entry(cost.currency.clone()).or_default();
            *e += cost.amount * sign as f64;
            // Float residue of a removed contribution.
            if e.abs() < 1e-9 {
                *e = 0.0;
            }
        }
    }
}

/// What one finished run adds to the totals of the day and hour it ended
/// in; kept on the run so a later event that changes the outcome replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub ended_at: DateTime<Utc>,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// Judged against the SLA the pipeline had when the run finished.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub long: bool,
}

/// What the `pipelines` job (`sla`) keeps on a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memo {
    /// When the current SLA was set: no start before it was expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// The newest expected start counted as missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed_through: Option<DateTime<Utc>>,
    /// Alerts open: `schedule`, `duration`, `freshness`, `cost`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub alerts: std::collections::BTreeSet<String>,
}

impl Memo {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Where a pipeline's runbook gap stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Governance {
    None,
    Open,
    InProgress,
    Remediated,
    Waived,
}

impl Governance {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "open" => Some(Self::Open),
            "in_progress" => Some(Self::InProgress),
            "remediated" => Some(Self::Remediated),
            "waived" => Some(Self::Waived),
            _ => None,
        }
    }
}

/// A pipeline's governance record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GovernanceRecord {
    pub status: Governance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub run_id: String,
    pub pipeline: String,
    pub status: RunStatus,
    /// The event time of the event that set `status`.
    pub status_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nominal_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// `{namespace}/{name}` and run id of the parent run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<(String, String)>,
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Events recorded, by type.
    #[serde(default)]
    pub events: BTreeMap<String, u32>,
    /// What the run added to the totals (`None` until it finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<Contribution>,
    /// Its key in the pipeline's history, fixed by its first event.
    pub history_sk: String,
    pub first_seen: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A pipeline's daily totals item.
pub fn day_key(t: DateTime<Utc>) -> String {
    format!("DAY#{}", t.format("%Y-%m-%d"))
}

/// Moves a totals item with `work`: read now, changed by `change`, written
/// conditional on the version read.
pub async fn move_totals(
    svc: &Services,
    work: &mut Work<'_>,
    pk: String,
    sk: String,
    change: impl FnOnce(&mut Totals),
) -> Result<(), DomainError> {
    let (mut totals, version) = match svc.store.get(&pk, &sk).await? {
        Some(item) => (keys::decode::<Totals>(&item)?, Some(item.version)),
        None => (Totals::default(), None),
    };
    change(&mut totals);
    work.put(
        keys::item(pk, sk, version.map_or(1, |v| v + 1), &totals)?,
        version.map_or(Condition::Absent, Condition::Version),
    );
    Ok(())
}

/// The labels of every alert about pipeline `pl`: its id, team, domain,
/// owner and criticality.
pub fn alert_labels(
    pl: &Pipeline,
) -> Result<serde_json::Map<String, serde_json::Value>, DomainError> {
    let mut labels = serde_json::Map::new();
    labels.insert("pipeline".into(), pl.id.clone().into());
    for (k, v) in [
        ("team", &pl.config.team),
        ("domain", &pl.config.domain),
        ("owner", &pl.config.owner),
    ] {
        if let Some(v) = v {
            labels.insert(k.into(), v.clone().into());
        }
    }
    if let Some(c) = pl.config.criticality {
        labels.insert("criticality".into(), serde_json::to_value(c)?);
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_configurations_are_checked() {
        assert!(check_id("id", "airflow/etl.orders").is_ok());
        assert!(check_id("id", "").is_err());
        assert!(check_id("id", "a\nb").is_err());
        assert!(check_id("id", &"x".repeat(300)).is_err());
        let ok = Config {
            criticality: Some(Criticality::High),
            runbook_url: Some("https://runbooks.example/orders".into()),
            sla: Some(Sla {
                cron: Some("0 6 * * *".into()),
                tz: Some("Europe/Berlin".into()),
                max_duration: Some("45m".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        check_config(&ok).unwrap();
        for bad in [
            Config {
                team: Some("a\u{7}b".into()),
                ..Default::default()
            },
            Config {
                sla: Some(Sla {
                    cron: Some("not cron".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Config {
                sla: Some(Sla {
                    max_duration: Some("soon".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ] {
            assert!(check_config(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_job_id_splits_back_into_namespace_and_name() {
        let p = Pipeline::new("airflow/etl.orders", Utc::now());
        assert_eq!(p.namespace.as_deref(), Some("airflow"));
        assert_eq!(p.name, "etl.orders");
        let p = Pipeline::new("nightly-export", Utc::now());
        assert_eq!((p.namespace, p.name.as_str()), (None, "nightly-export"));
    }
}
