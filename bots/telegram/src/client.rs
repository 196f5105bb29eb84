//! [`TelegramChat`]: the chat port on the Telegram Bot API, through
//! teloxide's [`Bot`].
//!
//! The token is part of every method URL (`/bot<token>/sendMessage`);
//! teloxide strips URLs from its network errors and nothing here logs one.

use async_trait::async_trait;
use firewatch_domain::chat::{card_text, ChatClient, ChatError};
use firewatch_types::{Button, Card, ChatMessage, Destination, ThreadRef};
use std::time::Duration;
use teloxide_core::payloads::{
    AnswerCallbackQuerySetters, EditMessageTextSetters, SendMessageSetters,
};
use teloxide_core::requests::Requester;
use teloxide_core::types::{
    CallbackQueryId, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions,
    Message, MessageId, Recipient, ReplyParameters, ThreadId,
};
use teloxide_core::{ApiError, Bot, RequestError};

use crate::TelegramConfig;

/// The Telegram client.
pub struct TelegramChat {
    bot: Bot,
}

fn keyboard(card: &Card) -> InlineKeyboardMarkup {
    buttons_keyboard(&card.buttons)
}

/// Buttons as an inline keyboard: one row when there are few, else one per
/// row so long labels stay readable.
pub fn buttons_keyboard(buttons: &[Button]) -> InlineKeyboardMarkup {
    let button = |b: &Button| InlineKeyboardButton::callback(b.label.clone(), b.payload.clone());
    let rows: Vec<Vec<InlineKeyboardButton>> = if buttons.is_empty() {
        vec![]
    } else if buttons.len() <= 4 {
        vec![buttons.iter().map(button).collect()]
    } else {
        buttons.iter().map(|b| vec![button(b)]).collect()
    };
    InlineKeyboardMarkup::new(rows)
}

fn no_preview() -> LinkPreviewOptions {
    LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    }
}

/// Telegram refuses messages over 4096 characters: longer text is cut, with
/// an ellipsis, rather than lost.
pub fn fit(text: &str) -> String {
    const MAX: usize = 4096;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(MAX - 1).collect();
        out.push('…');
        out
    }
}

/// A chat id as stored in a destination: a number, or `@channelusername`.
pub fn recipient(chat_id: &str) -> Recipient {
    match chat_id.trim().parse::<i64>() {
        Ok(id) => Recipient::Id(ChatId(id)),
        Err(_) => Recipient::ChannelUsername(chat_id.trim().to_owned()),
    }
}

fn message_id(id: &str) -> Result<MessageId, ChatError> {
    id.parse::<i32>()
        .map(MessageId)
        .map_err(|_| ChatError::Rejected(format!("{id:?} is not a Telegram message id")))
}

fn topic(id: &str) -> Result<ThreadId, ChatError> {
    message_id(id).map(ThreadId)
}

/// What a failed Bot API call means for the dispatcher: flood control is
/// waited out for as long as Telegram asks; network trouble and answers
/// teloxide cannot place (a proxy's HTML error page, a 5xx) are retried;
/// errors Telegram names (chat not found, bot blocked, ...) are final.
pub fn classify(method: &str, e: RequestError) -> ChatError {
    match e {
        RequestError::RetryAfter(s) => ChatError::RateLimited {
            retry_after: Some(s.duration()),
        },
        RequestError::Network(e) => ChatError::Unavailable(format!("{method}: {e}")),
        RequestError::InvalidJson { .. } => {
            ChatError::Unavailable(format!("{method}: unreadable answer"))
        }
        RequestError::Api(ApiError::Unknown(description)) => {
            ChatError::Unavailable(format!("{method}: {description}"))
        }
        RequestError::MigrateToChatId(to) => ChatError::Rejected(format!(
            "{method}: the group is now the supergroup {to}; route to it instead"
        )),
        other => ChatError::Rejected(format!("{method}: {other}")),
    }
}

impl TelegramChat {
    pub fn new(config: TelegramConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default();
        let bot =
            Bot::with_client(config.bot_token.expose(), http).set_api_url(config.api_url.clone());
        Self { bot }
    }

    /// The teloxide bot, for the webhook's answers.
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// Answers a button press (the client shows `text` as a toast).
    pub async fn answer_callback(&self, id: String, text: String) -> Result<(), ChatError> {
        // Telegram shows at most 200 characters here.
        let text: String = if text.chars().count() > 200 {
            text.chars().take(199).chain(['…']).collect()
        } else {
            text
        };
        self.bot
            .answer_callback_query(CallbackQueryId(id))
            .text(text)
            .show_alert(false)
            .await
            .map(|_| ())
            .map_err(|e| classify("answerCallbackQuery", e))
    }

