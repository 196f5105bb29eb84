//! Chat commands (`/fw …`) and button presses: what a chat user asks
//! for, checked against their role, done through the capabilities.

use firewatch_types::{Button, ButtonAction, ChatMessage, Incident};

use crate::incidents::{self, ListFilter};
use crate::{DomainError, Services};
use firewatch_types::{IncidentAction, IncidentId, IncidentState, Principal};

/// Triage from chat. Deterministic triage answers at once; assisted triage
/// is handed to the dispatcher (a model may take longer than a click may
/// wait: platforms want an answer within 3 seconds) and its report follows
/// in the thread.
async fn triage(
    svc: &Services,
    catalog: &crate::playbooks::Catalog,
    p: &Principal,
    id: &IncidentId,
    mode: crate::triage::Requested,
) -> Result<ChatMessage, DomainError> {
    match mode {
        crate::triage::Requested::Deterministic => {
            let r = crate::triage::run(svc, p, id).await?;
            Ok(ChatMessage::text(format!(
                "Triage of `{id}` posted in its thread: {} ({} confidence).",
                r.likely_cause, r.confidence
            )))
        }
        crate::triage::Requested::Assisted => {
            crate::auth::require_role(p, firewatch_types::Role::Responder, "triage an incident")?;
            let inc = incidents::get(svc, &p.tenant, id).await?;
            let playbooks = crate::playbooks::offered_names(catalog, &inc);
            crate::triage::request(svc, p, id, mode, playbooks).await?;
            Ok(ChatMessage::text(format!(
                "Assisted triage of `{id}` started; the report follows in its thread."
            )))
        }
    }
}

