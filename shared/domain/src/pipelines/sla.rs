//! SLA evaluation: whether a pipeline starts when expected, runs no longer
//! than allowed and keeps its outputs fresh; the `pipelines` scheduler job
//! that turns breaches and cost anomalies into alerts.
//!
//! An SLA (set with `PUT /v1/pipelines/{id}`) expects runs either at the
//! times of a cron expression in a time zone (a run may start up to `grace`
//! before or after a time, default 15m) or at most `max_interval` apart. At
//! any moment ([`evaluate`]) a pipeline with an SLA is:
//!
//! - `missed`: two or more expected starts passed with no run (all but the
//!   newest are missed runs);
//! - `late`: the newest expected start passed its grace with no run;
//! - `long_running`: its current run has run longer than `max_duration`;
//! - `stale`: no run completed for longer than `freshness` (its outputs are
//!   that old);
//! - `ok` otherwise, or `none` without an SLA.
//!
//! Each finished run is also judged once, against the SLA of the moment
//! ([`judge_run`]): started late against its cron time, or ran too long.
//! Those verdicts go into the day totals with the run (`late`, `long`,
//! `on_time`), and the job adds each missed start to the day it was
//! expected (`missed`), so the SLA window reads day totals, never runs.
//!
//! The job raises one alert per kind of breach (source `pipelines`,
//! fingerprints `pipeline-sla:{id}:schedule|duration|freshness`) and one
//! for a cost anomaly at or above `FIREWATCH_COST_ALERT_BAND`
//! (`pipeline-cost:{id}`), and resolves each once it clears. What is open
//! is kept on the pipeline (version-checked), so a tick raises nothing
//! twice; a tick that loses a race to a run event re-reads and re-decides
//! (an alert it ingests again is the same alert, deduplicated into the same
//! incident).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use firewatch_types::{Principal, Role, SourceKind, TenantId};
use serde::{Deserialize, Serialize};

use super::costs;
use super::{pipeline_pk, pipelines_pk, Pipeline, RunStatus, Sla, State};
use crate::auth::require_role;
use crate::cadence::{format_secs, Schedule};
use crate::due::{Budget, JobReport};
use crate::ports::{Condition, Query};
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// The scheduler job that evaluates SLAs and cost anomalies.
pub const JOB: &str = "pipelines";
/// How long after a cron time a run may start and be on time, by default.
pub const DEFAULT_GRACE_SECS: i64 = 15 * 60;
/// Expected starts one evaluation enumerates at most.
pub const MAX_SLOTS: usize = 1000;
/// How far back an evaluation looks for missed starts.
pub const LOOKBACK_DAYS: i64 = costs::KEPT_DAYS;
/// Pipelines listed as breaching in `GET /v1/sla/pipelines`.
const BREACHING_LISTED: usize = 100;

/// Where a pipeline stands against its SLA, the worst breach first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// No SLA configured.
    None,
    Ok,
    Missed,
    Late,
    LongRunning,
    Stale,
}

impl SlaState {
    pub const ALL: [SlaState; 6] = [
        Self::None,
        Self::Ok,
        Self::Missed,
        Self::Late,
        Self::LongRunning,
        Self::Stale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Ok => "ok",
            Self::Missed => "missed",
            Self::Late => "late",
            Self::LongRunning => "long_running",
            Self::Stale => "stale",
        }
    }

    pub fn is_breach(self) -> bool {
        !matches!(self, Self::None | Self::Ok)
    }

    /// The alert a breach of this kind raises.
    fn alert_kind(self) -> Option<&'static str> {
        match self {
            Self::Missed | Self::Late => Some("schedule"),
            Self::LongRunning => Some("duration"),
            Self::Stale => Some("freshness"),
            Self::None | Self::Ok => None,
        }
    }
}

pub use super::Memo;

/// An SLA's rules, parsed.
struct Rules {
    expect: Option<Schedule>,
    grace: Duration,
    max_duration: Option<Duration>,
    freshness: Option<Duration>,
}

fn secs(v: &Option<String>) -> Option<i64> {
    v.as_deref()
        .and_then(|v| crate::units::duration_secs(v).ok())
        .and_then(|s| i64::try_from(s).ok())
}

