//! The dossier family: what each provider sent, as firewatch received it.
//!
//! - `GET /v1/dossier/events?provider=&incident=&fingerprint=&limit=&cursor=`
//!   (viewer): one item per received webhook, newest first
//! - `GET /v1/dossier/events/{id}` (viewer): the item with its redacted
//!   envelope
//! - `GET /v1/dossier/coverage?provider=` (viewer): per provider and in
//!   total: events, duplicates, redacted, with and without source links,
//!   links by kind, latest received
//!
//! See docs/DOSSIER.md.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use firewatch_domain::dossier::{self, Filter};
use firewatch_domain::Services;
use firewatch_types::SourceKind;
use firewatch_web::{ApiError, ApiPath, ApiQuery, ApiResult, Auth};
use serde::Deserialize;

/// The dossier routes, finished with the shared layers.
pub fn router(services: Services) -> Router {
    let routes = Router::new()
        .route("/v1/dossier/events", get(events))
        .route("/v1/dossier/events/{id}", get(event))
        .route("/v1/dossier/coverage", get(coverage));
    firewatch_web::finish(routes, services)
}

fn provider(v: Option<&str>) -> ApiResult<Option<SourceKind>> {
    v.map(|p| {
        SourceKind::parse(p).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!(
                    "unknown provider {:?}",
                    firewatch_domain::limits::truncate(p, 40)
                ),
            )
        })
    })
    .transpose()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    provider: Option<String>,
    incident: Option<String>,
    fingerprint: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn events(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<dossier::Page>> {
    let filter = Filter {
        provider: provider(q.provider.as_deref())?,
        incident: q.incident,
        fingerprint: q.fingerprint,
    };
    Ok(Json(
        dossier::list(
            &svc,
            &p,
            &filter,
            q.cursor.as_deref(),
            q.limit.unwrap_or(50),
        )
        .await?,
    ))
}

async fn event(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<dossier::WithEnvelope>> {
    Ok(Json(dossier::get(&svc, &p, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CoverageQuery {
    provider: Option<String>,
}

async fn coverage(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<CoverageQuery>,
) -> ApiResult<Json<dossier::Coverage>> {
    Ok(Json(
        dossier::coverage(&svc, &p, provider(q.provider.as_deref())?).await?,
    ))
}
