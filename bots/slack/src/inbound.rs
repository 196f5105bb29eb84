//! Slack's requests to firewatch: slash commands and button clicks.
//!
//! Every request is verified first: `X-Slack-Signature` must be
//! `v0=<hex HMAC-SHA256(signing secret, "v0:<timestamp>:<raw body>")>` and
//! `X-Slack-Request-Timestamp` within 5 minutes, so a forged or replayed
//! request is a 401 and changes nothing. Slack wants an answer within 3
//! seconds: the action itself is one store transaction, and the thread reply
//! and card edit it causes go through the outbox.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use firewatch_domain::chat::identities;
use firewatch_domain::chat::{final_answer, once, NOT_MAPPED};
use firewatch_domain::playbooks::Catalog;
use firewatch_domain::settings::Secret;
use firewatch_domain::Services;
use firewatch_types::{Button, ChatMessage, Principal};
use firewatch_web::{ApiBytes, ApiError, ApiResult};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What the inbound endpoints need besides the services.
pub struct SlackInbound {
    pub signing_secret: Secret,
    /// For `response_url` answers, with a short timeout.
    pub http: reqwest::Client,
    /// Origins a `response_url` may point at (Slack's own, and the origin of
    /// `SLACK_API_URL` when it is a proxy or a local fake).
    response_origins: Vec<String>,
}

/// Where Slack's `response_url`s live.
pub const SLACK_RESPONSE_ORIGIN: &str = "https://hooks.slack.com";

/// How long answering on a `response_url` may take.
const RESPONSE_URL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

