//! Performing one step of a run: the dispatcher's effect for an outbox record
//! that carries [`Effect::PlaybookStep`].
//!
//! A step is performed at most once however often its record is delivered:
//! the run is re-read, a finished step is skipped, and the step is claimed
//! (a conditional write of the run) before its request is sent, so of 20
//! dispatchers holding the same record one sends. A request that never
//! reached its target is released and retried by the dispatch policy; one
//! the target may have seen (an answer with an unexpected status, a timeout,
//! a claim whose holder vanished) is never sent again: the step fails and
//! the run offers its rollback. A `wait_until` step polls, and between polls
//! schedules its next poll as an outbox record due later: no process sleeps
//! through the wait.

use chrono::Duration;
use firewatch_types::TenantId;

use super::definition::StepKind;
use super::runs::{self, masked_scope, record_answer, send_for_real, Run, RunState, StepStatus};
use crate::outbox::Effect;
use crate::ports::OutboundError;
use crate::retry::Retry;
use crate::work::CommitError;
use crate::{incidents, DomainError, Services};

/// Extra time a claim holds beyond the request's own timeout.
const CLAIM_MARGIN_SECS: i64 = 30;

pub use super::runs::StepError;

fn retry(message: impl Into<String>) -> StepError {
    StepError {
        retryable: true,
        message: message.into(),
    }
}

/// Performs step `index` of run `run_id` (its rollback when `rollback`).
pub async fn perform(
    svc: &Services,
    tenant: &TenantId,
    run_id: &str,
    rollback: bool,
    index: usize,
) -> Result<(), StepError> {
    // Every attempt lost: a retryable step error with these words.
    let busy =
        || DomainError::Unavailable("the run kept changing under this step; will retry".into());
    crate::retry::until_won!(
        crate::retry::ATTEMPTS,
        busy,
        async || -> Result<_, Retry> { attempt(svc, tenant, run_id, rollback, index).await }
    )
    .await?
}

fn lost<T>(r: Result<T, CommitError>) -> Result<Result<T, StepError>, Retry> {
    match r {
        Err(e) if e.is_lost_race() => Err(Retry::Lost),
        Err(e) => Ok(Err(e.into())),
        Ok(v) => Ok(Ok(v)),
    }
}

async fn attempt(
    svc: &Services,
    tenant: &TenantId,
    run_id: &str,
    rollback: bool,
    index: usize,
) -> Result<Result<(), StepError>, Retry> {
    let mut run = match runs::load_run(svc, tenant, run_id).await {
        Ok(r) => r,
        Err(DomainError::NotFound(_)) => return Ok(Ok(())),
        Err(e) => return Ok(Err(e.into())),
    };
    let phase = if rollback {
        RunState::RollingBack
    } else {
        RunState::Running
    };
    if run.state != phase || index >= run.defined_steps(rollback).len() {
        return Ok(Ok(()));
    }
    let read = run.version;
    let now = svc.clock.now();
    let step = run.defined_steps(rollback)[index].clone();
    let kind = step.kind.value;
    let outcome = run.outcomes_mut(rollback)[index].clone();
    if outcome.is_finished() {
        return Ok(Ok(()));
    }
    if outcome.status == StepStatus::Sending {
        if outcome.claimed_until.is_some_and(|t| t > now) {
            return Ok(Err(retry("the step is being sent by another dispatcher")));
        }
        if !matches!(kind, StepKind::WaitUntil | StepKind::Notify) {
            // Whoever claimed it vanished without writing the answer: the
            // request may have reached the target. Never sent twice.
            let why = "the answer to an earlier attempt was lost; the request may have reached the target and is not sent again".to_owned();
            return finish(svc, &mut run, read, rollback, index, Err(why)).await;
        }
    }
    if outcome.status == StepStatus::Waiting && outcome.claimed_until.is_some_and(|t| t > now) {
        // An early poll record (a duplicate); the scheduled one will come.
        return Ok(Ok(()));
    }
    let inc = match incidents::get(svc, &run.tenant, &run.incident_id).await {
        Ok(i) => i,
        Err(e) => return Ok(Err(e.into())),
    };
    // The rules parsing enforces (where each secret may go), checked again
    // before anything is rendered or sent.
    if let Err(e) = super::definition::check(&run.definition) {
        return finish(svc, &mut run, read, rollback, index, Err(e)).await;
    }
    let masked = masked_scope(&inc, &run.definition, &run.params);
    // Rendered once, masked: what a notify says, and the step's times.
    let shown = match runs::render_step(svc, &step, &masked) {
        Ok(r) => r,
        Err(e) => return finish(svc, &mut run, read, rollback, index, Err(e)).await,
    };
    if kind == StepKind::Notify {
        let text = shown.text.unwrap_or_default();
        return finish(svc, &mut run, read, rollback, index, Ok(text)).await;
    }
    if kind == StepKind::Ticket {
        // The ticket is the incident's, opened once through its own effect:
        // a step that runs again finds it pending or linked.
        let who = firewatch_types::Principal {
            tenant: run.tenant.clone(),
            name: run.requested_by.clone(),
            role: firewatch_types::Role::Responder,
        };
        let said = match crate::tickets::request(svc, &who, &run.incident_id, false).await {
            Ok(r) => Ok(match r.ticket {
                Some(t) => format!("ticket {} is linked: {}", t.id, t.url),
                None => format!("ticket {} ({})", r.key, r.status),
            }),
            Err(e @ DomainError::Unavailable(_)) => return Ok(Err(e.into())),
            Err(e) => Err(e.to_string()),
        };
        return finish(svc, &mut run, read, rollback, index, said).await;
    }
    // Claim the step: from here on, one dispatcher sends it.
    let timeout = shown.timeout_secs;
    let request_timeout = if kind == StepKind::WaitUntil {
        runs::DEFAULT_TIMEOUT_SECS
    } else {
        timeout
    };
    {
        let o = &mut run.outcomes_mut(rollback)[index];
        o.status = StepStatus::Sending;
        o.started_at.get_or_insert(now);
        o.claimed_until = Some(now + Duration::seconds(request_timeout as i64 + CLAIM_MARGIN_SECS));
    }
    match runs::put_run(svc, &mut run, read).await {
        Ok(()) => {}
        Err(e) if e.is_lost_race() => return Err(Retry::Lost),
        Err(e) => return Ok(Err(e.into())),
    }
    let read = run.version;
    let (result, secrets, ms) = send_for_real(svc, &step, &masked).await;
    let now = svc.clock.now();
    if let Err(OutboundError::Unreached(m)) = &result {
        if kind != StepKind::WaitUntil {
            // It never left: release the claim; the dispatch policy retries.
            let o = &mut run.outcomes_mut(rollback)[index];
            o.status = StepStatus::Pending;
            o.claimed_until = None;
            o.detail = Some(format!("not sent: {m}"));
            return match runs::put_run(svc, &mut run, read).await {
                Ok(()) => Ok(Err(retry(format!("step not sent: {m}")))),
                Err(e) if e.is_lost_race() => Err(Retry::Lost),
                Err(e) => Ok(Err(e.into())),
            };
        }
    }
    let expect = step.expect.clone();
    let verdict = {
        let o = &mut run.outcomes_mut(rollback)[index];
        o.claimed_until = None;
        record_answer(o, expect.as_ref(), &result, &secrets, ms)
    };
    if kind == StepKind::WaitUntil && verdict.is_err() {
        let o = &run.outcomes_mut(rollback)[index];
        let started = o.started_at.unwrap_or(now);
        let interval = shown.interval_secs.unwrap_or(runs::DEFAULT_INTERVAL_SECS);
        let next = now + Duration::seconds(interval as i64);
        if next < started + Duration::seconds(timeout as i64) {
            let o = &mut run.outcomes_mut(rollback)[index];
            o.status = StepStatus::Waiting;
            // Marks when the next poll is due, so an early duplicate waits.
            o.claimed_until = Some(next);
            let fx = Effect::PlaybookStep {
                run_id: run.id.clone(),
                rollback,
                index,
            };
            return lost(
                runs::commit_progress(svc, &mut run, read, &[], None, Some((fx, next))).await,
            );
        }
        let last = verdict.err().unwrap_or_default();
        return finish(
            svc,
            &mut run,
            read,
            rollback,
            index,
            Err(format!("timed out after {timeout}s (last: {last})")),
        )
        .await;
    }
    let detail = run.outcomes_mut(rollback)[index]
        .detail
        .clone()
        .unwrap_or_default();
    finish(
        svc,
        &mut run,
        read,
        rollback,
        index,
        verdict.map(|()| detail),
    )
    .await
}

