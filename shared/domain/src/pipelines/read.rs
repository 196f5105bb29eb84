//! Reads: the summary, pipelines with their last 7 days, a pipeline's runs,
//! one run with its events. Every read is bounded and says when it
//! stopped early (`truncated`, `warnings`, `degraded`); totals come from
//! the aggregates kept as events arrive, never from a scan of runs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use firewatch_types::{Principal, Role};
use serde::Serialize;

use super::record::{Run, StoredEvent};
use super::{
    check_id, pipeline_pk, pipelines_pk, run_events_pk, runs_pk, Criticality, Pipeline, State,
    Totals,
};
use crate::auth::require_role;
use crate::ports::Query;
use crate::{keys, DomainError, Services};

/// Pipelines one summary reads at most.
pub const SUMMARY_PIPELINES: usize = super::SCAN;
/// Pipelines one list page scans at most while filtering.
const LIST_SCAN: usize = 2_000;

/// Sums of totals, cost by currency.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Window {
    pub runs: u64,
    pub failures: u64,
    pub aborted: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_duration_ms: Option<u64>,
    pub cost: BTreeMap<String, f64>,
}

impl Window {
    fn add(&mut self, t: &Totals) {
        self.runs += t.runs;
        self.failures += t.failures;
        self.aborted += t.aborted;
        for (c, a) in &t.cost {
            *self.cost.entry(c.clone()).or_default() += a;
        }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A pipeline with its last 7 days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineView {
    #[serde(flatten)]
    pub pipeline: Pipeline,
    pub runs_7d: u64,
    pub failures_7d: u64,
    pub cost_7d: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_duration_ms_7d: Option<u64>,
    /// Where it stands against its SLA now (`none` without one).
    pub sla_state: super::sla::SlaState,
}

/// The last `days` days of a pipeline's daily totals.
async fn days_of(
    svc: &Services,
    p: &Principal,
    id: &str,
    now: DateTime<Utc>,
    days: i64,
) -> Result<(Window, u64, u64), DomainError> {
    let mut w = Window::default();
    let (mut timed, mut dur) = (0, 0);
    for (_, t) in super::day_totals(svc, &p.tenant, id, now, days).await? {
        w.add(&t);
        timed += t.timed;
        dur += t.duration_ms;
    }
    Ok((w, timed, dur))
}

async fn view(svc: &Services, p: &Principal, pl: Pipeline) -> Result<PipelineView, DomainError> {
    let now = svc.clock.now();
    let (w, timed, dur) = days_of(svc, p, &pl.id, now, 7).await?;
    Ok(PipelineView {
        sla_state: super::sla::evaluate(&pl, now).state,
        pipeline: pl,
        runs_7d: w.runs,
        failures_7d: w.failures + w.aborted,
        cost_7d: w.cost.into_iter().map(|(c, a)| (c, round2(a))).collect(),
        mean_duration_ms_7d: (timed > 0).then(|| dur / timed),
    })
}

/// One pipeline with its last 7 days.
pub async fn pipeline(
    svc: &Services,
    p: &Principal,
    id: &str,
) -> Result<PipelineView, DomainError> {
    let pl = super::get(svc, p, id).await?;
    view(svc, p, pl).await
}

/// Filters of `GET /v1/pipelines`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub team: Option<String>,
    pub domain: Option<String>,
    pub criticality: Option<Criticality>,
    pub state: Option<State>,
}

impl Filter {
    fn keeps(&self, p: &Pipeline) -> bool {
        self.team
            .as_ref()
            .is_none_or(|t| p.config.team.as_ref() == Some(t))
            && self
                .domain
                .as_ref()
                .is_none_or(|d| p.config.domain.as_ref() == Some(d))
            && self
                .criticality
                .is_none_or(|c| p.config.criticality == Some(c))
            && self.state.is_none_or(|s| p.state == s)
    }
}

/// A page of pipelines in id order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Pipelines matching `filter`, `limit` at most (1–200), after `cursor`.
pub async fn list(
    svc: &Services,
    p: &Principal,
    filter: &Filter,
    cursor: Option<String>,
    limit: usize,
) -> Result<Page<PipelineView>, DomainError> {
    require_role(p, Role::Viewer, "read pipelines")?;
    let limit = limit.clamp(1, 200);
    let mut found = Vec::new();
    let mut after = cursor;
    let mut scanned = 0;
    let next = loop {
        let page = svc
            .store
            .query(Query {
                pk: pipelines_pk(&p.tenant),
                sk_prefix: String::new(),
                after: after.clone(),
                limit: (limit - found.len()).max(50),
                descending: false,
            })
            .await?;
        let mut last = None;
        for item in &page.items {
            scanned += 1;
            last = Some(item.sk.clone());
            let pl: Pipeline = keys::decode(item)?;
            if filter.keeps(&pl) {
                found.push(pl);
                if found.len() == limit {
                    break;
                }
            }
        }
        let more = page.next.is_some() || last.as_ref() != page.items.last().map(|i| &i.sk);
        if found.len() == limit {
            break more.then_some(last).flatten();
        }
        if page.next.is_none() {
            break None;
        }
        if scanned >= LIST_SCAN {
            // Filtering read this much without filling the page: hand the
            // caller a cursor to go on from.
            break last;
        }
        after = page.next;
    };
    let items = futures_util::future::join_all(found.into_iter().map(|pl| view(svc, p, pl)))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        items,
        next_cursor: next,
    })
}

