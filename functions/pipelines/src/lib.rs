//! The pipelines family: run events in, pipeline state, runs and lineage
//! impact out.
//!
//! - `POST /api/v1/lineage` (responder; an API key as the bearer token, the
//!   OpenLineage HTTP transport's `api_key`): an OpenLineage run, job or
//!   dataset event, as Marquez accepts it → `201` (empty)
//! - `POST /v1/pipelines/runs` (responder): a plain run report `{"pipeline",
//!   "run_id", "status", "started_at", "ended_at", "cost", "error", "inputs",
//!   "outputs"}` → `201` with the run
//! - `PUT /v1/pipelines/{id}` (admin): team, domain, criticality, owner,
//!   runbook URL, SLA
//! - `GET /v1/summary`, `GET /v1/pipelines` (filters `team`, `domain`,
//!   `criticality`, `state`; `cursor`, `limit`), `GET /v1/pipelines/{id}`,
//!   `GET /v1/pipelines/{id}/runs` (`cursor` or `offset`, `limit`),
//!   `GET /v1/runs/{run_id}`, `GET /v1/pipelines/{id}/impact` and its
//!   deprecated alias `/lineage`, `GET /v1/runs/{run_id}/explain` (viewer)
//! - `GET /v1/costs`, `/v1/costs/trend?days=`, `/v1/costs/pipelines?days=&limit=`,
//!   `/v1/costs/anomalies?anomaly_only=&min_ratio=`, `/v1/pipelines/{id}/cost?days=`
//!   (viewer)
//! - `GET /v1/pipelines/{id}/sla?days=` (the pipeline against its SLA now
//!   and its on-time, late, long and missed runs per day), `GET
//!   /v1/sla/pipelines` (pipelines by SLA state), `GET
//!   /v1/costs/anomalies/{pipeline}/investigate` (viewer)
//! - `GET /v1/runbooks` (viewer; filters `search`, `team`, `domain`,
//!   `criticality`, `owner`, `include_missing`): the runbook catalog and its
//!   coverage; `POST /v1/runbooks/governance` `{"pipeline", "status",
//!   "note"}` and `DELETE /v1/runbooks/governance/{pipeline}` (responder)
//!
//! A pipeline id holds a `/` (`{namespace}/{name}`): in a path it is sent
//! percent-encoded (`airflow%2Fetl.orders`).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use firewatch_domain::pipelines::openlineage::{self, Event, PlainRun};
use firewatch_domain::pipelines::read::{self, Filter};
use firewatch_domain::pipelines::{
    self, costs, impact, record, runbooks, sla, Config, Criticality, State as PlState,
};
use firewatch_domain::Services;
use firewatch_web::{ApiBytes, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Auth};
use serde::Deserialize;

/// The pipelines routes, finished with the shared layers.
pub fn router(services: Services) -> Router {
    let r = Router::new()
        .route("/api/v1/lineage", post(lineage))
        .route("/v1/pipelines/runs", post(plain_run))
        .route("/v1/summary", get(summary))
        .route("/v1/pipelines", get(list))
        .route("/v1/pipelines/{id}", get(show).put(configure))
        .route("/v1/pipelines/{id}/runs", get(runs))
        .route("/v1/pipelines/{id}/impact", get(impact_of))
        .route("/v1/pipelines/{id}/lineage", get(lineage_alias))
        .route("/v1/runs/{run_id}", get(run))
        .route("/v1/runs/{run_id}/explain", get(explain))
        .route("/v1/costs", get(costs_now))
        .route("/v1/costs/trend", get(costs_trend))
        .route("/v1/costs/pipelines", get(costs_ranking))
        .route("/v1/costs/anomalies", get(costs_anomalies))
        .route("/v1/pipelines/{id}/cost", get(pipeline_cost))
        .route("/v1/pipelines/{id}/sla", get(pipeline_sla))
        .route("/v1/sla/pipelines", get(sla_counts))
        .route(
            "/v1/costs/anomalies/{pipeline}/investigate",
            get(investigate),
        )
        .route("/v1/runbooks", get(runbook_catalog))
        .route("/v1/runbooks/governance", post(governance_set))
        .route(
            "/v1/runbooks/governance/{pipeline}",
            delete(governance_clear),
        );
    firewatch_web::finish(r, services)
}

