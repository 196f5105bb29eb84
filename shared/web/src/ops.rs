//! `GET /health` and `GET /version`, mounted once per process.

use axum::routing::get;
use axum::{Json, Router};
use firewatch_domain::Services;
use serde::Serialize;

/// What `GET /version` answers: the crate version, the git sha and build id
/// baked in at build time.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    pub version: &'static str,
    pub git_sha: &'static str,
    pub build_id: &'static str,
}

pub const VERSION: VersionInfo = VersionInfo {
    version: env!("CARGO_PKG_VERSION"),
    git_sha: env!("FIREWATCH_GIT_SHA"),
    build_id: env!("FIREWATCH_BUILD_ID"),
};

/// `/health` and `/version`.
pub fn router(services: Services) -> Router {
    let r = Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/version", get(|| async { Json(VERSION) }));
    crate::finish(r, services)
}