/// A pipeline's runs, newest first (by the time each was first reported):
/// after `cursor`, or skipping `offset`.
pub async fn runs(
    svc: &Services,
    p: &Principal,
    id: &str,
    cursor: Option<String>,
    offset: usize,
    limit: usize,
) -> Result<Page<Run>, DomainError> {
    super::get(svc, p, id).await?;
    let limit = limit.clamp(1, 100);
    if offset > 10_000 {
        return Err(DomainError::bad_input(
            "invalid_query",
            "offset is at most 10000; use the cursor to go further",
        ));
    }
    let query = |after: Option<String>, limit: usize| Query {
        pk: pipeline_pk(&p.tenant, id),
        sk_prefix: "RUN#".into(),
        after,
        limit,
        descending: true,
    };
    let mut after = cursor;
    let mut skip = offset;
    while skip > 0 {
        let page = svc
            .store
            .query(query(after.clone(), skip.min(1000)))
            .await?;
        skip = skip.saturating_sub(page.items.len());
        match page.items.last() {
            Some(last) => after = Some(last.sk.clone()),
            None => {
                return Ok(Page {
                    items: Vec::new(),
                    next_cursor: None,
                })
            }
        }
        if page.next.is_none() && skip > 0 {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
    }
    let page = svc.store.query(query(after, limit)).await?;
    let ids: Vec<String> = page
        .items
        .iter()
        .map(keys::decode::<String>)
        .collect::<Result<_, _>>()?;
    let next = page.next.and(page.items.last().map(|i| i.sk.clone()));
    let pk = runs_pk(&p.tenant);
    let got = futures_util::future::join_all(ids.iter().map(|r| svc.store.get(&pk, r))).await;
    let mut items = Vec::new();
    for item in got {
        if let Some(item) = item? {
            items.push(keys::decode(&item)?);
        }
    }
    Ok(Page {
        items,
        next_cursor: next,
    })
}

/// `GET /v1/runs/{run_id}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    #[serde(flatten)]
    pub run: Run,
    /// In event-time order, at most 100.
    pub event_log: Vec<StoredEvent>,
    pub events_truncated: bool,
}

/// One run with its events.
pub async fn run(svc: &Services, p: &Principal, run_id: &str) -> Result<RunView, DomainError> {
    require_role(p, Role::Viewer, "read pipeline runs")?;
    check_id("the run id", run_id)?;
    let item = svc
        .store
        .get(&runs_pk(&p.tenant), run_id)
        .await?
        .ok_or_else(|| {
            DomainError::NotFound(format!("no run {}", crate::limits::truncate(run_id, 80)))
        })?;
    let run: Run = keys::decode(&item)?;
    let page = svc
        .store
        .query(Query {
            pk: run_events_pk(&p.tenant, run_id),
            sk_prefix: "EV#".into(),
            after: None,
            limit: 100,
            descending: false,
        })
        .await?;
    Ok(RunView {
        run,
        event_log: page
            .items
            .iter()
            .map(keys::decode)
            .collect::<Result<_, _>>()?,
        events_truncated: page.next.is_some(),
    })
}

