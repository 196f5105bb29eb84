//! `POST /v1/chat/discord/interactions`: Discord's HTTP interactions, read
//! as serenity's [`Interaction`] and answered with serenity's
//! [`CreateInteractionResponse`].
//!
//! Verified first: `X-Signature-Ed25519` must be the application key's
//! signature of `X-Signature-Timestamp` + raw body, and the timestamp within
//! 5 minutes; otherwise 401 and nothing is read (Discord itself probes the
//! endpoint with bad signatures and expects exactly that). An interaction id
//! is handled once.

use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Extension, Json, Router};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use firewatch_domain::chat::identities;
use firewatch_domain::chat::{final_answer, once, press, run_command, NOT_MAPPED};
use firewatch_domain::playbooks::Catalog;
use firewatch_domain::Services;
use firewatch_types::{Button, ChatMessage};
use firewatch_web::extract::parse_json;
use firewatch_web::{ApiBytes, ApiError, ApiResult};
use serde_json::Value;
use serenity::all::{
    CreateAllowedMentions, CreateInteractionResponse, CreateInteractionResponseMessage, Interaction,
};
use std::sync::Arc;

/// What the endpoint needs besides the services.
pub struct DiscordInbound {
    pub public_key: [u8; 32],
}

/// The Discord route, finished with the shared layers.
pub fn router(services: Services, inbound: DiscordInbound, playbooks: Arc<Catalog>) -> Router {
    let r = Router::new()
        .route("/v1/chat/discord/interactions", post(interaction))
        .layer(Extension(Arc::new(inbound)))
        .layer(Extension(playbooks));
    firewatch_web::finish(r, services)
}

/// Checks Discord's Ed25519 signature and the timestamp's freshness.
pub fn verify(
    public_key: &[u8; 32],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), ApiError> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let sig = header("x-signature-ed25519")
        .ok_or_else(|| ApiError::unauthorized("missing X-Signature-Ed25519"))?;
    let ts = header("x-signature-timestamp")
        .ok_or_else(|| ApiError::unauthorized("missing X-Signature-Timestamp"))?;
    let ts_num: i64 = ts
        .parse()
        .map_err(|_| ApiError::unauthorized("bad X-Signature-Timestamp"))?;
    if (now - ts_num).abs() > 300 {
        return Err(ApiError::unauthorized(
            "request timestamp is older than 5 minutes (replayed?)",
        ));
    }
    let sig: [u8; 64] = hex::decode(sig)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::unauthorized("X-Signature-Ed25519 is not a signature"))?;
    let key = VerifyingKey::from_bytes(public_key)
        .map_err(|_| ApiError::unauthorized("invalid public key"))?;
    let mut message = ts.as_bytes().to_vec();
    message.extend_from_slice(body);
    key.verify(&message, &Signature::from_bytes(&sig))
        .map_err(|_| ApiError::unauthorized("X-Signature-Ed25519 does not match"))
}

fn respond(r: CreateInteractionResponse) -> Json<Value> {
    Json(serde_json::to_value(r).unwrap_or_default())
}

fn ephemeral(text: impl Into<String>) -> Json<Value> {
    respond(CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content(text)
            .ephemeral(true)
            .allowed_mentions(CreateAllowedMentions::new()),
    ))
}

/// An answer only the user sees, with its buttons.
fn ephemeral_message(m: &ChatMessage) -> Json<Value> {
    respond(CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content(crate::client::message_content(m))
            .components(crate::client::message_buttons(&m.buttons))
            .ephemeral(true)
            .allowed_mentions(CreateAllowedMentions::new()),
    ))
}

/// Acknowledges a component click without changing the message: the card
/// edit arrives through the outbox.
fn deferred_update() -> Json<Value> {
    respond(CreateInteractionResponse::Acknowledge)
}

async fn interaction(
    axum::extract::State(svc): axum::extract::State<Services>,
    Extension(discord): Extension<Arc<DiscordInbound>>,
    Extension(playbooks): Extension<Arc<Catalog>>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<Value>> {
    verify(
        &discord.public_key,
        &headers,
        &body,
        svc.clock.now().timestamp(),
    )?;
    let i: Interaction = parse_json(&body)?;
    let (user, guild, channel, kind) = match &i {
        Interaction::Ping(_) => return Ok(respond(CreateInteractionResponse::Pong)),
        Interaction::Component(c) => (c.user.id, c.guild_id, c.channel_id, "component"),
        Interaction::Command(c) => (c.user.id, c.guild_id, c.channel_id, "command"),
        _ => return Ok(ephemeral("This interaction is not supported")),
    };
    // The guild is the workspace. A direct message has none: each user's DMs
    // are a workspace of their own, so linking one DM claims no other.
    let workspace = guild.map_or_else(|| format!("dm-{user}"), |g| g.to_string());
    let user = user.to_string();
    let request_id = i.id().to_string();
    // Once per interaction, however often (or however concurrently) it is
    // delivered: the action commits first, then the interaction is done.
    let handled = once(&svc, "discord", Some(&request_id), async {
        if let Interaction::Command(c) = &i {
            if let Some(code) = command_text(c).trim().strip_prefix("link ") {
                // Proof that this channel is the code's tenant's.
                let at = firewatch_domain::routing::links::Place {
                    platform: "discord",
                    workspace: &workspace,
                    channel: &channel.to_string(),
                    user: &user,
                };
                let answer = firewatch_domain::routing::links::redeem(&svc, &at, code).await?;
                return Ok(ephemeral(answer));
            }
        }
        let who = identities::ChatUser {
            platform: "discord",
            workspace: &workspace,
            user_id: &user,
        };
        let Some(p) = identities::principal(&svc, who).await? else {
            return Ok(ephemeral(NOT_MAPPED));
        };
        act(&svc, &playbooks, &p, i).await
    })
    .await?;
    Ok(handled.unwrap_or_else(|| match kind {
        "component" => deferred_update(),
        _ => ephemeral("This command was already handled."),
    }))
}

/// The text of `/fw text: ack inc_...`.
fn command_text(c: &serenity::all::CommandInteraction) -> String {
    c.data
        .options
        .iter()
        .find(|o| o.name == "text")
        .and_then(|o| o.value.as_str())
        .unwrap_or("help")
        .to_owned()
}

/// Carries out a click or a command; `Err` only for a passing failure.
async fn act(
    svc: &Services,
    playbooks: &Catalog,
    p: &firewatch_types::Principal,
    i: Interaction,
) -> ApiResult<Json<Value>> {
    let (svc, p) = (svc.clone(), p.clone());
    match i {
        Interaction::Component(c) => {
            let payload = c.data.custom_id.as_str();
            if Button::parse(payload).is_none() {
                return Ok(ephemeral("Unknown button"));
            }
            let result = press(&svc, playbooks, &p, payload).await;
            tracing::info!(user = %p.name, button = payload, ok = result.is_ok(), "discord button");
            Ok(match result {
                // A choice (the playbooks of an incident) is shown to the
                // user; any other change arrives in the thread.
                Ok(m) if !m.buttons.is_empty() => ephemeral_message(&m),
                Ok(_) => deferred_update(),
                Err(e) => ephemeral(final_answer(e)?),
            })
        }
        Interaction::Command(c) => {
            let text = command_text(&c);
            Ok(ephemeral_message(
                &run_command(&svc, playbooks, &p, &text, "/fw text: ").await?,
            ))
        }
        _ => Ok(ephemeral("This interaction is not supported")),
    }
}
