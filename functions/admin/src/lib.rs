//! The admin family: how firewatch is wired for a tenant.
//!
//! - `GET /v1/routes`, `PUT|DELETE /v1/routes/{id}`: which chat destinations
//!   incidents go to (viewer to read, admin to change)
//! - `POST /v1/chat-links` (admin): a one-time code that links the chat
//!   channel it is posted in (and its workspace) to the tenant
//! - `POST|GET /v1/chat-identities`,
//!   `DELETE /v1/chat-identities/{platform}/{workspace}/{user_id}`: which chat
//!   users of the tenant's linked workspaces act as which role (admin)
//! - `GET|POST /v1/keys`, `DELETE /v1/keys/{id}`, `POST /v1/keys/{id}/rotate`
//!   (admin): the tenant's API keys; tokens are shown once, at creation
//! - `GET /v1/secrets`, `PUT|DELETE /v1/secrets/{name}` (admin): the
//!   tenant's own secrets for the definitions it makes through the API;
//!   values are write-only
//! - `GET /v1/dispatch/dead-letters` (viewer), `POST /v1/dispatch/dead-letters/{id}/retry`
//!   (responder): chat deliveries that failed for good, and putting one back
//!   in the outbox

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use firewatch_domain::auth::{self, require_role, ApiKey, NewApiKey};
use firewatch_domain::chat::identities::{self, ChatIdentity};
use firewatch_domain::dispatch::{self, DeadLetter};
use firewatch_domain::routing::routes::{self, Route};
use firewatch_domain::secrets::{self, SecretInfo};
use firewatch_domain::Services;
use firewatch_types::Role;
use firewatch_web::{ApiError, ApiJson, ApiPath, ApiResult, Auth};
use serde::{Deserialize, Serialize};

/// The admin routes, finished with the shared layers.
pub fn router(services: Services) -> Router {
    let r = Router::new()
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
            "/v1/chat-identities/{platform}/{workspace}/{user_id}",
            axum::routing::delete(unmap_identity),
        )
        .route("/v1/chat-links", post(create_link_code))
        .route("/v1/keys", get(list_keys).post(create_key))
        .route("/v1/keys/{id}", axum::routing::delete(revoke_key))
        .route("/v1/keys/{id}/rotate", post(rotate_key))
        .route("/v1/secrets", get(list_secrets))
        // Not a secret's name: those never hold a '-'.
        .route("/v1/secrets/move-to-vault", post(move_secrets_to_vault))
        .route(
            "/v1/secrets/{name}",
            axum::routing::put(put_secret).delete(delete_secret),
        );
    firewatch_web::finish(r, services)
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
    /// Slack team id, Discord guild id, Telegram chat id.
    workspace: String,
    user_id: String,
    role: String,
    /// The person the chat user is (the name their API keys act as), so a
    /// run requested with a key cannot be approved from their chat account.
    #[serde(default)]
    person: Option<String>,
}

async fn map_identity(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<IdentityBody>,
) -> ApiResult<(StatusCode, Json<ChatIdentity>)> {
    // Chat users act in threads; the ingest role is for alert senders.
    let role = Role::parse(&body.role)
        .filter(|r| *r != Role::Ingest)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_role",
                "role must be viewer, responder, approver or admin",
            )
        })?;
    let user = identities::ChatUser {
        platform: &body.platform,
        workspace: &body.workspace,
        user_id: &body.user_id,
    };
    let id = identities::register(&svc, &p, user, role, body.person.as_deref()).await?;
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
    ApiPath((platform, workspace, user_id)): ApiPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let user = identities::ChatUser {
        platform: &platform,
        workspace: &workspace,
        user_id: &user_id,
    };
    identities::delete(&svc, &p, user).await?;
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

#[derive(Serialize)]
struct Keys {
    items: Vec<ApiKey>,
}

async fn list_keys(State(svc): State<Services>, Auth(p): Auth) -> ApiResult<Json<Keys>> {
    Ok(Json(Keys {
        items: auth::list_keys(&svc, &p).await?,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    name: String,
    role: String,
    /// Whom the key is for; the calling admin when absent.
    #[serde(default)]
    person: Option<String>,
}

async fn create_key(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<KeyBody>,
) -> ApiResult<(StatusCode, Json<NewApiKey>)> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_role",
            "role must be ingest, viewer, responder, approver or admin",
        )
    })?;
    let key = auth::create_key(&svc, &p, &body.name, role, body.person.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

async fn revoke_key(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    auth::revoke_key(&svc, &p, &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_key(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<NewApiKey>> {
    Ok(Json(auth::rotate_key(&svc, &p, &id).await?))
}

#[derive(Serialize)]
struct Secrets {
    items: Vec<SecretInfo>,
}

async fn list_secrets(State(svc): State<Services>, Auth(p): Auth) -> ApiResult<Json<Secrets>> {
    Ok(Json(Secrets {
        items: secrets::list(&svc, &p).await?,
    }))
}

async fn move_secrets_to_vault(
    State(svc): State<Services>,
    Auth(p): Auth,
) -> ApiResult<Json<secrets::Moved>> {
    Ok(Json(secrets::move_to_vault(&svc, &p).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    value: String,
}

async fn put_secret(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<SecretBody>,
) -> ApiResult<Json<SecretInfo>> {
    Ok(Json(secrets::put(&svc, &p, &name, &body.value).await?))
}

async fn delete_secret(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    secrets::delete(&svc, &p, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    platform: String,
}

async fn create_link_code(
    State(svc): State<Services>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<LinkBody>,
) -> ApiResult<(StatusCode, Json<firewatch_domain::routing::links::LinkCode>)> {
    let code = firewatch_domain::routing::links::create_code(&svc, &p, &body.platform).await?;
    Ok((StatusCode::CREATED, Json(code)))
}
