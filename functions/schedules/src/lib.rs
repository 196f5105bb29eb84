//! The schedules family: heartbeats, their ping URLs, provider freshness.
//!
//! - `POST /v1/heartbeats` (admin) `{"name", "period": "5m" | "cron": "0 3 * * *",
//!   "tz", "grace", "severity", "labels"}` → the heartbeat with its ping URL
//! - `GET  /v1/heartbeats` (viewer, `?limit=&cursor=`), `GET /v1/heartbeats/{id}`
//!   (with its recent pings)
//! - `PATCH /v1/heartbeats/{id}`, `DELETE /v1/heartbeats/{id}`,
//!   `POST /v1/heartbeats/{id}/pause|resume` (admin)
//! - `GET|POST|HEAD /ping/{uuid}` (success), `/ping/{uuid}/start`, `/fail`,
//!   `/log`, `/{exit_status}` (0 success, 1–255 failure), `?rid=` (a UUID
//!   pairing a start with its finish): no API key, Healthchecks.io's ping
//!   URLs; answers `OK` as plain text, `not found` (404) for an unknown UUID
//! - `POST /v1/smoke-checks` (admin), `GET /v1/smoke-checks` (viewer),
//!   `GET|PUT|DELETE /v1/smoke-checks/{id}`, `POST /v1/smoke-checks/{id}/run`
//!   (responder: run now), `GET /v1/smoke-checks/{id}/runs` (viewer)
//! - `GET /v1/freshness` (viewer); `PUT /v1/freshness/{provider}`
//!   `{"window": "15m"}` and `DELETE` (admin)
//! - `POST /v1/dossier/provider-heartbeat` (admin) `{"providers": [...]}`
//!   (optional; default every watched provider)

use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use firewatch_domain::schedules::heartbeats::{self, Edit, Fields, PingKind, Received, View};
use firewatch_domain::schedules::{freshness, smoke};
use firewatch_domain::{DomainError, Services};
use firewatch_types::Principal;
use firewatch_web::extract::optional_json;
use firewatch_web::{ApiBytes, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Auth};
use serde::{Deserialize, Serialize};

/// The schedules routes, finished with the shared layers.
pub fn router(services: Services) -> Router {
    let r = Router::new()
        .route("/v1/heartbeats", get(list).post(create))
        .route(
            "/v1/heartbeats/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/v1/heartbeats/{id}/{action}", post(act))
        .route("/ping/{uuid}", get(ping).post(ping).head(ping))
        .route(
            "/ping/{uuid}/{kind}",
            get(ping_kind).post(ping_kind).head(ping_kind),
        )
        .route("/v1/smoke-checks", get(smoke_list).post(smoke_create))
        .route(
            "/v1/smoke-checks/{id}",
            get(smoke_show).put(smoke_replace).delete(smoke_delete),
        )
        .route("/v1/smoke-checks/{id}/run", post(smoke_run))
        .route("/v1/smoke-checks/{id}/runs", get(smoke_runs))
        .route("/v1/freshness", get(freshness_list))
        .route(
            "/v1/freshness/{provider}",
            put(freshness_set).delete(freshness_unset),
        )
        .route("/v1/dossier/provider-heartbeat", post(provider_heartbeat));
    firewatch_web::finish(r, services)
}

/// A heartbeat as answered: the view plus its full ping URL.
#[derive(Serialize)]
struct Answer {
    #[serde(flatten)]
    view: View,
    /// For responders and above only, like the view's `ping_path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    ping_url: Option<String>,
}