impl SlackInbound {
    pub fn new(signing_secret: Secret) -> Self {
        Self {
            signing_secret,
            http: reqwest::Client::builder()
                .timeout(RESPONSE_URL_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            response_origins: vec![SLACK_RESPONSE_ORIGIN.to_owned()],
        }
    }

    /// Also follows `response_url`s at the origin of `url` (the configured
    /// `SLACK_API_URL`).
    pub fn allowing_origin_of(mut self, url: &str) -> Self {
        if let Some(origin) = origin(url) {
            self.response_origins.push(origin);
        }
        self
    }

    /// True when `url` is at an origin firewatch answers on; a signed
    /// payload still must not send firewatch to any host it names.
    pub fn response_url_allowed(&self, url: &str) -> bool {
        origin(url).is_some_and(|o| self.response_origins.contains(&o))
    }
}

fn origin(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    match u.origin() {
        url::Origin::Tuple(..) => Some(u.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// The Slack routes, finished with the shared layers.
pub fn router(services: Services, inbound: SlackInbound, playbooks: Arc<Catalog>) -> Router {
    let r = Router::new()
        .route("/v1/chat/slack/commands", post(command))
        .route("/v1/chat/slack/interactions", post(interaction))
        .layer(Extension(Arc::new(inbound)))
        .layer(Extension(playbooks));
    firewatch_web::finish(r, services)
}

/// Checks Slack's v0 signature over the raw body.
pub fn verify(secret: &Secret, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), ApiError> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let ts = header("x-slack-request-timestamp")
        .ok_or_else(|| ApiError::unauthorized("missing X-Slack-Request-Timestamp"))?;
    let sig = header("x-slack-signature")
        .ok_or_else(|| ApiError::unauthorized("missing X-Slack-Signature"))?;
    let ts_num: i64 = ts
        .parse()
        .map_err(|_| ApiError::unauthorized("bad X-Slack-Request-Timestamp"))?;
    if (now - ts_num).abs() > 300 {
        return Err(ApiError::unauthorized(
            "request timestamp is older than 5 minutes (replayed?)",
        ));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("hmac takes any key length");
    mac.update(b"v0:");
    mac.update(ts.as_bytes());
    mac.update(b":");
    mac.update(body);
    let expected = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    if expected.len() == sig.len() && bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("X-Slack-Signature does not match"))
    }
}

/// Signs like Slack does; for tests and local tooling.
pub fn sign(secret: &Secret, ts: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("hmac takes any key length");
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn form(body: &[u8]) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn ephemeral(text: impl Into<String>) -> Json<Value> {
    let text = crate::blocks::message_text(&text.into());
    Json(json!({"response_type": "ephemeral", "text": text}))
}

/// An answer only the user sees, with its buttons as blocks.
fn ephemeral_message(m: &ChatMessage) -> Value {
    let mut v = json!({"response_type": "ephemeral", "text": crate::blocks::message_text(&m.text)});
    if !m.buttons.is_empty() {
        v["blocks"] = json!(crate::blocks::message_blocks(m));
    }
    v
}

async fn who(svc: &Services, team: &str, user_id: &str) -> Result<Option<Principal>, ApiError> {
    let user = identities::ChatUser {
        platform: "slack",
        workspace: team,
        user_id,
    };
    Ok(identities::principal(svc, user).await?)
}

async fn command(
    axum::extract::State(svc): axum::extract::State<Services>,
    Extension(slack): Extension<Arc<SlackInbound>>,
    Extension(playbooks): Extension<Arc<Catalog>>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<Value>> {
    verify(
        &slack.signing_secret,
        &headers,
        &body,
        svc.clock.now().timestamp(),
    )?;
    let f = form(&body);
    let trigger = f.get("trigger_id").cloned();
    // Once per trigger, however often (or however concurrently) it arrives.
    let handled = once(&svc, "slack", trigger.as_deref(), async {
    let user = f.get("user_id").cloned().unwrap_or_default();
    let team = f.get("team_id").cloned().unwrap_or_default();
    let text = f.get("text").cloned().unwrap_or_default();
    if let Some(code) = text.trim().strip_prefix("link ") {
        // Proof that this channel is the code's tenant's: no mapping needed.
        let channel = f.get("channel_id").cloned().unwrap_or_default();
        let at = firewatch_domain::routing::links::Place {
            platform: "slack",
            workspace: &team,
            channel: &channel,
            user: &user,
        };
        let answer = firewatch_domain::routing::links::redeem(&svc, &at, code).await?;
        return Ok(ephemeral(answer));
    }
    let Some(p) = who(&svc, &team, &user).await? else {
        return Ok(ephemeral(NOT_MAPPED));
    };
    tracing::info!(user = %p.name, command = %text.split_whitespace().next().unwrap_or("help"), "slack command");
    let answer = firewatch_domain::chat::run_command(&svc, &playbooks, &p, &text, "/fw ").await?;
    Ok::<_, ApiError>(Json(ephemeral_message(&answer)))
    })
    .await?;
    Ok(handled.unwrap_or_else(|| ephemeral("This command was already handled.")))
}

#[derive(Deserialize)]
struct Interaction {
    #[serde(rename = "type")]
    kind: String,
    user: SlackUser,
    /// The workspace the click came from.
    #[serde(default)]
    team: Option<SlackTeam>,
    /// Unique per interaction: a replay of the same click has one effect.
    #[serde(default)]
    trigger_id: Option<String>,
    #[serde(default)]
    actions: Vec<SlackAction>,
    #[serde(default)]
    response_url: Option<String>,
}

#[derive(Deserialize)]
struct SlackUser {
    id: String,
    #[serde(default)]
    team_id: Option<String>,
}

#[derive(Deserialize)]
struct SlackTeam {
    id: String,
}

#[derive(Deserialize)]
struct SlackAction {
    #[serde(default)]
    value: Option<String>,
}

async fn interaction(
    axum::extract::State(svc): axum::extract::State<Services>,
    Extension(slack): Extension<Arc<SlackInbound>>,
    Extension(playbooks): Extension<Arc<Catalog>>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    verify(
        &slack.signing_secret,
        &headers,
        &body,
        svc.clock.now().timestamp(),
    )?;
    let payload = form(&body).remove("payload").ok_or_else(|| {
        ApiError::bad_request("invalid_payload", "interactions carry a payload field")
    })?;
    let i: Interaction = serde_json::from_str(&payload).map_err(|e| {
        ApiError::bad_request(
            "invalid_payload",
            format!("payload is not a Slack interaction: {e}"),
        )
    })?;
    if i.kind != "block_actions" {
        return Ok(StatusCode::OK.into_response());
    }
    // Once per trigger, however often (or however concurrently) it arrives.
    let handled = once(&svc, "slack", i.trigger_id.as_deref(), async {
    let team = i
        .team
        .as_ref()
        .map(|t| t.id.clone())
        .or_else(|| i.user.team_id.clone())
        .unwrap_or_default();
    // What the user who clicked is told: a refusal, or an answer that
    // offers buttons (the playbooks of an incident). A change itself shows
    // in the thread, through the outbox.
    let answer = match who(&svc, &team, &i.user.id).await? {
        None => Some(ChatMessage::text(NOT_MAPPED)),
        Some(p) => {
            let mut answer = None;
            for a in &i.actions {
                let Some(payload) = a.value.as_deref().filter(|v| Button::parse(v).is_some())
                else {
                    continue;
                };
                let result = firewatch_domain::chat::press(&svc, &playbooks, &p, payload).await;
                tracing::info!(user = %p.name, button = payload, ok = result.is_ok(), "slack button");
                match result {
                    Ok(m) if !m.buttons.is_empty() => answer = Some(m),
                    Ok(_) => {}
                    Err(e) => answer = Some(ChatMessage::text(final_answer(e)?)),
                }
            }
            answer
        }
    };
    Ok::<_, ApiError>(answer)
    })
    .await?;
    let Some(answer) = handled else {
        return Ok(StatusCode::OK.into_response());
    };
    let url = i
        .response_url
        .as_deref()
        .filter(|u| slack.response_url_allowed(u));
    if i.response_url.is_some() && url.is_none() {
        tracing::warn!("response_url is not at Slack's origin; not followed");
    }
    if let (Some(answer), Some(url)) = (answer, url) {
        // Only to the user who clicked; the thread is not touched.
        let mut msg = ephemeral_message(&answer);
        msg["replace_original"] = json!(false);
        if let Err(e) = slack.http.post(url).json(&msg).send().await {
            tracing::warn!(error = %e.without_url(), "could not answer on response_url");
        }
    }
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_urls_are_followed_only_to_slack_or_the_configured_api_origin() {
        let inbound =
            SlackInbound::new(Secret::new("s")).allowing_origin_of("http://127.0.0.1:9/api");
        assert!(inbound.response_url_allowed("https://hooks.slack.com/actions/T1/2/abc"));
        assert!(inbound.response_url_allowed("http://127.0.0.1:9/api/response"));
        for bad in [
            "https://evil.example/hooks.slack.com",
            "https://hooks.slack.com.evil.example/x",
            "http://hooks.slack.com/actions/x",
            "http://169.254.169.254/latest/meta-data",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(
                !inbound.response_url_allowed(bad),
                "{bad} must not be followed"
            );
        }
    }
}