/// A body sent with `Content-Encoding: gzip` (the OpenLineage HTTP
/// transport's `compression: gzip`), inflated up to the body limit.
fn inflate(svc: &Services, headers: &HeaderMap, body: Vec<u8>) -> ApiResult<Vec<u8>> {
    use std::io::Read;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("identity") => Ok(body),
        Some("gzip") => {
            let max = svc.settings.max_body_bytes;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body.as_slice())
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|_| {
                    ApiError::bad_request("invalid_body", "the gzip body does not inflate")
                })?;
            if out.len() > max {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the inflated body is over {max} bytes"),
                ));
            }
            Ok(out)
        }
        Some(_) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            "Content-Encoding must be gzip or none",
        )),
    }
}

/// `POST /api/v1/lineage`: Marquez answers `201 Created` with no body.
async fn lineage(
    State(svc): State<Services>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    let body = inflate(&svc, &headers, body.to_vec())?;
    match openlineage::parse(&body)? {
        Event::Run(ev) => {
            record::record(&svc, &p, *ev, &body).await?;
        }
        Event::Job {
            pipeline,
            inputs,
            outputs,
            job,
        } => record::record_job(&svc, &p, &pipeline, &inputs, &outputs, &job).await?,
        Event::Dataset => {
            firewatch_domain::auth::require_ingest(&p, "report lineage")?;
        }
    }
    Ok(StatusCode::CREATED.into_response())
}

async fn plain_run(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<record::Recorded>)> {
    let report: PlainRun = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_run",
            format!(
                "not a run report: {}",
                firewatch_domain::limits::truncate(&e.to_string(), 200)
            ),
        )
    })?;
    let ev = openlineage::plain(report)?;
    let r = record::record(&svc, &p, ev, &body).await?;
    let status = if r.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(r)))
}

async fn configure(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(config): ApiJson<Config>,
) -> ApiResult<Json<pipelines::Pipeline>> {
    Ok(Json(pipelines::configure(&svc, &p, &id, config).await?))
}

