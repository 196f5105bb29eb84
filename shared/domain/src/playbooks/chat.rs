//! Playbooks in chat: the run's own message in the incident's thread (its
//! state, each request as it would be sent with secrets masked, each step's
//! outcome, and the buttons its state allows), the list of playbooks offered
//! for an incident as buttons, and the chat commands.

use std::collections::BTreeMap;

use firewatch_types::{Button, ButtonAction, ChatMessage, IncidentId, Principal};

use super::runs::{self, Run, RunState, StepStatus};
use super::{matches, Catalog};
use crate::{incidents, DomainError, Services};

fn status_mark(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Pending => "·",
        StepStatus::Sending => "…",
        StepStatus::Waiting => "⏳",
        StepStatus::Succeeded => "✅",
        StepStatus::Failed => "❌",
    }
}

/// A run's own message: edited in place at every transition.
pub fn run_message(run: &Run) -> ChatMessage {
    let risk = match run.risk {
        super::definition::Risk::Low => "low",
        super::definition::Risk::Medium => "medium",
        super::definition::Risk::High => "high",
    };
    let mut text = format!(
        "Playbook {} · {} · {risk} risk\n{}\nRun {} for {} · requested by {}",
        run.playbook,
        run.state.as_str().replace('_', " "),
        run.title,
        run.id,
        run.incident_id,
        run.requested_by
    );
    if let Some(d) = &run.decided_by {
        text.push_str(&format!(" · decided by {d}"));
    }
    if let (RunState::AwaitingApproval, Some(at)) = (run.state, run.approval_expires_at) {
        text.push_str(&format!(
            "\nApproval open until {}",
            at.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    if !run.params.is_empty() {
        let params: Vec<_> = run.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push_str(&format!("\nParams: {}", params.join(" ")));
    }
    let line = |n: usize, p: &runs::RenderedStep, o: Option<&runs::StepOutcome>| {
        let what = match (&p.request, &p.function, &p.text) {
            (Some(r), _, _) => format!("{} {}", r.method, r.url),
            (_, Some(f), _) => format!("invoke {f}"),
            (_, _, Some(t)) => format!("notify: {t}"),
            _ => String::new(),
        };
        let (mark, detail) = o.map_or(("·", String::new()), |o| {
            (
                status_mark(o.status),
                o.detail
                    .as_ref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default(),
            )
        });
        let ro = if p.read_only { " [read-only]" } else { "" };
        format!("\n{mark} {n}. {}{ro}: {what}{detail}", p.name)
    };
    text.push_str("\nSteps:");
    for (i, p) in run.preview.iter().enumerate() {
        // Until a step is sent, a read-only one shows what its dry-run
        // check found, so an approver sees it where they decide.
        let outcome = match run.steps.get(i) {
            Some(o) if o.status != StepStatus::Pending => Some(o),
            pending => p
                .read_only
                .then(|| run.preflight.iter().find(|o| o.name == p.name))
                .flatten()
                .or(pending),
        };
        text.push_str(&line(i + 1, p, outcome));
    }
    if !run.rollback_preview.is_empty() {
        text.push_str("\nRollback:");
        for (i, p) in run.rollback_preview.iter().enumerate() {
            let o = matches!(
                run.state,
                RunState::RollingBack | RunState::RolledBack | RunState::RollbackFailed
            )
            .then(|| run.rollback.get(i))
            .flatten();
            text.push_str(&line(i + 1, p, o));
        }
    }
    if let Some(t) = run.history.last().and_then(|t| t.detail.as_ref()) {
        text.push_str(&format!("\nLast: {t}"));
    }
    let b = |a: ButtonAction, label: &str| Button::to(a, label, &run.id);
    let buttons = match run.state {
        RunState::AwaitingApproval => vec![
            b(ButtonAction::Approve, "Approve"),
            b(ButtonAction::Reject, "Reject"),
        ],
        RunState::DryRunOk if !run.approval_required => vec![
            b(ButtonAction::Execute, "Run"),
            b(ButtonAction::Reject, "Cancel"),
        ],
        RunState::Approved => vec![
            b(ButtonAction::Execute, "Run"),
            b(ButtonAction::Reject, "Cancel"),
        ],
        RunState::Failed | RunState::Succeeded if !run.rollback.is_empty() => {
            vec![b(ButtonAction::Rollback, "Roll back")]
        }
        _ => Vec::new(),
    };
    ChatMessage { text, buttons }
}

/// The playbooks offered for an incident, one button each.
pub async fn offered(
    svc: &Services,
    catalog: &Catalog,
    p: &Principal,
    incident: &IncidentId,
) -> Result<ChatMessage, DomainError> {
    crate::auth::require_role(p, firewatch_types::Role::Viewer, "listing playbooks")?;
    let inc = incidents::get(svc, &p.tenant, incident).await?;
    let mut text = String::new();
    let mut buttons = Vec::new();
    for (n, pb) in catalog.playbooks().iter().enumerate() {
        if !matches(pb, &inc) {
            continue;
        }
        text.push_str(&format!("\n• {} — {}", pb.name(), pb.title));
        buttons.push(Button::to(
            ButtonAction::DryRun,
            &format!("Dry-run {}", pb.name()),
            &format!("{}.{n}", inc.id),
        ));
    }
    if buttons.is_empty() {
        return Ok(ChatMessage::text(format!(
            "No playbook matches {}.",
            inc.id
        )));
    }
    Ok(ChatMessage {
        text: format!("Playbooks for {}:{text}", inc.id),
        buttons,
    })
}

/// Dry-runs the `n`-th playbook of the catalog for an incident (a button's
/// `<incident>.<n>` target).
pub async fn dry_run_choice(
    svc: &Services,
    catalog: &Catalog,
    p: &Principal,
    target: &str,
) -> Result<ChatMessage, DomainError> {
    let bad =
        || DomainError::bad_input("invalid_choice", "this playbook button is no longer valid");
    let (inc, n) = target.rsplit_once('.').ok_or_else(bad)?;
    let inc = IncidentId::parse(inc).map_err(|_| bad())?;
    let n: usize = n.parse().map_err(|_| bad())?;
    let pb = catalog.playbooks().get(n).ok_or_else(bad)?;
    let run = runs::request_dry_run(svc, catalog, p, &inc, pb.name(), &BTreeMap::new()).await?;
    Ok(ChatMessage::text(format!(
        "Dry-run {} of {} requested: its message follows in the thread.",
        run.id, run.playbook
    )))
}

/// A run button pressed: approve, reject, run or roll back.
pub async fn decide(
    svc: &Services,
    p: &Principal,
    action: ButtonAction,
    run_id: &str,
) -> Result<ChatMessage, DomainError> {
    let run = match action {
        ButtonAction::Approve => runs::approve(svc, p, run_id, None).await?,
        ButtonAction::Reject => runs::reject(svc, p, run_id, None, None).await?,
        ButtonAction::Execute => runs::execute(svc, p, run_id, None).await?,
        ButtonAction::Rollback => runs::rollback(svc, p, run_id, None).await?,
        _ => return Err(DomainError::bad_input("invalid_choice", "not a run button")),
    };
    Ok(ChatMessage::text(format!(
        "{} {} is now {}.",
        run.playbook,
        run.id,
        run.state.as_str().replace('_', " ")
    )))
}

/// `dry-run <incident> <name> [k=v…]`.
pub async fn dry_run_command(
    svc: &Services,
    catalog: &Catalog,
    p: &Principal,
    args: &[&str],
) -> Result<ChatMessage, DomainError> {
    let usage = || DomainError::bad_input("usage", "dry-run <incident> <playbook> [key=value ...]");
    let (inc, name, rest) = match args {
        [inc, name, rest @ ..] => (*inc, *name, rest),
        _ => return Err(usage()),
    };
    let inc =
        IncidentId::parse(inc).map_err(|e| DomainError::bad_input("invalid_id", e.to_string()))?;
    let mut params = BTreeMap::new();
    for kv in rest {
        let (k, v) = kv.split_once('=').ok_or_else(usage)?;
        params.insert(k.to_owned(), v.to_owned());
    }
    let run = runs::request_dry_run(svc, catalog, p, &inc, name, &params).await?;
    Ok(ChatMessage::text(format!(
        "Dry-run {} of {} requested: its message follows in the thread.",
        run.id, run.playbook
    )))
}
