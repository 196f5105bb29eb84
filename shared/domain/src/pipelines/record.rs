//! Recording a run event. One unit of work ([`crate::work::Work`]) writes the event
//! (put-if-absent: a redelivery finds it and changes nothing), the run and
//! the pipeline (version conditions), the run's place in its pipeline's
//! history, the daily and hourly totals the run's outcome moves, and the
//! lineage edges of its datasets. A writer that loses a race re-reads
//! (through [`crate::retry`]).
//!
//! Events of one run may arrive in any order: the run's status is that of
//! its newest event by event time, a finished outcome (COMPLETE, FAIL,
//! ABORT) always outranking START and RUNNING; its start is its earliest
//! event, its end its finishing event. A pipeline's state follows its newest
//! finished run; a late event of an older run changes the run, never the
//! pipeline's outcome.
//!
//! A run that newly decides its pipeline's outcome raises (FAIL, ABORT) or
//! resolves (COMPLETE) the pipeline's alert (source `pipelines`, fingerprint
//! `pipeline:{id}`) through the normal incident flow, before the
//! transaction: the alert's body depends on the event (and the pipeline's
//! configuration and lineage), so a retry, or a redelivery after a crash, is
//! the same webhook again and deduplicated.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use firewatch_types::{Principal, SourceKind, TenantId};
use serde::{Deserialize, Serialize};

use super::openlineage::{EventType, RunEvent};
pub use super::runbooks::runbook_link;
pub use super::{alert_labels, day_key, move_totals, Run};
use super::{
    dataset_pk, hours_pk, load, pipeline_pk, pipelines_pk, run_events_pk, runs_pk, Contribution,
    JobInfo, LastRun, Pipeline, RunStatus, State, MAX_DATASETS, MAX_STORED_EVENT,
};
use crate::ports::Condition;
use crate::work::Work;
use crate::{keys, DomainError, Services};

impl Run {
    fn new(ev: &RunEvent, now: DateTime<Utc>) -> Self {
        Self {
            run_id: ev.run_id.clone(),
            pipeline: ev.pipeline.clone(),
            status: RunStatus::Running,
            status_at: ev.event_time,
            started_at: None,
            ended_at: None,
            nominal_time: None,
            error: None,
            cost: None,
            parent: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            events: BTreeMap::new(),
            counted: None,
            history_sk: format!(
                "RUN#{}#{}",
                ev.event_time.to_rfc3339_opts(SecondsFormat::Millis, true),
                ev.run_id
            ),
            first_seen: now,
            updated_at: now,
        }
    }

    /// Folds one event in; the outcome does not depend on arrival order.
    fn apply(&mut self, ev: &RunEvent) {
        *self
            .events
            .entry(ev.event_type.as_str().into())
            .or_default() += 1;
        let t = ev.event_time;
        if let Some(status) = ev.event_type.status() {
            let outranks = match (status.is_terminal(), self.status.is_terminal()) {
                (true, false) => true,
                (false, true) => false,
                _ => t >= self.status_at,
            };
            if outranks || self.events.values().sum::<u32>() == 1 {
                self.status = status;
                self.status_at = t;
                if status.is_terminal() {
                    self.ended_at = Some(ev.ended_at.unwrap_or(t));
                }
            }
        }
        let start = ev.started_at.or(match ev.event_type {
            EventType::Start | EventType::Running => Some(t),
            _ => None,
        });
        if let Some(s) = start {
            self.started_at = Some(self.started_at.map_or(s, |x| x.min(s)));
        }
        if ev.error.is_some() {
            self.error = ev.error.clone();
        }
        if ev.cost.is_some() {
            self.cost = ev.cost.clone();
        }
        if ev.nominal_time.is_some() {
            self.nominal_time = ev.nominal_time;
        }
        if ev.parent.is_some() {
            self.parent = ev.parent.clone();
        }
        merge(&mut self.inputs, &ev.inputs);
        merge(&mut self.outputs, &ev.outputs);
    }

