//! Playbook runs: what was asked, what it would send (secrets masked), what
//! happened at each step, and who decided what.
//!
//! States: `dry_run_ok | dry_run_failed → awaiting_approval → approved |
//! rejected | expired → running → succeeded | failed → rolling_back →
//! rolled_back | rollback_failed`; a run that needs no approval goes from
//! `dry_run_ok` straight to `running`. Every transition is one change of the
//! incident (a timeline entry that goes to chat and an audit event) written
//! in the same transaction as the run, conditional on the run's version, so
//! two callers can never both move it. A request that carries an
//! `Idempotency-Key` stores its answer in that transaction too; the same key
//! again gets the first answer.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{Incident, IncidentId, Principal, Role, TenantId, TimelineKind};
use serde::{Deserialize, Serialize};

use super::definition::{Approval, ApprovalWord, Playbook, Step};
use super::{matches, resolve_params, Catalog};
use crate::auth::require_role;
use crate::change::Change;
use crate::outbox::Effect;
use crate::ports::{Condition, Query};
use crate::work::CommitError;
use crate::{incidents, keys, DomainError, Services};

pub use super::render::{evaluate, masked_scope, render_step};
pub use super::run::*;
pub use super::send::{record_answer, send, send_for_real};

/// Hours an idempotency answer is kept.
const IDEMPOTENCY_HOURS: i64 = 24;

async fn load(svc: &Services, tenant: &TenantId, run_id: &str) -> Result<Run, DomainError> {
    let item = svc
        .store
        .get(&keys::playbook_runs_pk(tenant), run_id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("no playbook run {run_id}")))?;
    let mut run: Run = keys::decode(&item)?;
    run.version = item.version;
    Ok(run)
}

/// A run by id.
pub async fn get(svc: &Services, principal: &Principal, run_id: &str) -> Result<Run, DomainError> {
    require_role(principal, Role::Viewer, "reading a playbook run")?;
    load(svc, &principal.tenant, run_id).await
}

/// The runs of an incident, newest first (at most [`RUNS_PER_INCIDENT`]).
pub async fn for_incident(
    svc: &Services,
    principal: &Principal,
    incident: &IncidentId,
) -> Result<Vec<Run>, DomainError> {
    require_role(principal, Role::Viewer, "listing playbook runs")?;
    let inc = incidents::get(svc, &principal.tenant, incident).await?;
    let page = svc
        .store
        .query(Query {
            pk: keys::incident_pk(&inc.tenant, &inc.id),
            sk_prefix: keys::INCIDENT_RUN_PREFIX.into(),
            after: None,
            limit: RUNS_PER_INCIDENT,
            descending: true,
        })
        .await?;
    let mut out = Vec::new();
    for item in page.items {
        let id = item.sk.trim_start_matches(keys::INCIDENT_RUN_PREFIX);
        out.push(load(svc, &inc.tenant, id).await?);
    }
    Ok(out)
}

/// An answer kept for an idempotency key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Kept {
    op: String,
    target: String,
    run: Run,
    run_version: u64,
}

fn idem_sk(op: &str, key: &str) -> String {
    format!("{op}#{key}")
}

/// The first answer to `key`, if there was one.
async fn kept(
    svc: &Services,
    tenant: &TenantId,
    op: &str,
    target: &str,
    key: Option<&str>,
) -> Result<Option<Run>, DomainError> {
    let Some(key) = key else { return Ok(None) };
    check_key(key)?;
    let Some(item) = svc
        .store
        .get(&keys::idempotency_pk(tenant), &idem_sk(op, key))
        .await?
    else {
        return Ok(None);
    };
    let k: Kept = keys::decode(&item)?;
    if k.target != target {
        // As the IETF Idempotency-Key draft has it: the same key with
        // another request (another run, playbook, or body) is a 422.
        return Err(DomainError::Unprocessable {
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was used for a different request".into(),
        });
    }
    let mut run = k.run;
    run.version = k.run_version;
    Ok(Some(run))
}

