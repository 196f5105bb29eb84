//! Helpers for in-process router tests: build requests, send them through a
//! router with `oneshot` (no server, no port), read JSON answers.

pub mod fakes;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use firewatch_domain::{auth, Services};
use firewatch_types::{Role, TenantId};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Answer {
    /// The `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

/// Sends one request through `app`.
pub async fn send(app: &Router, req: Request<Body>) -> Answer {
    let res = app
        .clone()
        .oneshot(req)
        .await
        .expect("routers are infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        json,
        text,
    }
}

/// A request builder with a JSON body.
pub fn json_request(
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(body.into()).expect("valid request")
}

/// A GET with a token.
pub fn get(uri: &str, token: &str) -> Request<Body> {
    Request::builder()
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("valid request")
}

/// In-memory services with one key per role for tenant `default`.
pub struct Keys {
    pub viewer: String,
    pub responder: String,
    pub admin: String,
}

pub async fn services_with_keys() -> (Services, Keys) {
    services_and_keys(firewatch_local::services_in_memory()).await
}

pub async fn services_and_keys(svc: Services) -> (Services, Keys) {
    let t = TenantId::default_tenant();
    let make = |role: Role| {
        let svc = svc.clone();
        let t = t.clone();
        async move {
            auth::create_api_key(&svc, &t, role.as_str(), role)
                .await
                .expect("key")
        }
    };
    let keys = Keys {
        viewer: make(Role::Viewer).await,
        responder: make(Role::Responder).await,
        admin: make(Role::Admin).await,
    };
    (svc, keys)
}

/// The audit events of tenant `default`, oldest first, as stored (the
/// first 200).
pub async fn audit_events(svc: &Services) -> Vec<firewatch_domain::ports::Item> {
    svc.store
        .query(firewatch_domain::ports::Query::all(
            firewatch_domain::keys::audit_pk(&TenantId::default_tenant()),
            200,
        ))
        .await
        .expect("audit events")
        .items
}

/// The actions of [`audit_events`] that start with `prefix`, in order.
pub async fn audit_actions(svc: &Services, prefix: &str) -> Vec<String> {
    audit_events(svc)
        .await
        .iter()
        .filter_map(|i| {
            let v: serde_json::Value = serde_json::from_str(&i.data).ok()?;
            v["action"].as_str().map(str::to_owned)
        })
        .filter(|a| a.starts_with(prefix))
        .collect()
}

/// An `ingest` key of tenant `default`: what an alert sender gets.
pub async fn ingest_key(svc: &Services) -> String {
    auth::create_api_key(svc, &TenantId::default_tenant(), "sender", Role::Ingest)
        .await
        .expect("key")
}

/// A test fixture from `tests/fixtures/` at the workspace root.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A local stand-in for a chat platform's HTTP API, served on 127.0.0.1.
///
/// [`FakePlatform::set_down`] makes it unreachable (connections are refused
/// at accept, as when the platform or the network is out) without losing the
/// port, so the clients under test meet a real outage. Every answer carries
/// `Connection: close` so no pooled connection outlives an outage.
pub struct FakePlatform {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FakePlatform {
    /// Serves `api` until the test's runtime ends.
    pub async fn serve(api: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let api = api.layer(axum::middleware::map_response(
            |mut res: axum::response::Response| async move {
                res.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
                res
            },
        ));
        let gated = Gated {
            inner: listener,
            down: down.clone(),
        };
        tokio::spawn(async move { axum::serve(gated, api).await });
        Self { base, down }
    }

    /// Takes the platform offline (`true`) or back online (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }
}

struct Gated {
    inner: tokio::net::TcpListener,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl axum::serve::Listener for Gated {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((io, addr)) = self.inner.accept().await else {
                continue;
            };
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                // Dropped unread: the client's request fails as on an outage.
                drop(io);
                continue;
            }
            return (io, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Ingests `body` as an alert from `source` for tenant `default` and returns
/// the incident it opened or joined (with its outbox record).
pub async fn ingest_alert(
    svc: &Services,
    source: firewatch_types::SourceKind,
    body: &[u8],
) -> firewatch_types::IncidentId {
    let p = firewatch_types::Principal {
        tenant: TenantId::default_tenant(),
        name: "source:test".into(),
        role: Role::Responder,
    };
    let report = firewatch_domain::ingest::ingest(
        svc,
        firewatch_domain::ingest::IngestRequest {
            principal: &p,
            source,
            body,
            headers: vec![],
        },
    )
    .await
    .expect("the alert is accepted");
    report.incidents[0].clone()
}

/// Ingests the Alertmanager `firing.json` fixture for tenant `default` and
/// returns the id of the incident it opened (with its outbox record).
pub async fn open_incident(svc: &Services) -> String {
    ingest_alert(
        svc,
        firewatch_types::SourceKind::Alertmanager,
        &fixture("alertmanager/firing.json"),
    )
    .await
    .to_string()
}

/// In-memory services for a chat platform's tests: a fixed clock near now,
/// `chat` as the chat port with `dest` as the default destination, tenant
/// `default` owning `workspace` of `platform`, and the chat users
/// `responder` and `viewer` of that workspace mapped to those roles.
pub async fn chat_services(
    chat: std::sync::Arc<dyn firewatch_domain::chat::ChatClient>,
    dest: firewatch_types::Destination,
    platform: &str,
    workspace: &str,
    responder: &str,
    viewer: &str,
) -> (
    Services,
    std::sync::Arc<firewatch_domain::ports::FixedClock>,
) {
    let clock = std::sync::Arc::new(firewatch_domain::ports::FixedClock::new(chrono::Utc::now()));
    let settings = firewatch_domain::Settings {
        default_destinations: vec![dest],
        ..Default::default()
    };
    let svc = firewatch_local::services_in_memory()
        .with_clock(clock.clone())
        .with_settings(settings)
        .with_chat(chat);
    let t = TenantId::default_tenant();
    auth::ensure_tenant(&svc, &t).await.expect("tenant");
    let admin = firewatch_types::Principal {
        tenant: t,
        name: "admin".into(),
        role: Role::Admin,
    };
    firewatch_domain::routing::links::link_workspace_directly(
        &svc,
        &admin.tenant,
        platform,
        workspace,
    )
    .await
    .expect("workspace");
    for (user, role) in [(responder, Role::Responder), (viewer, Role::Viewer)] {
        let user = firewatch_domain::chat::identities::ChatUser {
            platform,
            workspace,
            user_id: user,
        };
        firewatch_domain::chat::identities::register(&svc, &admin, user, role, None)
            .await
            .expect("identity");
    }
    (svc, clock)
}

/// Two playbooks offered for every incident, for the chat tests: one that
/// runs without approval (a notify step), one that needs an approver.
pub fn playbooks() -> std::sync::Arc<firewatch_domain::playbooks::Catalog> {
    const TELL: &str = "name: tell-team\ntitle: Tell the team\nrisk: low\napproval: never\nsteps:\n  - name: say\n    kind: notify\n    text: \"Looking at {{ incident.title }}\"\n";
    const GUARDED: &str = "name: guarded\ntitle: Needs an approver\nrisk: high\napproval: always\nsteps:\n  - name: say\n    kind: notify\n    text: approved work\n";
    let mut loaded = firewatch_domain::playbooks::Loaded::default();
    loaded.add("tell-team.yaml", TELL);
    loaded.add("guarded.yaml", GUARDED);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    std::sync::Arc::new(firewatch_domain::playbooks::Catalog::new(loaded))
}

/// Runs the dispatcher until the outbox has nothing due (a delivery can
/// enqueue more, as a playbook step's outcome does).
pub async fn settle(svc: &Services) {
    for _ in 0..20 {
        match firewatch_domain::dispatch::drain(svc).await {
            Ok(d) if d.delivered == 0 => return,
            Ok(_) => {}
            Err(e) => panic!("the dispatcher failed: {e}"),
        }
    }
}

/// Log lines written while a [`capture_logs`] guard lives, as JSON.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Captures every log line of this thread (all levels, as JSON) until the
/// guard drops; for tests that no secret reaches the log.
pub fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

/// The triage feedback of tenant `default`, as a viewer reads it.
pub async fn triage_votes(svc: &Services) -> firewatch_domain::triage::feedback::Tally {
    let viewer = firewatch_types::Principal {
        tenant: firewatch_types::TenantId::default_tenant(),
        name: "viewer".into(),
        role: firewatch_types::Role::Viewer,
    };
    firewatch_domain::triage::feedback::summary(svc, &viewer)
        .await
        .expect("the feedback summary reads")
        .overall
}

/// A model that records the prompts it is given and refuses every one (as
/// Bedrock names its refusals): what a test reads to see what a prompt held.
#[derive(Default)]
pub struct ListeningModel(pub std::sync::Mutex<Vec<String>>);

impl ListeningModel {
    /// The prompts given so far.
    pub fn prompts(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl firewatch_domain::ports::Llm for ListeningModel {
    fn provider(&self) -> &'static str {
        "bedrock"
    }
    fn model(&self) -> String {
        "listening-model".into()
    }
    async fn complete(
        &self,
        req: &firewatch_domain::ports::LlmRequest,
    ) -> Result<firewatch_domain::ports::LlmAnswer, firewatch_domain::ports::LlmError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(req.prompt.clone());
        Err(firewatch_domain::ports::LlmError::Refused("denied".into()))
    }
}