    /// Sends `text` as a reply to message `to` in `chat`.
    /// Answers a message (a command, or the message whose button was
    /// pressed) with text and buttons.
    pub async fn answer_message(
        &self,
        chat: ChatId,
        to: MessageId,
        answer: &ChatMessage,
    ) -> Result<(), ChatError> {
        let mut reply = ReplyParameters::new(to);
        reply.allow_sending_without_reply = Some(true);
        let mut send = self
            .bot
            .send_message(chat, fit(&answer.text))
            .reply_parameters(reply)
            .link_preview_options(no_preview());
        if !answer.buttons.is_empty() {
            send = send.reply_markup(buttons_keyboard(&answer.buttons));
        }
        send.await
            .map(|_| ())
            .map_err(|e| classify("sendMessage", e))
    }
}

fn chat_of(t: &ThreadRef) -> Result<(Recipient, Option<ThreadId>), ChatError> {
    match &t.destination {
        Destination::Telegram { chat_id, topic_id } => Ok((
            recipient(chat_id),
            topic_id.as_deref().map(topic).transpose()?,
        )),
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
        let mut send = self
            .bot
            .send_message(recipient(chat_id), fit(&card_text(card)))
            .reply_markup(keyboard(card))
            .link_preview_options(no_preview());
        if let Some(t) = topic_id {
            send = send.message_thread_id(topic(t)?);
        }
        let msg: Message = send.await.map_err(|e| classify("sendMessage", e))?;
        Ok(ThreadRef {
            destination: dest.clone(),
            root_id: msg.id.0.to_string(),
            thread_id: None,
        })
    }

    async fn update_root(&self, thread: &ThreadRef, card: &Card) -> Result<(), ChatError> {
        let (chat, _) = chat_of(thread)?;
        let edit = self
            .bot
            .edit_message_text(chat, message_id(&thread.root_id)?, fit(&card_text(card)))
            .reply_markup(keyboard(card))
            .link_preview_options(no_preview());
        match edit.await {
            Ok(_) => Ok(()),
            // Editing to identical content is refused; the card is already right.
            Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
            Err(e) => Err(classify("editMessageText", e)),
        }
    }

    async fn reply(&self, thread: &ThreadRef, text: &str) -> Result<(), ChatError> {
        let (chat, topic) = chat_of(thread)?;
        let mut reply = ReplyParameters::new(message_id(&thread.root_id)?);
        reply.allow_sending_without_reply = Some(true);
        let mut send = self
            .bot
            .send_message(chat, fit(text))
            .reply_parameters(reply);
        if let Some(t) = topic {
            send = send.message_thread_id(t);
        }
        send.await
            .map(|_| ())
            .map_err(|e| classify("sendMessage", e))
    }

    async fn post_message(&self, thread: &ThreadRef, m: &ChatMessage) -> Result<String, ChatError> {
        let (chat, topic) = chat_of(thread)?;
        let mut reply = ReplyParameters::new(message_id(&thread.root_id)?);
        reply.allow_sending_without_reply = Some(true);
        let mut send = self
            .bot
            .send_message(chat, fit(&m.text))
            .reply_parameters(reply)
            .reply_markup(buttons_keyboard(&m.buttons))
            .link_preview_options(no_preview());
        if let Some(t) = topic {
            send = send.message_thread_id(t);
        }
        let msg: Message = send.await.map_err(|e| classify("sendMessage", e))?;
        Ok(msg.id.0.to_string())
    }

    async fn edit_message(
        &self,
        thread: &ThreadRef,
        id: &str,
        m: &ChatMessage,
    ) -> Result<(), ChatError> {
        let (chat, _) = chat_of(thread)?;
        let edit = self
            .bot
            .edit_message_text(chat, message_id(id)?, fit(&m.text))
            .reply_markup(buttons_keyboard(&m.buttons))
            .link_preview_options(no_preview());
        match edit.await {
            Ok(_) => Ok(()),
            Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
            Err(e) => Err(classify("editMessageText", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use teloxide_core::types::Seconds;

    #[test]
    fn flood_control_is_waited_out_and_named_errors_are_final() {
        assert!(matches!(
            classify("sendMessage", RequestError::RetryAfter(Seconds::from_seconds(7))),
            ChatError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify(
                "sendMessage",
                RequestError::Api(ApiError::Unknown("Bad Gateway".into()))
            ),
            ChatError::Unavailable(_)
        ));
        let html = serde_json::from_str::<serde_json::Value>("<html>").unwrap_err();
        assert!(matches!(
            classify(
                "sendMessage",
                RequestError::InvalidJson {
                    source: Arc::new(html),
                    raw: "<html>".into()
                }
            ),
            ChatError::Unavailable(_)
        ));
        assert!(matches!(
            classify("sendMessage", RequestError::Api(ApiError::ChatNotFound)),
            ChatError::Rejected(_)
        ));
    }

    #[test]
    fn long_text_is_cut_to_telegrams_limit() {
        assert_eq!(fit("short"), "short");
        let long = "é".repeat(5000);
        let cut = fit(&long);
        assert_eq!(cut.chars().count(), 4096);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn chat_ids_are_numbers_or_channel_names() {
        assert_eq!(
            recipient("-1001234567890"),
            Recipient::Id(ChatId(-1001234567890))
        );
        assert_eq!(
            recipient("@ops_alerts"),
            Recipient::ChannelUsername("@ops_alerts".into())
        );
    }
}
