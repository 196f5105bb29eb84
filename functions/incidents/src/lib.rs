//! The incidents family: read, act on, and comment on incidents.
//!
//! - `GET  /v1/incidents` (filters `state`, `severity`, `source`; `cursor`, `limit`)
//! - `GET  /v1/incidents/recurrence?by=fingerprint|alertname|namespace|target`
//! - `GET  /v1/incidents/{id}` and `/v1/incidents/{id}/timeline`
//! - `POST /v1/incidents/{id}/{ack|mitigate|resolve|close|reopen}`
//! - `POST /v1/incidents/{id}/comments`
//! - `POST /v1/incidents/{id}/triage`
//!
//! Routing, chat identities and dead letters are the admin family's.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use firewatch_domain::auth::require_role;
use firewatch_domain::incidents::{self, ListFilter, Paged, RecurrenceBy};
use firewatch_domain::{triage, Services};
use firewatch_types::{
    Incident, IncidentAction, IncidentId, IncidentState, Role, Severity, SourceKind, TimelineEntry,
    TriageReport,
};
use firewatch_web::extract::optional_json;
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
        .route("/v1/incidents/{id}/{action}", post(act));
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
    cursor: Option<String>,
}

#[derive(Serialize)]
struct RecurrenceAnswer {
    by: RecurrenceBy,
    #[serde(flatten)]
    page: incidents::Recurrence,
}

async fn recurrence(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<RecurrenceQuery>,
) -> ApiResult<Json<RecurrenceAnswer>> {
    require_role(&p, Role::Viewer, "read recurrence")?;
    let by = parse_opt(q.by.as_deref(), "recurrence grouping", RecurrenceBy::parse)?
        .unwrap_or(RecurrenceBy::Fingerprint);
    let page = incidents::recurrence(&svc, &p.tenant, by, q.cursor.as_deref()).await?;
    Ok(Json(RecurrenceAnswer { by, page }))
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
    let body: ActionBody = optional_json(&headers, &body)?;
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
    let body: TriageBody = optional_json(&headers, &body)?;
    let requested = match body.mode.as_deref() {
        None | Some("deterministic") => triage::Requested::Deterministic,
        Some("assisted") => triage::Requested::Assisted,
        Some(other) => {
            return Err(ApiError::bad_request(
                "unsupported_mode",
                format!(
                    "triage mode {:?} is unknown; use \"deterministic\" or \"assisted\"",
                    firewatch_domain::limits::truncate(other, 40)
                ),
            ))
        }
    };
    Ok(Json(triage::run_as(&svc, &p, &id, requested, &[]).await?))
}