/// Runs a chat command: `incidents | show <id> | ack <id> | resolve <id>
/// [reason] | triage <id> [assisted|deterministic] | playbooks <id> | dry-run <id> <playbook>
/// [k=v…] | approve <run> | reject <run> | run <run> | rollback <run> |
/// help`. `prefix` is how the platform spells the command in the usage
/// line (`/fw ` on Slack, `/` on Telegram).
///
/// `Err` only for a passing failure (the store unavailable): the request is
/// then not marked handled, so the platform's redelivery runs it again.
pub async fn run_command(
    svc: &Services,
    catalog: &crate::playbooks::Catalog,
    p: &Principal,
    text: &str,
    prefix: &str,
) -> Result<ChatMessage, DomainError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let sub = words.first().copied().unwrap_or("help");
    let arg = words.get(1).copied();
    let rest = words.get(2..).unwrap_or_default();
    let id = arg.map(IncidentId::parse);
    let answer = |r: Result<ChatMessage, DomainError>| -> Result<ChatMessage, DomainError> {
        match r {
            Ok(m) => Ok(m),
            Err(e) => final_answer(e).map(ChatMessage::text),
        }
    };
    let text = match (sub, id) {
        ("incidents", _) => {
            let filter = ListFilter { state: Some(IncidentState::Open), ..Default::default() };
            match incidents::list(svc, &p.tenant, &filter, None, 10).await {
                Ok(page) if page.items.is_empty() => "No open incidents.".into(),
                Ok(page) => page
                    .items
                    .iter()
                    .map(|i| format!("`{}` {} {} ({}×)", i.id, i.severity, i.title, i.occurrences))
                    .collect::<Vec<_>>()
                    .join("\n"),
                Err(e) => final_answer(e)?,
            }
        }
        ("show", Some(Ok(id))) => match incidents::get(svc, &p.tenant, &id).await {
            Ok(i) => format!("`{}` {} · {} · {} · seen {}×\n{}", i.id, i.severity, i.state, i.source, i.occurrences, i.title),
            Err(e) => final_answer(e)?,
        },
        ("ack" | "resolve", Some(Ok(id))) => {
            let action = if sub == "ack" { IncidentAction::Ack } else { IncidentAction::Resolve };
            let reason = (!rest.is_empty()).then(|| rest.join(" "));
            match incidents::act(svc, p, &id, action, reason, None).await {
                Ok(i) => format!("`{}` is now {}.", i.id, i.state),
                Err(e) => final_answer(e)?,
            }
        }
        ("triage", Some(Ok(id))) => {
            let mode = match rest.first() {
                None => svc.settings.triage_default,
                Some(m) => match crate::triage::Requested::parse(m) {
                    Some(m) => m,
                    None => return Ok(ChatMessage::text(format!("Usage: {prefix}triage <id> [assisted|deterministic]"))),
                },
            };
            return answer(triage(svc, catalog, p, &id, mode).await);
        }
        ("ticket", Some(Ok(id))) => {
            return answer(ticket(svc, p, &id, rest.first() == Some(&"again")).await);
        }
        ("silence", _) => return answer(silence(svc, p, &words[1..], prefix).await),
        ("silences", _) => return answer(silences(svc, p).await),
        ("oncall", _) => return answer(oncall(svc, p, arg).await),
        ("snooze", Some(Ok(id))) => {
            let Some(for_) = rest.first().and_then(|d| crate::silences::parse_duration(d)) else {
                return Ok(ChatMessage::text(format!("Usage: {prefix}snooze <id> <duration>, e.g. {prefix}snooze {id} 30m")));
            };
            return answer(crate::escalation::snooze(svc, p, &id, for_).await.map(|i| snoozed(&i)));
        }
        ("unsilence", Some(_)) => {
            return answer(
                crate::silence_ends::expire(
                    svc,
                    p,
                    arg.unwrap_or_default(),
                    crate::silence_ends::Release::ByTheJob,
                )
                    .await
                    .map(|v| ChatMessage::text(format!("Silence {} expired.", v.silence.id))),
            )
        }
        ("playbooks", Some(Ok(id))) => {
            return answer(crate::playbooks::chat::offered(svc, catalog, p, &id).await)
        }
        ("dry-run", _) => {
            return answer(crate::playbooks::chat::dry_run_command(svc, catalog, p, &words[1..]).await)
        }
        ("approve" | "reject" | "run" | "rollback", _) if arg.is_some_and(|a| a.starts_with("run_")) => {
            let action = match sub {
                "approve" => ButtonAction::Approve,
                "reject" => ButtonAction::Reject,
                "run" => ButtonAction::Execute,
                _ => ButtonAction::Rollback,
            };
            return answer(crate::playbooks::chat::decide(svc, p, action, arg.unwrap_or_default()).await);
        }
        (_, Some(Err(e))) => e.to_string(),
        _ => format!("Usage: {prefix}incidents · {prefix}show <id> · {prefix}ack <id> · {prefix}resolve <id> [reason] · {prefix}triage <id> [assisted] · {prefix}ticket <id> [again] · {prefix}silence <id|matchers…> <duration> [comment] · {prefix}silences · {prefix}unsilence <silence> · {prefix}snooze <id> <duration> · {prefix}oncall [schedule] · {prefix}playbooks <id> · {prefix}dry-run <id> <playbook> [k=v…] · {prefix}approve <run> · {prefix}reject <run> · {prefix}run <run> · {prefix}rollback <run> · {prefix}help"),
    };
    Ok(ChatMessage::text(text))
}

