//! firewatch on Slack.
//!
//! - [`SlackChat`]: the chat port on the Slack Web API (`chat.postMessage`,
//!   `chat.update`), rendering cards as Block Kit, posting replies with
//!   `thread_ts`.
//! - [`router`]: `POST /v1/chat/slack/commands` (`/fw ...`) and
//!   `POST /v1/chat/slack/interactions` (button clicks), each verified with
//!   Slack's v0 signature before anything is parsed.

mod blocks;
mod client;
mod inbound;

use firewatch_domain::settings::Secret;

pub use blocks::card_blocks;
pub use client::SlackChat;
pub use inbound::{router, sign, verify, SlackInbound};

/// Slack settings from the environment.
#[derive(Clone, Debug)]
pub struct SlackConfig {
    /// `SLACK_BOT_TOKEN` (`xoxb-...`).
    pub bot_token: Secret,
    /// `SLACK_SIGNING_SECRET`.
    pub signing_secret: Secret,
    /// `SLACK_API_URL`, default `https://slack.com/api`.
    pub api_url: String,
}

impl SlackConfig {
    /// `None` when Slack is not configured (no bot token); an error names a
    /// variable that is set wrong.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let Some(token) = var("SLACK_BOT_TOKEN").filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let signing = var("SLACK_SIGNING_SECRET")
            .filter(|s| !s.is_empty())
            .ok_or("SLACK_SIGNING_SECRET must be set when SLACK_BOT_TOKEN is")?;
        let api_url = var("SLACK_API_URL").unwrap_or_else(|| "https://slack.com/api".into());
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(format!(
                "SLACK_API_URL must be an http(s) URL, got {api_url:?}"
            ));
        }
        Ok(Some(Self {
            bot_token: Secret::new(token),
            signing_secret: Secret::new(signing),
            api_url: api_url.trim_end_matches('/').to_owned(),
        }))
    }
}
