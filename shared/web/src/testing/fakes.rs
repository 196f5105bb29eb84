//! One recording fake per chat platform's HTTP API, shared by every test
//! that talks to a platform. Each serves the requests firewatch makes, shaped
//! as the platform documents its answers, records every call, answers
//! scripted statuses on demand (`answer_next(429)`), and goes down the one way
//! a platform does: [`FakePlatform::set_down`] refuses connections.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::FakePlatform;

/// What a fake records: every call, and the statuses scripted for the next
/// ones.
pub struct Recorder<C> {
    calls: Mutex<Vec<C>>,
    script: Mutex<VecDeque<u16>>,
}

impl<C> Default for Recorder<C> {
    fn default() -> Self {
        Self {
            calls: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
        }
    }
}

/// A platform's fake API served on a local port, recording calls of type `C`.
pub struct Fake<C> {
    state: Arc<Recorder<C>>,
    server: FakePlatform,
}

impl<C: Clone + Send + 'static> Fake<C> {
    /// Serves `routes(recorder)` on a free port.
    async fn serve(routes: impl FnOnce(Arc<Recorder<C>>) -> Router) -> Self {
        let state = Arc::new(Recorder::default());
        let server = FakePlatform::serve(routes(state.clone())).await;
        Self { state, server }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.server.base
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<C> {
        lock(&self.state.calls).clone()
    }

    /// Answers the next call with `status` (429 with the platform's
    /// rate-limit body and `Retry-After`) instead of serving it.
    pub fn answer_next(&self, status: u16) {
        lock(&self.state.script).push_back(status);
    }

    /// Takes the platform offline (connections refused) or back.
    pub fn set_down(&self, down: bool) {
        self.server.set_down(down);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---- Slack Web API -------------------------------------------------------

/// What the fake Slack received.
#[derive(Debug, Clone)]
pub struct SlackCall {
    /// The Web API method (`chat.postMessage`), or `response` for a `response_url`.
    pub method: String,
    pub auth: String,
    pub body: Value,
}

async fn slack_api(
    State(fake): State<Arc<Recorder<SlackCall>>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, HeaderMap, Json<Value>) {
    let mut h = HeaderMap::new();
    if let Some(status) = lock(&fake.script).pop_front() {
        if status == 429 {
            h.insert("retry-after", "1".parse().unwrap());
        }
        return (
            StatusCode::from_u16(status).unwrap(),
            h,
            Json(json!({"ok": false, "error": "ratelimited"})),
        );
    }
    let mut received = lock(&fake.calls);
    received.push(SlackCall {
        method: method.clone(),
        auth: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        body: body.clone(),
    });
    let ts = format!("1700000000.{:06}", received.len());
    let answer = match method.as_str() {
        "chat.postMessage" => {
            json!({"ok": true, "channel": "C0INCIDENT1", "ts": ts, "message": {"type": "message", "text": body["text"], "ts": ts}})
        }
        "chat.update" => {
            json!({"ok": true, "channel": body["channel"], "ts": body["ts"], "text": body["text"]})
        }
        "response" => json!({"ok": true}),
        _ => json!({"ok": false, "error": "unknown_method"}),
    };
    (StatusCode::OK, h, Json(answer))
}

/// A fake Slack Web API at `<base>/api/<method>`; a `response_url` pointed at
/// `<base>/api/response` is recorded as method `response`.
pub type FakeSlack = Fake<SlackCall>;

impl FakeSlack {
    pub async fn start() -> Self {
        Self::serve(|state| {
            Router::new()
                .route("/api/{method}", post(slack_api))
                .with_state(state)
        })
        .await
    }
}

// ---- Discord REST API ----------------------------------------------------

#[derive(Debug, Clone)]
pub struct DiscordCall {
    pub method: Method,
    pub path: String,
    pub auth: String,
    pub body: Value,
}

async fn discord_record(
    fake: &Recorder<DiscordCall>,
    method: Method,
    path: String,
    headers: &axum::http::HeaderMap,
    body: Value,
) -> Result<usize, Response> {
    if let Some(429) = lock(&fake.script).pop_front() {
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            Json(
                json!({"message": "You are being rate limited.", "retry_after": 0.5, "global": false}),
            ),
        )
            .into_response());
    }
    let mut calls = lock(&fake.calls);
    calls.push(DiscordCall {
        method,
        path,
        auth: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .into(),
        body,
    });
    Ok(calls.len())
}

