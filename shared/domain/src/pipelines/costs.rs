//! Cost views: the tenant's spend (24 h, 7 days, daily average), its daily
//! trend, a ranking of pipelines, one pipeline's days, and anomalies (a
//! pipeline's latest day against the mean of the 7 days before it).
//!
//! Every figure comes from totals kept as runs finish: the tenant's hourly
//! shards, each pipeline's day items, and the last [`KEPT_DAYS`] days of
//! cost on the pipeline item itself (so the ranking and the anomalies read
//! pipelines, never runs).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use firewatch_types::{Principal, Role};
use serde::Serialize;

use super::{check_id, hours_pk, pipeline_pk, Criticality, Pipeline, Totals};
use crate::auth::require_role;
use crate::ports::Query;
use crate::{keys, DomainError, Services};

/// Days of cost kept on each pipeline item.
pub const KEPT_DAYS: i64 = 15;
/// Days a baseline spans.
pub const BASELINE_DAYS: i64 = 7;
pub use super::SCAN;

/// Cost by currency.
pub type Money = BTreeMap<String, f64>;

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn rounded(m: Money) -> Money {
    m.into_iter().map(|(c, a)| (c, round2(a))).collect()
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// Moves `cost` on `day` into (`sign` 1) or out of (-1) a pipeline's kept
/// days, dropping days older than [`KEPT_DAYS`] before `now`.
pub fn keep(
    days: &mut BTreeMap<String, Money>,
    at: DateTime<Utc>,
    cost: &super::Cost,
    sign: f64,
    now: DateTime<Utc>,
) {
    let oldest = day(now - Duration::days(KEPT_DAYS));
    let d = day(at);
    if d >= oldest {
        let e = days.entry(d.clone()).or_default();
        let v = e.entry(cost.currency.clone()).or_default();
        *v += cost.amount * sign;
        if v.abs() < 1e-9 {
            e.remove(&cost.currency);
        }
        if e.is_empty() {
            days.remove(&d);
        }
    }
    days.retain(|k, _| *k >= oldest);
}

/// `GET /v1/costs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Costs {
    pub cost_24h: Money,
    pub cost_7d: Money,
    pub cost_7d_daily_avg: Money,
    pub runs_24h: u64,
    pub failures_24h: u64,
}

/// A day of the tenant's trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    pub day: String,
    pub cost: Money,
    pub runs: u64,
    pub failures: u64,
}