fn rules(sla: &Sla) -> Rules {
    let positive = |v: &Option<String>| secs(v).filter(|s| *s > 0).map(Duration::seconds);
    let expect = match (&sla.cron, secs(&sla.max_interval)) {
        (Some(expr), _) => Some(Schedule::Cron {
            expr: expr.clone(),
            tz: sla.tz.clone().unwrap_or_else(|| "UTC".into()),
        }),
        (None, Some(s)) if s > 0 => Some(Schedule::Period { secs: s }),
        _ => None,
    };
    let grace = secs(&sla.grace).unwrap_or(if sla.cron.is_some() {
        DEFAULT_GRACE_SECS
    } else {
        0
    });
    Rules {
        expect,
        grace: Duration::seconds(grace),
        max_duration: positive(&sla.max_duration),
        freshness: positive(&sla.freshness),
    }
}

/// The newest time of `s` at or before `t`.
fn slot_at_or_before(s: &Schedule, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    for back in [3_600i64, 86_400, 8 * 86_400, 32 * 86_400, 367 * 86_400] {
        let mut cur = s.next_after(t - Duration::seconds(back))?;
        if cur > t {
            continue;
        }
        for _ in 0..10_000 {
            match s.next_after(cur) {
                Some(n) if n <= t => cur = n,
                _ => break,
            }
        }
        return Some(cur);
    }
    None
}

/// Judges a finished run against `sla`: (started late against its cron
/// time, ran longer than `max_duration`). A run belongs to the newest cron
/// time at or before its start plus the grace (so an early start belongs
/// to the time it precedes). Lateness against `max_interval` depends on
/// other runs and is judged by the job instead.
pub fn judge_run(
    sla: &Sla,
    started: Option<DateTime<Utc>>,
    duration_ms: Option<u64>,
) -> (bool, bool) {
    let r = rules(sla);
    let late = match (&r.expect, started) {
        (Some(s @ Schedule::Cron { .. }), Some(st)) => {
            slot_at_or_before(s, st + r.grace).is_some_and(|slot| st - slot > r.grace)
        }
        _ => false,
    };
    let long = match (r.max_duration, duration_ms) {
        (Some(max), Some(d)) => i64::try_from(d).unwrap_or(i64::MAX) > max.num_milliseconds(),
        _ => false,
    };
    (late, long)
}

/// One breach of an SLA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Breach {
    pub kind: SlaState,
    /// When the breach began.
    pub since: DateTime<Utc>,
    pub detail: String,
}