    /// What the run adds to the totals now, judged against `sla`.
    fn contribution(&self, sla: Option<&super::Sla>) -> Option<Contribution> {
        if !self.status.is_terminal() {
            return None;
        }
        let ended_at = self.ended_at.unwrap_or(self.status_at);
        let duration_ms = self
            .started_at
            .filter(|s| *s <= ended_at)
            .map(|s| (ended_at - s).num_milliseconds().max(0) as u64);
        let (late, long) = sla.map_or((false, false), |sla| {
            super::sla::judge_run(sla, self.started_at, duration_ms)
        });
        Some(Contribution {
            ended_at,
            status: self.status,
            duration_ms,
            cost: self.cost.clone(),
            late,
            long,
        })
    }

    pub fn last_run(&self) -> LastRun {
        LastRun {
            run_id: self.run_id.clone(),
            status: self.status,
            started_at: self.started_at,
            ended_at: self.ended_at,
            error: self.error.clone(),
        }
    }
}

fn merge(into: &mut Vec<String>, from: &[String]) {
    for d in from {
        if !into.contains(d) && into.len() < MAX_DATASETS {
            into.push(d.clone());
        }
    }
}

fn merge_job(into: &mut JobInfo, from: &JobInfo) {
    if !from.owners.is_empty() {
        into.owners = from.owners.clone();
    }
    for (a, b) in [
        (&mut into.description, &from.description),
        (&mut into.job_type, &from.job_type),
        (&mut into.integration, &from.integration),
        (&mut into.processing_type, &from.processing_type),
        (&mut into.processing_engine, &from.processing_engine),
    ] {
        if b.is_some() {
            a.clone_from(b);
        }
    }
}

/// What recording an event did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recorded {
    /// The event had been recorded before: nothing changed.
    pub duplicate: bool,
    pub run: Run,
    pub state: State,
    /// `firing` or `resolved` when the event raised or resolved the
    /// pipeline's alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<&'static str>,
}

/// One event as kept with its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub event_type: String,
    pub event_time: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub sha256: String,
    /// The event (redacted), or `null` when it was over the size kept.
    pub body: serde_json::Value,
    #[serde(default)]
    pub facets: Vec<String>,
}

/// Shards of a tenant's hourly totals: every finished run of the tenant
/// moves them, so one item per hour would serialise every writer.
pub const HOUR_SHARDS: u64 = 8;

/// The hourly totals item of runs of `pipeline` ending at `t`:
/// `{yyyy-mm-ddThh}#{shard}`, the shard fixed by the pipeline.
fn hour_key(t: DateTime<Utc>, pipeline: &str) -> String {
    let h = crate::auth::sha256_hex(pipeline.as_bytes());
    let shard = u64::from_str_radix(&h[..8], 16).unwrap_or(0) % HOUR_SHARDS;
    format!("{}#{shard:02}", t.format("%Y-%m-%dT%H"))
}

/// Moves with `work` the totals of a run whose contribution went from
/// `before` to `after`: per pipeline per day, per tenant per hour.
async fn move_run_totals(
    svc: &Services,
    work: &mut Work<'_>,
    tenant: &TenantId,
    pipeline: &str,
    before: Option<&Contribution>,
    after: Option<&Contribution>,
) -> Result<(), DomainError> {
    // Keyed by item so a change within one day or hour is one write.
    let mut moves: BTreeMap<(String, String), Vec<(Contribution, i64)>> = BTreeMap::new();
    for (c, sign) in before
        .map(|c| (c, -1))
        .into_iter()
        .chain(after.map(|c| (c, 1)))
    {
        moves
            .entry((pipeline_pk(tenant, pipeline), day_key(c.ended_at)))
            .or_default()
            .push((c.clone(), sign));
        moves
            .entry((hours_pk(tenant), hour_key(c.ended_at, pipeline)))
            .or_default()
            .push((c.clone(), sign));
    }
    for ((pk, sk), list) in moves {
        move_totals(svc, work, pk, sk, |t| {
            for (c, sign) in &list {
                t.apply(c, *sign);
            }
        })
        .await?;
    }
    Ok(())
}

