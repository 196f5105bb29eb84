//! firewatch on Discord.
//!
//! - [`DiscordChat`]: the chat port on Discord's REST API, built from serenity's
//!   builders, routes and models: the root card is a
//!   message with an embed and buttons, a thread is started from it, every
//!   later event is a message in that thread, and the card is edited in place.
//! - [`router`]: `POST /v1/chat/discord/interactions`, the HTTP interactions
//!   endpoint: `X-Signature-Ed25519` over timestamp + body is verified with
//!   the application's public key before anything is parsed; PING is
//!   answered with PONG, button clicks with a deferred update (the thread
//!   reply and card edit follow through the outbox), refusals ephemerally.

mod client;
mod inbound;

use firewatch_domain::settings::Secret;

pub use client::DiscordChat;
pub use inbound::{router, DiscordInbound};

/// Discord settings from the environment.
#[derive(Clone, Debug)]
pub struct DiscordConfig {
    /// `DISCORD_BOT_TOKEN`.
    pub bot_token: Secret,
    /// `DISCORD_PUBLIC_KEY`: the application's Ed25519 public key (hex).
    pub public_key: [u8; 32],
    /// `DISCORD_API_URL`, default `https://discord.com`: where Discord's
    /// REST API is reached; requests go to `<url>/api/v10/...`. A trailing
    /// `/api/v10` is accepted and dropped.
    pub api_url: String,
}

impl DiscordConfig {
    /// `None` when Discord is not configured (no bot token).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let Some(token) = var("DISCORD_BOT_TOKEN").filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let key = var("DISCORD_PUBLIC_KEY")
            .ok_or("DISCORD_PUBLIC_KEY must be set when DISCORD_BOT_TOKEN is")?;
        let public_key: [u8; 32] = hex::decode(key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("DISCORD_PUBLIC_KEY must be 64 hex characters (the application's public key)")?;
        let api_url = var("DISCORD_API_URL").unwrap_or_else(|| "https://discord.com".into());
        let base = api_url.trim().trim_end_matches('/');
        let base = base.strip_suffix("/api/v10").unwrap_or(base);
        if !url::Url::parse(base)
            .map(|u| matches!(u.scheme(), "https" | "http") && u.has_host())
            .unwrap_or(false)
        {
            return Err(format!(
                "DISCORD_API_URL must be an http(s) URL, got {api_url:?}"
            ));
        }
        Ok(Some(Self {
            bot_token: Secret::new(token),
            public_key,
            api_url: base.to_owned(),
        }))
    }
}