/// A pipeline against its SLA at a moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub state: SlaState,
    pub breaches: Vec<Breach>,
    /// The next expected start not yet due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_expected_at: Option<DateTime<Utc>>,
    /// Expected starts that passed with no run, oldest first (within
    /// [`LOOKBACK_DAYS`], at most [`MAX_SLOTS`]); the newest due start is
    /// `late`, not among them, until the one after it is due too.
    #[serde(skip)]
    pub missed: Vec<DateTime<Utc>>,
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Pipeline `pl` against its SLA at `now`.
pub fn evaluate(pl: &Pipeline, now: DateTime<Utc>) -> Evaluation {
    let mut e = Evaluation {
        state: SlaState::None,
        breaches: Vec::new(),
        next_expected_at: None,
        missed: Vec::new(),
    };
    let Some(sla) = &pl.config.sla else {
        return e;
    };
    let r = rules(sla);
    let since = pl.sla_memo.since.unwrap_or(pl.created_at);
    if let Some(expect) = &r.expect {
        let started = pl
            .last_started_at
            .max(pl.last_run.as_ref().and_then(|l| l.started_at))
            .filter(|s| *s >= since - r.grace);
        // Starts expected strictly after `from` are not covered by a run.
        let from = match (started, expect) {
            (Some(s), Schedule::Cron { .. }) => s + r.grace,
            (Some(s), Schedule::Period { .. }) => s,
            (None, _) => since,
        };
        let mut cur = from.max(now - Duration::days(LOOKBACK_DAYS));
        let mut due = Vec::new();
        while due.len() < MAX_SLOTS {
            let Some(slot) = expect.next_after(cur) else {
                break;
            };
            if slot + r.grace > now {
                e.next_expected_at = Some(slot);
                break;
            }
            due.push(slot);
            cur = slot;
        }
        if let Some((&newest, older)) = due.split_last() {
            let last = match started {
                Some(s) => format!("the last run started at {}", at(s)),
                None => "no run since the SLA was set".into(),
            };
            if older.is_empty() {
                e.breaches.push(Breach {
                    kind: SlaState::Late,
                    since: newest + r.grace,
                    detail: format!(
                        "a run was expected to start at {} (grace {}); {last}",
                        at(newest),
                        format_secs(r.grace.num_seconds())
                    ),
                });
            } else {
                e.breaches.push(Breach {
                    kind: SlaState::Missed,
                    since: older[0] + r.grace,
                    detail: format!(
                        "{}{} expected runs did not start, the first at {}; {last}",
                        older.len(),
                        if due.len() == MAX_SLOTS { "+" } else { "" },
                        at(older[0])
                    ),
                });
                e.missed = older.to_vec();
            }
        }
    }
    if let Some(max) = r.max_duration {
        let running = pl
            .last_run
            .as_ref()
            .filter(|l| pl.state == State::Running && l.status == RunStatus::Running);
        if let Some((run, start)) = running.and_then(|l| Some((l, l.started_at?))) {
            if now - start > max {
                e.breaches.push(Breach {
                    kind: SlaState::LongRunning,
                    since: start + max,
                    detail: format!(
                        "run {} has run for {}, longer than {}",
                        run.run_id,
                        format_secs((now - start).num_seconds()),
                        format_secs(max.num_seconds())
                    ),
                });
            }
        }
    }
    if let Some(fresh) = r.freshness {
        let written = pl.last_succeeded_at;
        let basis = written.unwrap_or(since);
        if now - basis > fresh {
            let outputs = if pl.outputs.is_empty() {
                "its outputs".to_owned()
            } else {
                pl.outputs.join(", ")
            };
            e.breaches.push(Breach {
                kind: SlaState::Stale,
                since: basis + fresh,
                detail: match written {
                    Some(w) => format!(
                        "{outputs} last written at {} by a completed run, older than {}",
                        at(w),
                        format_secs(fresh.num_seconds())
                    ),
                    None => format!(
                        "no run completed since the SLA was set: {outputs} older than {}",
                        format_secs(fresh.num_seconds())
                    ),
                },
            });
        }
    }
    e.state = e.breaches.first().map_or(SlaState::Ok, |b| b.kind);
    e
}

/// SLA totals of days.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SlaDay {
    pub day: String,
    pub runs: u64,
    pub on_time: u64,
    pub late: u64,
    pub long: u64,
    pub missed: u64,
}

/// A pipeline's SLA window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaWindow {
    pub days: i64,
    pub runs: u64,
    pub on_time: u64,
    pub late: u64,
    pub long: u64,
    pub missed: u64,
    /// Runs expected: those that ran and those missed.
    pub expected: u64,
    /// On-time runs of those expected; `null` with nothing expected.
    pub on_time_ratio: Option<f64>,
}

/// `GET /v1/pipelines/{id}/sla`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaView {
    pub pipeline: String,
    pub sla: Option<Sla>,
    #[serde(flatten)]
    pub evaluation: Evaluation,
    pub window: SlaWindow,
    pub daily: Vec<SlaDay>,
    pub degraded: bool,
    pub warnings: Vec<String>,
}

/// Pipeline `id` against its SLA now, with the last `days` days (1–90) of
/// on-time, late, long and missed runs.
pub async fn pipeline(
    svc: &Services,
    p: &Principal,
    id: &str,
    days: i64,
) -> Result<SlaView, DomainError> {
    let pl = super::get(svc, p, id).await?;
    if !(1..=90).contains(&days) {
        return Err(DomainError::bad_input(
            "invalid_query",
            "days must be between 1 and 90",
        ));
    }
    let now = svc.clock.now();
    let mut daily = Vec::new();
    for (day, t) in super::day_totals(svc, &p.tenant, id, now, days).await? {
        daily.push(SlaDay {
            day,
            runs: t.runs,
            on_time: t.on_time,
            late: t.late,
            long: t.long,
            missed: t.missed,
        });
    }
    let sum = |f: fn(&SlaDay) -> u64| daily.iter().map(f).sum::<u64>();
    let (runs, on_time, missed) = (sum(|d| d.runs), sum(|d| d.on_time), sum(|d| d.missed));
    let expected = runs + missed;
    let window = SlaWindow {
        days,
        runs,
        on_time,
        late: sum(|d| d.late),
        long: sum(|d| d.long),
        missed,
        expected,
        on_time_ratio: (expected > 0)
            .then(|| (on_time as f64 / expected as f64 * 1000.0).round() / 1000.0),
    };
    let mut warnings = Vec::new();
    if pl.config.sla.is_none() {
        warnings.push(format!(
            "pipeline {id} has no SLA: set one with PUT /v1/pipelines/{id} (sla.cron or sla.max_interval, max_duration, freshness)"
        ));
    }
    Ok(SlaView {
        pipeline: pl.id.clone(),
        sla: pl.config.sla.clone(),
        evaluation: evaluate(&pl, now),
        window,
        daily,
        degraded: false,
        warnings,
    })
}