/// Records a run event reported by `p` (a responder or above, such as an
/// OpenLineage client's API key). `raw` is the event as received, kept
/// (redacted) with its run.
pub async fn record(
    svc: &Services,
    p: &Principal,
    ev: RunEvent,
    raw: &[u8],
) -> Result<Recorded, DomainError> {
    crate::auth::require_ingest(p, "report pipeline runs")?;
    // A run from the far future would sit in every cost and SLA window
    // read from now on; a day covers any sender's clock skew.
    let latest = svc.clock.now() + chrono::Duration::days(1);
    for (what, at) in [
        ("eventTime", Some(ev.event_time)),
        ("started_at", ev.started_at),
        ("ended_at", ev.ended_at),
    ] {
        if at.is_some_and(|at| at > latest) {
            return Err(DomainError::bad_input(
                "time_in_future",
                format!("{what} is more than a day ahead of now"),
            ));
        }
    }
    let t = &p.tenant;
    let sha = crate::auth::sha256_hex(raw);
    let ev_sk = format!(
        "EV#{}#{}",
        ev.event_time.to_rfc3339_opts(SecondsFormat::Micros, true),
        &sha[..16]
    );
    let events_pk = run_events_pk(t, &ev.run_id);
    crate::retry::until_won!(
        crate::retry::BUSY,
        || {
            DomainError::conflict(
                "busy",
                "the run kept changing under concurrent events; send the event again",
            )
        },
        async || -> Result<_, crate::retry::Retry> {
            let now = svc.clock.now();
            let (run_item, pl) = futures_util::future::join(
                svc.store.get(&runs_pk(t), &ev.run_id),
                load(svc, t, &ev.pipeline),
            )
            .await;
            let run_item = run_item?;
            if svc.store.get(&events_pk, &ev_sk).await?.is_some() {
                let run: Run = match &run_item {
                    Some(item) => keys::decode(item)?,
                    None => Run::new(&ev, now),
                };
                let state = pl?.map_or(State::Unknown, |(p, _)| p.state);
                return Ok(Recorded {
                    duplicate: true,
                    run,
                    state,
                    alert: None,
                });
            }
            let (mut run, run_version) = match &run_item {
                Some(item) => (keys::decode::<Run>(item)?, Some(item.version)),
                None => (Run::new(&ev, now), None),
            };
            if run.pipeline != ev.pipeline {
                return Err(DomainError::conflict(
                    "run_of_another_pipeline",
                    format!(
                        "run {} belongs to pipeline {}",
                        ev.run_id,
                        crate::limits::truncate(&run.pipeline, 80)
                    ),
                )
                .into());
            }
            let (mut pl, pl_version) = match pl? {
                Some((p, v)) => (p, Some(v)),
                None => (Pipeline::new(&ev.pipeline, now), None),
            };
            let before = run.counted.clone();
            run.apply(&ev);
            run.updated_at = now;
            let after = run.contribution(pl.config.sla.as_ref());
            if run.status == RunStatus::Completed {
                let end = run.ended_at.unwrap_or(run.status_at);
                pl.last_succeeded_at = Some(pl.last_succeeded_at.map_or(end, |x| x.max(end)));
            }
            run.counted.clone_from(&after);

            // The pipeline follows its newest finished run.
            let mut alert = None;
            if run.status.is_terminal() {
                let newest = pl.last_finished_at.is_none_or(|at| run.status_at >= at);
                if newest {
                    let changed = pl
                        .last_run
                        .as_ref()
                        .is_none_or(|l| l.run_id != run.run_id || l.status != run.status);
                    pl.last_finished_at = Some(run.status_at);
                    pl.last_run = Some(run.last_run());
                    if pl.last_started_at.is_none_or(|s| s <= run.status_at) {
                        pl.state = run.status.state();
                    }
                    // A run reported only when it finished still started.
                    if let Some(s) = run.started_at.filter(|s| *s <= run.status_at) {
                        pl.last_started_at = Some(pl.last_started_at.map_or(s, |x| x.max(s)));
                    }
                    if changed {
                        alert = match run.status {
                            RunStatus::Failed | RunStatus::Aborted => Some("firing"),
                            RunStatus::Completed if pl.alerting => Some("resolved"),
                            _ => None,
                        };
                    }
                }
            } else if let Some(s) = run.started_at {
                if pl.last_finished_at.is_none_or(|at| s > at) {
                    pl.state = State::Running;
                    pl.last_started_at = Some(pl.last_started_at.map_or(s, |x| x.max(s)));
                    if pl.last_run.as_ref().is_none_or(|l| l.run_id == run.run_id) {
                        pl.last_run = Some(run.last_run());
                    }
                }
            }
            merge(&mut pl.inputs, &ev.inputs);
            merge(&mut pl.outputs, &ev.outputs);
            merge_job(&mut pl.job, &ev.job);
            if before != after {
                for (c, sign) in [(&before, -1.0), (&after, 1.0)] {
                    if let Some((at, cost)) = c
                        .as_ref()
                        .and_then(|c| Some((c.ended_at, c.cost.as_ref()?)))
                    {
                        super::costs::keep(&mut pl.cost_days, at, cost, sign, now);
                    }
                }
            }
            match alert {
                Some("firing") => pl.alerting = true,
                Some(_) => pl.alerting = false,
                None => {}
            }
            pl.updated_at = now;

            if let Some(state) = alert {
                raise(svc, t, &pl, &run, state).await?;
            }

            let mut work = Work::new(svc);
            work.put(
                keys::item(
                    events_pk.clone(),
                    ev_sk.clone(),
                    1,
                    &stored(&ev, raw, &sha, now),
                )?,
                Condition::Absent,
            );
            work.put(
                keys::item(
                    runs_pk(t),
                    run.run_id.clone(),
                    run_version.map_or(1, |v| v + 1),
                    &run,
                )?,
                run_version.map_or(Condition::Absent, Condition::Version),
            );
            work.put(
                keys::item(
                    pipelines_pk(t),
                    pl.id.clone(),
                    pl_version.map_or(1, |v| v + 1),
                    &pl,
                )?,
                pl_version.map_or(Condition::Absent, Condition::Version),
            );
            if run_version.is_none() {
                work.put(
                    keys::item(
                        pipeline_pk(t, &pl.id),
                        run.history_sk.clone(),
                        1,
                        &run.run_id,
                    )?,
                    Condition::Always,
                );
            }
            if before != after {
                move_run_totals(svc, &mut work, t, &pl.id, before.as_ref(), after.as_ref()).await?;
            }
            edges(&mut work, t, &pl.id, &ev.inputs, &ev.outputs)?;
            work.commit()
                .await
                .map_err(crate::retry::Retry::from_commit)?;
            Ok(Recorded {
                duplicate: false,
                run,
                state: pl.state,
                alert,
            })
        },
    )
    .await
}