fn check_key(key: &str) -> Result<(), DomainError> {
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DomainError::bad_input(
            "bad_idempotency_key",
            "Idempotency-Key must be 1-200 visible ASCII characters",
        ));
    }
    Ok(())
}

/// Commits a run's transition as a change of its incident: a timeline entry
/// per new state (in chat), an audit event, the run itself conditional on
/// the version read, the idempotency answer, and the next effect.
#[allow(clippy::too_many_arguments)]
async fn commit(
    svc: &Services,
    inc: Incident,
    run: &mut Run,
    read_version: Option<u64>,
    actor: &str,
    states: &[(RunState, Option<String>)],
    effect: Option<Effect>,
    idem: Option<Idem<'_>>,
) -> Result<(), CommitError> {
    let mut change = Change::to(svc, inc);
    // The state the run was in before these transitions.
    let before = run
        .history
        .len()
        .checked_sub(states.len() + 1)
        .map(|i| run.history[i].state);
    let mut effect = effect;
    for (i, (state, detail)) in states.iter().enumerate() {
        let entry = change.entry(
            actor,
            TimelineKind::Playbook {
                run_id: run.id.clone(),
                playbook: run.playbook.clone(),
                state: state.as_str().into(),
                detail: detail.clone(),
            },
        );
        match (i + 1 == states.len(), effect.take()) {
            (true, Some(fx)) => change.show_with_effect(entry, fx),
            (_, fx) => {
                effect = fx;
                change.show(entry);
            }
        }
        change.audit_target(
            actor,
            format!("playbook.{}", state.as_str()),
            run.id.clone(),
            serde_json::json!({"state": before.map(RunState::as_str)}),
            serde_json::json!({"state": state.as_str(), "playbook": run.playbook, "incident": run.incident_id}),
            detail.clone(),
        );
    }
    let version = read_version.map_or(1, |v| v + 1);
    let item = keys::item(
        keys::playbook_runs_pk(&run.tenant),
        run.id.clone(),
        version,
        run,
    )
    .map_err(CommitError::Domain)?;
    change.also().put(
        item,
        read_version.map_or(Condition::Absent, Condition::Version),
    );
    if read_version.is_none() {
        let pointer = keys::item(
            keys::incident_pk(&run.tenant, &run.incident_id),
            format!("{}{}", keys::INCIDENT_RUN_PREFIX, run.id),
            1,
            &run.created_at,
        )
        .map_err(CommitError::Domain)?;
        change.also().put(pointer, Condition::Absent);
    }
    if let Some(Idem { op, key, target }) = idem {
        let kept = Kept {
            op: op.to_owned(),
            target: target.to_owned(),
            run: run.clone(),
            run_version: version,
        };
        let mut item = keys::item(
            keys::idempotency_pk(&run.tenant),
            idem_sk(op, key),
            1,
            &kept,
        )
        .map_err(CommitError::Domain)?;
        item.expires_at = Some(svc.clock.now().timestamp() + IDEMPOTENCY_HOURS * 3600);
        change.also().put(item, Condition::Absent);
    }
    change.commit().await?;
    run.version = version;
    Ok(())
}

/// An idempotency key with the request it answers: the operation, and what
/// the request named (for a dry-run the incident, the playbook and the
/// parameters asked for; for a decision the run and its body).
#[derive(Clone, Copy)]
struct Idem<'a> {
    op: &'a str,
    key: &'a str,
    target: &'a str,
}

/// What an idempotency key is bound to: `what`, and a digest of the
/// request's body when it has one, so the same key with another body is
/// refused rather than answered with the first run.
fn idem_target(what: &str, body: Option<&str>) -> String {
    match body {
        None => what.to_owned(),
        Some(b) => format!("{what}?{}", &crate::auth::sha256_hex(b.as_bytes())[..16]),
    }
}