/// A pipeline in breach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Breaching {
    pub pipeline: String,
    pub state: SlaState,
    pub since: DateTime<Utc>,
    pub detail: String,
}

/// `GET /v1/sla/pipelines`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counts {
    pub pipelines: usize,
    pub by_state: BTreeMap<&'static str, usize>,
    /// Pipelines in breach, the longest first (up to 100).
    pub breaching: Vec<Breaching>,
    /// Output datasets of stale pipelines.
    pub stale_datasets: u64,
    pub evaluated_at: DateTime<Utc>,
    pub truncated: bool,
    pub degraded: bool,
    pub warnings: Vec<String>,
}

/// The tenant's pipelines by SLA state, evaluated now.
pub async fn counts(svc: &Services, p: &Principal) -> Result<Counts, DomainError> {
    require_role(p, Role::Viewer, "read pipelines")?;
    let now = svc.clock.now();
    let mut c = Counts::default_at(now);
    let truncated = super::each(svc, &p.tenant, super::SCAN, |pl| {
        c.add(&pl, now);
    })
    .await?;
    c.breaching.sort_by_key(|a| a.since);
    c.breaching.truncate(BREACHING_LISTED);
    if truncated {
        c.truncated = true;
        c.degraded = true;
        c.warnings.push(format!(
            "more than {} pipelines: the first {} are counted",
            super::SCAN,
            super::SCAN
        ));
    }
    Ok(c)
}

impl Counts {
    /// No pipeline counted yet, evaluated at `now`.
    pub(super) fn default_at(now: DateTime<Utc>) -> Self {
        Self {
            pipelines: 0,
            by_state: SlaState::ALL.iter().map(|s| (s.as_str(), 0)).collect(),
            breaching: Vec::new(),
            stale_datasets: 0,
            evaluated_at: now,
            truncated: false,
            degraded: false,
            warnings: Vec::new(),
        }
    }

    /// Counts one pipeline evaluated at `now`.
    pub(super) fn add(&mut self, pl: &Pipeline, now: DateTime<Utc>) {
        let e = evaluate(pl, now);
        self.pipelines += 1;
        *self.by_state.entry(e.state.as_str()).or_default() += 1;
        if e.breaches.iter().any(|b| b.kind == SlaState::Stale) {
            self.stale_datasets += pl.outputs.len() as u64;
        }
        if let Some(b) = e.breaches.first() {
            self.breaching.push(Breaching {
                pipeline: pl.id.clone(),
                state: b.kind,
                since: b.since,
                detail: b.detail.clone(),
            });
        }
    }

    /// Pipelines in breach.
    pub fn breaches(&self) -> u64 {
        SlaState::ALL
            .iter()
            .filter(|s| s.is_breach())
            .map(|s| self.by_state.get(s.as_str()).copied().unwrap_or(0) as u64)
            .sum()
    }
}

/// The `pipelines` job: for every pipeline with an SLA or spend, raises an
/// alert for each new breach and cost anomaly, resolves those that
/// cleared, and counts missed starts into their days.
pub async fn run(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    crate::recording::scope("job:pipelines", run_scoped(svc, budget)).await
}

async fn run_scoped(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    let mut report = JobReport::default();
    for tenant in crate::auth::known_tenants(svc).await? {
        if budget.exhausted() {
            report.more = true;
            break;
        }
        if let Err(e) = check_tenant(svc, &tenant, budget, &mut report).await {
            report.failed += 1;
            tracing::warn!(%tenant, error = %e, "pipelines check failed");
        }
    }
    Ok(report)
}

