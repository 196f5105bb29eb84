//! `POST /v1/chat/telegram/webhook`: Telegram's updates, parsed as
//! teloxide's [`Update`].
//!
//! `X-Telegram-Bot-Api-Secret-Token` must equal the webhook secret (compared
//! in constant time) or the update is a 401 and nothing is read. An update
//! id is processed once: Telegram redelivers updates it thinks were lost.

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Extension, Router};
use firewatch_domain::chat::identities;
use firewatch_domain::chat::{self, final_answer, run_command, NOT_MAPPED};
use firewatch_domain::playbooks::Catalog;
use firewatch_domain::settings::Secret;
use firewatch_domain::Services;
use firewatch_types::{Button, ChatMessage};
use firewatch_web::extract::parse_json;
use firewatch_web::{ApiBytes, ApiError, ApiResult};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use teloxide_core::types::{CallbackQuery, Update, UpdateKind};

use crate::TelegramChat;

/// What the webhook needs besides the services.
pub struct TelegramInbound {
    pub webhook_secret: Secret,
    /// For `answerCallbackQuery` and command answers.
    pub bot: Arc<TelegramChat>,
}

/// The Telegram route, finished with the shared layers.
pub fn router(services: Services, inbound: TelegramInbound, playbooks: Arc<Catalog>) -> Router {
    let r = Router::new()
        .route("/v1/chat/telegram/webhook", post(webhook))
        .layer(Extension(Arc::new(inbound)))
        .layer(Extension(playbooks));
    firewatch_web::finish(r, services)
}

async fn webhook(
    axum::extract::State(svc): axum::extract::State<Services>,
    Extension(tg): Extension<Arc<TelegramInbound>>,
    Extension(playbooks): Extension<Arc<Catalog>>,
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
    if let UpdateKind::Error(_) = &update.kind {
        // teloxide keeps what it could not read. The webhook only asks for
        // messages and callback queries, so this is a malformed update; its
        // id is not remembered, so a corrected redelivery is still handled.
        return Err(ApiError::bad_request(
            "invalid_update",
            format!(
                "not a Telegram update firewatch can read: {}",
                unreadable(&body)
            ),
        ));
    }
    let update_id = update.id.0.to_string();
    // Once per update, however often (or however concurrently) Telegram
    // delivers it; a passing failure answers 503 and lets it go again.
    let handled = chat::once(&svc, "telegram", Some(&update_id), async {
        match update.kind {
            UpdateKind::CallbackQuery(q) => {
                // A passing failure answers 503 unmarked: Telegram redelivers.
                let answer = press(&svc, &playbooks, &q).await?;
                // An answer with buttons (the playbooks of an incident) goes to
                // the chat, as a reply to the message whose button was pressed.
                if !answer.buttons.is_empty() {
                    if let Some(m) = &q.message {
                        if let Err(e) = tg.bot.answer_message(m.chat().id, m.id(), &answer).await {
                            tracing::warn!(error = %e, "button answer failed");
                        }
                    }
                }
                // Always answered, or the client keeps spinning.
                if let Err(e) = tg.bot.answer_callback(q.id.0, answer.text).await {
                    tracing::warn!(error = %e, "answerCallbackQuery failed");
                }
            }
            UpdateKind::Message(m) => {
                let (Some(text), Some(from)) = (m.text(), m.from.as_ref()) else {
                    return Ok(());
                };
                let Some(command) = text.strip_prefix('/') else {
                    return Ok(());
                };
                // `/ack@firewatch_bot inc_...` → `ack inc_...`
                let mut words = command.splitn(2, ' ');
                let name = words.next().unwrap_or("").split('@').next().unwrap_or("");
                let rest = words.next().unwrap_or("");
                // The chat is the workspace: Telegram user ids are global, so a
                // mapping holds in the chat it was made for.
                let chat_id = m.chat.id.0.to_string();
                let user_id = from.id.0.to_string();
                let reply = if name == "link" {
                    // Proof that this chat is the code's tenant's.
                    let at = firewatch_domain::routing::links::Place {
                        platform: "telegram",
                        workspace: &chat_id,
                        channel: &chat_id,
                        user: &user_id,
                    };
                    ChatMessage::text(
                        firewatch_domain::routing::links::redeem(&svc, &at, rest).await?,
                    )
                } else {
                    let who = identities::ChatUser {
                        platform: "telegram",
                        workspace: &chat_id,
                        user_id: &user_id,
                    };
                    match identities::principal(&svc, who).await? {
                        None => ChatMessage::text(NOT_MAPPED),
                        Some(p) => {
                            run_command(&svc, &playbooks, &p, &format!("{name} {rest}"), "/")
                                .await?
                        }
                    }
                };
                if let Err(e) = tg.bot.answer_message(m.chat.id, m.id, &reply).await {
                    tracing::warn!(error = %e, "command answer failed");
                }
            }
            // Other updates (edits, joins, ...) are not for firewatch.
            _ => {}
        }
        Ok::<_, ApiError>(())
    })
    .await?;
    if handled.is_none() {
        tracing::debug!(update = %update_id, "update already handled");
    }
    Ok(StatusCode::OK)
}

/// Which known part of an update failed to parse, for the error message.
fn unreadable(body: &[u8]) -> String {
    let raw: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    for (field, kind) in [("message", "message"), ("callback_query", "callback query")] {
        if let Some(v) = raw.get(field) {
            let err = match field {
                "message" => {
                    serde_json::from_value::<teloxide_core::types::Message>(v.clone()).err()
                }
                _ => serde_json::from_value::<CallbackQuery>(v.clone()).err(),
            };
            if let Some(e) = err {
                return format!("{kind}: {e}");
            }
        }
    }
    "no message or callback_query".into()
}

/// A button press: the refusal or confirmation shown to the presser, with
/// buttons when it offers a choice.
async fn press(
    svc: &Services,
    playbooks: &Catalog,
    q: &CallbackQuery,
) -> Result<ChatMessage, firewatch_domain::DomainError> {
    let Some(payload) = q.data.as_deref().filter(|d| Button::parse(d).is_some()) else {
        return Ok(ChatMessage::text("Unknown button"));
    };
    let Some(chat_id) = q.message.as_ref().map(|m| m.chat().id.0.to_string()) else {
        return Ok(ChatMessage::text(
            "This button's message is no longer available",
        ));
    };
    let user_id = q.from.id.0.to_string();
    let who = identities::ChatUser {
        platform: "telegram",
        workspace: &chat_id,
        user_id: &user_id,
    };
    let p = match identities::principal(svc, who).await {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(ChatMessage::text(NOT_MAPPED)),
        Err(e) => return final_answer(e).map(ChatMessage::text),
    };
    let result = chat::press(svc, playbooks, &p, payload).await;
    tracing::info!(user = %p.name, button = payload, ok = result.is_ok(), "telegram button");
    result.or_else(|e| final_answer(e).map(ChatMessage::text))
}