/// The tenant's hourly shards of the last `hours` hours, oldest first.
async fn hours(
    svc: &Services,
    p: &Principal,
    hours: i64,
) -> Result<Vec<(String, Totals)>, DomainError> {
    let from = (svc.clock.now() - Duration::hours(hours))
        .format("%Y-%m-%dT%H")
        .to_string();
    let mut after = Some(format!("{from}#~"));
    let mut out = Vec::new();
    loop {
        let page = svc
            .store
            .query(Query {
                pk: hours_pk(&p.tenant),
                sk_prefix: String::new(),
                after: after.take(),
                limit: 1000,
                descending: false,
            })
            .await?;
        for item in &page.items {
            let hour = item.sk.split('#').next().unwrap_or_default().to_owned();
            out.push((hour, keys::decode(item)?));
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// The tenant's spend and runs of the last 24 hours and 7 days.
pub async fn tenant(svc: &Services, p: &Principal) -> Result<Costs, DomainError> {
    require_role(p, Role::Viewer, "read costs")?;
    let day_ago = (svc.clock.now() - Duration::hours(24))
        .format("%Y-%m-%dT%H")
        .to_string();
    let mut c = Costs::default();
    for (hour, t) in hours(svc, p, 24 * 7).await? {
        let recent = hour > day_ago;
        for (cur, a) in &t.cost {
            *c.cost_7d.entry(cur.clone()).or_default() += a;
            if recent {
                *c.cost_24h.entry(cur.clone()).or_default() += a;
            }
        }
        if recent {
            c.runs_24h += t.runs;
            c.failures_24h += t.failures + t.aborted;
        }
    }
    c.cost_7d_daily_avg = c
        .cost_7d
        .iter()
        .map(|(cur, a)| (cur.clone(), round2(a / BASELINE_DAYS as f64)))
        .collect();
    c.cost_24h = rounded(c.cost_24h);
    c.cost_7d = rounded(c.cost_7d);
    Ok(c)
}

fn check_days(days: i64, max: i64) -> Result<(), DomainError> {
    if !(1..=max).contains(&days) {
        return Err(DomainError::bad_input(
            "invalid_query",
            format!("days must be between 1 and {max}"),
        ));
    }
    Ok(())
}

/// The tenant's spend per day over the last `days` days (1–30), oldest first.
pub async fn trend(svc: &Services, p: &Principal, days: i64) -> Result<Vec<Day>, DomainError> {
    require_role(p, Role::Viewer, "read costs")?;
    check_days(days, 30)?;
    let now = svc.clock.now();
    let mut by_day: BTreeMap<String, Day> = (0..days)
        .rev()
        .map(|n| {
            let d = day(now - Duration::days(n));
            (
                d.clone(),
                Day {
                    day: d,
                    cost: Money::new(),
                    runs: 0,
                    failures: 0,
                },
            )
        })
        .collect();
    for (hour, t) in hours(svc, p, 24 * days).await? {
        if let Some(d) = by_day.get_mut(&hour[..hour.len().min(10)]) {
            d.runs += t.runs;
            d.failures += t.failures + t.aborted;
            for (cur, a) in &t.cost {
                *d.cost.entry(cur.clone()).or_default() += a;
            }
        }
    }
    Ok(by_day
        .into_values()
        .map(|mut d| {
            d.cost = rounded(d.cost);
            d
        })
        .collect())
}

/// One pipeline's days over the last `days` days (1–90), oldest first.
pub async fn pipeline(
    svc: &Services,
    p: &Principal,
    id: &str,
    days: i64,
) -> Result<Vec<Day>, DomainError> {
    super::get(svc, p, id).await?;
    check_days(days, 90)?;
    Ok(super::day_totals(svc, &p.tenant, id, svc.clock.now(), days)
        .await?
        .into_iter()
        .map(|(day, t)| Day {
            day,
            cost: rounded(t.cost),
            runs: t.runs,
            failures: t.failures + t.aborted,
        })
        .collect())
}

/// Reads the tenant's pipelines, at most [`SCAN`]; `true` when more were left.
async fn all(svc: &Services, p: &Principal) -> Result<(Vec<Pipeline>, bool), DomainError> {
    let mut out = Vec::new();
    let more = super::each(svc, &p.tenant, SCAN, |pl| out.push(pl)).await?;
    Ok((out, more))
}

/// A pipeline in the cost ranking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    pub pipeline: String,
    pub cost: Money,
    pub team: Option<String>,
    pub domain: Option<String>,
    pub criticality: Option<Criticality>,
}

/// `GET /v1/costs/pipelines`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranking {
    pub days: i64,
    pub items: Vec<Ranked>,
    pub truncated: bool,
    pub warnings: Vec<String>,
}

/// Pipelines by their spend over the last `days` days (1–14), most first
/// (summed across currencies for the order), `limit` at most.
pub async fn ranking(
    svc: &Services,
    p: &Principal,
    days: i64,
    limit: usize,
) -> Result<Ranking, DomainError> {
    require_role(p, Role::Viewer, "read costs")?;
    check_days(days, KEPT_DAYS - 1)?;
    let since = day(svc.clock.now() - Duration::days(days - 1));
    let (pipelines, truncated) = all(svc, p).await?;
    let mut items: Vec<Ranked> = pipelines
        .into_iter()
        .filter_map(|pl| {
            let mut cost = Money::new();
            for (d, m) in &pl.cost_days {
                if *d >= since {
                    for (cur, a) in m {
                        *cost.entry(cur.clone()).or_default() += a;
                    }
                }
            }
            (!cost.is_empty()).then(|| Ranked {
                pipeline: pl.id,
                cost: rounded(cost),
                team: pl.config.team,
                domain: pl.config.domain,
                criticality: pl.config.criticality,
            })
        })
        .collect();
    let total = |r: &Ranked| r.cost.values().sum::<f64>();
    items.sort_by(|a, b| {
        total(b)
            .partial_cmp(&total(a))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.pipeline.cmp(&b.pipeline))
    });
    let mut warnings = Vec::new();
    if items.iter().any(|r| r.cost.len() > 1) {
        warnings
            .push("spend in more than one currency: the order sums the amounts as they are".into());
    }
    if truncated {
        warnings.push(format!(
            "more than {SCAN} pipelines: the ranking covers the first {SCAN}"
        ));
    }
    items.truncate(limit.clamp(1, 500));
    Ok(Ranking {
        days,
        items,
        truncated,
        warnings,
    })
}

