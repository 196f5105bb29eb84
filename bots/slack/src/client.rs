//! [`SlackChat`]: the chat port on the Slack Web API.
//!
//! Slack answers HTTP 200 with `{"ok": false, "error": "..."}` for most
//! failures, 429 with `Retry-After` when rate limited, and 5xx when down; each
//! maps to the chat port's retry classes. The bot token goes only into the
//! `Authorization` header and never into an error or a log line.

use async_trait::async_trait;
use firewatch_domain::chat::{card_text, ChatClient, ChatError};
use firewatch_types::{Card, ChatMessage, Destination, ThreadRef};
use serde_json::{json, Value};
use std::time::Duration;

use crate::blocks::{message_blocks, message_text};
use crate::{card_blocks, SlackConfig};

/// The Slack client.
pub struct SlackChat {
    http: reqwest::Client,
    config: SlackConfig,
}

/// Slack errors that are worth retrying.
const TRANSIENT: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "ratelimited",
];

impl SlackChat {
    pub fn new(config: SlackConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self { http, config }
    }

    async fn call(&self, method: &str, body: Value) -> Result<Value, ChatError> {
        let res = self
            .http
            .post(format!("{}/{method}", self.config.api_url))
            .bearer_auth(self.config.bot_token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| ChatError::Unavailable(format!("{method}: {}", e.without_url())))?;
        let status = res.status();
        if status.as_u16() == 429 {
            let retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(ChatError::RateLimited { retry_after });
        }
        if status.is_server_error() {
            return Err(ChatError::Unavailable(format!("{method}: HTTP {status}")));
        }
        let answer: Value = res.json().await.map_err(|e| {
            ChatError::Unavailable(format!("{method}: unreadable answer: {}", e.without_url()))
        })?;
        if answer["ok"] == true {
            return Ok(answer);
        }
        let error = answer["error"]
            .as_str()
            .unwrap_or("unknown_error")
            .to_owned();
        if error == "ratelimited" {
            return Err(ChatError::RateLimited { retry_after: None });
        }
        if TRANSIENT.contains(&error.as_str()) {
            Err(ChatError::Unavailable(format!("{method}: {error}")))
        } else {
            Err(ChatError::Rejected(format!("{method}: {error}")))
        }
    }
}

fn channel_of(t: &ThreadRef) -> Result<String, ChatError> {
    // Slack answers with the channel id, which chat.update needs; it is kept
    // as the thread id (a channel name would not do).
    match (&t.thread_id, &t.destination) {
        (Some(id), _) => Ok(id.clone()),
        (None, Destination::Slack { channel }) => Ok(channel.clone()),
        _ => Err(ChatError::Rejected(format!(
            "{} is not a Slack thread",
            t.destination
        ))),
    }
}

#[async_trait]
impl ChatClient for SlackChat {
    async fn post_root(&self, dest: &Destination, card: &Card) -> Result<ThreadRef, ChatError> {
        let Destination::Slack { channel } = dest else {
            return Err(ChatError::Rejected(format!(
                "{dest} is not a Slack destination"
            )));
        };
        let answer = self
            .call(
                "chat.postMessage",
                json!({"channel": channel, "text": message_text(&card_text(card)), "blocks": card_blocks(card), "unfurl_links": false}),
            )
            .await?;
        let ts = answer["ts"]
            .as_str()
            .ok_or_else(|| ChatError::Unavailable("chat.postMessage: no ts".into()))?;
        Ok(ThreadRef {
            destination: dest.clone(),
            root_id: ts.to_owned(),
            thread_id: answer["channel"].as_str().map(str::to_owned),
        })
    }

    async fn update_root(&self, thread: &ThreadRef, card: &Card) -> Result<(), ChatError> {
        self.call(
            "chat.update",
            json!({"channel": channel_of(thread)?, "ts": thread.root_id, "text": message_text(&card_text(card)), "blocks": card_blocks(card)}),
        )
        .await
        .map(|_| ())
    }

    async fn reply(&self, thread: &ThreadRef, text: &str) -> Result<(), ChatError> {
        self.call(
            "chat.postMessage",
            json!({"channel": channel_of(thread)?, "thread_ts": thread.root_id, "text": message_text(text), "unfurl_links": false}),
        )
        .await
        .map(|_| ())
    }

    async fn reply_mentioning(
        &self,
        thread: &ThreadRef,
        text: &str,
        people: &[String],
    ) -> Result<(), ChatError> {
        // The text is escaped; only the mentions firewatch adds are markup.
        let text = firewatch_domain::ports::named(&message_text(text), people, |p| {
            Some(
                match p
                    .strip_prefix("slack:")
                    .filter(|id| id.bytes().all(|b| b.is_ascii_alphanumeric()))
                {
                    Some(id) => format!("<@{id}>"),
                    None => message_text(p.strip_prefix("email:").unwrap_or(p)),
                },
            )
        });
        self.call(
            "chat.postMessage",
            json!({"channel": channel_of(thread)?, "thread_ts": thread.root_id, "text": text, "unfurl_links": false}),
        )
        .await
        .map(|_| ())
    }

    async fn post_message(&self, thread: &ThreadRef, m: &ChatMessage) -> Result<String, ChatError> {
        let answer = self
            .call(
                "chat.postMessage",
                json!({"channel": channel_of(thread)?, "thread_ts": thread.root_id, "text": message_text(&m.text), "blocks": message_blocks(m), "unfurl_links": false}),
            )
            .await?;
        answer["ts"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ChatError::Unavailable("chat.postMessage: no ts".into()))
    }

    async fn edit_message(
        &self,
        thread: &ThreadRef,
        id: &str,
        m: &ChatMessage,
    ) -> Result<(), ChatError> {
        self.call(
            "chat.update",
            json!({"channel": channel_of(thread)?, "ts": id, "text": message_text(&m.text), "blocks": message_blocks(m)}),
        )
        .await
        .map(|_| ())
    }
}
