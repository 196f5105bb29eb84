//! The incidents family: read, act on, and comment on incidents.
//!
//! - `GET  /v1/incidents` (filters `state`, `severity`, `source`; `cursor`, `limit`)
//! - `GET  /v1/incidents/recurrence?by=fingerprint|alertname|namespace|target`
//! - `GET  /v1/incidents/{id}` and `/v1/incidents/{id}/timeline`
//! - `POST /v1/incidents/{id}/{ack|mitigate|resolve|close|reopen}`
//! - `POST /v1/incidents/{id}/comments`
//! - `POST /v1/incidents/{id}/triage` (`{"mode": "deterministic" | "assisted"}`,
//!   default `FIREWATCH_TRIAGE_DEFAULT`)
//! - `GET  /v1/incidents/{id}/triage/latest` (`?format=markdown` for Markdown)
//! - `POST /v1/incidents/{id}/triage/{report}/feedback`
//! - `POST /v1/incidents/{id}/ticket` (`{"again": false}`): a tracker
//!   ticket, created by the dispatcher → `202` (`200` when one is linked
//!   or on its way)
//! - `POST /v1/incidents/{id}/snooze` (`{"for": "30m"}` or `{"until"}`):
//!   reminders and escalation pause until then
//! - `GET  /v1/work-items?by=`, `GET /v1/work-items/{id}/preview`, `POST
//!   /v1/work-items/{id}/dry-run`, `POST /v1/work-items/{id}/handoff`
//!   (`{"mode": "ticket" | "manual", "url", "note"}`): recurring groups
//!   handed off to a tracker
//! - `GET  /v1/triage/telemetry?hours=`, `/v1/triage/provider`,
//!   `/v1/triage/feedback/summary`
//!
//! Routing, chat identities and dead letters are the admin family's.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use firewatch_domain::auth::require_role;
use firewatch_domain::incidents::{self, ListFilter, Paged, RecurrenceBy};
use firewatch_domain::playbooks::{Catalog, LazyCatalog};
use firewatch_domain::tickets::work_items;
use firewatch_domain::{triage, Services};
use firewatch_types::{
    Incident, IncidentAction, IncidentId, IncidentState, Role, Severity, SourceKind, TimelineEntry,
    TriageReport,
};
use firewatch_web::extract::optional_json;
use firewatch_web::{ApiBytes, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Auth};
use serde::{Deserialize, Serialize};

/// The incidents routes, finished with the shared layers; assisted triage
/// offers no playbooks.
pub fn router(services: Services) -> Router {
    with_playbooks(
        services,
        Arc::new(LazyCatalog::ready(Arc::new(Catalog::default()))),
    )
}

/// [`router`] whose assisted triage offers the model the playbooks of
/// `catalog` that match the incident (read on first use).
pub fn with_playbooks(services: Services, catalog: Arc<LazyCatalog>) -> Router {
    let r = Router::new()
        .route("/v1/incidents", get(list))
        .route("/v1/incidents/recurrence", get(recurrence))
        .route("/v1/incidents/{id}", get(show))
        .route("/v1/incidents/{id}/timeline", get(timeline))
        .route("/v1/incidents/{id}/comments", post(comment))
        .route("/v1/incidents/{id}/triage", post(triage))
        .route("/v1/incidents/{id}/ticket", post(ticket))
        .route("/v1/incidents/{id}/snooze", post(snooze))
        .route("/v1/work-items", get(work_items_list))
        .route("/v1/work-items/{id}/preview", get(work_item_preview))
        .route("/v1/work-items/{id}/dry-run", post(work_item_dry_run))
        .route("/v1/work-items/{id}/handoff", post(work_item_handoff))
        .route("/v1/incidents/{id}/triage/latest", get(triage_latest))
        .route(
            "/v1/incidents/{id}/triage/{report}/feedback",
            post(triage_feedback),
        )
        .route("/v1/incidents/{id}/{action}", post(act))
        .route("/v1/triage/telemetry", get(triage_telemetry))
        .route("/v1/triage/provider", get(triage_provider))
        .route("/v1/triage/feedback/summary", get(feedback_summary))
        .layer(Extension(catalog));
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkItemsQuery {
    by: Option<String>,
}

async fn work_items_list(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<WorkItemsQuery>,
) -> ApiResult<Json<work_items::WorkItems>> {
    let by = parse_opt(q.by.as_deref(), "recurrence grouping", RecurrenceBy::parse)?;
    Ok(Json(work_items::list(&svc, &p, by).await?))
}

async fn work_item_preview(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<work_items::Preview>> {
    Ok(Json(work_items::preview(&svc, &p, &id).await?))
}

async fn work_item_dry_run(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<work_items::Preview>> {
    Ok(Json(work_items::dry_run(&svc, &p, &id).await?))
}

async fn work_item_handoff(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<work_items::HandedOff>> {
    let h: work_items::Handoff = optional_json(&headers, &body)?;
    Ok(Json(work_items::handoff(&svc, &p, &id, h).await?))
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

/// Body of a ticket request; optional as a whole.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TicketBody {
    #[serde(default)]
    again: bool,
}

async fn ticket(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(
    axum::http::StatusCode,
    Json<firewatch_domain::tickets::Requested>,
)> {
    let id = parse_id(&id)?;
    let body: TicketBody = optional_json(&headers, &body)?;
    let r = firewatch_domain::tickets::request(&svc, &p, &id, body.again).await?;
    let status = if r.status == "requested" {
        axum::http::StatusCode::ACCEPTED
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, Json(r)))
}

/// `{"for": "30m"}` or `{"until": "<RFC 3339>"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnoozeBody {
    #[serde(rename = "for")]
    for_: Option<String>,
    until: Option<chrono::DateTime<chrono::Utc>>,
}

async fn snooze(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SnoozeBody>,
) -> ApiResult<Json<firewatch_types::Incident>> {
    let id = parse_id(&id)?;
    let for_ = match (body.for_.as_deref(), body.until) {
        (Some(d), None) => firewatch_domain::silences::parse_duration(d).ok_or_else(|| {
            ApiError::bad_request("invalid_snooze", "for is a duration such as 30m, 2h or 1d")
        })?,
        (None, Some(t)) => t - svc.clock.now(),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_snooze",
                "give either for (30m, 2h) or until (a time)",
            ))
        }
    };
    Ok(Json(
        firewatch_domain::escalation::snooze(&svc, &p, &id, for_).await?,
    ))
}