pub use crate::settings::Band;

/// One pipeline's latest day against its baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    pub pipeline: String,
    pub team: Option<String>,
    pub domain: Option<String>,
    pub criticality: Option<Criticality>,
    pub currency: String,
    /// The latest day with spend (today or earlier).
    pub day: String,
    pub latest: f64,
    /// The mean of the 7 days before `day` (days without spend count as 0).
    pub baseline: f64,
    pub delta: f64,
    /// latest / baseline; `null` with no baseline.
    pub ratio: Option<f64>,
    pub band: Band,
    pub anomaly: bool,
}

/// The anomaly of each pipeline's latest day with spend, per currency.
pub fn anomalies_of(pl: &Pipeline) -> Vec<Anomaly> {
    let Some((latest_day, latest)) = pl.cost_days.iter().next_back() else {
        return Vec::new();
    };
    let Ok(d) = NaiveDate::parse_from_str(latest_day, "%Y-%m-%d") else {
        return Vec::new();
    };
    let window: Vec<String> = (1..=BASELINE_DAYS)
        .map(|n| (d - Duration::days(n)).format("%Y-%m-%d").to_string())
        .collect();
    latest
        .iter()
        .map(|(cur, amount)| {
            let base: f64 = window
                .iter()
                .filter_map(|w| pl.cost_days.get(w).and_then(|m| m.get(cur)))
                .sum::<f64>()
                / BASELINE_DAYS as f64;
            let ratio = (base > 0.0).then(|| round2(amount / base));
            let band = match ratio {
                None if *amount > 0.0 => Band::High,
                None => Band::None,
                Some(r) if r >= 3.0 => Band::High,
                Some(r) if r >= 2.0 => Band::Medium,
                Some(r) if r >= 1.5 => Band::Low,
                Some(_) => Band::None,
            };
            Anomaly {
                pipeline: pl.id.clone(),
                team: pl.config.team.clone(),
                domain: pl.config.domain.clone(),
                criticality: pl.config.criticality,
                currency: cur.clone(),
                day: latest_day.clone(),
                latest: round2(*amount),
                baseline: round2(base),
                delta: round2(amount - base),
                ratio,
                band,
                anomaly: band != Band::None,
            }
        })
        .collect()
}

/// `GET /v1/costs/anomalies`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomalies {
    pub items: Vec<Anomaly>,
    pub truncated: bool,
    pub warnings: Vec<String>,
}

/// Every pipeline's latest day against its baseline, the worst first;
/// `anomaly_only` keeps those in a band, `min_ratio` those at least that far
/// above their baseline.
pub async fn anomalies(
    svc: &Services,
    p: &Principal,
    anomaly_only: bool,
    min_ratio: Option<f64>,
) -> Result<Anomalies, DomainError> {
    require_role(p, Role::Viewer, "read costs")?;
    if min_ratio.is_some_and(|r| !r.is_finite() || r < 0.0) {
        return Err(DomainError::bad_input(
            "invalid_query",
            "min_ratio must be a non-negative number",
        ));
    }
    let (pipelines, truncated) = all(svc, p).await?;
    let mut items: Vec<Anomaly> = pipelines
        .iter()
        .flat_map(anomalies_of)
        .filter(|a| !anomaly_only || a.anomaly)
        .filter(|a| min_ratio.is_none_or(|m| a.ratio.is_none_or(|r| r >= m)))
        .collect();
    items.sort_by(|a, b| {
        b.band
            .cmp(&a.band)
            .then(
                b.ratio
                    .unwrap_or(f64::MAX)
                    .partial_cmp(&a.ratio.unwrap_or(f64::MAX))
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
            .then(a.pipeline.cmp(&b.pipeline))
    });
    let mut warnings = Vec::new();
    if truncated {
        warnings.push(format!(
            "more than {SCAN} pipelines: the first {SCAN} are covered"
        ));
    }
    Ok(Anomalies {
        items,
        truncated,
        warnings,
    })
}

/// Pipeline `id`'s anomalies, for a viewer (`GET /v1/pipelines/{id}/cost`
/// shows them beside its days).
pub async fn of_pipeline(
    svc: &Services,
    p: &Principal,
    id: &str,
) -> Result<Vec<Anomaly>, DomainError> {
    check_id("the pipeline id", id)?;
    Ok(anomalies_of(&super::get(svc, p, id).await?))
}

/// Runs of a pipeline one investigation reads at most (its newest).
pub const INVESTIGATED_RUNS: usize = 50;

/// A run in an investigation's top cost runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostRun {
    pub run_id: String,
    pub status: super::RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    pub cost: super::Cost,
}

