//! The silences family: maintenance windows by label matchers.
//!
//! - `GET /v1/silences?state=active,pending&stale=true&filter=<matcher>&limit=&cursor=`
//!   (viewer): `{"items", "next_cursor"}`, silences with their state and
//!   what they held
//! - `POST /v1/silences` (responder): create, or update with `id`
//! - `GET /v1/silences/{id}` (viewer), `DELETE /v1/silences/{id}`
//!   (responder): expire now
//!
//! The same silences in Alertmanager's API v2 shapes, for `amtool` and
//! Grafana's Alertmanager data source (errors are JSON strings there, as
//! Alertmanager answers them):
//! - `GET /api/v2/status`
//! - `GET /api/v2/silences?filter=&active=&pending=&expired=`,
//!   `POST /api/v2/silences` → `{"silenceID"}`
//! - `GET /api/v2/silence/{id}`, `DELETE /api/v2/silence/{id}`
//!
//! See docs/SILENCES.md.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Response, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use firewatch_domain::silences::{self, alertmanager as am, matchers, Filter, View};
use firewatch_domain::{silence_ends, Services};
use firewatch_web::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Auth};

/// The silences routes, finished with the shared layers.
pub fn router(services: Services) -> Router {
    let up_since = services.clock.now();
    let v1 = Router::new()
        .route("/v1/silences", get(list).post(create))
        .route("/v1/silences/{id}", get(one).delete(expire));
    let amv2 = Router::new()
        .route(
            "/api/v2/status",
            get(move |Auth(_): Auth| async move {
                Json(am::status(env!("CARGO_PKG_VERSION"), up_since))
            }),
        )
        .route("/api/v2/silences", get(am_list).post(am_post))
        .route("/api/v2/silence/{id}", get(am_get).delete(am_delete))
        .layer(axum::middleware::map_response(errors_as_strings));
    firewatch_web::finish(v1.merge(amv2), services)
}

type Pairs = Vec<(String, String)>;

fn flag(pairs: &Pairs, name: &str) -> ApiResult<Option<bool>> {
    match pairs.iter().rev().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) => match v.as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(ApiError::bad_request(
                "invalid_query",
                format!("{name} is true or false"),
            )),
        },
    }
}

fn having(pairs: &Pairs) -> ApiResult<Vec<matchers::Matcher>> {
    pairs
        .iter()
        .filter(|(k, _)| k == "filter")
        .map(|(_, v)| matchers::parse(v).map_err(ApiError::from))
        .collect()
}

/// A page of `GET /v1/silences`.
#[derive(serde::Serialize)]
struct Page {
    items: Vec<View>,
    next_cursor: Option<String>,
}

/// Silences a page holds at most, and by default.
const MAX_PAGE: usize = 200;

/// Where a page starts: the cursor is the position after the last silence
/// of the page before (`s<n>`), in the list's order.
fn page_start(q: &Pairs) -> ApiResult<usize> {
    match q.iter().rev().find(|(k, _)| k == "cursor") {
        None => Ok(0),
        Some((_, c)) => c
            .strip_prefix('s')
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n > 0 && c.len() <= 8)
            .ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "cursor is not one this API returned")
            }),
    }
}

fn page_limit(q: &Pairs) -> ApiResult<usize> {
    match q.iter().rev().find(|(k, _)| k == "limit") {
        None => Ok(MAX_PAGE),
        Some((_, v)) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::bad_request("invalid_query", "limit is 1 to 200")),
    }
}

async fn list(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<Pairs>,
) -> ApiResult<Json<Page>> {
    if let Some((k, _)) = q.iter().find(|(k, _)| {
        !matches!(
            k.as_str(),
            "state" | "stale" | "filter" | "limit" | "cursor"
        )
    }) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "unknown query parameter {}; known: state, stale, filter, limit, cursor",
                firewatch_domain::limits::shown_name(k)
            ),
        ));
    }
    let (start, limit) = (page_start(&q)?, page_limit(&q)?);
    let mut states = Vec::new();
    for (_, v) in q.iter().filter(|(k, _)| k == "state") {
        for s in v.split(',') {
            states.push(silences::State::parse(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    "state is pending, active or expired (comma-separated)",
                )
            })?);
        }
    }
    let f = Filter {
        states,
        having: having(&q)?,
        stale: flag(&q, "stale")?.unwrap_or(false),
    };
    let all = silences::list(&svc, &p, &f).await?;
    let end = start.saturating_add(limit).min(all.len());
    let next_cursor = (end < all.len()).then(|| format!("s{end}"));
    let items = all.into_iter().skip(start).take(limit).collect();
    Ok(Json(Page { items, next_cursor }))
}

async fn create(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiJson(n): ApiJson<silences::NewSilence>,
) -> ApiResult<(StatusCode, Json<View>)> {
    let s = silences::create(&svc, &p, n).await?;
    Ok((
        StatusCode::CREATED,
        Json(silences::get(&svc, &p, &s.id).await?),
    ))
}

async fn one(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<View>> {
    Ok(Json(silences::get(&svc, &p, &id).await?))
}

async fn expire(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<View>> {
    Ok(Json(
        silence_ends::expire(&svc, &p, &id, silence_ends::Release::Now).await?,
    ))
}

async fn am_list(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<Pairs>,
) -> ApiResult<Json<Vec<am::GettableSilence>>> {
    let mut states = Vec::new();
    for (name, state) in [
        ("active", silences::State::Active),
        ("pending", silences::State::Pending),
        ("expired", silences::State::Expired),
    ] {
        if flag(&q, name)?.unwrap_or(true) {
            states.push(state);
        }
    }
    if states.is_empty() {
        return Ok(Json(Vec::new()));
    }
    let f = Filter {
        states,
        having: having(&q)?,
        stale: false,
    };
    let list = silences::list(&svc, &p, &f).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

async fn am_post(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<am::PostableSilence>,
) -> ApiResult<Json<am::SilenceId>> {
    let s = silences::create(&svc, &p, body.into()).await?;
    Ok(Json(am::SilenceId { silence_id: s.id }))
}

async fn am_get(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<am::GettableSilence>> {
    Ok(Json(silences::get(&svc, &p, &id).await?.into()))
}

async fn am_delete(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    silence_ends::expire(&svc, &p, &id, silence_ends::Release::Now).await?;
    Ok(StatusCode::OK)
}

/// Alertmanager answers errors with a JSON string (its `BadRequest`
/// schema); its clients decode them so. firewatch's error object becomes its
/// message, as a JSON string.
async fn errors_as_strings(res: Response<Body>) -> Response<Body> {
    if res.status().is_success() {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    let out = serde_json::to_vec(&message).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(out))
}
