//! What the domain says in chat: the card of an incident
//! and the one-line reply for each timeline entry.

use firewatch_types::{
    Button, ButtonAction, Card, ChatMessage, Destination, Incident, ThreadRef, TimelineEntry,
    TimelineKind,
};

use crate::incidents::{self, ListFilter};
use crate::{DomainError, Services};
use firewatch_types::{IncidentAction, IncidentId, IncidentState, Principal, TriageReport};
use serde::{Deserialize, Serialize};

pub mod identities;
pub mod links;
pub mod routes;

pub use crate::ports::{ChatClient, ChatError};

/// Labels shown on a card, in this order, when present.
const KEY_LABELS: &[&str] = &[
    "alertname",
    "service",
    "namespace",
    "instance",
    "host",
    "env",
    "environment",
    "region",
    "component",
];

/// The card of an incident as it is now; `tickets` when a tracker is
/// configured (an active incident without a ticket offers to open one).
pub fn card(inc: &Incident, tickets: bool) -> Card {
    let key_labels = KEY_LABELS
        .iter()
        .filter_map(|k| inc.labels.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .take(6)
        .collect();
    let buttons = match inc.state {
        firewatch_types::IncidentState::Open => vec![
            ButtonAction::Ack,
            ButtonAction::Resolve,
            ButtonAction::Triage,
            ButtonAction::Playbooks,
        ],
        s if s.is_active() => vec![
            ButtonAction::Resolve,
            ButtonAction::Triage,
            ButtonAction::Playbooks,
        ],
        _ => Vec::new(),
    }
    .into_iter()
    .chain(
        inc.state
            .is_active()
            .then_some([
                ButtonAction::Silence,
                ButtonAction::Snooze30m,
                ButtonAction::Snooze2h,
            ])
            .into_iter()
            .flatten(),
    )
    .chain(
        (tickets && inc.state.is_active() && inc.ticket.is_none()).then_some(ButtonAction::Ticket),
    )
    .map(|a| Button::new(a, &inc.id))
    .collect();
    Card {
        incident_id: inc.id.clone(),
        title: inc.title.clone(),
        severity: inc.severity,
        state: inc.state,
        source: inc.source,
        key_labels,
        links: inc
            .ticket
            .iter()
            .map(|t| firewatch_types::Link {
                href: t.url.clone(),
                text: Some(format!("ticket {}", t.id)),
            })
            .chain(inc.links.iter().cloned())
            .take(5)
            .collect(),
        occurrences: inc.occurrences,
        opened_at: inc.created_at,
        buttons,
        notices: inc
            .snoozed_until
            .filter(|_| inc.state.is_active())
            .map(|t| format!("Snoozed until {}", t.format("%Y-%m-%d %H:%M UTC")))
            .into_iter()
            .chain(inc.flapping.as_ref().map(|f| {
                format!(
                    "Flapping since {} ({} flips)",
                    f.since.format("%H:%M UTC"),
                    f.flips
                )
            }))
            .collect(),
    }
}

/// The thread reply for a timeline entry.
pub fn reply_text(e: &TimelineEntry) -> String {
    let what = match &e.kind {
        TimelineKind::Opened { fingerprint } => format!("Incident opened by alert `{fingerprint}`"),
        TimelineKind::Occurrence { fingerprint } => format!("Alert `{fingerprint}` fired again"),
        TimelineKind::AlertResolved { fingerprint } => format!("Alert `{fingerprint}` resolved"),
        TimelineKind::AlertAcknowledged { fingerprint } => {
            format!("Alert `{fingerprint}` acknowledged at the source")
        }
        TimelineKind::StateChanged { from, to } => format!("{from} → {to}"),
        TimelineKind::Comment { text } => format!("💬 {text}"),
        TimelineKind::Suppressed { fingerprint } => {
            format!("Alert `{fingerprint}` suppressed by the rate limit")
        }
        TimelineKind::Triage { report } => return triage_text(report, &e.actor),
        TimelineKind::TriageRequested { mode } => {
            return format!(
                "🔎 {mode} triage requested by {}; the report follows",
                e.actor
            )
        }
        TimelineKind::TicketRequested { .. } => {
            return format!("🎫 Ticket requested by {}; the link follows", e.actor)
        }
        TimelineKind::TicketLinked {
            tracker,
            ticket,
            url,
        } => return format!("🎫 Ticket {ticket} opened in {tracker}: {url}"),
        TimelineKind::Flapping {
            state,
            flips,
            window_secs,
        } => {
            return if state == "started" {
                format!(
                    "〰️ Flapping: {flips} flips in {} min; the incident stays open and changes go on its timeline until its alerts are stable",
                    window_secs / 60
                )
            } else {
                format!(
                    "〰️ Stable again: no flip for {} min ({flips} flips in all)",
                    window_secs / 60
                )
            }
        }
        TimelineKind::Snoozed { until } => {
            return format!(
                "😴 Snoozed until {} by {}: reminders and escalation pause",
                until.format("%Y-%m-%d %H:%M UTC"),
                e.actor
            )
        }
        TimelineKind::Escalation { action, detail, .. } => {
            let icon = match action.as_str() {
                "page" => "📟",
                "notify" | "mention_oncall" => "📣",
                _ => "⏰",
            };
            return format!("{icon} {detail}");
        }
        TimelineKind::Silence {
            silence_id,
            state,
            until,
            matchers,
        } => {
            let until = until.format("%Y-%m-%d %H:%M UTC");
            let why = e
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            return match state.as_str() {
                "created" => format!(
                    "🔕 Silenced until {until} by {}{why}: alerts matching {matchers} open nothing and notify no one (silence {silence_id})",
                    e.actor
                ),
                "expiring" => format!(
                    "⏳ Silence {silence_id} ({matchers}) ends at {until}, in 10 minutes; extend it with amtool or POST /v1/silences"
                ),
                _ => format!(
                    "🔔 Silence {silence_id} ({matchers}) ended at {until}: alerts still firing open their incidents now"
                ),
            };
        }
        TimelineKind::Playbook {
            run_id,
            playbook,
            state,
            detail,
        } => {
            let icon = match state.as_str() {
                "succeeded" | "rolled_back" | "approved" | "dry_run_ok" => "✅",
                "failed" | "rollback_failed" | "dry_run_failed" | "rejected" | "expired" => "❌",
                "awaiting_approval" => "✋",
                _ => "▶️",
            };
            let detail = detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            return format!(
                "{icon} Playbook `{playbook}` ({run_id}) {}{detail} · by {}",
                state.replace('_', " "),
                e.actor
            );
        }
    };
    let reason = e
        .reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    format!("{what} by {}{reason}", e.actor)
}

/// A triage report as a thread reply: cause, impact, numbered next actions
/// and the facts used.
pub fn triage_text(r: &TriageReport, actor: &str) -> String {
    let how = match (r.mode.as_str(), r.degraded) {
        (_, true) => "deterministic; assisted triage failed",
        ("assisted_bedrock_v1", _) => "assisted by Bedrock",
        ("assisted_openai_v1", _) => "assisted",
        _ => "deterministic",
    };
    let mut out = format!(
        "🔎 Triage by {actor} ({how}, {} confidence)\nLikely cause: {}\nImpact: {}\nNext:",
        r.confidence, r.likely_cause, r.impact
    );
    for (n, a) in r.next_actions.iter().enumerate() {
        out.push_str(&format!("\n{}. {a}", n + 1));
    }
    out.push_str(&format!("\nFacts: {}", r.facts.join("; ")));
    out
}

/// A triage report as a thread message: [`triage_text`] with the 👍/👎
/// feedback buttons (when the report has an id).
pub fn triage_message(r: &TriageReport, actor: &str) -> ChatMessage {
    ChatMessage {
        text: triage_text(r, actor),
        buttons: r
            .id
            .as_deref()
            .map(|id| {
                [ButtonAction::Helpful, ButtonAction::NotHelpful]
                    .into_iter()
                    .map(|a| Button::to(a, a.label(), id))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A rendering of a card as plain text, shared by text-only destinations.
pub fn card_text(c: &Card) -> String {
    let mut out = format!(
        "[{}] {} · {} · {} · seen {}×\n{}",
        c.severity, c.state, c.source, c.incident_id, c.occurrences, c.title
    );
    if !c.key_labels.is_empty() {
        let labels: Vec<String> = c
            .key_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push('\n');
        out.push_str(&labels.join(" "));
    }
    for l in &c.links {
        out.push_str(&format!(
            "\n{}: {}",
            l.text.as_deref().unwrap_or("link"),
            l.href
        ));
    }
    for n in &c.notices {
        out.push_str(&format!("\n{n}"));
    }
    if !c.buttons.is_empty() {
        let b: Vec<&str> = c.buttons.iter().map(|b| b.label.as_str()).collect();
        out.push_str(&format!("\n[{}]", b.join("] [")));
    }
    out
}

/// One chat client per platform, chosen by each call's destination.
#[derive(Default, Clone)]
pub struct ChatHub {
    pub console: Option<std::sync::Arc<dyn ChatClient>>,
    pub slack: Option<std::sync::Arc<dyn ChatClient>>,
    pub discord: Option<std::sync::Arc<dyn ChatClient>>,
    pub telegram: Option<std::sync::Arc<dyn ChatClient>>,
}

impl ChatHub {
    fn pick(&self, dest: &Destination) -> Result<&dyn ChatClient, ChatError> {
        let client = match dest {
            Destination::Console => &self.console,
            Destination::Slack { .. } => &self.slack,
            Destination::Discord { .. } => &self.discord,
            Destination::Telegram { .. } => &self.telegram,
        };
        client
            .as_deref()
            .ok_or_else(|| ChatError::Rejected(format!("no chat client is configured for {dest}")))
    }
}

#[async_trait::async_trait]
impl ChatClient for ChatHub {
    async fn post_root(&self, dest: &Destination, card: &Card) -> Result<ThreadRef, ChatError> {
        self.pick(dest)?.post_root(dest, card).await
    }
    async fn update_root(&self, thread: &ThreadRef, card: &Card) -> Result<(), ChatError> {
        self.pick(&thread.destination)?
            .update_root(thread, card)
            .await
    }
    async fn reply(&self, thread: &ThreadRef, text: &str) -> Result<(), ChatError> {
        self.pick(&thread.destination)?.reply(thread, text).await
    }
    async fn reply_mentioning(
        &self,
        thread: &ThreadRef,
        text: &str,
        people: &[String],
    ) -> Result<(), ChatError> {
        self.pick(&thread.destination)?
            .reply_mentioning(thread, text, people)
            .await
    }
    async fn post_message(
        &self,
        thread: &ThreadRef,
        message: &firewatch_types::ChatMessage,
    ) -> Result<String, ChatError> {
        self.pick(&thread.destination)?
            .post_message(thread, message)
            .await
    }
    async fn edit_message(
        &self,
        thread: &ThreadRef,
        id: &str,
        message: &firewatch_types::ChatMessage,
    ) -> Result<(), ChatError> {
        self.pick(&thread.destination)?
            .edit_message(thread, id, message)
            .await
    }
}

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
                crate::silences::expire(svc, p, arg.unwrap_or_default())
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

/// How long an inbound chat request's id is remembered.
pub const INBOUND_MEMORY_DAYS: i64 = 7;

/// How long a delivery of an inbound request may hold it before a later
/// delivery takes it over (the first one stopped).
pub const INBOUND_LEASE_SECS: i64 = 60;

/// An inbound request's record: when a delivery took it, and whether its
/// action is done.
#[derive(Serialize, Deserialize)]
struct InboundRecord {
    at: chrono::DateTime<chrono::Utc>,
    done: bool,
}

/// Handles a platform's request `id` (Telegram update id, Discord
/// interaction id, Slack trigger id) once, however often and however
/// concurrently it is delivered: `handle` runs only for the delivery that
/// takes the request, which is remembered as done when `handle` succeeds.
/// `None` when it was handled already, or another delivery is handling it
/// now. A failure (`Err`, a passing one the platform's redelivery should
/// retry) lets the request go again; a delivery that stopped holds it for
/// [`INBOUND_LEASE_SECS`] at most. Without an id, `handle` just runs.
pub async fn once<T, E: From<DomainError>>(
    svc: &Services,
    platform: &str,
    id: Option<&str>,
    handle: impl std::future::Future<Output = Result<T, E>>,
) -> Result<Option<T>, E> {
    let Some(id) = id else {
        return handle.await.map(Some);
    };
    let sk = format!("{platform}:{id}");
    let Some(version) = take_inbound(svc, &sk).await? else {
        return Ok(None);
    };
    let result = handle.await;
    let record = |done| -> Result<crate::ports::Item, DomainError> {
        let now = svc.clock.now();
        let mut item = crate::keys::item(
            INBOUND_PK.into(),
            sk.clone(),
            version + 1,
            &InboundRecord { at: now, done },
        )?;
        item.expires_at = Some(now.timestamp() + INBOUND_MEMORY_DAYS * 86_400);
        Ok(item)
    };
    match &result {
        Ok(_) => match svc
            .store
            .put(record(true)?, crate::ports::Condition::Version(version))
            .await
        {
            // Taken over after the lease ran out: the later delivery's
            // record stands.
            Ok(()) | Err(crate::ports::StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(DomainError::from(e).into()),
        },
        Err(_) => {
            if let Err(e) = svc
                .store
                .delete(INBOUND_PK, &sk, crate::ports::Condition::Version(version))
                .await
            {
                tracing::warn!(error = %e, "an inbound request was not let go; its lease runs out");
            }
        }
    }
    result.map(Some)
}

/// Takes the inbound request `sk` for this delivery: the version it holds,
/// or `None` when it is done or held by a live delivery.
async fn take_inbound(svc: &Services, sk: &str) -> Result<Option<u64>, DomainError> {
    let now = svc.clock.now();
    let mut item = crate::keys::item(
        INBOUND_PK.into(),
        sk.to_owned(),
        1,
        &InboundRecord {
            at: now,
            done: false,
        },
    )?;
    item.expires_at = Some(now.timestamp() + INBOUND_MEMORY_DAYS * 86_400);
    match svc
        .store
        .put(item.clone(), crate::ports::Condition::Absent)
        .await
    {
        Ok(()) => return Ok(Some(1)),
        Err(crate::ports::StoreError::ConditionFailed { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(held) = svc.store.get(INBOUND_PK, sk).await? else {
        // Let go between the two calls: another delivery is at it.
        return Ok(None);
    };
    // Records from before leases were a bare time: done.
    let Ok(record) = crate::keys::decode::<InboundRecord>(&held) else {
        return Ok(None);
    };
    if record.done || now - record.at < chrono::Duration::seconds(INBOUND_LEASE_SECS) {
        return Ok(None);
    }
    // The delivery that held it stopped: take it over.
    item.version = held.version + 1;
    match svc
        .store
        .put(item, crate::ports::Condition::Version(held.version))
        .await
    {
        Ok(()) => Ok(Some(held.version + 1)),
        Err(crate::ports::StoreError::ConditionFailed { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

const INBOUND_PK: &str = "_#INBOUND";

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