/// An incident of the pipeline (its failures, SLA breaches or cost).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelatedIncident {
    pub id: String,
    pub title: String,
    pub state: firewatch_types::IncidentState,
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
}

/// The latest day with spend against the day before it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change24h {
    pub currency: String,
    pub day: String,
    pub latest: f64,
    pub previous_day: String,
    pub previous: f64,
    pub delta: f64,
    /// latest / previous; `null` when the day before had no spend.
    pub ratio: Option<f64>,
}

/// What a triage of the anomaly starts from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriagePrefill {
    pub title: String,
    pub severity: firewatch_types::Severity,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
}

/// `GET /v1/costs/anomalies/{pipeline}/investigate`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Investigation {
    pub pipeline: String,
    /// The worst of its currencies' anomalies (`null` without spend).
    pub anomaly: Option<Anomaly>,
    pub baseline: Option<f64>,
    pub baseline_delta: Option<f64>,
    pub ratio: Option<f64>,
    pub change_24h: Option<Change24h>,
    /// Its last 14 days.
    pub trend: Vec<Day>,
    /// Its costliest runs among the newest [`INVESTIGATED_RUNS`], at most 5.
    pub top_cost_runs: Vec<CostRun>,
    /// Incidents its alerts opened (failures, SLA, cost), newest first.
    pub related_incidents: Vec<RelatedIncident>,
    pub recommended_next_actions: Vec<String>,
    pub triage_prefill: TriagePrefill,
    pub degraded: bool,
    pub warnings: Vec<String>,
}

/// The day before `d` (`yyyy-mm-dd`).
fn day_before(d: &str) -> Option<String> {
    let d = NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?;
    Some((d - Duration::days(1)).format("%Y-%m-%d").to_string())
}

