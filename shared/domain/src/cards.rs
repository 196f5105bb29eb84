//! What the domain says in chat: the card of an incident and the
//! one-line reply for each timeline entry.

use firewatch_types::{
    Button, ButtonAction, Card, ChatMessage, Incident, TimelineEntry, TimelineKind,
};

use firewatch_types::TriageReport;

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
        summary: summary(inc),
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

/// The annotations a card shows under its title, in this order.
pub const SUMMARY_ANNOTATIONS: [&str; 4] = ["summary", "description", "reason", "error"];

/// The most a card's summary holds, in bytes.
const SUMMARY_MAX: usize = 500;

/// What the opening alert says beyond its title (a heartbeat's "the job
/// reported a failure", a CloudWatch alarm's reason), without repeating the
/// title.
fn summary(inc: &Incident) -> Option<String> {
    let lines: Vec<&str> = SUMMARY_ANNOTATIONS
        .iter()
        .filter_map(|k| inc.annotations.get(*k))
        .map(|v| v.trim())
        .filter(|v| !v.is_empty() && *v != inc.title)
        .collect();
    (!lines.is_empty()).then(|| crate::limits::truncate(&lines.join("\n"), SUMMARY_MAX))
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
    if let Some(s) = &c.summary {
        out.push('\n');
        out.push_str(s);
    }
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