/// `silence <incident> <duration> [comment]` or `silence <matcher>…
/// <duration> <comment>`: the first word that reads as a duration ends the
/// matchers.
async fn silence(
    svc: &Services,
    p: &Principal,
    words: &[&str],
    prefix: &str,
) -> Result<ChatMessage, DomainError> {
    let usage = || {
        ChatMessage::text(format!(
            "Usage: {prefix}silence <incident> <duration> [comment] or {prefix}silence <matcher>… <duration> <comment>, e.g. {prefix}silence alertname=DiskFull env=~\"prod|stage\" 2h disk swap"
        ))
    };
    let Some(at) = words
        .iter()
        .position(|w| crate::silences::parse_duration(w).is_some())
    else {
        return Ok(usage());
    };
    let (what, rest) = words.split_at(at);
    let Some(for_) = crate::silences::parse_duration(rest[0]) else {
        return Ok(usage());
    };
    let comment = (rest.len() > 1).then(|| rest[1..].join(" "));
    let s = match what {
        [one] if IncidentId::parse(one).is_ok() => {
            let id = IncidentId::parse(one)
                .map_err(|e| DomainError::bad_input("invalid_id", e.to_string()))?;
            crate::silences::silence_incident(svc, p, &id, for_, comment).await?
        }
        [] => return Ok(usage()),
        ms => {
            let matchers = crate::silences::matchers::parse_all(ms.iter().copied())?;
            let Some(comment) = comment else {
                return Ok(ChatMessage::text(
                    "A silence by matchers needs a comment: say why after the duration.",
                ));
            };
            crate::silences::create(
                svc,
                p,
                crate::silences::NewSilence {
                    matchers,
                    ends_at: svc.clock.now() + for_,
                    comment,
                    ..Default::default()
                },
            )
            .await?
        }
    };
    Ok(ChatMessage::text(format!(
        "Silenced {} until {} (silence {}); `unsilence {}` ends it early.",
        s.selector(),
        s.ends_at.format("%Y-%m-%d %H:%M UTC"),
        s.id,
        s.id
    )))
}

fn snoozed(i: &Incident) -> ChatMessage {
    ChatMessage::text(format!(
        "{} snoozed until {}: reminders and escalation pause.",
        i.id,
        i.snoozed_until
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default()
    ))
}

/// `oncall [schedule]`: who is on call now, in one schedule or all.
async fn oncall(
    svc: &Services,
    p: &Principal,
    schedule: Option<&str>,
) -> Result<ChatMessage, DomainError> {
    let schedules = match schedule {
        Some(id) => vec![crate::oncall::get(svc, p, id).await?],
        None => crate::oncall::list(svc, p).await?,
    };
    if schedules.is_empty() {
        return Ok(ChatMessage::text(
            "No on-call schedules yet (PUT /v1/oncall-schedules/{id}).",
        ));
    }
    let now = svc.clock.now();
    let mut lines = Vec::new();
    for s in &schedules {
        let shifts = s.on_call(now);
        if shifts.is_empty() {
            lines.push(format!("{} ({}): nobody on call now", s.name, s.id));
        }
        for sh in shifts {
            lines.push(format!(
                "{} ({}) · {}: {}{} until {}",
                s.name,
                s.id,
                sh.rotation,
                crate::oncall::display_name(&sh.who),
                if sh.overridden { " (override)" } else { "" },
                sh.until.format("%Y-%m-%d %H:%M UTC")
            ));
        }
    }
    Ok(ChatMessage::text(lines.join("\n")))
}

/// `silences`: the active and pending silences, ending first.
async fn silences(svc: &Services, p: &Principal) -> Result<ChatMessage, DomainError> {
    use crate::silences::{Filter, State};
    let f = Filter {
        states: vec![State::Active, State::Pending],
        ..Default::default()
    };
    let list = crate::silences::list(svc, p, &f).await?;
    if list.is_empty() {
        return Ok(ChatMessage::text("No active or pending silences."));
    }
    let lines: Vec<String> = list
        .iter()
        .take(20)
        .map(|v| {
            format!(
                "`{}` {} {} until {} by {}: {} ({} alerts held)",
                v.silence.id,
                v.state.as_str(),
                v.silence.selector(),
                v.silence.ends_at.format("%Y-%m-%d %H:%M UTC"),
                v.silence.created_by,
                v.silence.comment,
                v.matched_alerts
            )
        })
        .collect();
    Ok(ChatMessage::text(lines.join("\n")))
}

/// Asks for a tracker ticket from chat: the link follows in the thread.
async fn ticket(
    svc: &Services,
    p: &Principal,
    id: &IncidentId,
    again: bool,
) -> Result<ChatMessage, DomainError> {
    let r = crate::tickets::request(svc, p, id, again).await?;
    Ok(ChatMessage::text(match (r.status, &r.ticket) {
        (_, Some(t)) => format!(
            "{id} already has ticket {} ({}); `ticket {id} again` opens another",
            t.id, t.url
        ),
        ("pending", _) => {
            format!("A ticket for {id} is on its way; its link follows in the thread")
        }
        _ => format!("Ticket requested for {id}; its link follows in the thread"),
    }))
}