/// The base URL callers reach this service at: `FIREWATCH_PUBLIC_URL`, else
/// the request's `Host` (with `X-Forwarded-Proto`, as API Gateway sets it).
fn base_url(svc: &Services, headers: &HeaderMap) -> String {
    if let Some(u) = &svc.settings.public_url {
        return u.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{proto}://{host}")
}

fn answer(
    svc: &Services,
    headers: &HeaderMap,
    p: &Principal,
    hb: &heartbeats::Heartbeat,
) -> Answer {
    let view = View::of(hb, svc.clock.now(), p);
    Answer {
        ping_url: view
            .ping_path
            .as_ref()
            .map(|path| format!("{}{path}", base_url(svc, headers))),
        view,
    }
}

async fn create(
    State(svc): State<Services>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiJson(fields): ApiJson<Fields>,
) -> ApiResult<(StatusCode, Json<Answer>)> {
    let hb = heartbeats::create(&svc, &p, fields).await?;
    Ok((StatusCode::CREATED, Json(answer(&svc, &headers, &p, &hb))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct Listing {
    items: Vec<Answer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

async fn list(
    State(svc): State<Services>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Listing>> {
    let limit = check_limit(q.limit, 200)?;
    check_cursor(&q.cursor, "hb_")?;
    let (items, next) = heartbeats::list(&svc, &p, q.cursor, limit).await?;
    Ok(Json(Listing {
        items: items
            .iter()
            .map(|hb| answer(&svc, &headers, &p, hb))
            .collect(),
        next_cursor: next,
    }))
}

#[derive(Serialize)]
struct Detail {
    #[serde(flatten)]
    heartbeat: Answer,
    pings: Vec<heartbeats::Ping>,
}

async fn show(
    State(svc): State<Services>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Detail>> {
    let (hb, pings) = heartbeats::get(&svc, &p, &id, 20).await?;
    Ok(Json(Detail {
        heartbeat: answer(&svc, &headers, &p, &hb),
        pings,
    }))
}

async fn update(
    State(svc): State<Services>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(fields): ApiJson<Fields>,
) -> ApiResult<Json<Answer>> {
    let hb = heartbeats::edit(&svc, &p, &id, Edit::Update(fields)).await?;
    Ok(Json(answer(&svc, &headers, &p, &hb)))
}

async fn remove(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    heartbeats::delete(&svc, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn act(
    State(svc): State<Services>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiPath((id, action)): ApiPath<(String, String)>,
) -> ApiResult<Json<Answer>> {
    let edit = match action.as_str() {
        "pause" => Edit::Pause,
        "resume" => Edit::Resume,
        _ => {
            return Err(ApiError::not_found(
                "no such heartbeat action; use pause or resume",
            ))
        }
    };
    let hb = heartbeats::edit(&svc, &p, &id, edit).await?;
    Ok(Json(answer(&svc, &headers, &p, &hb)))
}

#[derive(Deserialize)]
struct PingQuery {
    rid: Option<String>,
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn ping(
    State(svc): State<Services>,
    method: Method,
    headers: HeaderMap,
    ApiPath(uuid): ApiPath<String>,
    ApiQuery(q): ApiQuery<PingQuery>,
    ApiBytes(body): ApiBytes,
) -> Response {
    record(
        &svc,
        &method,
        &headers,
        &uuid,
        PingKind::Success,
        None,
        q.rid,
        &body,
    )
    .await
}

async fn ping_kind(
    State(svc): State<Services>,
    method: Method,
    headers: HeaderMap,
    ApiPath((uuid, kind)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PingQuery>,
    ApiBytes(body): ApiBytes,
) -> Response {
    let (kind, exit) = match kind.as_str() {
        "start" => (PingKind::Start, None),
        "fail" => (PingKind::Fail, None),
        "log" => (PingKind::Log, None),
        code => match code.parse::<u8>() {
            Ok(0) => (PingKind::Success, Some(0)),
            Ok(n) if code.bytes().all(|b| b.is_ascii_digit()) => (PingKind::Fail, Some(n)),
            _ => return text(StatusCode::BAD_REQUEST, "invalid url format"),
        },
    };
    record(&svc, &method, &headers, &uuid, kind, exit, q.rid, &body).await
}

#[allow(clippy::too_many_arguments)]
async fn record(
    svc: &Services,
    method: &Method,
    headers: &HeaderMap,
    uuid: &str,
    kind: PingKind,
    exit_status: Option<u8>,
    rid: Option<String>,
    body: &[u8],
) -> Response {
    if uuid.len() > 64 {
        return text(StatusCode::NOT_FOUND, "not found");
    }
    let received = Received {
        uuid,
        kind,
        exit_status,
        rid: rid.as_deref().filter(|r| !r.is_empty()),
        method: method.as_str(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        body,
    };
    match heartbeats::ping(svc, received).await {
        Ok(true) => text(StatusCode::OK, "OK"),
        Ok(false) => text(StatusCode::NOT_FOUND, "not found"),
        // Plain text like every ping answer (Healthchecks.io answers a
        // throttled ping `429` "rate limited").
        Err(DomainError::RateLimited {
            retry_after_secs, ..
        }) => {
            let mut r = text(StatusCode::TOO_MANY_REQUESTS, "rate limited");
            r.headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs.into());
            r
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Serialize)]
struct FreshnessListing {
    items: Vec<freshness::Freshness>,
}

async fn freshness_list(
    State(svc): State<Services>,
    Auth(p): Auth,
) -> ApiResult<Json<FreshnessListing>> {
    Ok(Json(FreshnessListing {
        items: freshness::list(&svc, &p).await?,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchBody {
    window: String,
}

async fn freshness_set(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(provider): ApiPath<String>,
    ApiJson(body): ApiJson<WatchBody>,
) -> ApiResult<StatusCode> {
    freshness::set_watch(&svc, &p, &provider, Some(&body.window)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn freshness_unset(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(provider): ApiPath<String>,
) -> ApiResult<StatusCode> {
    freshness::set_watch(&svc, &p, &provider, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderHeartbeatBody {
    #[serde(default)]
    providers: Vec<String>,
}

#[derive(Serialize)]
struct Recorded {
    provider: String,
    envelope: String,
}

async fn provider_heartbeat(
    State(svc): State<Services>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let body: ProviderHeartbeatBody = optional_json(&headers, &body)?;
    if body.providers.len() > 16 {
        return Err(ApiError::bad_request(
            "too_many_providers",
            "at most 16 providers",
        ));
    }
    let kept = freshness::provider_heartbeat(&svc, &p, &body.providers).await?;
    let items: Vec<Recorded> = kept
        .into_iter()
        .map(|(s, key)| Recorded {
            provider: s.as_str().to_owned(),
            envelope: key,
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "items": items })),
    ))
}

fn check_cursor(cursor: &Option<String>, prefix: &str) -> ApiResult<()> {
    match cursor {
        Some(c) if !c.starts_with(prefix) || c.len() > 128 => Err(ApiError::bad_request(
            "invalid_cursor",
            "cursor is not one this API gave",
        )),
        _ => Ok(()),
    }
}

fn check_limit(limit: Option<usize>, max: usize) -> ApiResult<usize> {
    let limit = limit.unwrap_or(50);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {max}"),
        ));
    }
    Ok(limit)
}

#[derive(Serialize)]
struct SmokeListing {
    items: Vec<smoke::View>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

async fn smoke_create(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiJson(d): ApiJson<smoke::Definition>,
) -> ApiResult<(StatusCode, Json<smoke::View>)> {
    let c = smoke::create(&svc, &p, d).await?;
    Ok((StatusCode::CREATED, Json(smoke::View::of(&c))))
}

async fn smoke_list(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<SmokeListing>> {
    let limit = check_limit(q.limit, 200)?;
    check_cursor(&q.cursor, "smk_")?;
    let (items, next) = smoke::list(&svc, &p, q.cursor, limit).await?;
    Ok(Json(SmokeListing {
        items: items.iter().map(smoke::View::of).collect(),
        next_cursor: next,
    }))
}

async fn smoke_show(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<smoke::View>> {
    Ok(Json(smoke::View::of(&smoke::get(&svc, &p, &id).await?)))
}

async fn smoke_replace(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(d): ApiJson<smoke::Definition>,
) -> ApiResult<Json<smoke::View>> {
    Ok(Json(smoke::View::of(
        &smoke::replace(&svc, &p, &id, d).await?,
    )))
}

async fn smoke_delete(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    smoke::delete(&svc, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn smoke_run(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<smoke::SmokeRun>> {
    Ok(Json(smoke::run_now(&svc, &p, &id).await?))
}

#[derive(Serialize)]
struct RunListing {
    items: Vec<smoke::SmokeRun>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

async fn smoke_runs(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<RunListing>> {
    let limit = check_limit(q.limit, 100)?;
    check_cursor(&q.cursor, "RUN#")?;
    let (items, next) = smoke::runs(&svc, &p, &id, q.cursor, limit).await?;
    Ok(Json(RunListing {
        items,
        next_cursor: next,
    }))
}
