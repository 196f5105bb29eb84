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

use async_trait::async_trait;
use firewatch_domain::chat::{ChatClient, ChatError};
use firewatch_types::{Card, Destination, ThreadRef};
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Root(String, String),
    Update(String, String),
    Reply(String, String),
}

/// A chat platform that records what it was asked and fails as scripted.
#[derive(Default)]
pub struct FakeChat {
    pub calls: Mutex<Vec<Call>>,
    pub failures: Mutex<Vec<ChatError>>,
    pub down: Mutex<bool>,
    /// The title of every root card posted, in order.
    pub titles: Mutex<Vec<String>>,
}

impl FakeChat {
    pub fn fail(&self) -> Result<(), ChatError> {
        if *self.down.lock().unwrap() {
            return Err(ChatError::Unavailable("503".into()));
        }
        match self.failures.lock().unwrap().pop() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl ChatClient for FakeChat {
    async fn post_root(&self, dest: &Destination, card: &Card) -> Result<ThreadRef, ChatError> {
        self.fail()?;
        let n = self.calls.lock().unwrap().len();
        self.titles.lock().unwrap().push(card.title.clone());
        self.calls.lock().unwrap().push(Call::Root(
            dest.key(),
            format!("{}|{}", card.state, card.occurrences),
        ));
        Ok(ThreadRef {
            destination: dest.clone(),
            root_id: format!("m{n}"),
            thread_id: None,
        })
    }
    async fn update_root(&self, t: &ThreadRef, card: &Card) -> Result<(), ChatError> {
        self.fail()?;
        self.calls.lock().unwrap().push(Call::Update(
            t.root_id.clone(),
            format!("{}|{}", card.state, card.occurrences),
        ));
        Ok(())
    }
    async fn reply(&self, t: &ThreadRef, text: &str) -> Result<(), ChatError> {
        self.fail()?;
        self.calls
            .lock()
            .unwrap()
            .push(Call::Reply(t.root_id.clone(), text.to_owned()));
        Ok(())
    }
}

/// In-memory services whose chat is a [`FakeChat`] and whose incidents go
/// to one Slack channel, for tenant `default`.
pub async fn chat_world() -> (World, Arc<FakeChat>) {
    let settings = Settings {
        default_destinations: vec![Destination::Slack {
            channel: "C0INCIDENTS".into(),
        }],
        ..Settings::default()
    };
    let mut w = world_with(settings);
    let chat = Arc::new(FakeChat::default());
    w.svc = w.svc.clone().with_chat(chat.clone());
    // Tenants exist once they have a key; the dispatcher walks them.
    firewatch_domain::auth::ensure_tenant(&w.svc, &responder().tenant)
        .await
        .unwrap();
    (w, chat)
}
