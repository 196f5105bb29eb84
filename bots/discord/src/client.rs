//! [`DiscordChat`]: the chat port on Discord's REST API, in serenity's terms:
//! messages, embeds, buttons and threads are serenity builders, requests are
//! serenity [`Request`]s on its [`Route`]s (`Authorization: Bot <token>`,
//! serenity's user agent), and answers are read into serenity models.
//!
//! Requests are sent on our own `reqwest` client rather than through
//! `serenity::http::Http`: `Http` turns a 429 into an error without its
//! `Retry-After`, and its in-process rate limiter would sleep inside a
//! Lambda. Here a 429 goes back to the dispatcher with Discord's wait
//! (`Retry-After` header, or `retry_after` in the body), which retries the
//! keyed effect durably.

use async_trait::async_trait;
use firewatch_domain::chat::{ChatClient, ChatError};
use firewatch_domain::settings::Secret;
use firewatch_types::{Button, ButtonAction, Card, ChatMessage, Destination, Severity, ThreadRef};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serenity::all::{
    AutoArchiveDuration, ButtonStyle, ChannelId, CreateActionRow, CreateAllowedMentions,
    CreateButton, CreateEmbed, CreateMessage, CreateThread, EditMessage, GuildChannel, LightMethod,
    Message, MessageId, MessageReference, MessageReferenceKind, Request, Route, Timestamp,
};
use std::time::Duration;

use crate::DiscordConfig;

/// The Discord client.
pub struct DiscordChat {
    http: reqwest::Client,
    /// `Bot <token>`.
    authorization: Secret,
    /// Where `https://discord.com` is reached (serenity's proxy base).
    api_base: String,
}

fn color(s: Severity) -> u32 {
    match s {
        Severity::Sev1 => 0xD7_26_26,
        Severity::Sev2 => 0xF2_8C_28,
        Severity::Sev3 => 0xF2_C9_4C,
        Severity::Sev4 => 0x9E_9E_9E,
    }
}

fn no_mentions() -> CreateAllowedMentions {
    CreateAllowedMentions::new()
}

/// The card as an embed (title, severity, state, occurrences, key labels,
/// links, opening time).
/// Escapes Discord markdown so alert text shows as written: a label cannot
/// make a link (`[click](https://evil)`), a spoiler or a heading. Mentions are
/// already inert (`allowed_mentions` is empty on every message).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\*_~`|>#[]()<:-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Discord's embed limits (title 256, description 4,096, field name 256 and
/// value 1,024, 6,000 in all); the card stays well inside them.
const DESCRIPTION_MAX: usize = 2000;
const LABEL_NAME_MAX: usize = 64;
const LABEL_VALUE_MAX: usize = 256;

pub fn card_embed(c: &Card) -> CreateEmbed {
    let links: Vec<String> = c
        .links
        .iter()
        .map(|l| {
            let text = escape(&cut(l.text.as_deref().unwrap_or("link"), 100));
            let href = l
                .href
                .replace('(', "%28")
                .replace(')', "%29")
                .replace(' ', "%20");
            format!("[{text}]({href})")
        })
        .collect();
    let description = format!(
        "`{}` · {}{}",
        c.incident_id,
        c.source,
        if links.is_empty() {
            String::new()
        } else {
            format!("\n{}", links.join(" · "))
        }
    );
    let description = if description.chars().count() > DESCRIPTION_MAX {
        // Cut at a link boundary so no link is left half-written.
        let mut out = format!("`{}` · {}\n", c.incident_id, c.source);
        for l in &links {
            if out.chars().count() + l.chars().count() + 3 > DESCRIPTION_MAX {
                break;
            }
            out.push_str(l);
            out.push_str(" · ");
        }
        out
    } else {
        description
    };
    let mut embed = CreateEmbed::new()
        .title(cut(&escape(&c.title), 256))
        .description(description)
        .colour(color(c.severity))
        .field("Severity", c.severity.to_string(), true)
        .field("State", c.state.to_string(), true)
        .field("Seen", format!("{}×", c.occurrences), true)
        .fields(c.key_labels.iter().take(6).map(|(k, v)| {
            (
                cut(&escape(k), LABEL_NAME_MAX),
                cut(&escape(v), LABEL_VALUE_MAX),
                true,
            )
        }));
    if let Some(s) = &c.summary {
        embed = embed.field("Summary", cut(&escape(s), 1024), false);
    }
    if !c.notices.is_empty() {
        let notes: Vec<String> = c.notices.iter().take(12).map(|n| escape(n)).collect();
        embed = embed.field("Notes", cut(&notes.join("\n"), 1024), false);
    }
    if let Ok(ts) = Timestamp::from_unix_timestamp(c.opened_at.timestamp()) {
        embed = embed.timestamp(ts);
    }
    embed
}

