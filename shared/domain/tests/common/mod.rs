//! Helpers shared by the domain's integration tests.
#![allow(dead_code)]

use chrono::Utc;
use firewatch_domain::ingest::{ingest, IngestReport, IngestRequest};
use firewatch_domain::ports::FixedClock;
use firewatch_domain::{DomainError, Services, Settings};
use firewatch_types::{Principal, Role, SourceKind, TenantId};
use std::path::PathBuf;
use std::sync::Arc;

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub struct World {
    pub svc: Services,
    pub clock: Arc<FixedClock>,
}

pub fn world() -> World {
    world_with(Settings::default())
}

pub fn world_with(settings: Settings) -> World {
    // Near the wall clock: the store's TTL runs on it, as DynamoDB's does.
    let clock = Arc::new(FixedClock::new(Utc::now()));
    let svc = firewatch_local::services_in_memory()
        .with_clock(clock.clone())
        .with_settings(settings);
    World { svc, clock }
}

pub fn responder() -> Principal {
    Principal {
        tenant: TenantId::default_tenant(),
        name: "alice".into(),
        role: Role::Responder,
    }
}

pub fn viewer() -> Principal {
    Principal {
        role: Role::Viewer,
        name: "victor".into(),
        ..responder()
    }
}

pub async fn post(
    svc: &Services,
    source: SourceKind,
    body: &[u8],
) -> Result<IngestReport, DomainError> {
    post_with_headers(svc, source, body, Vec::new()).await
}

pub async fn post_with_headers(
    svc: &Services,
    source: SourceKind,
    body: &[u8],
    headers: Vec<(String, String)>,
) -> Result<IngestReport, DomainError> {
    let p = responder();
    ingest(
        svc,
        IngestRequest {
            principal: &p,
            source,
            body,
            headers,
        },
    )
    .await
}

/// A generic alert body with a given fingerprint, status and start time.
pub fn generic(fingerprint: &str, status: &str, starts_at: &str) -> Vec<u8> {
    serde_json::json!({
        "title": format!("alert {fingerprint}"),
        "fingerprint": fingerprint,
        "status": status,
        "severity": "sev2",
        "labels": {"alertname": "Synthetic", "namespace": "ns1", "instance": "host-1"},
        "starts_at": starts_at,
    })
    .to_string()
    .into_bytes()
}