/// A downstream asset hit by failing pipelines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Asset {
    /// A pipeline downstream of a failing one.
    pub pipeline: String,
    /// How many failing pipelines it is downstream of.
    pub failing_upstreams: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub criticality: Option<Criticality>,
}

/// `GET /v1/summary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub pipelines: usize,
    pub by_state: BTreeMap<&'static str, usize>,
    /// Pipelines whose newest finished run failed or was aborted (up to 50).
    pub failing: Vec<String>,
    pub top_impacted_downstream_assets: Vec<Asset>,
    pub cost_24h: BTreeMap<String, f64>,
    pub cost_7d: BTreeMap<String, f64>,
    pub cost_7d_daily_avg: BTreeMap<String, f64>,
    pub runs_24h: u64,
    pub failures_24h: u64,
    /// Pipelines breaching their SLA now (late, missed, running too long
    /// or stale), and the output datasets of stale ones.
    pub sla_breaches: u64,
    pub stale_datasets: u64,
    pub sla_by_state: BTreeMap<&'static str, usize>,
    pub degraded: bool,
    pub warnings: Vec<String>,
}

/// The tenant's pipelines at a glance.
pub async fn summary(svc: &Services, p: &Principal) -> Result<Summary, DomainError> {
    require_role(p, Role::Viewer, "read pipelines")?;
    let mut s = Summary {
        pipelines: 0,
        by_state: State::ALL.iter().map(|st| (st.as_str(), 0)).collect(),
        failing: Vec::new(),
        top_impacted_downstream_assets: Vec::new(),
        cost_24h: BTreeMap::new(),
        cost_7d: BTreeMap::new(),
        cost_7d_daily_avg: BTreeMap::new(),
        runs_24h: 0,
        failures_24h: 0,
        sla_breaches: 0,
        stale_datasets: 0,
        sla_by_state: BTreeMap::new(),
        degraded: false,
        warnings: Vec::new(),
    };
    let mut failing_all = Vec::new();
    let now = svc.clock.now();
    let mut sla = super::sla::Counts::default_at(now);
    let truncated = super::each(svc, &p.tenant, SUMMARY_PIPELINES, |pl| {
        s.pipelines += 1;
        *s.by_state.entry(pl.state.as_str()).or_default() += 1;
        sla.add(&pl, now);
        if matches!(pl.state, State::Failed | State::Aborted) {
            failing_all.push(pl.id);
        }
    })
    .await?;
    if truncated {
        s.degraded = true;
        s.warnings.push(format!(
            "more than {SUMMARY_PIPELINES} pipelines: the counts are of the first {SUMMARY_PIPELINES}"
        ));
    }
    s.sla_breaches = sla.breaches();
    s.stale_datasets = sla.stale_datasets;
    s.sla_by_state = sla.by_state;
    let c = super::costs::tenant(svc, p).await?;
    s.cost_24h = c.cost_24h;
    s.cost_7d = c.cost_7d;
    s.cost_7d_daily_avg = c.cost_7d_daily_avg;
    s.runs_24h = c.runs_24h;
    s.failures_24h = c.failures_24h;
    // Downstream of what is failing, the 20 first failing pipelines' graphs.
    let mut hits: BTreeMap<String, Asset> = BTreeMap::new();
    if failing_all.len() > 20 {
        s.degraded = true;
        s.warnings.push(format!(
            "{} pipelines are failing: impact is counted for the first 20",
            failing_all.len()
        ));
    }
    for id in failing_all.iter().take(20) {
        let g = super::impact::downstream(svc, &p.tenant, id).await?;
        for c in g.downstream_consumers {
            hits.entry(c.pipeline.clone())
                .or_insert(Asset {
                    pipeline: c.pipeline,
                    failing_upstreams: 0,
                    criticality: c.criticality,
                })
                .failing_upstreams += 1;
        }
    }
    let mut assets: Vec<Asset> = hits.into_values().collect();
    assets.sort_by(|a, b| {
        b.failing_upstreams
            .cmp(&a.failing_upstreams)
            .then(b.criticality.cmp(&a.criticality))
            .then(a.pipeline.cmp(&b.pipeline))
    });
    assets.truncate(10);
    s.top_impacted_downstream_assets = assets;
    failing_all.truncate(50);
    s.failing = failing_all;
    Ok(s)
}