async fn check_tenant(
    svc: &Services,
    tenant: &TenantId,
    budget: &Budget,
    report: &mut JobReport,
) -> Result<(), DomainError> {
    let mut after = None;
    loop {
        let page = svc
            .store
            .query(Query {
                pk: pipelines_pk(tenant),
                sk_prefix: String::new(),
                after: after.take(),
                limit: 200,
                descending: false,
            })
            .await?;
        for item in &page.items {
            if budget.exhausted() {
                report.more = true;
                return Ok(());
            }
            let pl: Pipeline = keys::decode(item)?;
            if pl.config.sla.is_none() && pl.cost_days.is_empty() && pl.sla_memo.alerts.is_empty() {
                continue;
            }
            report.checked += 1;
            if let Err(e) = check_pipeline(svc, tenant, pl, item.version, report).await {
                report.failed += 1;
                tracing::warn!(%tenant, error = %e, "pipeline SLA check failed");
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(()),
        }
    }
}

/// An alert the job wants open: its title and reason.
struct Wanted {
    title: String,
    reason: String,
}

/// The alerts pipeline `pl` should have open at `now`, by kind.
fn wanted(
    svc: &Services,
    pl: &Pipeline,
    e: &Evaluation,
    now: DateTime<Utc>,
) -> BTreeMap<&'static str, Wanted> {
    let mut out = BTreeMap::new();
    for b in &e.breaches {
        let Some(kind) = b.kind.alert_kind() else {
            continue;
        };
        let title = match b.kind {
            SlaState::Missed => format!("Pipeline {} missed its expected runs", pl.id),
            SlaState::Late => format!("Pipeline {} is late", pl.id),
            SlaState::LongRunning => format!("Pipeline {} is running too long", pl.id),
            _ => format!("Outputs of pipeline {} are stale", pl.id),
        };
        out.entry(kind).or_insert(Wanted {
            title,
            reason: b.detail.clone(),
        });
    }
    if let Some(band) = svc.settings.cost_alert_band {
        let recent = (now - Duration::days(1)).format("%Y-%m-%d").to_string();
        if let Some(a) = costs::anomalies_of(pl)
            .into_iter()
            .filter(|a| a.ratio.is_some() && a.band >= band && a.day >= recent)
            .max_by(|a, b| a.band.cmp(&b.band))
        {
            out.insert(
                "cost",
                Wanted {
                    title: format!(
                        "Pipeline {} cost {} {} on {}: {}x its baseline",
                        pl.id,
                        a.latest,
                        a.currency,
                        a.day,
                        a.ratio.unwrap_or_default()
                    ),
                    reason: costs::cost_summary(&a),
                },
            );
        }
    }
    out
}

fn fingerprint(pl: &Pipeline, kind: &str) -> String {
    match kind {
        "cost" => format!("pipeline-cost:{}", pl.id),
        _ => format!("pipeline-sla:{}:{kind}", pl.id),
    }
}

async fn send(
    svc: &Services,
    tenant: &TenantId,
    pl: &Pipeline,
    kind: &str,
    firing: Option<&Wanted>,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let mut labels = super::alert_labels(pl)?;
    labels.insert("sla".into(), kind.into());
    let mut links = Vec::new();
    if let Some(base) = &svc.settings.public_url {
        let path = if kind == "cost" {
            format!("{base}/v1/costs/anomalies/{}/investigate", pl.id)
        } else {
            format!("{base}/v1/pipelines/{}/sla", pl.id)
        };
        links.push(serde_json::json!({"href": path, "text": kind}));
    }
    links.extend(super::runbooks::runbook_link(pl));
    let title = match firing {
        Some(w) => w.title.clone(),
        None => format!("Pipeline {} {kind} alert", pl.id),
    };
    let reason = firing.map_or_else(
        || format!("{kind} is back within bounds"),
        |w| w.reason.clone(),
    );
    let severity = pl
        .config
        .criticality
        .map_or(firewatch_types::Severity::Sev3, |c| c.severity());
    let alert = serde_json::json!({
        "title": title,
        "status": if firing.is_some() { "firing" } else { "resolved" },
        "severity": severity,
        "fingerprint": fingerprint(pl, kind),
        "labels": labels,
        "annotations": {"reason": reason},
        "links": links,
        if firing.is_some() { "starts_at" } else { "ends_at" }: now,
    });
    crate::ingest::ingest_alert(svc, tenant, SourceKind::Pipelines, JOB.into(), &alert)
        .await
        .map(|_| ())
}