/// The card's buttons as one action row (`custom_id` is the payload).
/// A message's buttons as action rows: five to a row, at most five rows,
/// labels cut to Discord's 80 characters.
pub fn message_buttons(buttons: &[Button]) -> Vec<CreateActionRow> {
    buttons
        .chunks(5)
        .take(5)
        .map(|row| {
            CreateActionRow::Buttons(
                row.iter()
                    .map(|b| {
                        let style = match b.action {
                            ButtonAction::Approve | ButtonAction::Execute => ButtonStyle::Primary,
                            ButtonAction::Reject | ButtonAction::Rollback => ButtonStyle::Danger,
                            _ => ButtonStyle::Secondary,
                        };
                        CreateButton::new(b.payload.clone())
                            .label(cut(&b.label, 80))
                            .style(style)
                    })
                    .collect(),
            )
        })
        .collect()
}

/// A message's text: markdown escaped, cut to Discord's 2,000 characters.
pub fn message_content(m: &ChatMessage) -> String {
    cut(&escape(&m.text), 2000)
}

pub fn card_buttons(c: &Card) -> Vec<CreateActionRow> {
    let buttons: Vec<CreateButton> = c
        .buttons
        .iter()
        .map(|b| {
            let style = match b.action {
                ButtonAction::Ack => ButtonStyle::Primary,
                ButtonAction::Resolve => ButtonStyle::Success,
                _ => ButtonStyle::Secondary,
            };
            CreateButton::new(b.payload.clone())
                .label(b.label.clone())
                .style(style)
        })
        .collect();
    if buttons.is_empty() {
        vec![]
    } else {
        vec![CreateActionRow::Buttons(buttons)]
    }
}

fn snowflake(what: &str, id: &str) -> Result<u64, ChatError> {
    id.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n != 0)
        .ok_or_else(|| ChatError::Rejected(format!("{id:?} is not a Discord {what} id")))
}

fn channel(id: &str) -> Result<ChannelId, ChatError> {
    snowflake("channel", id).map(ChannelId::new)
}

fn message(id: &str) -> Result<MessageId, ChatError> {
    snowflake("message", id).map(MessageId::new)
}

fn body(what: &str, b: &impl Serialize) -> Result<Option<Vec<u8>>, ChatError> {
    serde_json::to_vec(b)
        .map(Some)
        .map_err(|e| ChatError::Rejected(format!("{what}: {e}")))
}

impl DiscordChat {
    pub fn new(config: DiscordConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            http,
            authorization: Secret::new(format!("Bot {}", config.bot_token.expose())),
            api_base: config.api_url,
        }
    }

    /// Sends a serenity request and reads the answer as `T`.
    async fn fire<T: DeserializeOwned>(
        &self,
        what: &str,
        req: Request<'_>,
    ) -> Result<T, ChatError> {
        let request = req
            .build(
                &self.http,
                self.authorization.expose(),
                Some(&self.api_base),
            )
            .map_err(|e| ChatError::Rejected(format!("{what}: {e}")))?
            .build()
            .map_err(|e| ChatError::Rejected(format!("{what}: {}", e.without_url())))?;
        let res = self
            .http
            .execute(request)
            .await
            .map_err(|e| ChatError::Unavailable(format!("{what}: {}", e.without_url())))?;
        let status = res.status();
        if status.is_success() {
            return res.json::<T>().await.map_err(|e| {
                ChatError::Unavailable(format!("{what}: unreadable answer: {}", e.without_url()))
            });
        }
        let header_wait = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok());
        let answer: serde_json::Value = res.json().await.unwrap_or_default();
        if status.as_u16() == 429 {
            let secs = answer["retry_after"].as_f64().or(header_wait);
            return Err(ChatError::RateLimited {
                retry_after: secs
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64),
            });
        }
        if status.is_server_error() {
            return Err(ChatError::Unavailable(format!("{what}: HTTP {status}")));
        }
        let msg = answer["message"].as_str().unwrap_or("refused");
        Err(ChatError::Rejected(format!("{what}: HTTP {status}: {msg}")))
    }

    async fn send_message(&self, to: ChannelId, m: &CreateMessage) -> Result<Message, ChatError> {
        let route = Route::ChannelMessages { channel_id: to };
        let req = Request::new(route, LightMethod::Post).body(body("create message", m)?);
        self.fire("create message", req).await
    }
}

fn channel_of(t: &ThreadRef) -> Result<ChannelId, ChatError> {
    match &t.destination {
        Destination::Discord { channel_id } => channel(channel_id),
        other => Err(ChatError::Rejected(format!(
            "{other} is not a Discord channel"
        ))),
    }
}

