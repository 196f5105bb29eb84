//! The chat port and what the domain says in chat: the card of an incident
//! and the one-line reply for each timeline entry.

use async_trait::async_trait;
use firewatch_types::{
    Button, ButtonAction, Card, Destination, Incident, ThreadRef, TimelineEntry, TimelineKind,
};
use std::time::Duration;

/// Why a chat call failed, classified for retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// 429: try again after the platform's `Retry-After`, when it gave one.
    #[error("rate limited by the chat platform")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx or unreachable: try again later.
    #[error("chat platform unavailable: {0}")]
    Unavailable(String),
    /// The platform refused the request (bad channel, no permission): retrying
    /// the same request will not help.
    #[error("chat platform refused the request: {0}")]
    Rejected(String),
}

impl ChatError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Rejected(_))
    }
}

/// A chat platform (or several, routed by [`Destination`]).
#[async_trait]
pub trait ChatClient: Send + Sync {
    /// Posts the root card of a new thread and returns where it landed.
    async fn post_root(&self, dest: &Destination, card: &Card) -> Result<ThreadRef, ChatError>;
    /// Replaces the root card with the incident's current state.
    async fn update_root(&self, thread: &ThreadRef, card: &Card) -> Result<(), ChatError>;
    /// Posts a reply in the thread.
    async fn reply(&self, thread: &ThreadRef, text: &str) -> Result<(), ChatError>;
}

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

/// The card of an incident as it is now.
pub fn card(inc: &Incident) -> Card {
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
    .map(|a| Button::new(a, &inc.id))
    .collect();
    Card {
        incident_id: inc.id.clone(),
        title: inc.title.clone(),
        severity: inc.severity,
        state: inc.state,
        source: inc.source,
        key_labels,
        links: inc.links.iter().take(5).cloned().collect(),
        occurrences: inc.occurrences,
        opened_at: inc.created_at,
        buttons,
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
    };
    let reason = e
        .reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    format!("{what} by {}{reason}", e.actor)
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

#[async_trait]
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
}
