//! OpenLineage events (spec 2-0-2, `spec/OpenLineage.json`) as Marquez
//! accepts them on `POST /api/v1/lineage`: a run event (`run` and `job`), a
//! job event (`job` without `run`: lineage only) or a dataset event
//! (`dataset`: accepted, nothing to record). Facets read where present:
//! run `errorMessage`, `nominalTime`, `parent`, `processing_engine` and
//! `firewatch_cost` (`amount`, `currency`); job `ownership`, `documentation`
//! and `jobType`. Every other facet is kept with the stored event, never
//! refused. Plain run reports (`POST /v1/pipelines/runs`) become the same
//! [`RunEvent`].

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{check_id, job_id, Cost, JobInfo, MAX_DATASETS, MAX_ID};
use crate::DomainError;

/// A run's transition, as the event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    Start,
    Running,
    Complete,
    Abort,
    Fail,
    Other,
}

impl EventType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "START" => Some(Self::Start),
            "RUNNING" => Some(Self::Running),
            "COMPLETE" => Some(Self::Complete),
            "ABORT" => Some(Self::Abort),
            "FAIL" => Some(Self::Fail),
            "OTHER" => Some(Self::Other),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "START",
            Self::Running => "RUNNING",
            Self::Complete => "COMPLETE",
            Self::Abort => "ABORT",
            Self::Fail => "FAIL",
            Self::Other => "OTHER",
        }
    }

    /// The run status this event sets, if it sets one (`OTHER` adds
    /// metadata only).
    pub fn status(self) -> Option<super::RunStatus> {
        use super::RunStatus as S;
        match self {
            Self::Start | Self::Running => Some(S::Running),
            Self::Complete => Some(S::Completed),
            Self::Abort => Some(S::Aborted),
            Self::Fail => Some(S::Failed),
            Self::Other => None,
        }
    }
}

/// One run event, whichever way it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub event_type: EventType,
    pub event_time: DateTime<Utc>,
    pub run_id: String,
    /// The pipeline's id: `{namespace}/{name}`, or a plain report's name.
    pub pipeline: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub error: Option<String>,
    pub nominal_time: Option<DateTime<Utc>>,
    /// `{namespace}/{name}` and run id of the parent run.
    pub parent: Option<(String, String)>,
    pub job: JobInfo,
    pub cost: Option<Cost>,
    /// Start and end given outright (plain reports).
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub producer: Option<String>,
    /// The names of the facets the event carried.
    pub facets: Vec<String>,
}

/// What a body to `POST /api/v1/lineage` is.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Run(Box<RunEvent>),
    /// Lineage of a job without a run.
    Job {
        pipeline: String,
        inputs: Vec<String>,
        outputs: Vec<String>,
        job: Box<JobInfo>,
    },
    /// Static dataset metadata: accepted, nothing to record.
    Dataset,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    event_type: Option<String>,
    event_time: Option<String>,
    run: Option<RawRun>,
    job: Option<RawJob>,
    #[serde(default)]
    inputs: Option<Vec<RawDataset>>,
    #[serde(default)]
    outputs: Option<Vec<RawDataset>>,
    dataset: Option<Value>,
    producer: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRun {
    run_id: String,
    #[serde(default)]
    facets: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct RawJob {
    namespace: String,
    name: String,
    #[serde(default)]
    facets: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct RawDataset {
    namespace: String,
    name: String,
}

fn bad(message: impl Into<String>) -> DomainError {
    DomainError::bad_input("invalid_openlineage_event", message)
}

/// An OpenLineage time: RFC 3339, or (as some producers send) a date-time
/// without an offset or a bare date, read as UTC.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// True for a UUID in its text form (the spec's `runId` format).
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn datasets(list: Option<Vec<RawDataset>>, what: &str) -> Result<Vec<String>, DomainError> {
    let mut out: Vec<String> = Vec::new();
    for d in list.unwrap_or_default() {
        if d.namespace.is_empty() || d.name.is_empty() {
            return Err(bad(format!("every {what} needs a namespace and a name")));
        }
        let id = job_id(&d.namespace, &d.name);
        if id.len() > MAX_ID {
            return Err(bad(format!("an {what} name is longer than {MAX_ID} bytes")));
        }
        if !out.contains(&id) && out.len() < MAX_DATASETS {
            out.push(id);
        }
    }
    Ok(out)
}

fn text(v: &Value, max: usize) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| crate::limits::truncate(&crate::redact::redact_text(s), max))
}