#[async_trait]
impl ChatClient for DiscordChat {
    async fn post_root(&self, dest: &Destination, card: &Card) -> Result<ThreadRef, ChatError> {
        let Destination::Discord { channel_id } = dest else {
            return Err(ChatError::Rejected(format!(
                "{dest} is not a Discord destination"
            )));
        };
        let to = channel(channel_id)?;
        let root = CreateMessage::new()
            .embed(card_embed(card))
            .components(card_buttons(card))
            .allowed_mentions(no_mentions());
        let msg = self.send_message(to, &root).await?;
        // The thread is best effort: without it, replies reference the card in
        // the channel instead, and the card itself is never posted twice.
        let name: String = format!("{} {}", card.severity, card.title)
            .chars()
            .take(100)
            .collect();
        let thread = CreateThread::new(name).auto_archive_duration(AutoArchiveDuration::OneDay);
        let route = Route::ChannelMessageThreads {
            channel_id: to,
            message_id: msg.id,
        };
        let started = match body("start thread", &thread) {
            Ok(b) => {
                let req = Request::new(route, LightMethod::Post).body(b);
                self.fire::<GuildChannel>("start thread", req).await
            }
            Err(e) => Err(e),
        };
        let thread = match started {
            Ok(t) => Some(t.id.to_string()),
            Err(e) => {
                tracing::warn!(error = %e, "no thread for the card; replies will reference it");
                None
            }
        };
        Ok(ThreadRef {
            destination: dest.clone(),
            root_id: msg.id.to_string(),
            thread_id: thread,
        })
    }

    async fn update_root(&self, thread: &ThreadRef, card: &Card) -> Result<(), ChatError> {
        let edit = EditMessage::new()
            .embed(card_embed(card))
            .components(card_buttons(card))
            .allowed_mentions(no_mentions());
        let route = Route::ChannelMessage {
            channel_id: channel_of(thread)?,
            message_id: message(&thread.root_id)?,
        };
        let req = Request::new(route, LightMethod::Patch).body(body("edit message", &edit)?);
        self.fire::<Message>("edit message", req).await.map(|_| ())
    }

    async fn reply(&self, thread: &ThreadRef, text: &str) -> Result<(), ChatError> {
        // Escaped like every post: a reply quotes alert text too.
        let m = CreateMessage::new()
            .content(cut(&escape(text), 2000))
            .allowed_mentions(no_mentions());
        self.in_thread(thread, m).await.map(|_| ())
    }

    async fn reply_mentioning(
        &self,
        thread: &ThreadRef,
        text: &str,
        people: &[String],
    ) -> Result<(), ChatError> {
        // Only the users named here may be pinged, never a role or everyone.
        let users: Vec<u64> = people
            .iter()
            .filter_map(|p| p.strip_prefix("discord:")?.parse().ok())
            .collect();
        // Escaped like every post; only the mentions added here are markup.
        let head: String = text.chars().take(1500).collect();
        let content = firewatch_domain::ports::named(&escape(&head), people, |p| {
            Some(
                match p
                    .strip_prefix("discord:")
                    .and_then(|id| id.parse::<u64>().ok())
                {
                    Some(id) => format!("<@{id}>"),
                    None => escape(p.strip_prefix("email:").unwrap_or(p)),
                },
            )
        });
        let m = CreateMessage::new()
            .content(content.chars().take(2000).collect::<String>())
            .allowed_mentions(
                no_mentions().users(users.into_iter().map(serenity::all::UserId::new)),
            );
        self.in_thread(thread, m).await.map(|_| ())
    }

    async fn post_message(&self, thread: &ThreadRef, m: &ChatMessage) -> Result<String, ChatError> {
        let create = CreateMessage::new()
            .content(message_content(m))
            .components(message_buttons(&m.buttons))
            .allowed_mentions(no_mentions());
        self.in_thread(thread, create)
            .await
            .map(|msg| msg.id.to_string())
    }

    async fn edit_message(
        &self,
        thread: &ThreadRef,
        id: &str,
        m: &ChatMessage,
    ) -> Result<(), ChatError> {
        let edit = EditMessage::new()
            .content(message_content(m))
            .components(message_buttons(&m.buttons))
            .allowed_mentions(no_mentions());
        let in_channel = match &thread.thread_id {
            Some(t) => channel(t)?,
            None => channel_of(thread)?,
        };
        let route = Route::ChannelMessage {
            channel_id: in_channel,
            message_id: message(id)?,
        };
        let req = Request::new(route, LightMethod::Patch).body(body("edit message", &edit)?);
        self.fire::<Message>("edit message", req).await.map(|_| ())
    }
}

impl DiscordChat {
    /// Posts into the card's thread, or (without one) in its channel as a
    /// reply to the card.
    async fn in_thread(&self, thread: &ThreadRef, m: CreateMessage) -> Result<Message, ChatError> {
        match &thread.thread_id {
            Some(t) => self.send_message(channel(t)?, &m).await,
            None => {
                let to = channel_of(thread)?;
                let mut reference = MessageReference::new(MessageReferenceKind::Default, to)
                    .message_id(message(&thread.root_id)?);
                reference.fail_if_not_exists = Some(false);
                let m = m.reference_message(reference);
                self.send_message(to, &m).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_in_alert_text_is_shown_not_rendered() {
        assert_eq!(
            escape("[click](https://evil)"),
            "\\[click\\]\\(https\\://evil\\)"
        );
        assert_eq!(
            escape("**bold** ||spoiler||"),
            "\\*\\*bold\\*\\* \\|\\|spoiler\\|\\|"
        );
        assert_eq!(cut(&"x".repeat(300), 256).chars().count(), 256);
    }
}