/// The lineage edges of a pipeline's datasets: it consumes its inputs and
/// produces its outputs. Idempotent.
fn edges(
    work: &mut Work<'_>,
    t: &TenantId,
    pipeline: &str,
    inputs: &[String],
    outputs: &[String],
) -> Result<(), DomainError> {
    for (kind, list) in [("C", inputs), ("P", outputs)] {
        for d in list {
            work.put(
                keys::item(dataset_pk(t, d), format!("{kind}#{pipeline}"), 1, &pipeline)?,
                Condition::Always,
            );
        }
    }
    Ok(())
}

/// Records the lineage of a job event (no run): the pipeline's datasets and
/// job facets.
pub async fn record_job(
    svc: &Services,
    p: &Principal,
    pipeline: &str,
    inputs: &[String],
    outputs: &[String],
    job: &JobInfo,
) -> Result<(), DomainError> {
    crate::auth::require_ingest(p, "report pipeline lineage")?;
    crate::retry::until_won!(
        crate::retry::BUSY,
        || DomainError::conflict("busy", "the pipeline kept changing; send the event again"),
        async || -> Result<_, crate::retry::Retry> {
            let now = svc.clock.now();
            let (mut pl, version) = match load(svc, &p.tenant, pipeline).await? {
                Some((pl, v)) => (pl, Some(v)),
                None => (Pipeline::new(pipeline, now), None),
            };
            merge(&mut pl.inputs, inputs);
            merge(&mut pl.outputs, outputs);
            merge_job(&mut pl.job, job);
            pl.updated_at = now;
            let mut work = Work::new(svc);
            work.put(
                keys::item(
                    pipelines_pk(&p.tenant),
                    pl.id.clone(),
                    version.map_or(1, |v| v + 1),
                    &pl,
                )?,
                version.map_or(Condition::Absent, Condition::Version),
            );
            edges(&mut work, &p.tenant, pipeline, inputs, outputs)?;
            work.commit()
                .await
                .map_err(crate::retry::Retry::from_commit)?;
            Ok(())
        },
    )
    .await
}