fn job_info(facets: &Map<String, Value>) -> JobInfo {
    let mut j = JobInfo::default();
    if let Some(owners) = facets.get("ownership").and_then(|o| o["owners"].as_array()) {
        j.owners = owners
            .iter()
            .filter_map(|o| text(&o["name"], 200))
            .take(10)
            .collect();
    }
    if let Some(d) = facets.get("documentation") {
        j.description = text(&d["description"], 1000);
    }
    if let Some(t) = facets.get("jobType") {
        j.job_type = text(&t["jobType"], 100);
        j.integration = text(&t["integration"], 100);
        j.processing_type = text(&t["processingType"], 100);
    }
    j
}

/// Reads an OpenLineage event.
pub fn parse(body: &[u8]) -> Result<Event, DomainError> {
    let raw: Raw = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "not an OpenLineage event: {}",
            crate::limits::truncate(&e.to_string(), 200)
        ))
    })?;
    let job_facets = raw
        .job
        .as_ref()
        .and_then(|j| j.facets.clone())
        .unwrap_or_default();
    match (raw.run, raw.job, raw.dataset) {
        (Some(run), Some(job), _) => {
            let event_time = raw
                .event_time
                .as_deref()
                .ok_or_else(|| bad("eventTime is required"))?;
            let event_time = parse_time(event_time)
                .ok_or_else(|| bad("eventTime must be an RFC 3339 date-time"))?;
            let event_type = match raw.event_type.as_deref() {
                // The spec leaves it optional: additional metadata.
                None => EventType::Other,
                Some(t) => EventType::parse(t).ok_or_else(|| {
                    bad(format!(
                        "eventType must be START, RUNNING, COMPLETE, ABORT, FAIL or OTHER, got {:?}",
                        crate::limits::truncate(t, 40)
                    ))
                })?,
            };
            if !is_uuid(&run.run_id) {
                return Err(bad("run.runId must be a UUID"));
            }
            if job.namespace.is_empty() || job.name.is_empty() {
                return Err(bad("job.namespace and job.name are required"));
            }
            let pipeline = job_id(&job.namespace, &job.name);
            check_id("job.namespace/job.name", &pipeline).map_err(|_| {
                bad(format!(
                    "job.namespace/job.name must be at most {MAX_ID} bytes without control characters"
                ))
            })?;
            let facets = run.facets.unwrap_or_default();
            let mut ev = RunEvent {
                event_type,
                event_time,
                run_id: run.run_id.to_ascii_lowercase(),
                pipeline,
                inputs: datasets(raw.inputs, "input")?,
                outputs: datasets(raw.outputs, "output")?,
                error: facets
                    .get("errorMessage")
                    .and_then(|f| text(&f["message"], 2000)),
                nominal_time: facets
                    .get("nominalTime")
                    .and_then(|f| f["nominalStartTime"].as_str())
                    .and_then(parse_time),
                parent: facets.get("parent").and_then(|f| {
                    let ns = f["job"]["namespace"].as_str()?;
                    let name = f["job"]["name"].as_str()?;
                    let id = f["run"]["runId"].as_str()?;
                    Some((job_id(ns, name), id.to_owned()))
                }),
                job: job_info(&job_facets),
                cost: facets.get("firewatch_cost").and_then(|f| {
                    let amount = f["amount"].as_f64().filter(|a| a.is_finite() && *a >= 0.0)?;
                    let currency = f["currency"].as_str().unwrap_or("USD");
                    (currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_alphabetic()))
                        .then(|| Cost {
                            amount,
                            currency: currency.to_ascii_uppercase(),
                        })
                }),
                started_at: None,
                ended_at: None,
                producer: raw.producer.as_deref().and_then(|p| text(&Value::from(p), 300)),
                facets: facets
                    .keys()
                    .chain(job_facets.keys())
                    .take(50)
                    .cloned()
                    .collect(),
            };
            if let Some(engine) = facets.get("processing_engine") {
                ev.job.processing_engine = match (text(&engine["name"], 100), text(&engine["version"], 50)) {
                    (Some(n), Some(v)) => Some(format!("{n} {v}")),
                    (n, _) => n,
                };
            }
            Ok(Event::Run(Box::new(ev)))
        }
        (None, Some(job), _) => {
            if job.namespace.is_empty() || job.name.is_empty() {
                return Err(bad("job.namespace and job.name are required"));
            }
            let pipeline = job_id(&job.namespace, &job.name);
            check_id("job", &pipeline).map_err(|e| bad(e.to_string()))?;
            Ok(Event::Job {
                pipeline,
                inputs: datasets(raw.inputs, "input")?,
                outputs: datasets(raw.outputs, "output")?,
                job: Box::new(job_info(&job_facets)),
            })
        }
        (None, None, Some(d)) if d.is_object() => Ok(Event::Dataset),
        (Some(_), None, _) => Err(bad("a run event needs a job")),
        _ => Err(bad(
            "an OpenLineage event has run and job (a run event), job (a job event) or dataset (a dataset event)",
        )),
    }
}