/// Dry-runs playbook `name` for an incident: parameters resolved, every
/// step rendered as it would be sent (secrets masked), the read-only steps
/// sent as preflight, nothing else. The run is `dry_run_ok` (then
/// `awaiting_approval` when the playbook wants approval for these
/// parameters) or `dry_run_failed`.
pub async fn dry_run(
    svc: &Services,
    catalog: &Catalog,
    principal: &Principal,
    incident_id: &IncidentId,
    name: &str,
    overrides: &BTreeMap<String, String>,
    idempotency_key: Option<&str>,
) -> Result<Run, DomainError> {
    require_role(principal, Role::Responder, "dry-running a playbook")?;
    let tenant = &principal.tenant;
    let body =
        (!overrides.is_empty()).then(|| serde_json::to_string(overrides).unwrap_or_default());
    let target = idem_target(&format!("{incident_id}/{name}"), body.as_deref());
    if let Some(key) = idempotency_key {
        check_key(key)?;
        if let Some(run) = kept(svc, tenant, "dry-run", &target, Some(key)).await? {
            return Ok(run);
        }
    }
    let (inc, pb) = offered(svc, catalog, principal, incident_id, name).await?;
    let params = resolve_params(pb, &inc, overrides)?;
    crate::throttle::take(svc, tenant, crate::throttle::Action::DryRun).await?;
    let mut run = new_run(svc, principal, &inc, pb, params, RunState::DryRunOk);
    let states = prepare(svc, &inc, &mut run, None).await;
    let idem = idempotency_key.map(|key| Idem {
        op: "dry-run",
        key,
        target: &target,
    });
    match commit(
        svc,
        inc,
        &mut run,
        None,
        &principal.name,
        &states,
        None,
        idem,
    )
    .await
    {
        Ok(()) => Ok(run),
        Err(e) if e.is_lost_race() => {
            match kept(svc, tenant, "dry-run", &target, idempotency_key).await? {
                Some(first) => Ok(first),
                None => Err(lost()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The dry-run itself: every step rendered (secrets masked), the approval
/// rule evaluated, the read-only steps sent; the run moved to `dry_run_ok`
/// (and `awaiting_approval`) or `dry_run_failed`. `failure` is a reason
/// found before (parameters that could not be filled). Returns the states
/// entered, with their details.
async fn prepare(
    svc: &Services,
    inc: &Incident,
    run: &mut Run,
    failure: Option<String>,
) -> Vec<(RunState, Option<String>)> {
    let pb = run.definition.clone();
    let now = svc.clock.now();
    let masked = masked_scope(inc, &pb, &run.params);
    // The rules parsing enforces (where each secret may go), checked again
    // where the definition is rendered: a run's copy may have come from the
    // compiled catalog, which is JSON no parser checked.
    let mut failure = super::definition::check(&pb).err().or(failure);
    if failure.is_none() {
        let render_all = |steps: &[Step]| -> Result<Vec<RenderedStep>, String> {
            steps.iter().map(|s| render_step(svc, s, &masked)).collect()
        };
        match (render_all(&pb.steps), render_all(&pb.rollback)) {
            (Ok(p), Ok(r)) => {
                run.preview = p;
                run.rollback_preview = r;
            }
            (Err(e), _) | (_, Err(e)) => failure = Some(e),
        }
    }
    run.approval_required = match pb.approval.as_ref().map(|a| &a.value) {
        Some(Approval::Always(ApprovalWord::Never)) => false,
        None | Some(Approval::Always(ApprovalWord::Always)) => true,
        Some(Approval::When { when }) => match masked.truthy(when) {
            Ok(b) => b,
            Err(e) => {
                failure.get_or_insert(format!("approval.when: {e}"));
                true
            }
        },
    };
    if failure.is_none() {
        for step in pb.steps.iter().filter(|s| s.read_only) {
            let mut out = StepOutcome::pending(&step.name.value);
            out.started_at = Some(svc.clock.now());
            let (result, secrets, ms) = send_for_real(svc, step, &masked).await;
            let verdict = record_answer(&mut out, step.expect.as_ref(), &result, &secrets, ms);
            out.finished_at = Some(svc.clock.now());
            out.status = if verdict.is_ok() {
                StepStatus::Succeeded
            } else {
                StepStatus::Failed
            };
            run.preflight.push(out);
            if let Err(e) = verdict {
                failure = Some(format!("preflight `{}` failed: {e}", step.name.value));
                break;
            }
        }
    }
    let by = run.requested_by.clone();
    let mut states = Vec::new();
    match failure {
        Some(why) => {
            run.enter(RunState::DryRunFailed, &by, Some(why.clone()), now);
            states.push((RunState::DryRunFailed, Some(why)));
        }
        None => {
            let steps = format!(
                "{} steps, {} read-only checked",
                run.steps.len(),
                run.preflight.len()
            );
            run.enter(RunState::DryRunOk, &by, Some(steps.clone()), now);
            states.push((RunState::DryRunOk, Some(steps)));
            if run.approval_required {
                let expires = now + Duration::seconds(pb.approval_expires_secs() as i64);
                run.approval_expires_at = Some(expires);
                let detail = format!(
                    "approval needed by {}",
                    expires.format("%Y-%m-%d %H:%M UTC")
                );
                run.enter(RunState::AwaitingApproval, &by, Some(detail.clone()), now);
                states.push((RunState::AwaitingApproval, Some(detail)));
            }
        }
    }
    states
}

/// Asks for a dry-run without waiting for it (a chat button or command,
/// which must answer within seconds): the run is recorded as `requested`
/// with the parameters given, and the dispatcher performs the dry-run
/// ([`perform_dry_run`]); its outcome arrives in the thread.
pub async fn request_dry_run(
    svc: &Services,
    catalog: &Catalog,
    principal: &Principal,
    incident_id: &IncidentId,
    name: &str,
    overrides: &BTreeMap<String, String>,
) -> Result<Run, DomainError> {
    require_role(principal, Role::Responder, "dry-running a playbook")?;
    let (inc, pb) = offered(svc, catalog, principal, incident_id, name).await?;
    if let Some(unknown) = overrides.keys().find(|k| !pb.params.contains_key(*k)) {
        return Err(DomainError::bad_input(
            "unknown_param",
            format!(
                "playbook {} has no parameter `{}`",
                pb.name(),
                crate::limits::shown_name(unknown)
            ),
        ));
    }
    // Counted when asked for, like the API's: the dispatcher sends it.
    crate::throttle::take(svc, &principal.tenant, crate::throttle::Action::DryRun).await?;
    let now = svc.clock.now();
    let mut run = new_run(
        svc,
        principal,
        &inc,
        pb,
        overrides.clone(),
        RunState::Requested,
    );
    let detail = "dry-run requested".to_owned();
    run.enter(
        RunState::Requested,
        &principal.name,
        Some(detail.clone()),
        now,
    );
    let effect = Effect::PlaybookDryRun {
        run_id: run.id.clone(),
    };
    commit(
        svc,
        inc,
        &mut run,
        None,
        &principal.name,
        &[(RunState::Requested, Some(detail))],
        Some(effect),
        None,
    )
    .await?;
    Ok(run)
}

/// The dispatcher's side of [`request_dry_run`]: a run still `requested`
/// is dry-run now (a run already past it is left alone, so a redelivered
/// record does nothing twice).
pub async fn perform_dry_run(
    svc: &Services,
    tenant: &TenantId,
    run_id: &str,
) -> Result<(), StepError> {
    let mut run = match load(svc, tenant, run_id).await {
        Ok(r) => r,
        Err(DomainError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if run.state != RunState::Requested {
        return Ok(());
    }
    let read = run.version;
    let inc = incidents::get(svc, tenant, &run.incident_id).await?;
    let failure = match resolve_params(&run.definition, &inc, &run.params) {
        Ok(p) => {
            run.params = p;
            None
        }
        Err(e) => Some(e.to_string()),
    };
    let states = prepare(svc, &inc, &mut run, failure).await;
    let actor = run.requested_by.clone();
    match commit(svc, inc, &mut run, Some(read), &actor, &states, None, None).await {
        // Another dispatcher finished it first.
        Err(e) if e.is_lost_race() => Ok(()),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(()),
    }
}

/// The incident and the playbook `name`, which must be offered for it.
async fn offered<'c>(
    svc: &Services,
    catalog: &'c Catalog,
    principal: &Principal,
    incident_id: &IncidentId,
    name: &str,
) -> Result<(Incident, &'c Playbook), DomainError> {
    let inc = incidents::get(svc, &principal.tenant, incident_id).await?;
    let pb = catalog
        .get(name)
        .ok_or_else(|| DomainError::NotFound(format!("no playbook {name}")))?;
    if !matches(pb, &inc) {
        return Err(DomainError::conflict(
            "playbook_not_offered",
            format!("playbook {name} does not match incident {incident_id}"),
        ));
    }
    Ok((inc, pb))
}

/// A new run of `pb` for `inc`, every step pending.
fn new_run(
    svc: &Services,
    principal: &Principal,
    inc: &Incident,
    pb: &Playbook,
    params: BTreeMap<String, String>,
    state: RunState,
) -> Run {
    let now = svc.clock.now();
    let pending = |steps: &[Step]| {
        steps
            .iter()
            .map(|s| StepOutcome::pending(&s.name.value))
            .collect()
    };
    Run {
        id: format!("run_{}", svc.ids.ulid()),
        tenant: principal.tenant.clone(),
        incident_id: inc.id.clone(),
        playbook: pb.name().to_owned(),
        title: pb.title.clone(),
        risk: pb.risk,
        state,
        params,
        requested_by: principal.name.clone(),
        approval_required: true,
        approval_expires_at: None,
        decided_by: None,
        steps: pending(&pb.steps),
        rollback: pending(&pb.rollback),
        preview: Vec::new(),
        rollback_preview: Vec::new(),
        preflight: Vec::new(),
        history: Vec::new(),
        created_at: now,
        updated_at: now,
        definition: pb.clone(),
        version: 0,
    }
}

fn lost() -> DomainError {
    DomainError::conflict(
        "conflict",
        "the run was changed by someone else; read it again",
    )
}

/// What a decision on a run needs: the role, the states it applies to.
struct Decision<'a> {
    op: &'a str,
    role: Role,
    what: &'a str,
    /// The request's body, when it has one (a rejection's reason).
    body: Option<&'a str>,
}

/// Runs `decide` on the current run and commits what it returns, once per
/// idempotency key; a run whose approval request has passed its expiry is
/// moved to `expired` first and the decision refused.
async fn decide_on(
    svc: &Services,
    principal: &Principal,
    run_id: &str,
    idempotency_key: Option<&str>,
    d: Decision<'_>,
    decide: impl Fn(
        &mut Run,
        DateTime<Utc>,
    ) -> Result<(Vec<(RunState, Option<String>)>, Option<Effect>), DomainError>,
) -> Result<Run, DomainError> {
    require_role(principal, d.role, d.what)?;
    let tenant = &principal.tenant;
    let target = idem_target(run_id, d.body);
    let mut tries = crate::retry::Tries::new(crate::retry::ATTEMPTS);
    while tries.next().await {
        if let Some(run) = kept(svc, tenant, d.op, &target, idempotency_key).await? {
            return Ok(run);
        }
        let mut run = load(svc, tenant, run_id).await?;
        let read = run.version;
        let now = svc.clock.now();
        let inc = incidents::get(svc, tenant, &run.incident_id).await?;
        if run.state == RunState::AwaitingApproval
            && run.approval_expires_at.is_some_and(|at| at <= now)
        {
            let detail = "the approval request expired".to_owned();
            run.enter(RunState::Expired, "firewatch", Some(detail.clone()), now);
            match commit(
                svc,
                inc,
                &mut run,
                Some(read),
                "firewatch",
                &[(RunState::Expired, Some(detail))],
                None,
                None,
            )
            .await
            {
                Ok(()) => {}
                Err(e) if e.is_lost_race() => continue,
                Err(e) => return Err(e.into()),
            }
            return Err(DomainError::conflict(
                "approval_expired",
                format!("run {run_id}: the approval request expired; dry-run again"),
            ));
        }
        let (states, effect) = match decide(&mut run, now) {
            Ok(d) => d,
            Err(e) => {
                // The same key may have moved the run since it was checked
                // above: its first answer stands.
                if let Some(first) = kept(svc, tenant, d.op, &target, idempotency_key).await? {
                    return Ok(first);
                }
                return Err(e);
            }
        };
        for (s, detail) in &states {
            run.enter(*s, &principal.name, detail.clone(), now);
        }
        let idem = idempotency_key.map(|key| Idem {
            op: d.op,
            key,
            target: &target,
        });
        match commit(
            svc,
            inc,
            &mut run,
            Some(read),
            &principal.name,
            &states,
            effect,
            idem,
        )
        .await
        {
            Ok(()) => return Ok(run),
            Err(e) if e.is_lost_race() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Someone else moved the run each time; the last word is theirs.
    if let Some(run) = kept(svc, tenant, d.op, &target, idempotency_key).await? {
        return Ok(run);
    }
    Err(lost())
}

/// The transition that starts a run's steps (or its rollback steps) and
/// the effect that performs the first one.
fn start(run: &Run, rollback: bool) -> (Vec<(RunState, Option<String>)>, Option<Effect>) {
    let (state, label, steps) = if rollback {
        (RunState::RollingBack, "rollback step", &run.rollback)
    } else {
        (RunState::Running, "step", &run.steps)
    };
    let first = steps.first().map(|s| s.name.clone()).unwrap_or_default();
    (
        vec![(state, Some(format!("{label} 1/{}: {first}", steps.len())))],
        Some(Effect::PlaybookStep {
            run_id: run.id.clone(),
            rollback,
            index: 0,
        }),
    )
}

fn wrong_state(run: &Run, op: &str) -> DomainError {
    DomainError::conflict(
        "invalid_run_state",
        format!(
            "run {} is {}; it cannot be {op}",
            run.id,
            run.state.as_str()
        ),
    )
}

/// Approves a run awaiting approval: an approver (or admin) who is not the
/// requester, before the request expires.
pub async fn approve(
    svc: &Services,
    principal: &Principal,
    run_id: &str,
    idempotency_key: Option<&str>,
) -> Result<Run, DomainError> {
    let d = Decision {
        op: "approve",
        role: Role::Approver,
        what: "approving a playbook run",
        body: None,
    };
    decide_on(svc, principal, run_id, idempotency_key, d, |run, _| {
        if run.state != RunState::AwaitingApproval {
            return Err(wrong_state(run, "approved"));
        }
        if run.requested_by == principal.name {
            return Err(DomainError::Forbidden(format!(
                "four eyes: {} requested this run and cannot approve it; another approver must",
                principal.name
            )));
        }
        run.decided_by = Some(principal.name.clone());
        Ok((
            vec![(
                RunState::Approved,
                Some(format!("approved by {}", principal.name)),
            )],
            None,
        ))
    })
    .await
}

/// Rejects a run awaiting approval (an approver), or cancels one (its
/// requester), before it runs.
pub async fn reject(
    svc: &Services,
    principal: &Principal,
    run_id: &str,
    reason: Option<String>,
    idempotency_key: Option<&str>,
) -> Result<Run, DomainError> {
    let d = Decision {
        op: "reject",
        role: Role::Responder,
        what: "rejecting a playbook run",
        body: reason.as_deref(),
    };
    decide_on(svc, principal, run_id, idempotency_key, d, |run, _| {
        if !matches!(
            run.state,
            RunState::AwaitingApproval | RunState::DryRunOk | RunState::Approved
        ) {
            return Err(wrong_state(run, "rejected"));
        }
        if run.requested_by != principal.name && !principal.can(Role::Approver) {
            return Err(DomainError::Forbidden(
                "rejecting someone else's run needs the approver role".into(),
            ));
        }
        run.decided_by = Some(principal.name.clone());
        let why = reason.clone().map(|r| crate::redact::redact_text(&r));
        Ok((
            vec![(
                RunState::Rejected,
                why.or_else(|| Some(format!("rejected by {}", principal.name))),
            )],
            None,
        ))
    })
    .await
}

/// Starts a run that is approved, or needs no approval: its first step goes
/// to the dispatcher.
pub async fn execute(
    svc: &Services,
    principal: &Principal,
    run_id: &str,
    idempotency_key: Option<&str>,
) -> Result<Run, DomainError> {
    let d = Decision {
        op: "execute",
        role: Role::Responder,
        what: "running a playbook",
        body: None,
    };
    decide_on(svc, principal, run_id, idempotency_key, d, |run, _| {
        match run.state {
            RunState::Approved => {}
            RunState::DryRunOk if !run.approval_required => {}
            RunState::DryRunOk | RunState::AwaitingApproval => {
                return Err(DomainError::conflict(
                    "approval_required",
                    format!("run {} needs an approver's approval first", run.id),
                ))
            }
            _ => return Err(wrong_state(run, "run")),
        }
        Ok(start(run, false))
    })
    .await
}

/// Rolls back a run that failed (or succeeded): its rollback steps go to the
/// dispatcher.
pub async fn rollback(
    svc: &Services,
    principal: &Principal,
    run_id: &str,
    idempotency_key: Option<&str>,
) -> Result<Run, DomainError> {
    let d = Decision {
        op: "rollback",
        role: Role::Responder,
        what: "rolling back a playbook run",
        body: None,
    };
    decide_on(svc, principal, run_id, idempotency_key, d, |run, _| {
        if !matches!(run.state, RunState::Failed | RunState::Succeeded) {
            return Err(wrong_state(run, "rolled back"));
        }
        if run.rollback.is_empty() {
            return Err(DomainError::conflict(
                "no_rollback",
                format!("playbook {} defines no rollback steps", run.playbook),
            ));
        }
        Ok(start(run, true))
    })
    .await
}

/// Commits a step's progress (the dispatcher's side): the run conditional
/// on the version read, entries for new states, the next effect or a poll.
pub(crate) async fn commit_progress(
    svc: &Services,
    run: &mut Run,
    read_version: u64,
    states: &[(RunState, Option<String>)],
    effect: Option<Effect>,
    poll_at: Option<(Effect, DateTime<Utc>)>,
) -> Result<(), CommitError> {
    let inc = incidents::get(svc, &run.tenant, &run.incident_id)
        .await
        .map_err(CommitError::Domain)?;
    if let Some((fx, at)) = poll_at {
        // A poll alone: the run and the scheduled effect, nothing in chat.
        let mut change = Change::to(svc, inc);
        let about = change.entry(
            "firewatch",
            TimelineKind::Playbook {
                run_id: run.id.clone(),
                playbook: run.playbook.clone(),
                state: run.state.as_str().into(),
                detail: None,
            },
        );
        change.schedule_effect(about, fx, at);
        let item = keys::item(
            keys::playbook_runs_pk(&run.tenant),
            run.id.clone(),
            read_version + 1,
            run,
        )
        .map_err(CommitError::Domain)?;
        change.also().put(item, Condition::Version(read_version));
        change.commit().await?;
        run.version = read_version + 1;
        return Ok(());
    }
    commit(
        svc,
        inc,
        run,
        Some(read_version),
        "firewatch",
        states,
        effect,
        None,
    )
    .await
}

/// Writes the run alone (a step claimed or released), conditional on the
/// version read.
pub(crate) async fn put_run(
    svc: &Services,
    run: &mut Run,
    read_version: u64,
) -> Result<(), CommitError> {
    let item = keys::item(
        keys::playbook_runs_pk(&run.tenant),
        run.id.clone(),
        read_version + 1,
        run,
    )
    .map_err(CommitError::Domain)?;
    crate::work::put(svc, item, Condition::Version(read_version)).await?;
    run.version = read_version + 1;
    Ok(())
}

pub(crate) async fn load_run(
    svc: &Services,
    tenant: &TenantId,
    run_id: &str,
) -> Result<Run, DomainError> {
    load(svc, tenant, run_id).await
}
