//! [`TelegramChat`]: the chat port on the Telegram Bot API.
//!
//! The token is part of every method URL (`/bot<token>/sendMessage`), so
//! errors are built without the URL and nothing here logs one.

use async_trait::async_trait;
use firewatch_domain::chat::{card_text, ChatClient, ChatError};
use firewatch_types::{Card, Destination, ThreadRef};
use serde_json::{json, Value};
use std::time::Duration;

use crate::TelegramConfig;

/// The Telegram client.
pub struct TelegramChat {
    http: reqwest::Client,
    config: TelegramConfig,
}

fn keyboard(card: &Card) -> Value {
    let row: Vec<Value> = card
        .buttons
        .iter()
        .map(|b| json!({"text": b.label, "callback_data": b.payload}))
        .collect();
    json!({"inline_keyboard": if row.is_empty() { vec![] } else { vec![row] }})
}

impl TelegramChat {
    pub fn new(config: TelegramConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self { http, config }
    }

    /// Calls a Bot API method; public for the webhook's `answerCallbackQuery`.
    pub async fn call(&self, method: &str, body: Value) -> Result<Value, ChatError> {
        let url = format!(
            "{}/bot{}/{method}",
            self.config.api_url,
            self.config.bot_token.expose()
        );
        let res = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| ChatError::Unavailable(format!("{method}: {}", e.without_url())))?;
        let status = res.status();
        if status.is_server_error() {
            return Err(ChatError::Unavailable(format!("{method}: HTTP {status}")));
        }
        let answer: Value = res.json().await.map_err(|e| {
            ChatError::Unavailable(format!("{method}: unreadable answer: {}", e.without_url()))
        })?;
        if answer["ok"] == true {
            return Ok(answer["result"].clone());
        }
        let description = answer["description"]
            .as_str()
            .unwrap_or("unknown error")
            .to_owned();
        if status.as_u16() == 429 || answer["error_code"] == 429 {
            let retry_after = answer["parameters"]["retry_after"]
                .as_u64()
                .map(Duration::from_secs);
            return Err(ChatError::RateLimited { retry_after });
        }
        Err(ChatError::Rejected(format!("{method}: {description}")))
    }
}

fn chat_of(t: &ThreadRef) -> Result<(String, Option<String>), ChatError> {
    match &t.destination {
        Destination::Telegram { chat_id, topic_id } => Ok((chat_id.clone(), topic_id.clone())),
        other => Err(ChatError::Rejected(format!(
            "{other} is not a Telegram chat"
        ))),
    }
}

#[async_trait]
impl ChatClient for TelegramChat {
    async fn post_root(&self, dest: &Destination, card: &Card) -> Result<ThreadRef, ChatError> {
        let Destination::Telegram { chat_id, topic_id } = dest else {
            return Err(ChatError::Rejected(format!(
                "{dest} is not a Telegram destination"
            )));
        };
        let mut body = json!({"chat_id": chat_id, "text": card_text(card), "reply_markup": keyboard(card), "link_preview_options": {"is_disabled": true}});
        if let Some(t) = topic_id {
            body["message_thread_id"] = json!(t.parse::<i64>().unwrap_or_default());
        }
        let msg = self.call("sendMessage", body).await?;
        let id = msg["message_id"]
            .as_i64()
            .ok_or_else(|| ChatError::Unavailable("sendMessage: no message_id".into()))?;
        Ok(ThreadRef {
            destination: dest.clone(),
            root_id: id.to_string(),
            thread_id: None,
        })
    }

    async fn update_root(&self, thread: &ThreadRef, card: &Card) -> Result<(), ChatError> {
        let (chat_id, _) = chat_of(thread)?;
        let body = json!({
            "chat_id": chat_id,
            "message_id": thread.root_id.parse::<i64>().unwrap_or_default(),
            "text": card_text(card),
            "reply_markup": keyboard(card),
            "link_preview_options": {"is_disabled": true},
        });
        match self.call("editMessageText", body).await {
            // Editing to identical content is refused; the card is already right.
            Err(ChatError::Rejected(m)) if m.contains("message is not modified") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn reply(&self, thread: &ThreadRef, text: &str) -> Result<(), ChatError> {
        let (chat_id, topic) = chat_of(thread)?;
        let mut body = json!({
            "chat_id": chat_id,
            "text": text,
            "reply_parameters": {"message_id": thread.root_id.parse::<i64>().unwrap_or_default(), "allow_sending_without_reply": true},
        });
        if let Some(t) = topic {
            body["message_thread_id"] = json!(t.parse::<i64>().unwrap_or_default());
        }
        self.call("sendMessage", body).await.map(|_| ())
    }
}