async fn summary(State(svc): State<Services>, Auth(p): Auth) -> ApiResult<Json<read::Summary>> {
    Ok(Json(read::summary(&svc, &p).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    team: Option<String>,
    domain: Option<String>,
    criticality: Option<String>,
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

fn unknown(what: &str, v: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_query",
        format!(
            "unknown {what} {:?}",
            firewatch_domain::limits::truncate(v, 40)
        ),
    )
}

async fn list(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<read::Page<read::PipelineView>>> {
    let filter = Filter {
        team: q.team,
        domain: q.domain,
        criticality: q
            .criticality
            .as_deref()
            .map(|c| Criticality::parse(c).ok_or_else(|| unknown("criticality", c)))
            .transpose()?,
        state: q
            .state
            .as_deref()
            .map(|s| PlState::parse(s).ok_or_else(|| unknown("state", s)))
            .transpose()?,
    };
    Ok(Json(
        read::list(&svc, &p, &filter, q.cursor, q.limit.unwrap_or(50)).await?,
    ))
}

async fn show(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<read::PipelineView>> {
    Ok(Json(read::pipeline(&svc, &p, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    cursor: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

async fn runs(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> ApiResult<Json<read::Page<record::Run>>> {
    if q.cursor.is_some() && q.offset.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "give cursor or offset, not both",
        ));
    }
    Ok(Json(
        read::runs(
            &svc,
            &p,
            &id,
            q.cursor,
            q.offset.unwrap_or(0),
            q.limit.unwrap_or(50),
        )
        .await?,
    ))
}

async fn run(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(run_id): ApiPath<String>,
) -> ApiResult<Json<read::RunView>> {
    Ok(Json(read::run(&svc, &p, &run_id).await?))
}

async fn impact_of(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<impact::Impact>> {
    Ok(Json(impact::impact(&svc, &p, &id).await?))
}

/// The deprecated alias of `…/impact`: the same answer, marked.
async fn lineage_alias(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let mut g = impact::impact(&svc, &p, &id).await?;
    g.deprecated = Some(true);
    g.replacement_endpoint = Some(format!(
        "/v1/pipelines/{}/impact",
        id.replace('%', "%25").replace('/', "%2F")
    ));
    Ok((
        [
            ("deprecation", "true"),
            (
                "link",
                "</v1/pipelines/{id}/impact>; rel=\"successor-version\"",
            ),
        ],
        Json(g),
    )
        .into_response())
}

async fn explain(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(run_id): ApiPath<String>,
) -> ApiResult<Json<firewatch_domain::pipelines::explain::Explanation>> {
    Ok(Json(
        firewatch_domain::pipelines::explain::explain(&svc, &p, &run_id).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogQuery {
    search: Option<String>,
    team: Option<String>,
    domain: Option<String>,
    criticality: Option<String>,
    owner: Option<String>,
    include_missing: Option<bool>,
}

async fn runbook_catalog(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<CatalogQuery>,
) -> ApiResult<Json<runbooks::Catalog>> {
    let filter = runbooks::Filter {
        search: q.search,
        team: q.team,
        domain: q.domain,
        criticality: q
            .criticality
            .as_deref()
            .map(|c| Criticality::parse(c).ok_or_else(|| unknown("criticality", c)))
            .transpose()?,
        owner: q.owner,
        include_missing: q.include_missing.unwrap_or(true),
    };
    Ok(Json(runbooks::catalog(&svc, &p, &filter).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GovernanceBody {
    pipeline: String,
    status: String,
    note: Option<String>,
}

async fn governance_set(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<GovernanceBody>,
) -> ApiResult<Json<runbooks::Entry>> {
    let status = runbooks::Governance::parse(&body.status).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_governance",
            "status must be none, open, in_progress, remediated or waived",
        )
    })?;
    Ok(Json(
        runbooks::set_governance(&svc, &p, &body.pipeline, status, body.note).await?,
    ))
}

async fn governance_clear(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(pipeline): ApiPath<String>,
) -> ApiResult<Json<runbooks::Entry>> {
    Ok(Json(
        runbooks::set_governance(&svc, &p, &pipeline, runbooks::Governance::None, None).await?,
    ))
}

async fn costs_now(State(svc): State<Services>, Auth(p): Auth) -> ApiResult<Json<costs::Costs>> {
    Ok(Json(costs::tenant(&svc, &p).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DaysQuery {
    days: Option<String>,
    limit: Option<usize>,
}

fn days(q: &Option<String>, default: i64) -> ApiResult<i64> {
    match q {
        None => Ok(default),
        Some(d) => d
            .parse()
            .map_err(|_| ApiError::bad_request("invalid_query", "days must be a whole number")),
    }
}

async fn costs_trend(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<DaysQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let d = days(&q.days, 7)?;
    let trend = costs::trend(&svc, &p, d).await?;
    Ok(Json(serde_json::json!({"days": d, "items": trend})))
}

async fn costs_ranking(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<DaysQuery>,
) -> ApiResult<Json<costs::Ranking>> {
    Ok(Json(
        costs::ranking(&svc, &p, days(&q.days, 7)?, q.limit.unwrap_or(50)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnomalyQuery {
    anomaly_only: Option<bool>,
    min_ratio: Option<f64>,
}

async fn costs_anomalies(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<AnomalyQuery>,
) -> ApiResult<Json<costs::Anomalies>> {
    Ok(Json(
        costs::anomalies(&svc, &p, q.anomaly_only.unwrap_or(false), q.min_ratio).await?,
    ))
}

async fn pipeline_cost(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DaysQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let d = days(&q.days, 30)?;
    let items = costs::pipeline(&svc, &p, &id, d).await?;
    let anomalies = costs::of_pipeline(&svc, &p, &id).await?;
    let mut total = costs::Money::new();
    for day in &items {
        for (c, a) in &day.cost {
            *total.entry(c.clone()).or_default() += a;
        }
    }
    Ok(Json(
        serde_json::json!({"pipeline": id, "days": d, "total": total, "items": items, "anomalies": anomalies}),
    ))
}

async fn pipeline_sla(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DaysQuery>,
) -> ApiResult<Json<sla::SlaView>> {
    Ok(Json(sla::pipeline(&svc, &p, &id, days(&q.days, 7)?).await?))
}

async fn sla_counts(State(svc): State<Services>, Auth(p): Auth) -> ApiResult<Json<sla::Counts>> {
    Ok(Json(sla::counts(&svc, &p).await?))
}

async fn investigate(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<costs::Investigation>> {
    Ok(Json(costs::investigate(&svc, &p, &id).await?))
}
