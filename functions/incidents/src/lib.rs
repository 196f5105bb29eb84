//! The incidents family: read, act on, and comment on incidents.
//!
//! - `GET  /v1/incidents` (filters `state`, `severity`, `source`; `cursor`, `limit`)
//! - `GET  /v1/incidents/recurrence?by=fingerprint|alertname|namespace|target`
//! - `GET  /v1/incidents/{id}` and `/v1/incidents/{id}/timeline`
//! - `POST /v1/incidents/{id}/{ack|mitigate|resolve|close|reopen}`
//! - `POST /v1/incidents/{id}/comments`
//! - `GET  /v1/dispatch/dead-letters`, `POST /v1/dispatch/dead-letters/{id}/retry`:
//!   chat deliveries that failed for good, and putting one back in the outbox
//! - `POST|GET /v1/chat-identities`, `DELETE /v1/chat-identities/{platform}/{user_id}`:
//!   which chat users act as which role (admin)
//! - `GET /v1/routes`, `PUT|DELETE /v1/routes/{id}`: which chat destinations
//!   incidents go to (admin to change)

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use firewatch_domain::auth::require_role;
use firewatch_domain::dispatch::{self, DeadLetter};
use firewatch_domain::identities::{self, ChatIdentity};
use firewatch_domain::incidents::{self, ListFilter, Paged, RecurrenceBy, RecurrenceGroup};
use firewatch_domain::routes::{self, Route};
use firewatch_domain::{triage, Services};
use firewatch_types::{
    Incident, IncidentAction, IncidentId, IncidentState, Role, Severity, SourceKind, TimelineEntry,
    TriageReport,
};
use firewatch_web::extract::{is_json, not_json, parse_json};
use firewatch_web::{ApiBytes, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Auth};
use serde::{Deserialize, Serialize};

/// The incidents routes, finished with the shared layers.
pub fn router(services: Services) -> Router {
    let r = Router::new()
        .route("/v1/incidents", get(list))
        .route("/v1/incidents/recurrence", get(recurrence))
        .route("/v1/incidents/{id}", get(show))
        .route("/v1/incidents/{id}/timeline", get(timeline))
        .route("/v1/incidents/{id}/comments", post(comment))
        .route("/v1/incidents/{id}/triage", post(triage))
        .route("/v1/incidents/{id}/{action}", post(act))
        .route("/v1/routes", get(list_routes))
        .route(
            "/v1/routes/{id}",
            axum::routing::put(put_route).delete(delete_route),
        )
        .route("/v1/dispatch/dead-letters", get(dead_letters))
        .route(
            "/v1/dispatch/dead-letters/{id}/retry",
            post(retry_dead_letter),
        )
        .route(
            "/v1/chat-identities",
            post(map_identity).get(list_identities),
        )
        .route(
            "/v1/chat-identities/{platform}/{user_id}",
            axum::routing::delete(unmap_identity),
        );
    firewatch_web::finish(r, services)
}

fn parse_id(id: &str) -> ApiResult<IncidentId> {
    IncidentId::parse(id).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))
}

