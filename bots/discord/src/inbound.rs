//! `POST /v1/chat/discord/interactions`: Discord's HTTP interactions.
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
use firewatch_domain::chat::{explain, run_command};
use firewatch_domain::ports::{Condition, StoreError};
use firewatch_domain::{identities, incidents, keys, DomainError, Services};
use firewatch_types::{Button, ButtonAction, IncidentAction};
use firewatch_web::extract::parse_json;
use firewatch_web::{ApiBytes, ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// What the endpoint needs besides the services.
pub struct DiscordInbound {
    pub public_key: [u8; 32],
}

/// The Discord route, finished with the shared layers.
pub fn router(services: Services, inbound: DiscordInbound) -> Router {
    let r = Router::new()
        .route("/v1/chat/discord/interactions", post(interaction))
        .layer(Extension(Arc::new(inbound)));
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

#[derive(Deserialize)]
struct Interaction {
    id: String,
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    member: Option<Member>,
    #[serde(default)]
    user: Option<User>,
}

#[derive(Deserialize)]
struct Member {
    user: User,
}

#[derive(Deserialize)]
struct User {
    id: String,
}

const PING: u8 = 1;
const APPLICATION_COMMAND: u8 = 2;
const MESSAGE_COMPONENT: u8 = 3;

fn ephemeral(text: impl Into<String>) -> Json<Value> {
    Json(
        json!({"type": 4, "data": {"content": text.into(), "flags": 64, "allowed_mentions": {"parse": []}}}),
    )
}

/// Acknowledges a component click without changing the message: the card
/// edit arrives through the outbox.
fn deferred_update() -> Json<Value> {
    Json(json!({"type": 6}))
}

const NOT_MAPPED: &str =
    "You are not mapped to a firewatch role, so nothing was changed. Ask an admin to add you.";

async fn first_time(svc: &Services, id: &str) -> Result<bool, ApiError> {
    let mut item = keys::item("_#DISCORDIX".into(), id.to_owned(), 1, &svc.clock.now())
        .map_err(ApiError::from)?;
    item.expires_at = Some(svc.clock.now().timestamp() + 86_400);
    match svc.store.put(item, Condition::Absent).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(DomainError::from(e).into()),
    }
}

async fn interaction(
    axum::extract::State(svc): axum::extract::State<Services>,
    Extension(discord): Extension<Arc<DiscordInbound>>,
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
    if i.kind == PING {
        return Ok(Json(json!({"type": 1})));
    }
    if !first_time(&svc, &i.id).await? {
        return Ok(deferred_update());
    }
    let user = i
        .member
        .map(|m| m.user)
        .or(i.user)
        .map(|u| u.id)
        .unwrap_or_default();
    let Some(p) = identities::principal(&svc, "discord", &user).await? else {
        return Ok(ephemeral(NOT_MAPPED));
    };
    let data = i.data.unwrap_or(Value::Null);
    match i.kind {
        MESSAGE_COMPONENT => {
            let Some((action, id)) = data["custom_id"].as_str().and_then(Button::parse_payload)
            else {
                return Ok(ephemeral("Unknown button"));
            };
            let result = match action {
                ButtonAction::Ack => {
                    incidents::act(&svc, &p, &id, IncidentAction::Ack, None, None).await
                }
                ButtonAction::Resolve => {
                    incidents::act(&svc, &p, &id, IncidentAction::Resolve, None, None).await
                }
                ButtonAction::Triage | ButtonAction::Playbooks => {
                    return Ok(ephemeral(format!(
                        "{} is not available yet",
                        action.label()
                    )))
                }
            };
            tracing::info!(user = %p.name, action = action.as_str(), incident = %id, ok = result.is_ok(), "discord button");
            Ok(match result {
                Ok(_) => deferred_update(),
                Err(e) => ephemeral(explain(e)),
            })
        }
        APPLICATION_COMMAND => {
            // `/fw text: ack inc_...`
            let text = data["options"]
                .as_array()
                .and_then(|o| o.iter().find(|o| o["name"] == "text"))
                .and_then(|o| o["value"].as_str())
                .unwrap_or("help")
                .to_owned();
            Ok(ephemeral(run_command(&svc, &p, &text, "/fw text: ").await))
        }
        _ => Ok(ephemeral("This interaction is not supported")),
    }
}
