//! Playbook runs through the real router, against a recording HTTP target on
//! 127.0.0.1, with steps performed by the real dispatcher (`drain`) and
//! secrets from a secret source: dry-run, four-eyes approval, execute,
//! rollback, waits, idempotency, and no secret anywhere.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::Router;
use firewatch_domain::playbooks::{Catalog, Loaded};
use firewatch_domain::ports::{FixedClock, Query};
use firewatch_domain::{auth, dispatch, keys, Services};
use firewatch_types::{Role, SourceKind, TenantId};
use firewatch_web::testing::{get, json_request, send, services_and_keys, Answer, FakePlatform};
use serde_json::{json, Value};

const TOKEN: &str = "tok-s3cr3t-admin-value";

/// One request the target received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HeaderMap,
    body: String,
}

/// Queued answers per `METHOD /path`.
type Answers = HashMap<String, VecDeque<(u16, Value)>>;

/// Answers per `METHOD /path`, in order; the last one repeats. Default 200 {}.
#[derive(Clone, Default)]
struct Target {
    seen: Arc<Mutex<Vec<Seen>>>,
    answers: Arc<Mutex<Answers>>,
}

impl Target {
    fn answer(&self, route: &str, status: u16, body: Value) {
        self.answers
            .lock()
            .unwrap()
            .entry(route.to_owned())
            .or_default()
            .push_back((status, body));
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn routes(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }
}

async fn record(
    State(t): State<Target>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let route = format!("{method} {}", uri.path());
    t.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let mut answers = t.answers.lock().unwrap();
    let (status, body) = match answers.get_mut(&route) {
        Some(q) if q.len() > 1 => q.pop_front().unwrap(),
        Some(q) if q.len() == 1 => q[0].clone(),
        _ => (200, json!({})),
    };
    (StatusCode::from_u16(status).unwrap(), axum::Json(body))
}

/// Secrets a test can change while a run goes on.
#[derive(Default)]
struct Secrets(Mutex<HashMap<String, String>>);

impl Secrets {
    fn set(&self, name: &str, value: &str) {
        self.0.lock().unwrap().insert(name.into(), value.into());
    }
}

#[async_trait::async_trait]
impl firewatch_domain::ports::SecretSource for Secrets {
    async fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.0.lock().unwrap().get(name).cloned())
    }
}

struct World {
    svc: Services,
    secrets: Arc<Secrets>,
    app: Router,
    clock: Arc<FixedClock>,
    target: Target,
    platform: FakePlatform,
    chat: Arc<RecordingChat>,
    incident: String,
    viewer: String,
    responder: String,
    responder2: String,
    approver: String,
    approver2: String,
    tracker: firewatch_web::testing::fakes::FakeTracker,
}

