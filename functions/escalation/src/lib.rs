//! The escalation family: who is on call, and how an unanswered incident
//! gets louder.
//!
//! - `GET /v1/oncall-schedules` (viewer), `PUT /v1/oncall-schedules/{id}`
//!   (admin), `GET`/`DELETE /v1/oncall-schedules/{id}` (viewer / admin)
//! - `POST /v1/oncall-schedules/{id}/overrides` (responder):
//!   `{"who", "from", "until", "rotation"?}`
//! - `GET /v1/oncall-schedules/{id}/now?at=` (viewer): who is on call
//! - `GET /v1/oncall-schedules/{id}/calendar.ics?from=&days=` (viewer): the
//!   shifts as an iCalendar feed
//! - `GET /v1/escalation-policies` (viewer), `PUT`/`GET`/`DELETE
//!   /v1/escalation-policies/{id}` (admin / viewer / admin)
//!
//! Snoozing is an incident action (`POST /v1/incidents/{id}/snooze`, the
//! incidents family); the `reminders` scheduler job runs the steps. See
//! docs/ESCALATION.md.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use firewatch_domain::escalation::{self, Policy, PolicySpec};
use firewatch_domain::oncall::{self, Override, Schedule, ScheduleSpec, Shift};
use firewatch_domain::Services;
use firewatch_web::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Auth};
use serde::{Deserialize, Serialize};

/// The escalation routes, finished with the shared layers.
pub fn router(services: Services) -> Router {
    let routes = Router::new()
        .route("/v1/oncall-schedules", get(schedules))
        .route(
            "/v1/oncall-schedules/{id}",
            get(schedule).put(put_schedule).delete(delete_schedule),
        )
        .route("/v1/oncall-schedules/{id}/overrides", post(add_override))
        .route("/v1/oncall-schedules/{id}/now", get(now))
        .route("/v1/oncall-schedules/{id}/calendar.ics", get(calendar))
        .route("/v1/escalation-policies", get(policies))
        .route(
            "/v1/escalation-policies/{id}",
            get(policy).put(put_policy).delete(delete_policy),
        );
    firewatch_web::finish(routes, services)
}

async fn schedules(State(svc): State<Services>, Auth(p): Auth) -> ApiResult<Json<Vec<Schedule>>> {
    Ok(Json(oncall::list(&svc, &p).await?))
}

async fn schedule(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Schedule>> {
    Ok(Json(oncall::get(&svc, &p, &id).await?))
}

async fn put_schedule(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(spec): ApiJson<ScheduleSpec>,
) -> ApiResult<Json<Schedule>> {
    Ok(Json(oncall::put(&svc, &p, &id, spec).await?))
}

async fn delete_schedule(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    oncall::delete(&svc, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_override(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(o): ApiJson<Override>,
) -> ApiResult<(StatusCode, Json<Schedule>)> {
    Ok((
        StatusCode::CREATED,
        Json(oncall::add_override(&svc, &p, &id, o).await?),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AtQuery {
    at: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
struct OnCall {
    schedule: String,
    at: DateTime<Utc>,
    on_call: Vec<Shift>,
}

async fn now(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<AtQuery>,
) -> ApiResult<Json<OnCall>> {
    let s = oncall::get(&svc, &p, &id).await?;
    let at = q.at.unwrap_or_else(|| svc.clock.now());
    Ok(Json(OnCall {
        on_call: s.on_call(at),
        schedule: s.id,
        at,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarQuery {
    from: Option<DateTime<Utc>>,
    days: Option<i64>,
}

async fn calendar(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<CalendarQuery>,
) -> ApiResult<impl IntoResponse> {
    let days = q.days.unwrap_or(28);
    if !(1..=oncall::MAX_CALENDAR_DAYS).contains(&days) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("days is 1 to {}", oncall::MAX_CALENDAR_DAYS),
        ));
    }
    let s = oncall::get(&svc, &p, &id).await?;
    let from = q.from.unwrap_or_else(|| svc.clock.now());
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.ics\"", s.id),
            ),
        ],
        oncall::calendar(&s, from, days),
    ))
}

async fn policies(State(svc): State<Services>, Auth(p): Auth) -> ApiResult<Json<Vec<Policy>>> {
    Ok(Json(escalation::list(&svc, &p).await?))
}

async fn policy(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Policy>> {
    Ok(Json(escalation::get(&svc, &p, &id).await?))
}

async fn put_policy(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(spec): ApiJson<PolicySpec>,
) -> ApiResult<Json<Policy>> {
    Ok(Json(escalation::put(&svc, &p, &id, spec).await?))
}

async fn delete_policy(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    escalation::delete(&svc, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