/// A message object as Discord answers with it.
fn message_object(id: &str, channel: &str, sent: &Value) -> Value {
    json!({
        "id": id,
        "channel_id": channel,
        "type": 0,
        "author": {"id": "1090000000000000000", "username": "firewatch", "discriminator": "0000", "global_name": null, "avatar": null, "bot": true, "public_flags": 0},
        "content": sent.get("content").cloned().unwrap_or(json!("")),
        "embeds": sent.get("embeds").cloned().unwrap_or(json!([])),
        "components": sent.get("components").cloned().unwrap_or(json!([])),
        "attachments": [],
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": false,
        "pinned": false,
        "tts": false,
        "timestamp": "2026-11-20T11:00:01.318000+00:00",
        "edited_timestamp": null,
        "flags": 0
    })
}

async fn create_message(
    State(fake): State<Arc<Recorder<DiscordCall>>>,
    Path(channel): Path<String>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    match discord_record(
        &fake,
        Method::POST,
        format!("/channels/{channel}/messages"),
        &headers,
        body.clone(),
    )
    .await
    {
        Ok(n) => (
            StatusCode::OK,
            Json(message_object(
                &format!("11000000000000000{n}"),
                &channel,
                &body,
            )),
        )
            .into_response(),
        Err(e) => e,
    }
}

async fn start_thread(
    State(fake): State<Arc<Recorder<DiscordCall>>>,
    Path((channel, message)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    match discord_record(
        &fake,
        Method::POST,
        format!("/channels/{channel}/messages/{message}/threads"),
        &headers,
        body.clone(),
    )
    .await
    {
        Ok(_) => (
            StatusCode::CREATED,
            Json(json!({
                "id": "1220000000000000001",
                "guild_id": "1080000000000000000",
                "parent_id": channel,
                "owner_id": "1090000000000000000",
                "type": 11,
                "name": body["name"],
                "last_message_id": null,
                "thread_metadata": {"archived": false, "auto_archive_duration": body["auto_archive_duration"], "archive_timestamp": "2026-11-20T11:00:01.500000+00:00", "locked": false},
                "message_count": 0,
                "member_count": 1,
                "rate_limit_per_user": 0,
                "flags": 0,
                "total_message_sent": 0,
                "member": {"id": "1220000000000000001", "user_id": "1090000000000000000", "join_timestamp": "2026-11-20T11:00:01.500000+00:00", "flags": 1}
            })),
        )
        .into_response(),
        Err(e) => e,
    }
}

async fn edit_message(
    State(fake): State<Arc<Recorder<DiscordCall>>>,
    Path((channel, message)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    match discord_record(
        &fake,
        Method::PATCH,
        format!("/channels/{channel}/messages/{message}"),
        &headers,
        body.clone(),
    )
    .await
    {
        Ok(_) => (
            StatusCode::OK,
            Json(message_object(&message, &channel, &body)),
        )
            .into_response(),
        Err(e) => e,
    }
}

/// A fake Discord REST API at `<base>/api/v10`: create message, start thread
/// from message, edit message.
pub type FakeDiscord = Fake<DiscordCall>;

impl FakeDiscord {
    pub async fn start() -> Self {
        Self::serve(|state| {
            let api = Router::new()
                .route("/channels/{channel}/messages", post(create_message))
                .route(
                    "/channels/{channel}/messages/{message}/threads",
                    post(start_thread),
                )
                .route(
                    "/channels/{channel}/messages/{message}",
                    patch(edit_message),
                )
                .with_state(state);
            Router::new().nest("/api/v10", api)
        })
        .await
    }
}

// ---- Telegram Bot API ----------------------------------------------------

#[derive(Debug, Clone)]
pub struct TelegramCall {
    /// The bot token from the URL (`/bot<token>/<method>`).
    pub token: String,
    /// The Bot API method, as documented (`sendMessage`).
    pub method: String,
    pub body: Value,
}

const TELEGRAM_METHODS: [&str; 3] = ["sendMessage", "editMessageText", "answerCallbackQuery"];

async fn telegram_api(
    State(fake): State<Arc<Recorder<TelegramCall>>>,
    Path((bot, method)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if let Some(429) = lock(&fake.script).pop_front() {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(
                json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}),
            ),
        );
    }
    // Bot API method names are case-insensitive; record the documented spelling.
    let Some(method) = TELEGRAM_METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(&method))
        .map(|m| (*m).to_owned())
    else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"ok": false, "error_code": 404, "description": "Not Found"})),
        );
    };
    let mut calls = lock(&fake.calls);
    calls.push(TelegramCall {
        token: bot.trim_start_matches("bot").to_owned(),
        method: method.clone(),
        body: body.clone(),
    });
    let n = calls.len() as i64;
    let result = match method.as_str() {
        "sendMessage" | "editMessageText" => json!({
            "message_id": body.get("message_id").and_then(Value::as_i64).unwrap_or(100 + n),
            "date": 1795089600,
            "chat": {"id": body["chat_id"].as_str().and_then(|c| c.parse::<i64>().ok()).unwrap_or(-1001234567890i64), "type": "supergroup", "title": "Incidents"},
            "text": body["text"],
        }),
        "answerCallbackQuery" => json!(true),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"ok": false, "error_code": 404, "description": "Not Found"})),
            )
        }
    };
    (StatusCode::OK, Json(json!({"ok": true, "result": result})))
}

