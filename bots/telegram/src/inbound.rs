//! `POST /v1/chat/telegram/webhook`: Telegram's updates.
//!
//! `X-Telegram-Bot-Api-Secret-Token` must equal the webhook secret (compared
//! in constant time) or the update is a 401 and nothing is read. An update
//! id is processed once: Telegram redelivers updates it thinks were lost.

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Extension, Router};
use firewatch_domain::chat::{explain, run_command};
use firewatch_domain::ports::{Condition, StoreError};
use firewatch_domain::settings::Secret;
use firewatch_domain::{identities, incidents, keys, DomainError, Services};
use firewatch_types::{Button, ButtonAction, IncidentAction};
use firewatch_web::extract::parse_json;
use firewatch_web::{ApiBytes, ApiError, ApiResult};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use subtle::ConstantTimeEq;

use crate::TelegramChat;

/// What the webhook needs besides the services.
pub struct TelegramInbound {
    pub webhook_secret: Secret,
    /// For `answerCallbackQuery` and command answers.
    pub bot: Arc<TelegramChat>,
}

/// The Telegram route, finished with the shared layers.
pub fn router(services: Services, inbound: TelegramInbound) -> Router {
    let r = Router::new()
        .route("/v1/chat/telegram/webhook", post(webhook))
        .layer(Extension(Arc::new(inbound)));
    firewatch_web::finish(r, services)
}

#[derive(Deserialize)]
struct Update {
    update_id: i64,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    callback_query: Option<CallbackQuery>,
}

#[derive(Deserialize)]
struct User {
    id: i64,
}

#[derive(Deserialize)]
struct Chat {
    id: i64,
}

#[derive(Deserialize)]
struct Message {
    message_id: i64,
    #[serde(default)]
    from: Option<User>,
    chat: Chat,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct CallbackQuery {
    id: String,
    from: User,
    #[serde(default)]
    data: Option<String>,
}

const NOT_MAPPED: &str =
    "You are not mapped to a firewatch role, so nothing was changed. Ask an admin to add you.";

/// Remembers an update id; false when it was seen before.
async fn first_time(svc: &Services, update_id: i64) -> Result<bool, ApiError> {
    let mut item = keys::item(
        "_#TGUPDATE".into(),
        update_id.to_string(),
        1,
        &svc.clock.now(),
    )
    .map_err(ApiError::from)?;
    item.expires_at = Some(svc.clock.now().timestamp() + 7 * 86_400);
    match svc.store.put(item, Condition::Absent).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(DomainError::from(e).into()),
    }
}

async fn webhook(
    axum::extract::State(svc): axum::extract::State<Services>,
    Extension(tg): Extension<Arc<TelegramInbound>>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<StatusCode> {
    let given = headers
        .get("x-telegram-bot-api-secret-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let expected = tg.webhook_secret.expose();
    if !(given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))) {
        return Err(ApiError::unauthorized(
            "X-Telegram-Bot-Api-Secret-Token does not match",
        ));
    }
    let update: Update = parse_json(&body)?;
    if !first_time(&svc, update.update_id).await? {
        return Ok(StatusCode::OK);
    }
    if let Some(q) = update.callback_query {
        let text = press(&svc, &q).await;
        // Always answered, or the client keeps spinning.
        let answer = json!({"callback_query_id": q.id, "text": text.unwrap_or_default(), "show_alert": false});
        if let Err(e) = tg.bot.call("answerCallbackQuery", answer).await {
            tracing::warn!(error = %e, "answerCallbackQuery failed");
        }
    } else if let Some(m) = update.message {
        if let (Some(text), Some(from)) = (m.text.as_deref(), m.from.as_ref()) {
            if let Some(command) = text.strip_prefix('/') {
                // `/ack@firewatch_bot inc_...` → `ack inc_...`
                let mut words = command.splitn(2, ' ');
                let name = words.next().unwrap_or("").split('@').next().unwrap_or("");
                let rest = words.next().unwrap_or("");
                let reply =
                    match identities::principal(&svc, "telegram", &from.id.to_string()).await? {
                        None => NOT_MAPPED.to_owned(),
                        Some(p) => run_command(&svc, &p, &format!("{name} {rest}"), "/").await,
                    };
                let body = json!({"chat_id": m.chat.id, "text": reply, "reply_parameters": {"message_id": m.message_id}});
                if let Err(e) = tg.bot.call("sendMessage", body).await {
                    tracing::warn!(error = %e, "command answer failed");
                }
            }
        }
    }
    Ok(StatusCode::OK)
}

/// A button press: the refusal or confirmation shown to the presser.
async fn press(svc: &Services, q: &CallbackQuery) -> Option<String> {
    let Some((action, id)) = q.data.as_deref().and_then(Button::parse_payload) else {
        return Some("Unknown button".into());
    };
    let p = match identities::principal(svc, "telegram", &q.from.id.to_string()).await {
        Ok(Some(p)) => p,
        Ok(None) => return Some(NOT_MAPPED.into()),
        Err(e) => return Some(explain(e)),
    };
    let result = match action {
        ButtonAction::Ack => incidents::act(svc, &p, &id, IncidentAction::Ack, None, None).await,
        ButtonAction::Resolve => {
            incidents::act(svc, &p, &id, IncidentAction::Resolve, None, None).await
        }
        ButtonAction::Triage | ButtonAction::Playbooks => {
            return Some(format!("{} is not available yet", action.label()))
        }
    };
    tracing::info!(user = %p.name, action = action.as_str(), incident = %id, ok = result.is_ok(), "telegram button");
    Some(match result {
        Ok(inc) => format!("{} is now {}", inc.id, inc.state),
        Err(e) => explain(e),
    })
}
