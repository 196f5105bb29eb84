//! `GET /v1/runs/{run_id}/explain`: a triage report for one run. Rules over
//! the run's error message give a likely cause; the lineage gives the
//! impact; the pipeline's runbook and datasets give the next actions. What
//! could not be worked out is said (`degraded`, `warnings`).

use firewatch_types::{Confidence, Principal, Role};
use serde::Serialize;

use super::Run;
use super::{check_id, load, runs_pk, RunStatus};
use crate::auth::require_role;
use crate::{keys, DomainError, Services};

/// Error words and what they usually mean, most specific first.
const CAUSES: &[(&[&str], &str)] = &[
    (
        &[
            "does not exist",
            "not found",
            "no such table",
            "unknown table",
            "undefinedtable",
            "nosuchkey",
        ],
        "An input it reads is missing or was renamed: an upstream table, file or column.",
    ),
    (
        &[
            "permission",
            "denied",
            "unauthorized",
            "forbidden",
            "accessdenied",
            "credential",
        ],
        "Its credentials or permissions no longer allow what it does.",
    ),
    (
        &[
            "out of memory",
            "outofmemory",
            "oom",
            "memory limit",
            "killed",
        ],
        "It ran out of memory: more data than usual, or limits set too low.",
    ),
    (
        &["timeout", "timed out", "deadline"],
        "It ran out of time: a slow dependency, a lock, or more data than usual.",
    ),
    (
        &[
            "connection refused",
            "could not connect",
            "unreachable",
            "name resolution",
            "connection reset",
        ],
        "A system it talks to was unreachable.",
    ),
    (
        &[
            "duplicate",
            "unique constraint",
            "constraint",
            "null value",
            "schema",
            "cast",
            "parse",
        ],
        "The data broke an expectation: a constraint, a type or the schema changed upstream.",
    ),
];

/// The explanation of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub run_id: String,
    pub pipeline: String,
    pub status: RunStatus,
    pub likely_cause: String,
    pub impact_summary: String,
    pub next_actions: Vec<String>,
    pub runbook_url: Option<String>,
    pub confidence: Confidence,
    /// What the explanation rests on.
    pub facts: Vec<String>,
    pub degraded: bool,
    pub warnings: Vec<String>,
}

/// The likely cause of a failure with `error`, and whether a rule matched.
fn cause(error: Option<&str>) -> (String, bool) {
    let Some(e) = error else {
        return (
            "It failed without an error message: read its logs in the scheduler.".into(),
            false,
        );
    };
    let lower = e.to_lowercase();
    for (words, cause) in CAUSES {
        if words.iter().any(|w| lower.contains(w)) {
            return ((*cause).to_owned(), true);
        }
    }
    (
        "Unknown from the error message alone; it is quoted in the facts.".into(),
        false,
    )
}

/// Explains run `run_id` for a viewer.
pub async fn explain(
    svc: &Services,
    p: &Principal,
    run_id: &str,
) -> Result<Explanation, DomainError> {
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
    let pl = load(svc, &p.tenant, &run.pipeline).await?.map(|(pl, _)| pl);
    let mut warnings = Vec::new();
    let mut facts = vec![format!(
        "run {} of {} is {}",
        run.run_id,
        run.pipeline,
        serde_json::to_value(run.status)?.as_str().unwrap_or("")
    )];
    if let (Some(s), Some(e)) = (run.started_at, run.ended_at) {
        facts.push(format!("it ran {} s", (e - s).num_seconds().max(0)));
    }
    if let Some(e) = &run.error {
        facts.push(format!("error: {e}"));
    }
    let (likely_cause, matched) = match run.status {
        RunStatus::Failed => cause(run.error.as_deref()),
        RunStatus::Aborted => (
            "It was stopped before finishing: cancelled, or killed by its scheduler (a timeout or a lost worker).".into(),
            true,
        ),
        RunStatus::Completed => ("It succeeded: there is nothing to explain.".into(), true),
        RunStatus::Running => ("It is still running.".into(), true),
    };
    let impact = match super::impact::downstream(svc, &p.tenant, &run.pipeline).await {
        Ok(i) => {
            warnings.extend(i.warnings.iter().cloned());
            Some(i)
        }
        Err(DomainError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let impact_summary = impact
        .as_ref()
        .map(|i| i.summary())
        .unwrap_or_else(|| "downstream impact unknown: the pipeline is not known".into());
    let runbook_url = pl.as_ref().and_then(|p| p.config.runbook_url.clone());
    let mut next_actions = Vec::new();
    if matches!(run.status, RunStatus::Failed | RunStatus::Aborted) {
        match &runbook_url {
            Some(u) => next_actions.push(format!("Follow the runbook: {u}")),
            None => {
                next_actions.push(format!(
                    "No runbook is configured for {}: add one (PUT /v1/pipelines/{{id}}, runbook_url).",
                    run.pipeline
                ));
                warnings.push("no runbook is configured for this pipeline".into());
            }
        }
        if !run.inputs.is_empty() {
            next_actions.push(format!(
                "Check its inputs are present and fresh: {}.",
                run.inputs.join(", ")
            ));
        }
        if let Some(i) = &impact {
            let critical: Vec<&str> = i
                .downstream_consumers
                .iter()
                .filter(|c| c.criticality >= Some(super::Criticality::High))
                .map(|c| c.pipeline.as_str())
                .collect();
            if !critical.is_empty() {
                next_actions.push(format!(
                    "Warn the owners of critical consumers downstream: {}.",
                    critical.join(", ")
                ));
            }
        }
        next_actions.push(
            "Rerun it once the cause is fixed; a successful run resolves its incident.".into(),
        );
    }
    let degraded = impact.as_ref().is_none_or(|i| i.degraded) || !matched;
    if !matched {
        warnings.push("no rule recognises the error message".into());
    }
    let confidence = match (matched, run.error.is_some()) {
        (true, true) => Confidence::Medium,
        (true, false) if run.status != RunStatus::Failed => Confidence::High,
        _ => Confidence::Low,
    };
    Ok(Explanation {
        run_id: run.run_id,
        pipeline: run.pipeline,
        status: run.status,
        likely_cause,
        impact_summary,
        next_actions,
        runbook_url,
        confidence,
        facts,
        degraded,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_give_their_usual_cause() {
        let (c, m) = cause(Some(
            "psycopg2.errors.UndefinedTable: relation \"orders_v2\" does not exist",
        ));
        assert!(m && c.starts_with("An input it reads is missing"), "{c}");
        let (c, _) = cause(Some("java.lang.OutOfMemoryError: Java heap space"));
        assert!(c.contains("memory"), "{c}");
        let (c, _) = cause(Some("AccessDenied: s3:GetObject"));
        assert!(c.contains("permissions"), "{c}");
        let (_, m) = cause(Some("something odd"));
        assert!(!m);
        let (c, m) = cause(None);
        assert!(!m && c.contains("without an error message"));
    }
}
