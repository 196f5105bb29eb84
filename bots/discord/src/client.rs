//! [`DiscordChat`]: the chat port on Discord's REST API (`Authorization:
//! Bot <token>`). 429 answers carry `retry_after` (seconds, fractional) in
//! the body and a `Retry-After` header; both are honoured.

use async_trait::async_trait;
use firewatch_domain::chat::{ChatClient, ChatError};
use firewatch_types::{ButtonAction, Card, Destination, Severity, ThreadRef};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

use crate::DiscordConfig;

/// The Discord client.
pub struct DiscordChat {
    http: reqwest::Client,
    config: DiscordConfig,
}

fn color(s: Severity) -> u32 {
    match s {
        Severity::Sev1 => 0xD7_26_26,
        Severity::Sev2 => 0xF2_8C_28,
        Severity::Sev3 => 0xF2_C9_4C,
        Severity::Sev4 => 0x9E_9E_9E,
    }
}

/// The card as an embed and a row of buttons (`custom_id` is the payload).
pub fn card_message(c: &Card) -> Value {
    let mut fields = vec![
        json!({"name": "Severity", "value": c.severity.to_string(), "inline": true}),
        json!({"name": "State", "value": c.state.to_string(), "inline": true}),
        json!({"name": "Seen", "value": format!("{}×", c.occurrences), "inline": true}),
    ];
    for (k, v) in c.key_labels.iter().take(6) {
        fields.push(json!({"name": k, "value": v, "inline": true}));
    }
    let links: Vec<String> = c
        .links
        .iter()
        .map(|l| format!("[{}]({})", l.text.as_deref().unwrap_or("link"), l.href))
        .collect();
    let embed = json!({
        "title": c.title.chars().take(256).collect::<String>(),
        "description": format!("`{}` · {}{}", c.incident_id, c.source, if links.is_empty() { String::new() } else { format!("\n{}", links.join(" · ")) }),
        "color": color(c.severity),
        "fields": fields,
        "timestamp": c.opened_at.to_rfc3339(),
    });
    let buttons: Vec<Value> = c
        .buttons
        .iter()
        .map(|b| {
            let style = match b.action {
                ButtonAction::Ack => 1,
                ButtonAction::Resolve => 3,
                _ => 2,
            };
            json!({"type": 2, "style": style, "label": b.label, "custom_id": b.payload})
        })
        .collect();
    let components = if buttons.is_empty() {
        json!([])
    } else {
        json!([{"type": 1, "components": buttons}])
    };
    json!({"embeds": [embed], "components": components, "allowed_mentions": {"parse": []}})
}

impl DiscordChat {
    pub fn new(config: DiscordConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self { http, config }
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> Result<Value, ChatError> {
        let res = self
            .http
            .request(method, format!("{}{path}", self.config.api_url))
            .header(
                "authorization",
                format!("Bot {}", self.config.bot_token.expose()),
            )
            .json(&body)
            .send()
            .await
            .map_err(|e| ChatError::Unavailable(format!("{path}: {}", e.without_url())))?;
        let status = res.status();
        let header_retry = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok());
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        if status.as_u16() == 429 {
            let secs = answer["retry_after"].as_f64().or(header_retry);
            return Err(ChatError::RateLimited {
                retry_after: secs.map(|s| Duration::from_millis((s * 1000.0).ceil() as u64)),
            });
        }
        if status.is_server_error() {
            return Err(ChatError::Unavailable(format!("{path}: HTTP {status}")));
        }
        if !status.is_success() {
            let msg = answer["message"].as_str().unwrap_or("refused");
            return Err(ChatError::Rejected(format!("{path}: HTTP {status}: {msg}")));
        }
        Ok(answer)
    }
}

fn channel_of(t: &ThreadRef) -> Result<String, ChatError> {
    match &t.destination {
        Destination::Discord { channel_id } => Ok(channel_id.clone()),
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
        let msg = self
            .call(
                Method::POST,
                &format!("/channels/{channel_id}/messages"),
                card_message(card),
            )
            .await?;
        let id = msg["id"]
            .as_str()
            .ok_or_else(|| ChatError::Unavailable("create message: no id".into()))?
            .to_owned();
        // The thread is best effort: without it, replies reference the card in
        // the channel instead, and the card itself is never posted twice.
        let name: String = format!("{} {}", card.severity, card.title)
            .chars()
            .take(100)
            .collect();
        let thread = self
            .call(
                Method::POST,
                &format!("/channels/{channel_id}/messages/{id}/threads"),
                json!({"name": name, "auto_archive_duration": 1440}),
            )
            .await
            .ok()
            .and_then(|t| t["id"].as_str().map(str::to_owned));
        Ok(ThreadRef {
            destination: dest.clone(),
            root_id: id,
            thread_id: thread,
        })
    }

    async fn update_root(&self, thread: &ThreadRef, card: &Card) -> Result<(), ChatError> {
        let channel = channel_of(thread)?;
        self.call(
            Method::PATCH,
            &format!("/channels/{channel}/messages/{}", thread.root_id),
            card_message(card),
        )
        .await
        .map(|_| ())
    }

    async fn reply(&self, thread: &ThreadRef, text: &str) -> Result<(), ChatError> {
        let body = json!({"content": text.chars().take(2000).collect::<String>(), "allowed_mentions": {"parse": []}});
        match &thread.thread_id {
            Some(t) => self
                .call(Method::POST, &format!("/channels/{t}/messages"), body)
                .await
                .map(|_| ()),
            None => {
                let channel = channel_of(thread)?;
                let mut body = body;
                body["message_reference"] =
                    json!({"message_id": thread.root_id, "fail_if_not_exists": false});
                self.call(Method::POST, &format!("/channels/{channel}/messages"), body)
                    .await
                    .map(|_| ())
            }
        }
    }
}