/// Carries out a button for `p` from its payload; the answer is worded for
/// whoever pressed it (the thread shows the change itself, through the
/// outbox). `Err` is a refusal (see [`final_answer`]).
pub async fn press(
    svc: &Services,
    catalog: &crate::playbooks::Catalog,
    p: &Principal,
    payload: &str,
) -> Result<ChatMessage, DomainError> {
    let (action, target) = Button::parse(payload).ok_or_else(|| {
        DomainError::bad_input("invalid_button", "this button is not firewatch's")
    })?;
    let incident = || {
        IncidentId::parse(target)
            .map_err(|_| DomainError::bad_input("invalid_button", "this button names no incident"))
    };
    let done = |i: Incident| ChatMessage::text(format!("{} is now {}", i.id, i.state));
    match action {
        ButtonAction::Ack => incidents::act(svc, p, &incident()?, IncidentAction::Ack, None, None)
            .await
            .map(done),
        ButtonAction::Resolve => {
            incidents::act(svc, p, &incident()?, IncidentAction::Resolve, None, None)
                .await
                .map(done)
        }
        ButtonAction::Triage => {
            triage(svc, catalog, p, &incident()?, svc.settings.triage_default).await
        }
        ButtonAction::Helpful | ButtonAction::NotHelpful => {
            let helpful = action == ButtonAction::Helpful;
            crate::triage::feedback::record(svc, p, None, target, helpful, None)
                .await
                .map(|_| {
                    ChatMessage::text(if helpful {
                        "Thanks: recorded that this triage report helped."
                    } else {
                        "Thanks: recorded that this triage report did not help."
                    })
                })
        }
        ButtonAction::Playbooks => {
            crate::playbooks::chat::offered(svc, catalog, p, &incident()?).await
        }
        ButtonAction::Ticket => ticket(svc, p, &incident()?, false).await,
        ButtonAction::Snooze30m | ButtonAction::Snooze2h => {
            let for_ = if action == ButtonAction::Snooze30m {
                chrono::Duration::minutes(30)
            } else {
                chrono::Duration::hours(2)
            };
            crate::escalation::snooze(svc, p, &incident()?, for_)
                .await
                .map(|i| snoozed(&i))
        }
        ButtonAction::Silence => {
            let id = incident()?;
            crate::silences::silence_incident(svc, p, &id, chrono::Duration::hours(1), None)
                .await
                .map(|s| {
                    ChatMessage::text(format!(
                        "Silenced {} for an hour (silence {}); the thread says when it ends.",
                        s.selector(),
                        s.id
                    ))
                })
        }
        ButtonAction::DryRun => {
            crate::playbooks::chat::dry_run_choice(svc, catalog, p, target).await
        }
        ButtonAction::Approve
        | ButtonAction::Reject
        | ButtonAction::Execute
        | ButtonAction::Rollback => crate::playbooks::chat::decide(svc, p, action, target).await,
    }
}

/// The answer to a chat user no admin has mapped to a role.
pub const NOT_MAPPED: &str = "You are not mapped to a firewatch role, so nothing was changed. Ask an admin to add you (POST /v1/chat-identities).";

/// A chat action's failure as the answer to show, or `Err` when it is a
/// passing one (the store unavailable) that a redelivery should retry.
pub fn final_answer(e: DomainError) -> Result<String, DomainError> {
    match e {
        DomainError::Unavailable(_) => Err(e),
        other => Ok(explain(other)),
    }
}

/// A refusal or failure worded for the person who clicked or typed.
pub fn explain(e: DomainError) -> String {
    match e {
        DomainError::Forbidden(m)
        | DomainError::NotFound(m)
        | DomainError::BadInput { message: m, .. } => m,
        DomainError::Conflict { message, .. } => message,
        DomainError::Unauthorized(m) => m,
        other => {
            tracing::warn!(error = %other, "chat action failed");
            "firewatch could not do that right now; try again".into()
        }
    }
}
