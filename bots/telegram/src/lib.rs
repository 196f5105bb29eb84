//! firewatch on Telegram.
//!
//! - [`TelegramChat`]: the chat port on the Bot API through teloxide's `Bot`
//!   (types from teloxide too): the root card is a
//!   message with an inline keyboard, every later event a reply to it (in the
//!   incident's forum topic when the destination names one), and the card is
//!   edited in place with `editMessageText`.
//! - [`router`]: `POST /v1/chat/telegram/webhook`, checked against
//!   `X-Telegram-Bot-Api-Secret-Token` before anything is parsed; commands
//!   (`/incidents`, `/ack <id>`, ...) and button presses (callback queries,
//!   always answered with `answerCallbackQuery`).

mod client;
mod inbound;

use firewatch_domain::settings::Secret;

pub use client::TelegramChat;
pub use inbound::{router, TelegramInbound};

/// Telegram settings from the environment.
#[derive(Clone, Debug)]
pub struct TelegramConfig {
    /// `TELEGRAM_BOT_TOKEN`.
    pub bot_token: Secret,
    /// `TELEGRAM_WEBHOOK_SECRET`: the `secret_token` given to `setWebhook`.
    pub webhook_secret: Secret,
    /// `TELEGRAM_API_URL`, default `https://api.telegram.org`; methods are
    /// called at `<url>/bot<token>/<method>`.
    pub api_url: url::Url,
}

impl TelegramConfig {
    /// `None` when Telegram is not configured (no bot token).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let Some(token) = var("TELEGRAM_BOT_TOKEN").filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let secret = var("TELEGRAM_WEBHOOK_SECRET")
            .filter(|s| !s.is_empty())
            .ok_or("TELEGRAM_WEBHOOK_SECRET must be set when TELEGRAM_BOT_TOKEN is")?;
        // Telegram allows 1-256 characters A-Z, a-z, 0-9, _ and -.
        if secret.len() > 256
            || !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(
                "TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -".into(),
            );
        }
        let api_url = var("TELEGRAM_API_URL").unwrap_or_else(|| "https://api.telegram.org".into());
        let api_url = url::Url::parse(api_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && u.has_host())
            .ok_or_else(|| format!("TELEGRAM_API_URL must be an http(s) URL, got {api_url:?}"))?;
        Ok(Some(Self {
            bot_token: Secret::new(token),
            webhook_secret: Secret::new(secret),
            api_url,
        }))
    }
}