/// Records a finished step and moves the run on: the next step, or the
/// run's end.
async fn finish(
    svc: &Services,
    run: &mut Run,
    read: u64,
    rollback: bool,
    index: usize,
    result: Result<String, String>,
) -> Result<Result<(), StepError>, Retry> {
    let now = svc.clock.now();
    let total = run.defined_steps(rollback).len();
    let name = run.defined_steps(rollback)[index].name.value.clone();
    let label = if rollback { "rollback step" } else { "step" };
    let (states, effect) = {
        let o = &mut run.outcomes_mut(rollback)[index];
        o.finished_at = Some(now);
        o.claimed_until = None;
        match &result {
            Ok(detail) => {
                o.status = StepStatus::Succeeded;
                if o.detail.is_none() {
                    o.detail = Some(detail.clone());
                }
            }
            Err(why) => {
                o.status = StepStatus::Failed;
                o.detail = Some(why.clone());
            }
        }
        let done = format!("{label} {}/{total} `{name}`", index + 1);
        match (&result, index + 1 < total) {
            (Ok(detail), true) => {
                let next = run.defined_steps(rollback)[index + 1].name.value.clone();
                (
                    vec![(
                        run.state,
                        Some(format!(
                            "{done} ok ({detail}); {label} {}/{total}: {next}",
                            index + 2
                        )),
                    )],
                    Some(Effect::PlaybookStep {
                        run_id: run.id.clone(),
                        rollback,
                        index: index + 1,
                    }),
                )
            }
            (Ok(detail), false) => {
                let end = if rollback {
                    RunState::RolledBack
                } else {
                    RunState::Succeeded
                };
                (vec![(end, Some(format!("{done} ok ({detail})")))], None)
            }
            (Err(why), _) => {
                let end = if rollback {
                    RunState::RollbackFailed
                } else {
                    RunState::Failed
                };
                let offer = if !rollback && !run.rollback.is_empty() {
                    "; roll back is available"
                } else {
                    ""
                };
                (
                    vec![(end, Some(format!("{done} failed: {why}{offer}")))],
                    None,
                )
            }
        }
    };
    for (s, d) in &states {
        if *s != run.state {
            run.state = *s;
        }
        run.updated_at = now;
        run.history.push(runs::Transition {
            at: now,
            state: *s,
            by: "firewatch".into(),
            detail: d.clone(),
        });
    }
    lost(runs::commit_progress(svc, run, read, &states, effect, None).await)
}