/// A fake Telegram Bot API at `<base>/bot<token>/<method>`.
pub type FakeTelegram = Fake<TelegramCall>;

impl FakeTelegram {
    pub async fn start() -> Self {
        Self::serve(|state| {
            Router::new()
                .route("/{bot}/{method}", post(telegram_api))
                .with_state(state)
        })
        .await
    }
}

// ---- Issue trackers (GitHub, GitLab, Jira) --------------------------------

/// What a fake tracker received.
#[derive(Debug, Clone)]
pub struct TrackerCall {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TrackerCall {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Answers as the tracker documents it: GitHub `201` with the issue
/// (`number`, `html_url`) and `403` without a `User-Agent`; GitLab `201`
/// with `iid` and `web_url`; Jira `201` with `id`, `key` and `self`.
async fn tracker_api(
    State(fake): State<Arc<Recorder<TrackerCall>>>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(status) = lock(&fake.script).pop_front() {
        return (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"message": "scripted failure"})),
        )
            .into_response();
    }
    let path = uri.path().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = {
        let mut calls = lock(&fake.calls);
        calls.push(TrackerCall {
            method,
            path: path.clone(),
            headers: headers.clone(),
            body: body.clone(),
        });
        calls.len() as u64
    };
    let created = |v: Value| (StatusCode::CREATED, Json(v)).into_response();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        // The read-only checks: the repository, the project.
        ["repos", owner, repo] => {
            Json(json!({"id": 1, "full_name": format!("{owner}/{repo}"), "has_issues": true}))
                .into_response()
        }
        ["api", "v4", "projects", project] => {
            Json(json!({"id": 42, "path_with_namespace": project.replace("%2F", "/")}))
                .into_response()
        }
        ["rest", "api", "3", "project", key] => {
            Json(json!({"id": "10000", "key": key, "name": "Operations"})).into_response()
        }
        ["repos", owner, repo, "issues"] => {
            if !headers.contains_key("user-agent") {
                return (
                    StatusCode::FORBIDDEN,
                    "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
                )
                    .into_response();
            }
            created(json!({
                "id": 1_000 + n, "number": 11 + n, "state": "open",
                "title": body["title"], "body": body["body"],
                "html_url": format!("https://github.com/{owner}/{repo}/issues/{}", 11 + n),
                "url": format!("https://api.github.com/repos/{owner}/{repo}/issues/{}", 11 + n)
            }))
        }
        ["api", "v4", "projects", project, "issues"] => created(json!({
            "id": 2_000 + n, "iid": 2 + n, "project_id": 42, "state": "opened",
            "title": body["title"], "description": body["description"],
            "web_url": format!("https://gitlab.example/{}/-/issues/{}", project.replace("%2F", "/"), 2 + n)
        })),
        ["rest", "api", "3", "issue"] => {
            let key = format!(
                "{}-{}",
                body["fields"]["project"]["key"].as_str().unwrap_or("X"),
                6 + n
            );
            created(json!({"id": (10_000 + n).to_string(), "key": key,
                           "self": format!("https://jira.example/rest/api/3/issue/{}", 10_000 + n)}))
        }
        _ => (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response(),
    }
}