/// Body of a triage request; optional as a whole.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TriageBody {
    mode: Option<String>,
}

async fn triage(
    State(svc): State<Services>,
    Extension(catalog): Extension<Arc<LazyCatalog>>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<TriageReport>> {
    let id = parse_id(&id)?;
    let body: TriageBody = optional_json(&headers, &body)?;
    let mode = match body.mode.as_deref() {
        None => svc.settings.triage_default,
        Some(m) => triage::Requested::parse(m).ok_or_else(|| {
            ApiError::bad_request(
                "unsupported_mode",
                format!(
                    "triage mode {:?} is unknown; use \"deterministic\" or \"assisted\"",
                    firewatch_domain::limits::truncate(m, 40)
                ),
            )
        })?,
    };
    let mut ask = triage::Ask::mode(mode);
    if mode == triage::Requested::Assisted {
        require_role(&p, Role::Responder, "triage an incident")?;
        let inc = incidents::get(&svc, &p.tenant, &id).await?;
        ask.playbooks = firewatch_domain::playbooks::offered_names(&*catalog.get().await, &inc);
    }
    Ok(Json(triage::run_as(&svc, &p, &id, &ask).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatestQuery {
    format: Option<String>,
}

/// The newest report, as JSON or (`?format=markdown`) as Markdown.
async fn triage_latest(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<LatestQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let id = parse_id(&id)?;
    let markdown = match q.format.as_deref() {
        None | Some("json") => false,
        Some("markdown" | "md") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "format {:?} is unknown; use json or markdown",
                    firewatch_domain::limits::truncate(other, 40)
                ),
            ))
        }
    };
    let (inc, report) = triage::latest(&svc, &p, &id).await?;
    Ok(if markdown {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/markdown; charset=utf-8",
            )],
            triage::markdown::render(&inc, &report),
        )
            .into_response()
    } else {
        Json(report).into_response()
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    helpful: bool,
    comment: Option<String>,
}

async fn triage_feedback(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath((id, report)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<FeedbackBody>,
) -> ApiResult<(StatusCode, Json<triage::feedback::Vote>)> {
    let id = parse_id(&id)?;
    let vote =
        triage::feedback::record(&svc, &p, Some(&id), &report, body.helpful, body.comment).await?;
    Ok((StatusCode::CREATED, Json(vote)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TelemetryQuery {
    hours: Option<String>,
}

async fn triage_telemetry(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<TelemetryQuery>,
) -> ApiResult<Json<triage::telemetry::Telemetry>> {
    let hours = match q.hours.as_deref() {
        None => 24,
        Some(h) => h
            .parse()
            .map_err(|_| ApiError::bad_request("invalid_window", "hours must be a whole number"))?,
    };
    Ok(Json(triage::telemetry::summary(&svc, &p, hours).await?))
}

async fn triage_provider(
    State(svc): State<Services>,
    Auth(p): Auth,
) -> ApiResult<Json<triage::telemetry::Provider>> {
    Ok(Json(triage::telemetry::provider(&svc, &p).await?))
}

async fn feedback_summary(
    State(svc): State<Services>,
    Auth(p): Auth,
) -> ApiResult<Json<triage::feedback::Summary>> {
    Ok(Json(triage::feedback::summary(&svc, &p).await?))
}
