//! The playbooks family: definitions, dry-runs, approvals, runs and
//! rollbacks.
//!
//! - `GET  /v1/playbooks` (viewer): every playbook loaded, and the files
//!   that were refused with file, line, field and why
//! - `GET  /v1/incidents/{id}/playbooks` (viewer): the playbooks offered for
//!   an incident, parameters filled
//! - `POST /v1/incidents/{id}/playbooks/{name}/dry-run` (responder),
//!   `{"params": {...}}` optional: renders every step (secrets masked),
//!   sends the read-only ones, and answers the run
//! - `POST /v1/playbook-runs/{run}/approve` (approver, not the requester),
//!   `/reject` (approver, or the requester to cancel), `/execute` and
//!   `/rollback` (responder)
//! - `GET  /v1/playbook-runs/{run}`, `GET /v1/incidents/{id}/playbook-runs`
//!   (viewer)
//!
//! Every `POST` takes an `Idempotency-Key` header: the same key again gets
//! the first answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use firewatch_domain::auth::require_role;
use firewatch_domain::playbooks::runs::{self, Run};
use firewatch_domain::playbooks::{self, Catalog, DefinitionError, Summary};
use firewatch_domain::{incidents, Services};
use firewatch_types::{IncidentId, Role};
use firewatch_web::extract::optional_json;
use firewatch_web::{ApiBytes, ApiError, ApiPath, ApiResult, Auth};
use serde::{Deserialize, Serialize};

/// The playbooks routes over `catalog`, finished with the shared layers.
pub fn router(services: Services, catalog: Arc<Catalog>) -> Router {
    let r = Router::new()
        .route("/v1/playbooks", get(list))
        .route("/v1/incidents/{id}/playbooks", get(for_incident))
        .route("/v1/incidents/{id}/playbooks/{name}/dry-run", post(dry_run))
        .route("/v1/incidents/{id}/playbook-runs", get(runs_of_incident))
        .route("/v1/playbook-runs/{run}", get(show))
        .route("/v1/playbook-runs/{run}/{decision}", post(decide))
        .layer(Extension(catalog));
    firewatch_web::finish(r, services)
}

fn parse_id(id: &str) -> ApiResult<IncidentId> {
    IncidentId::parse(id).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))
}

/// The `Idempotency-Key` header, if sent.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.to_owned())).map_err(|_| {
            ApiError::bad_request(
                "bad_idempotency_key",
                "Idempotency-Key must be visible ASCII",
            )
        }),
    }
}

#[derive(Serialize)]
struct Listing {
    items: Vec<Summary>,
    errors: Vec<DefinitionError>,
}

async fn list(
    Auth(p): Auth,
    Extension(catalog): Extension<Arc<Catalog>>,
) -> ApiResult<Json<Listing>> {
    require_role(&p, Role::Viewer, "listing playbooks")?;
    Ok(Json(Listing {
        items: catalog
            .playbooks()
            .iter()
            .map(|pb| Summary::of(pb, None))
            .collect(),
        errors: catalog.errors().to_vec(),
    }))
}

#[derive(Serialize)]
struct Offered {
    items: Vec<OfferedPlaybook>,
}

#[derive(Serialize)]
struct OfferedPlaybook {
    #[serde(flatten)]
    summary: Summary,
    /// Why its parameters could not be filled for this incident, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    params_error: Option<String>,
}

async fn for_incident(
    State(svc): State<Services>,
    Auth(p): Auth,
    Extension(catalog): Extension<Arc<Catalog>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Offered>> {
    require_role(&p, Role::Viewer, "listing playbooks")?;
    let inc = incidents::get(&svc, &p.tenant, &parse_id(&id)?).await?;
    let items = catalog
        .matching(&inc)
        .map(
            |pb| match playbooks::resolve_params(pb, &inc, &BTreeMap::new()) {
                Ok(params) => OfferedPlaybook {
                    summary: Summary::of(pb, Some(params)),
                    params_error: None,
                },
                Err(e) => OfferedPlaybook {
                    summary: Summary::of(pb, None),
                    params_error: Some(e.to_string()),
                },
            },
        )
        .collect();
    Ok(Json(Offered { items }))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunBody {
    #[serde(default)]
    params: BTreeMap<String, String>,
}

async fn dry_run(
    State(svc): State<Services>,
    Auth(p): Auth,
    Extension(catalog): Extension<Arc<Catalog>>,
    ApiPath((id, name)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let id = parse_id(&id)?;
    let key = idempotency_key(&headers)?;
    let body: DryRunBody = optional_json(&headers, &body)?;
    let run = runs::dry_run(&svc, &catalog, &p, &id, &name, &body.params, key.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(run)))
}

#[derive(Serialize)]
struct RunList {
    items: Vec<Run>,
}

async fn runs_of_incident(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RunList>> {
    let id = parse_id(&id)?;
    Ok(Json(RunList {
        items: runs::for_incident(&svc, &p, &id).await?,
    }))
}

async fn show(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(run): ApiPath<String>,
) -> ApiResult<Json<Run>> {
    Ok(Json(runs::get(&svc, &p, &run).await?))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn decide(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath((run, decision)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let key = idempotency_key(&headers)?;
    let key = key.as_deref();
    let body: DecisionBody = optional_json(&headers, &body)?;
    let (status, run) = match decision.as_str() {
        "approve" => (StatusCode::OK, runs::approve(&svc, &p, &run, key).await?),
        "reject" => (
            StatusCode::OK,
            runs::reject(&svc, &p, &run, body.reason, key).await?,
        ),
        // The steps run in the dispatcher; the answer is the run started.
        "execute" => (
            StatusCode::ACCEPTED,
            runs::execute(&svc, &p, &run, key).await?,
        ),
        "rollback" => (
            StatusCode::ACCEPTED,
            runs::rollback(&svc, &p, &run, key).await?,
        ),
        _ => {
            return Err(ApiError::not_found(
                "no such decision: use approve, reject, execute or rollback",
            ))
        }
    };
    Ok((status, Json(run)))
}