/// A plain run report (`POST /v1/pipelines/runs`), for schedulers without
/// OpenLineage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlainRun {
    pub pipeline: String,
    pub run_id: String,
    /// `running`, `succeeded` (or `completed`), `failed`, `aborted`.
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// A number in USD, or `{"amount", "currency"}`.
    pub cost: Option<Value>,
    pub error: Option<String>,
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<String>,
}

/// Reads a plain run report into a [`RunEvent`]; its event time is its end,
/// else its start.
pub fn plain(r: PlainRun) -> Result<RunEvent, DomainError> {
    let bad = |m: String| DomainError::bad_input("invalid_run", m);
    check_id("pipeline", &r.pipeline).map_err(|e| bad(e.to_string()))?;
    if r.pipeline == "runs" {
        // `/v1/pipelines/runs` is the report route itself.
        return Err(bad("the pipeline name `runs` is reserved".into()));
    }
    check_id("run_id", &r.run_id).map_err(|e| bad(e.to_string()))?;
    let event_type = match r.status.as_str() {
        "running" | "started" => EventType::Running,
        "succeeded" | "completed" | "success" => EventType::Complete,
        "failed" => EventType::Fail,
        "aborted" | "cancelled" => EventType::Abort,
        other => {
            return Err(bad(format!(
                "status must be running, succeeded, failed or aborted, got {:?}",
                crate::limits::truncate(other, 40)
            )))
        }
    };
    let event_time = r
        .ended_at
        .or(r.started_at)
        .ok_or_else(|| bad("started_at or ended_at is required".into()))?;
    if let (Some(s), Some(e)) = (r.started_at, r.ended_at) {
        if e < s {
            return Err(bad("ended_at is before started_at".into()));
        }
    }
    if event_type != EventType::Running && r.ended_at.is_none() {
        return Err(bad(format!("a {} run needs ended_at", r.status)));
    }
    let cost = match r.cost {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(Cost {
            amount: n.as_f64().unwrap_or(0.0),
            currency: "USD".into(),
        }),
        Some(v @ Value::Object(_)) => Some(Cost {
            amount: v["amount"]
                .as_f64()
                .ok_or_else(|| bad("cost.amount must be a number".into()))?,
            currency: v["currency"].as_str().unwrap_or("USD").to_ascii_uppercase(),
        }),
        Some(_) => {
            return Err(bad(
                "cost must be a number or {\"amount\", \"currency\"}".into()
            ))
        }
    };
    if let Some(c) = &cost {
        if !c.amount.is_finite()
            || c.amount < 0.0
            || c.currency.len() != 3
            || !c.currency.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(bad(
                "cost must be a non-negative amount in an ISO 4217 currency".into(),
            ));
        }
    }
    let list = |v: Vec<String>, what: &str| -> Result<Vec<String>, DomainError> {
        let mut out: Vec<String> = Vec::new();
        for d in v {
            check_id(what, &d).map_err(|e| bad(e.to_string()))?;
            if !out.contains(&d) && out.len() < MAX_DATASETS {
                out.push(d);
            }
        }
        Ok(out)
    };
    Ok(RunEvent {
        event_type,
        event_time,
        run_id: r.run_id,
        pipeline: r.pipeline,
        inputs: list(r.inputs, "an input")?,
        outputs: list(r.outputs, "an output")?,
        error: r.error.as_deref().and_then(|e| text(&Value::from(e), 2000)),
        nominal_time: None,
        parent: None,
        job: JobInfo::default(),
        cost,
        started_at: r.started_at,
        ended_at: r.ended_at,
        producer: None,
        facets: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_producers_send_them() {
        assert!(parse_time("2020-12-28T19:51:01.641Z").is_some());
        assert!(parse_time("2021-11-03T10:53:52.427343").is_some());
        assert_eq!(
            parse_time("2020-01-01").unwrap().to_rfc3339(),
            "2020-01-01T00:00:00+00:00"
        );
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn uuids_are_recognised() {
        assert!(is_uuid("69f4acab-b87d-4fc0-b27b-8ea950370ff3"));
        assert!(!is_uuid("69f4acab-b87d-4fc0-b27b-8ea950370ff"));
        assert!(!is_uuid("run-1"));
    }
}