fn parse_opt<T>(
    value: Option<&str>,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> ApiResult<Option<T>> {
    value
        .map(|v| {
            parse(v).ok_or_else(|| {
                ApiError::bad_request("invalid_query", format!("unknown {what} {v:?}"))
            })
        })
        .transpose()
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    severity: Option<String>,
    source: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Paged<Incident>>> {
    require_role(&p, Role::Viewer, "list incidents")?;
    let filter = ListFilter {
        state: parse_opt(q.state.as_deref(), "state", IncidentState::parse)?,
        severity: parse_opt(q.severity.as_deref(), "severity", Severity::parse)?,
        source: parse_opt(q.source.as_deref(), "source", SourceKind::parse)?,
    };
    let page = incidents::list(
        &svc,
        &p.tenant,
        &filter,
        q.cursor.as_deref(),
        q.limit.unwrap_or(50),
    )
    .await?;
    Ok(Json(page))
}

#[derive(Deserialize)]
struct RecurrenceQuery {
    by: Option<String>,
}

#[derive(Serialize)]
struct RecurrenceAnswer {
    by: RecurrenceBy,
    groups: Vec<RecurrenceGroup>,
}

async fn recurrence(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<RecurrenceQuery>,
) -> ApiResult<Json<RecurrenceAnswer>> {
    require_role(&p, Role::Viewer, "read recurrence")?;
    let by = parse_opt(q.by.as_deref(), "recurrence grouping", RecurrenceBy::parse)?
        .unwrap_or(RecurrenceBy::Fingerprint);
    let groups = incidents::recurrence(&svc, &p.tenant, by).await?;
    Ok(Json(RecurrenceAnswer { by, groups }))
}

async fn show(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Incident>> {
    require_role(&p, Role::Viewer, "read incidents")?;
    Ok(Json(
        incidents::get(&svc, &p.tenant, &parse_id(&id)?).await?,
    ))
}

#[derive(Deserialize)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn timeline(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Paged<TimelineEntry>>> {
    require_role(&p, Role::Viewer, "read timelines")?;
    let page = incidents::timeline(
        &svc,
        &p.tenant,
        &parse_id(&id)?,
        q.cursor.as_deref(),
        q.limit.unwrap_or(100),
    )
    .await?;
    Ok(Json(page))
}

/// Body of an action; optional as a whole.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    reason: Option<String>,
    expected_version: Option<u64>,
}

async fn act(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath((id, action)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<Incident>> {
    let action = IncidentAction::parse(&action).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown action {action:?}; use ack, mitigate, resolve, close or reopen"
        ))
    })?;
    let id = parse_id(&id)?;
    let body: ActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActionBody::default()
    } else if is_json(&headers) {
        parse_json(&body)?
    } else {
        return Err(not_json());
    };
    let inc = incidents::act(&svc, &p, &id, action, body.reason, body.expected_version).await?;
    Ok(Json(inc))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    text: String,
}

async fn comment(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> ApiResult<(StatusCode, Json<TimelineEntry>)> {
    let e = incidents::comment(&svc, &p, &parse_id(&id)?, &body.text).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

/// Body of a triage request; optional as a whole.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TriageBody {
    mode: Option<String>,
}

async fn triage(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<TriageReport>> {
    let id = parse_id(&id)?;
    let body: TriageBody = if body.iter().all(u8::is_ascii_whitespace) {
        TriageBody::default()
    } else if is_json(&headers) {
        parse_json(&body)?
    } else {
        return Err(not_json());
    };
    match body.mode.as_deref() {
        None | Some("deterministic") => {}
        Some(other) => {
            return Err(ApiError::bad_request(
                "unsupported_mode",
                format!("triage mode {other:?} is not available; use \"deterministic\""),
            ))
        }
    }
    Ok(Json(triage::run(&svc, &p, &id).await?))
}

#[derive(Serialize)]
struct DeadLetters {
    items: Vec<DeadLetter>,
}

async fn dead_letters(State(svc): State<Services>, Auth(p): Auth) -> ApiResult<Json<DeadLetters>> {
    require_role(&p, Role::Viewer, "read dead letters")?;
    Ok(Json(DeadLetters {
        items: dispatch::dead_letters(&svc, &p.tenant).await?,
    }))
}

async fn retry_dead_letter(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<DeadLetter>)> {
    let dl = dispatch::retry_dead_letter(&svc, &p, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(dl)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityBody {
    platform: String,
    user_id: String,
    role: String,
}

async fn map_identity(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<IdentityBody>,
) -> ApiResult<(StatusCode, Json<ChatIdentity>)> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_role",
            "role must be viewer, responder, approver or admin",
        )
    })?;
    let id = identities::register(&svc, &p, &body.platform, &body.user_id, role).await?;
    Ok((StatusCode::CREATED, Json(id)))
}

#[derive(Serialize)]
struct Identities {
    items: Vec<ChatIdentity>,
}

async fn list_identities(
    State(svc): State<Services>,
    Auth(p): Auth,
) -> ApiResult<Json<Identities>> {
    Ok(Json(Identities {
        items: identities::list(&svc, &p).await?,
    }))
}

async fn unmap_identity(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath((platform, user_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    identities::delete(&svc, &p, &platform, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct Routes {
    items: Vec<Route>,
}

async fn list_routes(State(svc): State<Services>, Auth(p): Auth) -> ApiResult<Json<Routes>> {
    require_role(&p, Role::Viewer, "read routing")?;
    Ok(Json(Routes {
        items: routes::list(&svc, &p.tenant).await?,
    }))
}

async fn put_route(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(route): ApiJson<Route>,
) -> ApiResult<Json<Route>> {
    Ok(Json(routes::put(&svc, &p, &id, route).await?))
}

async fn delete_route(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    routes::delete(&svc, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