// ---- PagerDuty Events API v2 ---------------------------------------------

/// What the fake Events API received: each event's JSON.
pub type FakePagerDuty = Fake<Value>;

/// `POST /v2/enqueue` as PagerDuty documents it: `202 {"status":
/// "success", "message": "Event processed", "dedup_key"}`, or `400
/// {"status": "invalid event", "message": "Event object is invalid",
/// "errors": [...]}` for a routing key that is not 32 characters, an unknown
/// `event_action`, a trigger without `payload.summary`, `payload.source` or
/// a known `payload.severity`, or a dedup key over 255 characters.
async fn pagerduty_enqueue(
    State(fake): State<Arc<Recorder<Value>>>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(status) = lock(&fake.script).pop_front() {
        return (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly.  Please retry later."})),
        )
            .into_response();
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut errors = Vec::new();
    if v["routing_key"].as_str().map(str::len) != Some(32) {
        errors.push("Length of 'routing_key' is incorrect (should be 32 characters)");
    }
    let action = v["event_action"].as_str().unwrap_or("");
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        errors.push("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')");
    }
    if action != "trigger" && v["dedup_key"].as_str().is_none_or(str::is_empty) {
        errors.push("'dedup_key' is missing or blank");
    }
    if v["dedup_key"].as_str().is_some_and(|k| k.len() > 255) {
        errors.push("'dedup_key' is too long");
    }
    if action == "trigger" {
        let p = &v["payload"];
        if p["summary"].as_str().is_none_or(str::is_empty) {
            errors.push("'payload.summary' is missing or blank");
        }
        if p["source"].as_str().is_none_or(str::is_empty) {
            errors.push("'payload.source' is missing or blank");
        }
        if !["critical", "error", "warning", "info"].contains(&p["severity"].as_str().unwrap_or(""))
        {
            errors.push("'payload.severity' is invalid");
        }
    }
    if !errors.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors})),
        )
            .into_response();
    }
    let dedup = v["dedup_key"].clone();
    lock(&fake.calls).push(v);
    (
        StatusCode::ACCEPTED,
        Json(json!({"status": "success", "message": "Event processed", "dedup_key": dedup})),
    )
        .into_response()
}

impl FakePagerDuty {
    pub async fn start() -> Self {
        Self::serve(|state| {
            Router::new()
                .route("/v2/enqueue", post(pagerduty_enqueue))
                .with_state(state)
        })
        .await
    }
}

/// One fake serving the issue APIs of GitHub (`/repos/{owner}/{repo}/issues`),
/// GitLab (`/api/v4/projects/{id}/issues`) and Jira (`/rest/api/3/issue`).
pub type FakeTracker = Fake<TrackerCall>;

impl FakeTracker {
    pub async fn start() -> Self {
        Self::serve(|state| Router::new().fallback(tracker_api).with_state(state)).await
    }
}
