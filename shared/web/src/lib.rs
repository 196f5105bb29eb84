//! axum glue shared by every firewatch HTTP function: the error type and
//! extractors that speak our JSON error format, authentication, request and
//! correlation ids, `/health` and `/version`, configuration and tracing.

pub mod auth;
pub mod config;
pub mod context;
pub mod error;
pub mod extract;
pub mod ops;
#[cfg(debug_assertions)]
mod recording;
#[cfg(feature = "testing")]
pub mod testing;

pub use auth::Auth;
pub use config::{init_tracing, Config, LogFormat};
pub use error::{ApiError, ApiResult};
pub use extract::{ApiBytes, ApiJson, ApiPath, ApiQuery};

use axum::Router;
use firewatch_domain::Services;

/// The layers every router gets: request ids and tracing span, body limit,
/// and a panic guard that answers 500 in our format instead of dropping the
/// connection. Applied by each family's `router()` so routers merge cleanly.
#[track_caller]
pub fn finish(router: Router<Services>, services: Services) -> Router {
    #[cfg(debug_assertions)]
    let (router, services) =
        recording::wrap(router, services, std::panic::Location::caller().file());
    let limit = services.settings.max_body_bytes;
    router
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .layer(axum::middleware::from_fn(context::request_context))
        .with_state(services)
}

/// A JSON 404 for paths no router owns.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}
