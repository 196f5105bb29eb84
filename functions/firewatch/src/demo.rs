//! The demo target `firewatch dev` serves beside itself when it loads the
//! example `restart-service` playbook and neither its `ADMIN_API` nor its
//! `ADMIN_TOKEN` secret is set: a
//! small admin API with the routes that playbook calls, so its dry-run,
//! approval, run and rollback work out of the box.
//!
//! It listens on a port of its own (not the API's) and is reached by name,
//! as `localhost:PORT`: that one entry is added to the egress guard's list,
//! so playbook steps and smoke checks may reach it and nothing else local.
//! Its `ADMIN_API` and `ADMIN_TOKEN` are operator secrets of this process
//! only, under any that the environment sets.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use firewatch_domain::ports::{EnvSecrets, SecretSource};
use serde_json::{json, Value};

/// A running demo target.
pub struct Demo {
    /// Its base URL, `http://localhost:PORT`: what `ADMIN_API` is.
    pub url: String,
    /// The egress entry that lets requests reach it: `localhost:PORT`.
    pub allow: String,
    token: String,
}

impl Demo {
    /// The secrets playbooks read: the environment's first, then the
    /// demo's `ADMIN_API` and `ADMIN_TOKEN`.
    pub fn secrets(&self) -> Arc<dyn SecretSource> {
        Arc::new(DemoSecrets(HashMap::from([
            ("ADMIN_API".to_owned(), self.url.clone()),
            ("ADMIN_TOKEN".to_owned(), self.token.clone()),
        ])))
    }
}

/// Whether the environment configures `ADMIN_API` or `ADMIN_TOKEN` itself
/// (then no demo: a real token is never sent to it).
pub async fn admin_api_configured() -> bool {
    for name in ["ADMIN_API", "ADMIN_TOKEN"] {
        if matches!(EnvSecrets.get(name).await, Ok(Some(_)) | Err(_)) {
            return true;
        }
    }
    false
}

/// Starts the demo target on a free port of 127.0.0.1.
pub async fn start() -> Result<Demo, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot start the demo target: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let token = format!("demo_{}", ulid::Ulid::new().to_string().to_lowercase());
    let app = router(token.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Demo {
        url: format!("http://localhost:{port}"),
        allow: format!("localhost:{port}"),
        token,
    })
}

/// The admin API the example playbook calls: a service exists, restarts
/// (with the bearer token), is healthy, and rolls back.
fn router(token: String) -> Router {
    Router::new()
        .route("/services/{name}", get(service))
        .route("/services/{name}/health", get(health))
        .route("/services/{name}/restart", post(restart))
        .route("/services/{name}/rollback", post(rollback))
        .with_state(Arc::new(token))
}

async fn service(Path(name): Path<String>) -> Json<Value> {
    Json(json!({ "name": name, "status": "running" }))
}

async fn health(Path(name): Path<String>) -> Json<Value> {
    Json(json!({ "name": name, "status": "healthy" }))
}

async fn restart(
    State(token): State<Arc<String>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let sent = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if sent != Some(token.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "a bearer token is required" })),
        );
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({ "name": name, "restarting": true })),
    )
}

async fn rollback(Path(name): Path<String>) -> (StatusCode, Json<Value>) {
    (
        StatusCode::ACCEPTED,
        Json(json!({ "name": name, "rolled_back": true })),
    )
}

/// The environment's secrets, then the demo's.
struct DemoSecrets(HashMap<String, String>);

#[async_trait]
impl SecretSource for DemoSecrets {
    async fn get(&self, name: &str) -> Result<Option<String>, String> {
        match EnvSecrets.get(name).await? {
            Some(v) => Ok(Some(v)),
            None => Ok(self.0.get(name).cloned()),
        }
    }
}