/// Everything an on-call needs to judge pipeline `id`'s cost anomaly:
/// the anomaly, its trend, its costliest recent runs, the incidents it is
/// part of, and what to do next. Reads one pipeline's items, never the
/// tenant's runs.
pub async fn investigate(
    svc: &Services,
    p: &Principal,
    id: &str,
) -> Result<Investigation, DomainError> {
    require_role(p, Role::Viewer, "read costs")?;
    let pl = super::get(svc, p, id).await?;
    let mut warnings = Vec::new();
    let mut degraded = false;
    let anomaly = anomalies_of(&pl).into_iter().max_by(|a, b| {
        a.band.cmp(&b.band).then(
            a.delta
                .partial_cmp(&b.delta)
                .unwrap_or(std::cmp::Ordering::Equal),
        )
    });
    if anomaly.is_none() {
        degraded = true;
        warnings.push(format!(
            "no cost reported for {} in the last {KEPT_DAYS} days: runs carry cost in the firewatch_cost run facet or a plain report's cost",
            pl.id
        ));
    } else if anomaly.as_ref().is_some_and(|a| a.ratio.is_none()) {
        warnings.push(
            "no spend in the 7 days before the latest day: there is no baseline to compare with"
                .into(),
        );
    }
    let change_24h = anomaly.as_ref().and_then(|a| {
        let prev_day = day_before(&a.day)?;
        let previous = pl
            .cost_days
            .get(&prev_day)
            .and_then(|m| m.get(&a.currency))
            .copied()
            .unwrap_or(0.0);
        Some(Change24h {
            currency: a.currency.clone(),
            day: a.day.clone(),
            latest: a.latest,
            previous_day: prev_day,
            previous: round2(previous),
            delta: round2(a.latest - previous),
            ratio: (previous > 0.0).then(|| round2(a.latest / previous)),
        })
    });
    let trend = pipeline(svc, p, id, 14).await?;

    // The newest runs, read at once; the costliest first.
    let history = svc
        .store
        .query(Query {
            pk: pipeline_pk(&p.tenant, id),
            sk_prefix: "RUN#".into(),
            after: None,
            limit: INVESTIGATED_RUNS,
            descending: true,
        })
        .await?;
    if history.next.is_some() {
        warnings.push(format!(
            "top cost runs are of the newest {INVESTIGATED_RUNS} runs"
        ));
    }
    let gets = history.items.iter().map(|item| async move {
        let run_id: String = keys::decode(item)?;
        match svc.store.get(&super::runs_pk(&p.tenant), &run_id).await? {
            Some(r) => Ok(Some(keys::decode::<super::Run>(&r)?)),
            None => Ok::<_, DomainError>(None),
        }
    });
    let mut runs: Vec<CostRun> = futures_util::future::join_all(gets)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, DomainError>>()?
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some(CostRun {
                cost: r.cost.clone()?,
                run_id: r.run_id,
                status: r.status,
                started_at: r.started_at,
                ended_at: r.ended_at,
            })
        })
        .collect();
    runs.sort_by(|a, b| {
        b.cost
            .amount
            .partial_cmp(&a.cost.amount)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    runs.truncate(5);

    // Incidents its alerts opened, by the groups those alerts form.
    let mut related = Vec::new();
    let fingerprints = [
        format!("pipeline-cost:{id}"),
        format!("pipeline:{id}"),
        format!("pipeline-sla:{id}:schedule"),
        format!("pipeline-sla:{id}:duration"),
        format!("pipeline-sla:{id}:freshness"),
    ];
    for fp in &fingerprints {
        let page = svc
            .store
            .query(Query {
                pk: keys::group_incidents_pk(&p.tenant, firewatch_types::SourceKind::Pipelines, fp),
                sk_prefix: String::new(),
                after: None,
                limit: 5,
                descending: true,
            })
            .await?;
        for item in &page.items {
            let Ok(inc_id) = firewatch_types::IncidentId::parse(&item.sk) else {
                continue;
            };
            match crate::incidents::get(svc, &p.tenant, &inc_id).await {
                Ok(inc) => related.push(RelatedIncident {
                    id: inc.id.to_string(),
                    title: inc.title,
                    state: inc.state,
                    fingerprint: fp.clone(),
                    created_at: inc.created_at,
                }),
                Err(DomainError::NotFound(_)) => {}
                Err(e) => {
                    degraded = true;
                    warnings.push(format!("related incidents could not all be read: {e}"));
                    break;
                }
            }
        }
    }
    related.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    related.truncate(10);

    let actions = next_actions(&pl, anomaly.as_ref(), &runs, &related, &trend);
    let severity = pl
        .config
        .criticality
        .map_or(firewatch_types::Severity::Sev3, |c| c.severity());
    let mut labels = BTreeMap::from([("pipeline".to_owned(), pl.id.clone())]);
    for (k, v) in [("team", &pl.config.team), ("domain", &pl.config.domain)] {
        if let Some(v) = v {
            labels.insert(k.into(), v.clone());
        }
    }
    let triage_prefill = TriagePrefill {
        title: match &anomaly {
            Some(a) if a.anomaly => match a.ratio {
                Some(r) => format!("Cost anomaly: {} at {r}x its baseline on {}", pl.id, a.day),
                None => format!("New spend: {} with no baseline on {}", pl.id, a.day),
            },
            _ => format!("Cost review: {}", pl.id),
        },
        severity,
        summary: match &anomaly {
            Some(a) => cost_summary(a),
            None => "no cost reported".into(),
        },
        labels,
    };
    Ok(Investigation {
        pipeline: pl.id.clone(),
        baseline: anomaly.as_ref().map(|a| a.baseline),
        baseline_delta: anomaly.as_ref().map(|a| a.delta),
        ratio: anomaly.as_ref().and_then(|a| a.ratio),
        anomaly,
        change_24h,
        trend,
        top_cost_runs: runs,
        related_incidents: related,
        recommended_next_actions: actions,
        triage_prefill,
        degraded,
        warnings,
    })
}

/// One line about an anomaly.
pub fn cost_summary(a: &Anomaly) -> String {
    format!(
        "{} {} on {} against a 7-day baseline of {} {} a day (delta {}{})",
        a.latest,
        a.currency,
        a.day,
        a.baseline,
        a.currency,
        a.delta,
        a.ratio.map(|r| format!(", {r}x")).unwrap_or_default()
    )
}

/// What to do next, from what the investigation found.
fn next_actions(
    pl: &Pipeline,
    anomaly: Option<&Anomaly>,
    runs: &[CostRun],
    related: &[RelatedIncident],
    trend: &[Day],
) -> Vec<String> {
    let mut out = Vec::new();
    let Some(a) = anomaly.filter(|a| a.anomaly) else {
        out.push("No anomaly: the latest day is within its baseline; nothing to do".into());
        return out;
    };
    if let Some(open) = related
        .iter()
        .find(|i| i.state != firewatch_types::IncidentState::Resolved)
    {
        out.push(format!(
            "Incident {} is open for this pipeline: continue there",
            open.id
        ));
    }
    if let Some(top) = runs.first() {
        if a.latest > 0.0 && top.cost.amount >= a.latest * 0.5 {
            out.push(format!(
                "Run {} alone cost {} {}: check its input volume and retries",
                top.run_id, top.cost.amount, top.cost.currency
            ));
        }
    }
    if let Some(d) = trend.iter().rev().find(|d| d.day == a.day) {
        if d.failures > 0 {
            out.push(format!(
                "{} runs failed on {}: retried failures are paid for too",
                d.failures, d.day
            ));
        }
        if let Some(before) = trend.iter().rev().find(|x| x.day < a.day && x.runs > 0) {
            if d.runs > before.runs * 2 {
                out.push(format!(
                    "{} runs on {} against {} on {}: check the schedule and what triggers it",
                    d.runs, d.day, before.runs, before.day
                ));
            }
        }
    }
    out.push(
        "Compare the top cost runs with a run from a baseline day: data volume, cluster size, engine version".into(),
    );
    if super::runbooks::status_of(pl.config.runbook_url.as_deref())
        != super::runbooks::RunbookStatus::Configured
    {
        out.push(format!(
            "Add a runbook (PUT /v1/pipelines/{}) so the next on-call knows how to throttle it",
            pl.id
        ));
    }
    if pl.config.owner.is_none() && pl.config.team.is_none() {
        out.push("Set an owner or team so cost anomalies reach someone".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pl(days: &[(&str, f64)]) -> Pipeline {
        let mut p = Pipeline::new("airflow/etl", Utc::now());
        for (d, a) in days {
            p.cost_days
                .insert((*d).into(), Money::from([("USD".to_owned(), *a)]));
        }
        p
    }

    #[test]
    fn the_latest_day_is_measured_against_the_seven_before_it() {
        let p = pl(&[
            ("2026-11-23", 10.0),
            ("2026-11-24", 10.0),
            ("2026-11-25", 10.0),
            ("2026-11-26", 10.0),
            ("2026-11-27", 10.0),
            ("2026-11-28", 10.0),
            ("2026-11-29", 10.0),
            ("2026-11-30", 31.0),
        ]);
        let a = &anomalies_of(&p)[0];
        assert_eq!(
            (a.day.as_str(), a.latest, a.baseline),
            ("2026-11-30", 31.0, 10.0)
        );
        assert_eq!((a.ratio, a.band, a.delta), (Some(3.1), Band::High, 21.0));
        let calm = pl(&[("2026-11-29", 10.0), ("2026-11-30", 10.0)]);
        let a = &anomalies_of(&calm)[0];
        // One day of spend in seven: the baseline is 10/7.
        assert_eq!(a.baseline, 1.43);
        assert_eq!(a.band, Band::High);
        let first = pl(&[("2026-11-30", 5.0)]);
        let a = &anomalies_of(&first)[0];
        assert_eq!((a.ratio, a.band), (None, Band::High), "new spend");
    }

    #[test]
    fn kept_days_move_and_age_out() {
        let now = Utc::now();
        let mut days = BTreeMap::new();
        let c = super::super::Cost {
            amount: 2.5,
            currency: "EUR".into(),
        };
        keep(&mut days, now, &c, 1.0, now);
        keep(&mut days, now, &c, 1.0, now);
        assert_eq!(days[&day(now)]["EUR"], 5.0);
        keep(&mut days, now, &c, -1.0, now);
        keep(&mut days, now, &c, -1.0, now);
        assert!(days.is_empty(), "{days:?}");
        keep(&mut days, now - Duration::days(40), &c, 1.0, now);
        assert!(days.is_empty(), "too old to keep");
    }
}