/// Chat replies and card edits, recorded.
#[derive(Default)]
struct RecordingChat(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl firewatch_domain::chat::ChatClient for RecordingChat {
    async fn post_root(
        &self,
        _dest: &firewatch_types::Destination,
        card: &firewatch_types::Card,
    ) -> Result<firewatch_types::ThreadRef, firewatch_domain::chat::ChatError> {
        self.0.lock().unwrap().push(format!("root: {}", card.title));
        Ok(firewatch_types::ThreadRef {
            destination: firewatch_types::Destination::Console,
            root_id: "1".into(),
            thread_id: None,
        })
    }
    async fn update_root(
        &self,
        _t: &firewatch_types::ThreadRef,
        card: &firewatch_types::Card,
    ) -> Result<(), firewatch_domain::chat::ChatError> {
        self.0.lock().unwrap().push(format!("edit: {}", card.state));
        Ok(())
    }
    async fn reply(
        &self,
        _t: &firewatch_types::ThreadRef,
        text: &str,
    ) -> Result<(), firewatch_domain::chat::ChatError> {
        self.0.lock().unwrap().push(format!("reply: {text}"));
        Ok(())
    }
    async fn post_message(
        &self,
        _t: &firewatch_types::ThreadRef,
        m: &firewatch_types::ChatMessage,
    ) -> Result<String, firewatch_domain::chat::ChatError> {
        let mut all = self.0.lock().unwrap();
        all.push(format!("message: {}", m.text));
        Ok(format!("m{}", all.len()))
    }
    async fn edit_message(
        &self,
        _t: &firewatch_types::ThreadRef,
        id: &str,
        m: &firewatch_types::ChatMessage,
    ) -> Result<(), firewatch_domain::chat::ChatError> {
        let buttons: Vec<_> = m.buttons.iter().map(|b| b.label.clone()).collect();
        self.0
            .lock()
            .unwrap()
            .push(format!("message-edit {id}: {} {buttons:?}", m.text));
        Ok(())
    }
}

impl RecordingChat {
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

const EXTRA: &str = r#"
name: always-fails
title: A restart whose second step fails
match: { labels: { service: "*" } }
risk: low
approval: never
steps:
  - name: first
    kind: http
    request: { method: POST, url: "{{ secrets.ADMIN_API }}/first", headers: { X-Token: "{{ secrets.ADMIN_TOKEN }}" } }
  - name: second
    kind: http
    request: { method: POST, url: "{{ secrets.ADMIN_API }}/second" }
    expect: { status: [200] }
  - name: never reached
    kind: http
    request: { method: POST, url: "{{ secrets.ADMIN_API }}/third" }
rollback:
  - name: undo first
    kind: http
    request: { method: POST, url: "{{ secrets.ADMIN_API }}/undo" }
  - name: tell
    kind: notify
    text: "rolled back {{ params.service }}"
params:
  service: { default: "{{ incident.labels.service }}" }
"#;

const TICKETS: &str = r#"
name: files-ticket
title: Files the incident's ticket
match: { labels: { ticketing: "yes" } }
risk: low
approval: never
steps:
  - name: track it
    kind: ticket
"#;

/// dbt Cloud's shape: the request's origin is a parameter, limited to its
/// `allowed` origins, and the token goes with it.
const PINNED: &str = r#"
name: pinned-host
title: Checks a job on a pinned host
match: { labels: { service: "*" } }
risk: low
approval: never
params:
  host: { default: "https://cloud.getdbt.com", allowed: ["https://cloud.getdbt.com", "https://emea.dbt.com"] }
steps:
  - name: job exists
    kind: http
    read_only: true
    request:
      method: GET
      url: "{{ params.host }}/api/v2/jobs/1/"
      headers: { Authorization: "Token {{ secrets.ADMIN_TOKEN }}" }
"#;

const WAITS: &str = r#"
name: waits
title: Waits for health
match: { labels: { service: "*" } }
risk: low
approval: never
steps:
  - name: healthy
    kind: wait_until
    request: { method: GET, url: "{{ secrets.ADMIN_API }}/health" }
    expect: { status: [200], json: { status: healthy } }
    interval: 2s
    timeout: 10s
"#;

async fn world() -> World {
    let target = Target::default();
    let platform =
        FakePlatform::serve(Router::new().fallback(record).with_state(target.clone())).await;
    let clock = Arc::new(FixedClock::new(chrono::Utc::now()));
    let chat = Arc::new(RecordingChat::default());
    let secrets = Arc::new(Secrets::default());
    secrets.set("ADMIN_API", &platform.base);
    secrets.set("ADMIN_TOKEN", TOKEN);
    secrets.set("GITHUB_TOKEN", "ghp_s3cr3tgithubtoken000");
    let settings = firewatch_domain::Settings {
        default_destinations: vec![firewatch_types::Destination::Console],
        // GitHub's API is the recording target here.
        github_api_url: format!("{}/github", platform.base),
        ..Default::default()
    };
    let tracker = firewatch_web::testing::fakes::FakeTracker::start().await;
    let svc = firewatch_local::services_in_memory()
        .with_clock(clock.clone())
        .with_settings(settings)
        .with_chat(chat.clone())
        .with_secrets(secrets.clone())
        .with_egress(Arc::new(firewatch_egress::HttpEgress::new(
            firewatch_domain::egress::EgressAllow::parse("127.0.0.1").unwrap(),
        )))
        .with_tracker(Some(Arc::new(firewatch_egress::trackers::GitHub::new(
            tracker.base(),
            "ghp_playbook_token",
            "acme/ops",
        ))));
    let (svc, k) = services_and_keys(svc).await;
    let t = TenantId::default_tenant();
    let key = |name: &'static str, role| {
        let svc = svc.clone();
        let t = t.clone();
        async move { auth::create_api_key(&svc, &t, name, role).await.unwrap() }
    };
    let responder2 = key("responder-2", Role::Responder).await;
    let approver = key("approver-1", Role::Approver).await;
    let approver2 = key("approver-2", Role::Approver).await;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/examples");
    let mut loaded: Loaded = firewatch_domain::playbooks::definition::load_dir(&dir).unwrap();
    loaded.add("always-fails.yaml", EXTRA);
    loaded.add("waits.yaml", WAITS);
    loaded.add("files-ticket.yaml", TICKETS);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let app = firewatch_playbooks::router(svc.clone(), Arc::new(Catalog::new(loaded)));

    let body = json!({"title": "api is down", "severity": "sev2", "labels": {"service": "api"}});
    let incident = firewatch_web::testing::ingest_alert(
        &svc,
        SourceKind::Generic,
        body.to_string().as_bytes(),
    )
    .await
    .to_string();
    deliver(&svc).await;
    World {
        svc,
        secrets,
        app,
        clock,
        target,
        platform,
        chat,
        incident,
        viewer: k.viewer,
        responder: k.responder,
        responder2,
        approver,
        approver2,
        tracker,
    }
}

/// Runs the dispatcher until the outbox has nothing due.
async fn deliver(svc: &Services) {
    for _ in 0..50 {
        let d = dispatch::drain(svc).await.unwrap();
        if d.delivered == 0 && d.retrying == 0 && d.dead == 0 {
            return;
        }
    }
    panic!("the outbox never settled");
}

fn post(uri: &str, token: &str, body: Value, key: Option<&str>) -> Request<Body> {
    let mut r = json_request(Method::POST, uri, Some(token), body.to_string());
    if let Some(k) = key {
        r.headers_mut()
            .insert("idempotency-key", k.parse().unwrap());
    }
    r
}

impl World {
    async fn dry_run(&self, name: &str, token: &str, params: Value) -> Answer {
        self.dry_run_on(&self.incident, name, token, params).await
    }

    async fn dry_run_on(&self, incident: &str, name: &str, token: &str, params: Value) -> Answer {
        send(
            &self.app,
            post(
                &format!("/v1/incidents/{incident}/playbooks/{name}/dry-run"),
                token,
                json!({"params": params}),
                None,
            ),
        )
        .await
    }

    /// A second incident, from a generic alert.
    async fn incident_from(&self, alert: Value) -> String {
        firewatch_web::testing::ingest_alert(
            &self.svc,
            SourceKind::Generic,
            alert.to_string().as_bytes(),
        )
        .await
        .to_string()
    }

    async fn decide(&self, run: &str, what: &str, token: &str, key: Option<&str>) -> Answer {
        send(
            &self.app,
            post(
                &format!("/v1/playbook-runs/{run}/{what}"),
                token,
                json!({}),
                key,
            ),
        )
        .await
    }

    async fn run(&self, run: &str) -> Value {
        let a = send(
            &self.app,
            get(&format!("/v1/playbook-runs/{run}"), &self.viewer),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.json
    }

    async fn items(&self, pk: String) -> Vec<String> {
        self.svc
            .store
            .query(Query {
                pk,
                sk_prefix: String::new(),
                after: None,
                limit: 1000,
                descending: false,
            })
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|i| i.data)
            .collect()
    }

    /// Every stored item a run can have touched, as text.
    async fn everything_stored(&self) -> String {
        let t = TenantId::default_tenant();
        let inc = firewatch_types::IncidentId::parse(&self.incident).unwrap();
        let mut all = Vec::new();
        for pk in [
            keys::incident_pk(&t, &inc),
            keys::incidents_pk(&t),
            keys::audit_pk(&t),
            keys::outbox_pk(&t),
            keys::playbook_runs_pk(&t),
            keys::idempotency_pk(&t),
            format!("{t}#DLQ"),
        ] {
            all.extend(self.items(pk).await);
        }
        all.join("\n")
    }

    async fn timeline_states(&self) -> Vec<String> {
        let t = TenantId::default_tenant();
        let inc = firewatch_types::IncidentId::parse(&self.incident).unwrap();
        self.items(keys::incident_pk(&t, &inc))
            .await
            .iter()
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter(|v| v["kind"] == "playbook")
            .map(|v| v["state"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn audit_actions(&self) -> Vec<String> {
        self.items(keys::audit_pk(&TenantId::default_tenant()))
            .await
            .iter()
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .map(|v| v["action"].as_str().unwrap().to_owned())
            .filter(|a| a.starts_with("playbook."))
            .collect()
    }
}

fn id(a: &Answer) -> String {
    a.json["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", a.text))
        .to_owned()
}

#[tokio::test]
async fn offered_playbooks_have_their_parameters_filled_from_the_incident() {
    let w = world().await;
    let a = send(
        &w.app,
        get(
            &format!("/v1/incidents/{}/playbooks", w.incident),
            &w.viewer,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let items = a.json["items"].as_array().unwrap();
    let names: Vec<_> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"restart-service"), "{names:?}");
    // Matches nothing without a dag_id label.
    assert!(!names.contains(&"airflow-rerun-dag"));
    let restart = items
        .iter()
        .find(|i| i["name"] == "restart-service")
        .unwrap();
    assert_eq!(
        restart["params"],
        json!({"service": "api", "mode": "graceful"})
    );
    assert_eq!(restart["approval"], "always");

    let all = send(&w.app, get("/v1/playbooks", &w.viewer)).await;
    assert_eq!(all.json["items"].as_array().unwrap().len(), 10);
    assert_eq!(all.json["errors"], json!([]));
}

#[tokio::test]
async fn a_dry_run_sends_only_the_read_only_requests_and_masks_secrets() {
    let w = world().await;
    let a = w.dry_run("restart-service", &w.responder, json!({})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    // Only the preflight GET reached the target.
    assert_eq!(w.target.routes(), ["GET /services/api"]);
    let run = &a.json;
    assert_eq!(run["state"], "awaiting_approval");
    assert_eq!(run["preflight"][0]["status"], "succeeded");
    assert_eq!(run["preflight"][0]["http_status"], 200);
    // Every request rendered as it would be sent, secrets masked.
    let restart = &run["preview"][1]["request"];
    assert_eq!(restart["method"], "POST");
    assert_eq!(restart["url"], "***ADMIN_API***/services/api/restart");
    assert_eq!(
        restart["headers"]["Authorization"],
        "Bearer ***ADMIN_TOKEN***"
    );
    assert_eq!(restart["json"], json!({"mode": "graceful"}));
    assert_eq!(
        run["rollback_preview"][0]["request"]["url"],
        "***ADMIN_API***/services/api/rollback"
    );
    assert!(!a.text.contains(TOKEN) && !a.text.contains(&w.platform.base));
    // Nothing else happened: no step, no rollback, no effect waiting.
    deliver(&w.svc).await;
    assert_eq!(w.target.routes(), ["GET /services/api"]);
    assert_eq!(
        w.timeline_states().await,
        ["dry_run_ok", "awaiting_approval"]
    );
}

#[tokio::test]
async fn a_failing_preflight_fails_the_dry_run_and_bad_params_are_400() {
    let w = world().await;
    w.target.answer(
        "GET /services/api",
        404,
        json!({"error": "no such service"}),
    );
    let a = w.dry_run("restart-service", &w.responder, json!({})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json["state"], "dry_run_failed");
    assert!(a.json["history"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("expected status 200, got 404"));
    let e = send(
        &w.app,
        post(
            &format!("/v1/playbook-runs/{}/execute", id(&a)),
            &w.responder,
            json!({}),
            None,
        ),
    )
    .await;
    assert_eq!(e.status, StatusCode::CONFLICT);

    let bad = w
        .dry_run("restart-service", &w.responder, json!({"mode": "nuke"}))
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "param_not_allowed")
    );
    let unknown = w
        .dry_run("restart-service", &w.responder, json!({"colour": "red"}))
        .await;
    assert_eq!(unknown.code(), "unknown_param");
    assert!(
        unknown.text.contains("`colour`"),
        "a plain name is named: {}",
        unknown.text
    );
    // A name that is no plain word (a token pasted as a key) is not echoed.
    let odd = w
        .dry_run(
            "restart-service",
            &w.responder,
            json!({"xoxb-Zq9marker": "red"}),
        )
        .await;
    assert_eq!(odd.code(), "unknown_param");
    assert!(!odd.text.contains("Zq9marker"), "{}", odd.text);
    let missing = w.dry_run("no-such-playbook", &w.responder, json!({})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let viewer = w.dry_run("restart-service", &w.viewer, json!({})).await;
    assert_eq!(viewer.status, StatusCode::FORBIDDEN);
    // An alert sender's key runs no playbook.
    let sender = firewatch_web::testing::ingest_key(&w.svc).await;
    let ingest = w.dry_run("restart-service", &sender, json!({})).await;
    assert_eq!(ingest.status, StatusCode::FORBIDDEN, "{}", ingest.text);
    let not_offered = w
        .dry_run("airflow-rerun-dag", &w.responder, json!({}))
        .await;
    assert_eq!(
        (not_offered.status, not_offered.code()),
        (StatusCode::CONFLICT, "playbook_not_offered")
    );
}

#[tokio::test]
async fn a_responder_cannot_send_a_playbooks_secret_to_another_origin() {
    let w = world().await;
    let mut loaded = Loaded::default();
    loaded.add("pinned-host.yaml", PINNED);
    let pinned = firewatch_playbooks::router(w.svc.clone(), Arc::new(Catalog::new(loaded)));
    // A host parameter may only be one of its allowed origins: the local
    // listener asked for is refused before anything is sent.
    for host in [
        w.platform.base.clone(),
        "http://127.0.0.1:18765".to_owned(),
        "https://cloud.getdbt.com.evil.example".to_owned(),
    ] {
        let a = send(
            &pinned,
            post(
                &format!("/v1/incidents/{}/playbooks/pinned-host/dry-run", w.incident),
                &w.responder,
                json!({"params": {"host": host}}),
                None,
            ),
        )
        .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, "param_not_allowed"),
            "{}",
            a.text
        );
    }
    assert!(w.target.seen().is_empty(), "{:?}", w.target.routes());
    // A `../` value stays one literal path segment of the pinned origin.
    let a = w
        .dry_run(
            "restart-service",
            &w.responder,
            json!({"service": "../admin"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(w.target.routes(), ["GET /services/..%2Fadmin"]);
    let a = w
        .dry_run(
            "restart-service",
            &w.responder,
            json!({"service": "x/../../admin?y=1#z"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(
        w.target.routes().last().unwrap(),
        "GET /services/x%2F..%2F..%2Fadmin%3Fy%3D1%23z"
    );
}

#[tokio::test]
async fn approval_by_the_requester_by_a_responder_or_after_expiry_is_refused() {
    let w = world().await;
    let run = id(&w.dry_run("restart-service", &w.approver, json!({})).await);
    // The requester, though an approver, cannot approve their own run.
    let own = w.decide(&run, "approve", &w.approver, None).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.text);
    assert!(own.text.contains("four eyes"));
    // A responder lacks the role.
    let responder = w.decide(&run, "approve", &w.responder, None).await;
    assert_eq!(responder.status, StatusCode::FORBIDDEN);
    // Running before approval is refused.
    let early = w.decide(&run, "execute", &w.responder, None).await;
    assert_eq!(
        (early.status, early.code()),
        (StatusCode::CONFLICT, "approval_required")
    );
    assert_eq!(w.run(&run).await["state"], "awaiting_approval");

    // After expiry (30 minutes), the run expires and approval is refused.
    w.clock.advance(chrono::Duration::minutes(31));
    let late = w.decide(&run, "approve", &w.approver2, None).await;
    assert_eq!(
        (late.status, late.code()),
        (StatusCode::CONFLICT, "approval_expired")
    );
    assert_eq!(w.run(&run).await["state"], "expired");
    assert!(w.timeline_states().await.contains(&"expired".to_owned()));
}

#[tokio::test]
async fn four_eyes_are_two_people_whatever_keys_or_chat_accounts_they_hold() {
    let w = world().await;
    let t = TenantId::default_tenant();
    let alice = firewatch_types::Principal {
        tenant: t.clone(),
        name: "alice".into(),
        role: Role::Admin,
    };
    // Alice mints two keys for herself, and one for Bob.
    let mint = |name: &'static str, role, person: Option<&'static str>| {
        let (svc, alice) = (w.svc.clone(), alice.clone());
        async move {
            auth::create_key(&svc, &alice, name, role, person)
                .await
                .unwrap()
                .token
        }
    };
    let alice_responder = mint("alice-laptop", Role::Responder, None).await;
    let alice_approver = mint("alice-approver", Role::Approver, None).await;
    let bob = mint("bob", Role::Approver, Some("bob")).await;
    let run = id(&w
        .dry_run("restart-service", &alice_responder, json!({}))
        .await);
    assert_eq!(w.run(&run).await["requested_by"], "alice");
    let own = w.decide(&run, "approve", &alice_approver, None).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.text);
    assert!(own.text.contains("four eyes"), "{}", own.text);
    // Her chat account is Alice too.
    firewatch_domain::routing::links::link_workspace_directly(&w.svc, &t, "slack", "T0ACME")
        .await
        .unwrap();
    let user = firewatch_domain::chat::identities::ChatUser {
        platform: "slack",
        workspace: "T0ACME",
        user_id: "U0ALICE",
    };
    firewatch_domain::chat::identities::register(
        &w.svc,
        &alice,
        user,
        Role::Approver,
        Some("alice"),
    )
    .await
    .unwrap();
    let from_chat = firewatch_domain::chat::identities::principal(&w.svc, user)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from_chat.name, "alice");
    let chat_approve =
        firewatch_domain::playbooks::runs::approve(&w.svc, &from_chat, &run, None).await;
    assert!(
        matches!(chat_approve, Err(firewatch_domain::DomainError::Forbidden(ref m)) if m.contains("four eyes")),
        "{chat_approve:?}"
    );
    // Bob is a second pair of eyes.
    let ok = w.decide(&run, "approve", &bob, None).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(w.run(&run).await["decided_by"], "bob");
}

#[tokio::test]
async fn an_approved_run_executes_every_step_once_and_succeeds() {
    let w = world().await;
    w.target.answer(
        "GET /services/api/health",
        200,
        json!({"status": "starting"}),
    );
    w.target.answer(
        "GET /services/api/health",
        200,
        json!({"status": "healthy"}),
    );
    let run = id(&w
        .dry_run("restart-service", &w.responder, json!({"mode": "hard"}))
        .await);
    let ok = w.decide(&run, "approve", &w.approver, None).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json["state"], "approved");
    assert_eq!(ok.json["decided_by"], "approver-1");
    deliver(&w.svc).await;

    let started = w.decide(&run, "execute", &w.responder2, None).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text);
    assert_eq!(started.json["state"], "running");
    deliver(&w.svc).await;
    // The first health poll said "starting": the wait is scheduled, not slept.
    assert_eq!(w.run(&run).await["steps"][2]["status"], "waiting");
    w.clock.advance(chrono::Duration::seconds(3));
    deliver(&w.svc).await;

    let done = w.run(&run).await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    // The read-only check runs again as the run's first step.
    assert_eq!(
        w.target.routes(),
        [
            "GET /services/api",
            "GET /services/api",
            "POST /services/api/restart",
            "GET /services/api/health",
            "GET /services/api/health",
        ]
    );
    // The real request carried the real secret and the rendered body.
    let restart = &w.target.seen()[2];
    assert_eq!(restart.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(
        serde_json::from_str::<Value>(&restart.body).unwrap(),
        json!({"mode": "hard"})
    );
    for s in done["steps"].as_array().unwrap() {
        assert_eq!(s["status"], "succeeded", "{s}");
        assert!(
            s["http_status"].is_u64() && s["duration_ms"].is_u64(),
            "{s}"
        );
    }
    // Every transition: on the timeline, in chat, in the audit log.
    let states = w.timeline_states().await;
    assert_eq!(
        states,
        [
            "dry_run_ok",
            "awaiting_approval",
            "approved",
            "running",
            "running",
            "running",
            "succeeded"
        ]
    );
    let audit = w.audit_actions().await;
    for s in [
        "dry_run_ok",
        "awaiting_approval",
        "approved",
        "running",
        "succeeded",
    ] {
        assert!(
            audit.contains(&format!("playbook.{s}")),
            "{s} not audited: {audit:?}"
        );
    }
    let chat = w.chat.all();
    let replies: Vec<_> = chat
        .iter()
        .filter(|c| c.starts_with("reply: ") && c.contains("restart-service"))
        .collect();
    assert_eq!(replies.len(), states.len(), "{chat:#?}");
    assert!(replies.last().unwrap().contains("succeeded"));
    assert!(chat.iter().filter(|c| c.starts_with("edit: ")).count() >= states.len());
    // The run's own message: posted once, then edited at every transition
    // to the run's current state, with the buttons that state allows.
    let posted: Vec<_> = chat.iter().filter(|c| c.starts_with("message: ")).collect();
    assert_eq!(posted.len(), 1, "{chat:#?}");
    assert!(posted[0].contains("***ADMIN_API***/services/api/restart"));
    let edits: Vec<_> = chat
        .iter()
        .filter(|c| c.starts_with("message-edit "))
        .collect();
    assert_eq!(edits.len(), states.len() - 1, "{chat:#?}");
    assert!(
        edits.last().unwrap().contains("succeeded")
            && edits.last().unwrap().contains("[\"Roll back\"]")
    );
    assert!(chat
        .iter()
        .any(|c| c.contains("approved") && c.contains("[\"Run\", \"Cancel\"]")));
}

#[tokio::test]
async fn twenty_concurrent_executes_perform_each_step_once() {
    for same_key in [true, false] {
        let w = world().await;
        let run = id(&w.dry_run("always-fails", &w.responder, json!({})).await);
        w.target.answer("POST /second", 200, json!({}));
        let calls = (0..20).map(|i| {
            let key = if same_key {
                "one-key".to_owned()
            } else {
                format!("key-{i}")
            };
            let w = &w;
            let run = run.clone();
            async move { w.decide(&run, "execute", &w.responder, Some(&key)).await }
        });
        let answers = futures_util::future::join_all(calls).await;
        let started = answers
            .iter()
            .filter(|a| a.status == StatusCode::ACCEPTED)
            .count();
        if same_key {
            // The same key: every caller gets the first answer.
            assert_eq!(
                started,
                20,
                "{:?}",
                answers.iter().map(|a| &a.text).collect::<Vec<_>>()
            );
            assert!(answers
                .iter()
                .all(|a| a.json["id"] == run.as_str() && a.json["state"] == "running"));
        } else {
            assert_eq!(
                started,
                1,
                "{:?}",
                answers.iter().map(|a| a.status).collect::<Vec<_>>()
            );
            assert!(answers
                .iter()
                .filter(|a| a.status != StatusCode::ACCEPTED)
                .all(|a| a.status == StatusCode::CONFLICT));
        }
        // Several dispatchers at once; one that finds a step being sent by
        // another backs off, so time moves on between rounds.
        let svc = &w.svc;
        for _ in 0..5 {
            futures_util::future::join_all((0..4).map(|_| deliver(svc))).await;
            w.clock.advance(chrono::Duration::seconds(5));
        }
        assert_eq!(
            w.target.routes(),
            ["POST /first", "POST /second", "POST /third"],
            "same key: {same_key}"
        );
        assert_eq!(w.run(&run).await["state"], "succeeded");
    }
}

#[tokio::test]
async fn a_failing_step_fails_the_run_and_rollback_runs_its_steps() {
    let w = world().await;
    w.target
        .answer("POST /second", 500, json!({"error": "boom"}));
    let run = id(&w.dry_run("always-fails", &w.responder, json!({})).await);
    assert_eq!(
        w.decide(&run, "execute", &w.responder, None).await.status,
        StatusCode::ACCEPTED
    );
    deliver(&w.svc).await;
    let failed = w.run(&run).await;
    assert_eq!(failed["state"], "failed", "{failed:#}");
    assert_eq!(failed["steps"][1]["status"], "failed");
    assert_eq!(failed["steps"][1]["http_status"], 500);
    assert_eq!(failed["steps"][2]["status"], "pending");
    // An answered request is never repeated: the failed step was sent once.
    assert_eq!(w.target.routes(), ["POST /first", "POST /second"]);
    assert!(w
        .chat
        .all()
        .iter()
        .any(|c| c.contains("roll back is available")));

    let rb = w.decide(&run, "rollback", &w.responder, None).await;
    assert_eq!(rb.status, StatusCode::ACCEPTED, "{}", rb.text);
    deliver(&w.svc).await;
    let back = w.run(&run).await;
    assert_eq!(back["state"], "rolled_back", "{back:#}");
    assert_eq!(
        w.target.routes(),
        ["POST /first", "POST /second", "POST /undo"]
    );
    assert!(w.chat.all().iter().any(|c| c.contains("rolled back api")));
    let again = w.decide(&run, "rollback", &w.responder, None).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(w
        .audit_actions()
        .await
        .contains(&"playbook.rolled_back".to_owned()));
}

#[tokio::test]
async fn a_wait_step_that_times_out_fails_the_run() {
    let w = world().await;
    w.target
        .answer("GET /health", 503, json!({"status": "down"}));
    let run = id(&w.dry_run("waits", &w.responder, json!({})).await);
    assert_eq!(
        w.decide(&run, "execute", &w.responder, None).await.status,
        StatusCode::ACCEPTED
    );
    for _ in 0..8 {
        deliver(&w.svc).await;
        w.clock.advance(chrono::Duration::seconds(2));
    }
    deliver(&w.svc).await;
    let r = w.run(&run).await;
    assert_eq!(r["state"], "failed", "{r:#}");
    let detail = r["steps"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("timed out after 10s"), "{detail}");
    let polls = w.target.routes().len();
    assert!((4..=6).contains(&polls), "{polls} polls in 10s at 2s");
}

#[tokio::test]
async fn a_request_that_never_left_is_retried_and_one_that_may_have_is_not() {
    // Refused connections (nothing listens): the request never left.
    let w = world().await;
    let run = id(&w.dry_run("always-fails", &w.responder, json!({})).await);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    w.secrets.set("ADMIN_API", &closed_url);
    assert_eq!(
        w.decide(&run, "execute", &w.responder, None).await.status,
        StatusCode::ACCEPTED
    );
    dispatch::drain(&w.svc).await.unwrap();
    let r = w.run(&run).await;
    assert_eq!(r["state"], "running", "{r:#}");
    assert_eq!(r["steps"][0]["status"], "pending");
    assert!(
        r["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("not sent"),
        "{r:#}"
    );
    w.secrets.set("ADMIN_API", &w.platform.base);
    w.clock.advance(chrono::Duration::seconds(5));
    deliver(&w.svc).await;
    assert_eq!(w.run(&run).await["state"], "succeeded");
    assert_eq!(
        w.target.routes(),
        ["POST /first", "POST /second", "POST /third"]
    );

    // A connection taken and dropped unanswered: the request may have
    // reached the target, so it is never sent again and the step fails.
    let w = world().await;
    let run = id(&w.dry_run("always-fails", &w.responder, json!({})).await);
    w.platform.set_down(true);
    assert_eq!(
        w.decide(&run, "execute", &w.responder, None).await.status,
        StatusCode::ACCEPTED
    );
    deliver(&w.svc).await;
    w.platform.set_down(false);
    w.clock.advance(chrono::Duration::seconds(30));
    deliver(&w.svc).await;
    let r = w.run(&run).await;
    assert_eq!(r["state"], "failed", "{r:#}");
    assert!(
        r["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("no answer"),
        "{r:#}"
    );
    assert!(w.target.routes().is_empty());
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_answer() {
    let w = world().await;
    let uri = format!(
        "/v1/incidents/{}/playbooks/always-fails/dry-run",
        w.incident
    );
    let first = send(&w.app, post(&uri, &w.responder, json!({}), Some("dry-1"))).await;
    let second = send(&w.app, post(&uri, &w.responder, json!({}), Some("dry-1"))).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.json, second.json);
    // The same key for another request is refused.
    let other = send(
        &w.app,
        post(
            &format!("/v1/incidents/{}/playbooks/waits/dry-run", w.incident),
            &w.responder,
            json!({}),
            Some("dry-1"),
        ),
    )
    .await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    // So is the same key on the same route with another body: it does not
    // replay the first run.
    let other_body = send(
        &w.app,
        post(
            &uri,
            &w.responder,
            json!({"params": {"reason": "another"}}),
            Some("dry-1"),
        ),
    )
    .await;
    assert_eq!(
        (other_body.status, other_body.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
        "{}",
        other_body.text
    );
    let runs = send(
        &w.app,
        get(
            &format!("/v1/incidents/{}/playbook-runs", w.incident),
            &w.viewer,
        ),
    )
    .await;
    assert_eq!(
        runs.json["items"].as_array().unwrap().len(),
        1,
        "{}",
        runs.text
    );
}

#[tokio::test]
async fn secrets_appear_in_no_preview_run_thread_log_or_error() {
    let (captured, _guard) = firewatch_web::testing::capture_logs();

    let w = world().await;
    // The target echoes the secret back in an error and a body.
    w.target.answer(
        "POST /second",
        500,
        json!({"error": format!("bad token {TOKEN}")}),
    );
    let mut answers = Vec::new();
    let a = w.dry_run("always-fails", &w.responder, json!({})).await;
    let run = id(&a);
    answers.push(a.text);
    answers.push(w.decide(&run, "execute", &w.responder, None).await.text);
    deliver(&w.svc).await;
    answers.push(w.decide(&run, "rollback", &w.responder, None).await.text);
    deliver(&w.svc).await;
    let restart = w.dry_run("restart-service", &w.responder, json!({})).await;
    answers.push(restart.text.clone());
    answers.push(
        w.decide(&id(&restart), "approve", &w.responder, None)
            .await
            .text,
    );
    answers.push(
        send(&w.app, get(&format!("/v1/playbook-runs/{run}"), &w.viewer))
            .await
            .text,
    );
    answers.push(
        send(
            &w.app,
            get(
                &format!("/v1/incidents/{}/playbook-runs", w.incident),
                &w.viewer,
            ),
        )
        .await
        .text,
    );

    // The secret did reach the target, so it was really in play.
    assert!(w
        .target
        .seen()
        .iter()
        .any(|s| s.headers.get("x-token").is_some_and(|v| v == TOKEN)));
    let stored = w.everything_stored().await;
    let chat = w.chat.all().join("\n");
    let logs = captured.text();
    for (what, text) in [
        ("answers", answers.join("\n")),
        ("stored items", stored.clone()),
        ("chat", chat),
        ("logs", logs),
    ] {
        assert!(!text.contains(TOKEN), "the token leaked into {what}");
        assert!(
            !text.contains(&w.platform.base),
            "ADMIN_API leaked into {what}"
        );
    }
    // The echoed secret is stored masked.
    assert!(stored.contains("bad token ***ADMIN_TOKEN***"), "{stored}");
}

#[tokio::test]
async fn a_github_workflow_dispatch_step_sends_githubs_documented_request() {
    let w = world().await;
    // The playbook is offered only for incidents with a `repo` label.
    let inc = w
        .incident_from(json!({"title": "deploy broke", "severity": "sev2", "labels": {"repo": "api", "owner": "acme"}}))
        .await;
    let a = w
        .dry_run_on(
            &inc,
            "github-actions-dispatch",
            &w.responder,
            json!({"ref": "release"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let preview = &a.json["preview"][0]["request"];
    assert_eq!(
        preview["url"],
        format!(
            "{}/github/repos/acme/api/actions/workflows/remediate.yml/dispatches",
            w.platform.base
        )
    );
    assert_eq!(
        preview["headers"]["Authorization"],
        "Bearer ***GITHUB_TOKEN***"
    );
    let run = id(&a);
    w.target.answer(
        "POST /github/repos/acme/api/actions/workflows/remediate.yml/dispatches",
        204,
        json!(null),
    );
    assert_eq!(
        w.decide(&run, "approve", &w.approver, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        w.decide(&run, "execute", &w.responder, None).await.status,
        StatusCode::ACCEPTED
    );
    deliver(&w.svc).await;
    assert_eq!(w.run(&run).await["state"], "succeeded");
    let sent = w.target.seen().pop().unwrap();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        (
            "POST",
            "/github/repos/acme/api/actions/workflows/remediate.yml/dispatches"
        )
    );
    assert_eq!(
        sent.headers["authorization"],
        "Bearer ghp_s3cr3tgithubtoken000"
    );
    assert_eq!(sent.headers["accept"], "application/vnd.github+json");
    assert_eq!(sent.headers["x-github-api-version"], "2022-11-28");
    let body: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(body["ref"], "release");
    assert_eq!(body["inputs"], json!({"incident": inc, "severity": "sev2"}));
}

#[tokio::test]
async fn a_lambda_invoke_step_outside_aws_fails_with_a_clear_reason() {
    let w = world().await;
    let inc = w
        .incident_from(json!({"title": "stuck", "severity": "sev3", "labels": {"remediation_function": "fix-it"}}))
        .await;
    let a = w
        .dry_run_on(&inc, "lambda-invoke", &w.responder, json!({}))
        .await;
    assert_eq!(a.json["state"], "dry_run_ok", "{}", a.text);
    assert_eq!(a.json["preview"][0]["function"], "fix-it");
    let run = id(&a);
    assert_eq!(
        w.decide(&run, "execute", &w.responder, None).await.status,
        StatusCode::ACCEPTED
    );
    deliver(&w.svc).await;
    let r = w.run(&run).await;
    assert_eq!(r["state"], "failed");
    assert!(
        r["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("lambda_invoke needs AWS"),
        "{r:#}"
    );
}

#[tokio::test]
async fn a_ticket_step_asks_for_the_incidents_ticket_once() {
    let w = world().await;
    let inc = w
        .incident_from(
            json!({"title": "needs tracking", "severity": "sev2", "labels": {"ticketing": "yes"}}),
        )
        .await;
    let a = w
        .dry_run_on(&inc, "files-ticket", &w.responder, json!({}))
        .await;
    assert_eq!(a.json["state"], "dry_run_ok", "{}", a.text);
    let run = id(&a);
    assert_eq!(
        w.decide(&run, "execute", &w.responder, None).await.status,
        StatusCode::ACCEPTED
    );
    deliver(&w.svc).await;
    let r = w.run(&run).await;
    assert_eq!(r["state"], "succeeded", "{r:#}");
    assert!(
        r["steps"][0]["detail"].as_str().unwrap().contains("tkt_"),
        "{r:#}"
    );
    let posts = w
        .tracker
        .calls()
        .iter()
        .filter(|c| c.method == Method::POST)
        .count();
    assert_eq!(posts, 1);
    let id = firewatch_types::IncidentId::parse(&inc).unwrap();
    let i = firewatch_domain::incidents::get(&w.svc, &TenantId::default_tenant(), &id)
        .await
        .unwrap();
    assert_eq!(i.ticket.unwrap().id, "acme/ops#12");
}

#[tokio::test]
async fn dry_runs_past_the_tenants_limit_answer_429_with_retry_after_and_send_nothing() {
    let w = world().await;
    let limit = firewatch_domain::Settings::default().rate_limits.dry_runs;
    for _ in 0..limit {
        let a = w.dry_run("restart-service", &w.responder, json!({})).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    let sent = w.target.seen().len();
    let a = w.dry_run("restart-service", &w.responder2, json!({})).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text);
    assert_eq!(a.code(), "rate_limited");
    let wait: i64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(w.target.seen().len(), sent, "no preflight was sent");
    w.clock.advance(chrono::Duration::seconds(wait));
    let a = w.dry_run("restart-service", &w.responder, json!({})).await;
    assert_eq!(a.status, StatusCode::CREATED, "the next minute: {}", a.text);
}

/// Addresses a secret must never reach, on the test listener's port: itself,
/// a name resolving to it, its IPv4-mapped form (`[::ffff:127.0.0.1]`, as
/// the URL standard writes it), the unspecified address and the metadata
/// service.
fn local_hosts(port: u16) -> [String; 5] {
    [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::ffff:7f00:1]:{port}"),
        format!("http://0.0.0.0:{port}"),
        "http://169.254.169.254".to_owned(),
    ]
}

/// Two playbooks whose host parameter allows those addresses (an
/// operator's mistake): one checks (read-only, sent by a dry-run), one acts
/// (sent by a run).
fn exfil_playbooks(port: u16) -> String {
    let hosts = local_hosts(port);
    let allowed = serde_json::to_string(&hosts).unwrap();
    [("check", "true", "GET"), ("act", "false", "POST")]
        .iter()
        .map(|(name, ro, method)| {
            format!(
                "name: exfil-{name}\ntitle: Sends a secret\nmatch: {{ labels: {{ service: \"*\" }} }}\nrisk: low\napproval: never\nparams:\n  host: {{ default: \"{}\", allowed: {allowed} }}\nsteps:\n  - name: send\n    kind: http\n    read_only: {ro}\n    request:\n      method: {method}\n      url: \"{{{{ params.host }}}}/hook\"\n      headers: {{ Authorization: \"Token {{{{ secrets.ADMIN_TOKEN }}}}\" }}\n",
                hosts[0]
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[tokio::test]
async fn a_dry_run_or_a_run_reaches_no_local_or_metadata_address_with_a_secret() {
    let w = world().await;
    let port: u16 = w.platform.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut loaded = Loaded::default();
    for (i, doc) in exfil_playbooks(port).split("---\n").enumerate() {
        loaded.add(&format!("exfil-{i}.yaml"), doc);
    }
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    // Production's egress: public addresses only, nothing allowed besides.
    let svc = w
        .svc
        .clone()
        .with_egress(Arc::new(firewatch_egress::HttpEgress::new(
            firewatch_domain::egress::EgressAllow::default(),
        )));
    let app = firewatch_playbooks::router(svc.clone(), Arc::new(Catalog::new(loaded)));
    let hosts = local_hosts(port);
    for host in &hosts {
        let dry = send(
            &app,
            post(
                &format!("/v1/incidents/{}/playbooks/exfil-check/dry-run", w.incident),
                &w.responder,
                json!({"params": {"host": host}}),
                None,
            ),
        )
        .await;
        assert_eq!(dry.status, StatusCode::CREATED, "{host}: {}", dry.text);
        assert_eq!(dry.json["state"], "dry_run_failed", "{host}: {}", dry.text);
        assert!(!dry.text.contains(TOKEN), "{host}: {}", dry.text);

        let run = send(
            &app,
            post(
                &format!("/v1/incidents/{}/playbooks/exfil-act/dry-run", w.incident),
                &w.responder,
                json!({"params": {"host": host}}),
                None,
            ),
        )
        .await;
        assert_eq!(run.json["state"], "dry_run_ok", "{host}: {}", run.text);
        let run = id(&run);
        let started = send(
            &app,
            post(
                &format!("/v1/playbook-runs/{run}/execute"),
                &w.responder,
                json!({}),
                None,
            ),
        )
        .await;
        assert_eq!(
            started.status,
            StatusCode::ACCEPTED,
            "{host}: {}",
            started.text
        );
        firewatch_domain::dispatch::drain(&svc).await.unwrap();
        let done = send(&app, get(&format!("/v1/playbook-runs/{run}"), &w.viewer)).await;
        assert_eq!(done.json["state"], "failed", "{host}: {}", done.text);
        assert!(!done.text.contains(TOKEN), "{host}: {}", done.text);
    }
    assert!(
        w.target.seen().is_empty(),
        "nothing reached the listener: {:?}",
        w.target.routes()
    );
}

/// A definition that reached a run without the parser (the compiled
/// catalog the chat functions read is JSON): the rules are checked again
/// where it is rendered, so a request origin a parameter chooses without an
/// `allowed` list never carries a secret anywhere.
#[tokio::test]
async fn a_definition_that_skipped_the_parser_is_refused_before_anything_is_sent() {
    let w = world().await;
    let base = w.platform.base.clone();
    let mut loaded = Loaded::default();
    loaded.add(
        "forged.yaml",
        &format!(
            "name: forged\ntitle: Sends a secret\nmatch: {{ labels: {{ service: \"*\" }} }}\nrisk: low\napproval: never\nparams:\n  host: {{ default: \"{base}\", allowed: [\"{base}\"] }}\nsteps:\n  - name: send\n    kind: http\n    read_only: true\n    request:\n      method: GET\n      url: \"{{{{ params.host }}}}/hook\"\n      headers: {{ Authorization: \"Token {{{{ secrets.ADMIN_TOKEN }}}}\" }}\n"
        ),
    );
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    // As a forged compiled catalog would have it: no `allowed` list.
    let mut json = serde_json::to_value(&loaded.playbooks[0]).unwrap();
    json["params"]["host"]
        .as_object_mut()
        .unwrap()
        .remove("allowed");
    let forged = Loaded {
        playbooks: vec![serde_json::from_value(json).unwrap()],
        errors: Vec::new(),
    };
    let app = firewatch_playbooks::router(w.svc.clone(), Arc::new(Catalog::new(forged)));
    let dry = send(
        &app,
        post(
            &format!("/v1/incidents/{}/playbooks/forged/dry-run", w.incident),
            &w.responder,
            json!({"params": {"host": base}}),
            None,
        ),
    )
    .await;
    assert_eq!(dry.status, StatusCode::CREATED, "{}", dry.text);
    assert_eq!(dry.json["state"], "dry_run_failed", "{}", dry.text);
    assert!(
        dry.text.contains("not valid") && dry.text.contains("allowed"),
        "{}",
        dry.text
    );
    assert!(!dry.text.contains(TOKEN), "{}", dry.text);
    dispatch::drain(&w.svc).await.unwrap();
    assert!(
        w.target.seen().is_empty(),
        "nothing was sent: {:?}",
        w.target.routes()
    );
}