fn stored(ev: &RunEvent, raw: &[u8], sha: &str, now: DateTime<Utc>) -> StoredEvent {
    let body = if raw.len() <= MAX_STORED_EVENT {
        serde_json::from_slice::<serde_json::Value>(raw)
            .map(|mut v| {
                crate::redact::redact_json(&mut v);
                v
            })
            .unwrap_or(serde_json::Value::Null)
    } else {
        serde_json::Value::Null
    };
    StoredEvent {
        event_type: ev.event_type.as_str().into(),
        event_time: ev.event_time,
        received_at: now,
        sha256: sha.to_owned(),
        body,
        facets: ev.facets.clone(),
    }
}

/// Raises (`firing`) or resolves the pipeline's alert for `run`. The body
/// depends on the run's deciding event and the pipeline's configuration and
/// lineage, so sending it again is a redelivery.
async fn raise(
    svc: &Services,
    tenant: &TenantId,
    pl: &Pipeline,
    run: &Run,
    state: &str,
) -> Result<(), DomainError> {
    let firing = state == "firing";
    let impact = if firing {
        super::impact::downstream_from(svc, tenant, pl).await.ok()
    } else {
        None
    };
    let labels = alert_labels(pl)?;
    let mut annotations = serde_json::Map::new();
    annotations.insert("run_id".into(), run.run_id.clone().into());
    if let Some(e) = &run.error {
        annotations.insert("error".into(), e.clone().into());
    }
    if let Some(i) = &impact {
        annotations.insert("impact".into(), i.summary().into());
    }
    let mut links = Vec::new();
    if let Some(base) = &svc.settings.public_url {
        links.push(
            serde_json::json!({"href": format!("{base}/v1/runs/{}", run.run_id), "text": "run"}),
        );
    }
    links.extend(runbook_link(pl));
    let what = match run.status {
        RunStatus::Aborted => "was aborted",
        RunStatus::Completed => "succeeded",
        _ => "failed",
    };
    let title = match (&run.error, firing) {
        (Some(e), true) => format!(
            "Pipeline {} {what}: {}",
            pl.id,
            crate::limits::truncate(e, 200)
        ),
        _ => format!("Pipeline {} {what}", pl.id),
    };
    let at = run.ended_at.unwrap_or(run.status_at);
    let alert = serde_json::json!({
        "title": title,
        "status": if firing { "firing" } else { "resolved" },
        "severity": pl.config.criticality.map_or(firewatch_types::Severity::Sev3, |c| c.severity()),
        "fingerprint": format!("pipeline:{}", pl.id),
        "labels": labels,
        "annotations": annotations,
        "links": links,
        if firing { "starts_at" } else { "ends_at" }: at,
    });
    crate::ingest::ingest_alert(
        svc,
        tenant,
        SourceKind::Pipelines,
        "pipelines".into(),
        &alert,
    )
    .await
    .map(|_| ())
}