async fn check_pipeline(
    svc: &Services,
    tenant: &TenantId,
    mut pl: Pipeline,
    mut version: u64,
    report: &mut JobReport,
) -> Result<(), DomainError> {
    // Few: each attempt sends its alerts before it writes (an alert sent
    // again is deduplicated, but counted).
    let mut tries = crate::retry::Tries::new(5);
    while tries.next().await {
        if tries.is_retry() {
            match super::load(svc, tenant, &pl.id).await? {
                Some((p, v)) => (pl, version) = (p, v),
                None => return Ok(()),
            }
        }
        let now = svc.clock.now();
        let e = evaluate(&pl, now);
        let wanted = wanted(svc, &pl, &e, now);
        let open = pl.sla_memo.alerts.clone();
        let new_missed: Vec<DateTime<Utc>> = e
            .missed
            .iter()
            .copied()
            .filter(|s| pl.sla_memo.missed_through.is_none_or(|m| *s > m))
            .collect();
        let raise: Vec<&str> = wanted
            .keys()
            .copied()
            .filter(|k| !open.contains(*k))
            .collect();
        let resolve: Vec<String> = open
            .iter()
            .filter(|k| !wanted.contains_key(k.as_str()))
            .cloned()
            .collect();
        if raise.is_empty() && resolve.is_empty() && new_missed.is_empty() {
            return Ok(());
        }
        for kind in &raise {
            send(svc, tenant, &pl, kind, wanted.get(kind), now).await?;
            report.alerts += 1;
        }
        for kind in &resolve {
            send(svc, tenant, &pl, kind, None, now).await?;
            report.alerts += 1;
        }
        let mut next = pl.clone();
        next.sla_memo.alerts = wanted.keys().map(|k| (*k).to_owned()).collect();
        if let Some(last) = new_missed.last() {
            next.sla_memo.missed_through = Some(*last);
        }
        let mut per_day: BTreeMap<String, u64> = BTreeMap::new();
        for s in &new_missed {
            *per_day.entry(super::day_key(*s)).or_default() += 1;
        }
        let mut work = Work::new(svc);
        work.put(
            keys::item(pipelines_pk(tenant), pl.id.clone(), version + 1, &next)?,
            Condition::Version(version),
        );
        for (day, n) in per_day {
            super::move_totals(svc, &mut work, pipeline_pk(tenant, &pl.id), day, |t| {
                t.missed += n;
            })
            .await?;
        }
        match work.commit().await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_lost_race() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::conflict(
        "busy",
        "the pipeline kept changing; its SLA is evaluated again at the next tick",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn with_sla(sla: Sla, since: &str) -> Pipeline {
        let mut p = Pipeline::new("airflow/etl.orders", t(since));
        p.config.sla = Some(sla);
        p.sla_memo.since = Some(t(since));
        p
    }

    fn berlin_six() -> Sla {
        Sla {
            cron: Some("0 6 * * *".into()),
            tz: Some("Europe/Berlin".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_cron_run_is_late_after_its_grace_in_its_time_zone() {
        // 06:00 in Berlin is 05:00 UTC in winter.
        let mut p = with_sla(berlin_six(), "2026-11-30T12:00:00Z");
        p.last_started_at = Some(t("2026-12-01T05:02:00Z"));
        let e = evaluate(&p, t("2026-12-02T05:14:00Z"));
        assert_eq!(e.state, SlaState::Ok, "within the 15m grace");
        assert_eq!(e.next_expected_at, Some(t("2026-12-02T05:00:00Z")));
        let e = evaluate(&p, t("2026-12-02T05:16:00Z"));
        assert_eq!(e.state, SlaState::Late);
        assert_eq!(e.breaches[0].since, t("2026-12-02T05:15:00Z"));
        assert!(e.missed.is_empty());
        // A run that starts covers it.
        p.last_started_at = Some(t("2026-12-02T05:20:00Z"));
        assert_eq!(evaluate(&p, t("2026-12-02T05:30:00Z")).state, SlaState::Ok);
        // A run started a little early covers the time it precedes.
        p.last_started_at = Some(t("2026-12-02T04:50:00Z"));
        assert_eq!(evaluate(&p, t("2026-12-02T06:30:00Z")).state, SlaState::Ok);
    }

    #[test]
    fn the_local_time_holds_across_a_dst_change() {
        // Berlin leaves summer time on 2026-10-25: 06:00 is 04:00 UTC
        // before and 05:00 UTC after.
        let mut p = with_sla(berlin_six(), "2026-10-20T00:00:00Z");
        p.last_started_at = Some(t("2026-10-24T04:00:00Z"));
        let e = evaluate(&p, t("2026-10-25T04:30:00Z"));
        assert_eq!(e.state, SlaState::Ok, "06:00 local is 05:00 UTC now");
        assert_eq!(e.next_expected_at, Some(t("2026-10-25T05:00:00Z")));
        assert_eq!(
            evaluate(&p, t("2026-10-25T05:16:00Z")).state,
            SlaState::Late
        );
    }

    #[test]
    fn two_expected_starts_without_a_run_are_a_miss() {
        let mut p = with_sla(berlin_six(), "2026-11-20T00:00:00Z");
        p.last_started_at = Some(t("2026-11-29T05:00:00Z"));
        let e = evaluate(&p, t("2026-12-01T05:30:00Z"));
        assert_eq!(e.state, SlaState::Missed);
        assert_eq!(e.missed, vec![t("2026-11-30T05:00:00Z")]);
        assert!(e.breaches[0]
            .detail
            .contains("1 expected runs did not start"));
        // No start before the SLA was set is expected.
        let fresh = with_sla(berlin_six(), "2026-12-01T05:10:00Z");
        assert_eq!(
            evaluate(&fresh, t("2026-12-01T23:00:00Z")).state,
            SlaState::Ok
        );
    }

    #[test]
    fn an_interval_sla_is_late_past_its_interval() {
        let mut p = with_sla(
            Sla {
                max_interval: Some("2h".into()),
                ..Default::default()
            },
            "2026-12-01T00:00:00Z",
        );
        p.last_started_at = Some(t("2026-12-01T10:00:00Z"));
        assert_eq!(evaluate(&p, t("2026-12-01T11:59:00Z")).state, SlaState::Ok);
        assert_eq!(
            evaluate(&p, t("2026-12-01T12:01:00Z")).state,
            SlaState::Late
        );
        let e = evaluate(&p, t("2026-12-01T16:30:00Z"));
        assert_eq!(e.state, SlaState::Missed);
        assert_eq!(e.missed.len(), 2, "12:00 and 14:00; 16:00 is late");
    }

    #[test]
    fn long_runs_and_stale_outputs_are_breaches() {
        let mut p = with_sla(
            Sla {
                max_duration: Some("30m".into()),
                freshness: Some("1d".into()),
                ..Default::default()
            },
            "2026-12-01T00:00:00Z",
        );
        p.state = State::Running;
        p.outputs = vec!["warehouse/orders".into()];
        p.last_succeeded_at = Some(t("2026-12-01T09:00:00Z"));
        p.last_run = Some(super::super::LastRun {
            run_id: "r1".into(),
            status: RunStatus::Running,
            started_at: Some(t("2026-12-01T10:00:00Z")),
            ended_at: None,
            error: None,
        });
        let e = evaluate(&p, t("2026-12-01T10:20:00Z"));
        assert_eq!(e.state, SlaState::Ok);
        let e = evaluate(&p, t("2026-12-01T10:31:00Z"));
        assert_eq!(e.state, SlaState::LongRunning);
        assert!(e.breaches[0].detail.contains("run r1"));
        let e = evaluate(&p, t("2026-12-02T09:01:00Z"));
        let kinds: Vec<SlaState> = e.breaches.iter().map(|b| b.kind).collect();
        assert_eq!(kinds, vec![SlaState::LongRunning, SlaState::Stale]);
        assert!(e.breaches[1].detail.contains("warehouse/orders"));
    }

    #[test]
    fn a_finished_run_is_judged_against_its_cron_time_and_max_duration() {
        let sla = Sla {
            max_duration: Some("30m".into()),
            ..berlin_six()
        };
        let start = |s: &str| Some(t(s));
        assert_eq!(
            judge_run(&sla, start("2026-12-01T05:10:00Z"), Some(60_000)),
            (false, false)
        );
        assert_eq!(
            judge_run(&sla, start("2026-12-01T05:20:00Z"), Some(60_000)),
            (true, false)
        );
        assert_eq!(
            judge_run(&sla, start("2026-12-01T04:50:00Z"), Some(31 * 60_000)),
            (false, true)
        );
        assert_eq!(judge_run(&sla, None, None), (false, false));
    }
}
