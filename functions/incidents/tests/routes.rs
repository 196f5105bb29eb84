//! The incidents routes, in process through the real router.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use firewatch_domain::Services;
use firewatch_web::testing::{
    get, ingest_key, json_request, open_incident, send, services_with_keys, Answer, Keys,
};

async fn setup() -> (Services, Keys, axum::Router, String) {
    let (svc, keys) = services_with_keys().await;
    let id = open_incident(&svc).await;
    let app = firewatch_incidents::router(svc.clone());
    (svc, keys, app, id)
}

async fn act(app: &axum::Router, token: &str, id: &str, action: &str, body: &str) -> Answer {
    send(
        app,
        json_request(
            Method::POST,
            &format!("/v1/incidents/{id}/{action}"),
            Some(token),
            body.to_owned(),
        ),
    )
    .await
}

#[tokio::test]
async fn listing_filters_and_pages_with_a_cursor() {
    let (_, keys, app, _) = setup().await;
    let a = send(&app, get("/v1/incidents?limit=1", &keys.viewer)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["items"].as_array().unwrap().len(), 1);
    let cursor = a.json["next_cursor"].as_str().unwrap().to_owned();
    let b = send(
        &app,
        get(
            &format!("/v1/incidents?limit=1&cursor={cursor}"),
            &keys.viewer,
        ),
    )
    .await;
    assert_eq!(b.json["items"].as_array().unwrap().len(), 1);
    assert_ne!(a.json["items"][0]["id"], b.json["items"][0]["id"]);
    assert!(b.json["next_cursor"].is_null());

    let f = send(
        &app,
        get(
            "/v1/incidents?state=open&severity=sev1&source=alertmanager",
            &keys.viewer,
        ),
    )
    .await;
    assert_eq!(f.json["items"].as_array().unwrap().len(), 2);
    let none = send(&app, get("/v1/incidents?state=acknowledged", &keys.viewer)).await;
    assert!(none.json["items"].as_array().unwrap().is_empty());

    for bad in [
        "/v1/incidents?state=sleeping",
        "/v1/incidents?severity=sev9",
        "/v1/incidents?limit=abc",
        "/v1/incidents?limit=5000",
        "/v1/incidents?cursor=***",
    ] {
        let a = send(&app, get(bad, &keys.viewer)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert!(!a.code().is_empty());
    }
}

#[tokio::test]
async fn one_incident_and_its_timeline_can_be_read() {
    let (_, keys, app, id) = setup().await;
    let a = send(&app, get(&format!("/v1/incidents/{id}"), &keys.viewer)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["id"], id.as_str());
    assert_eq!(a.json["state"], "open");
    assert_eq!(a.json["version"], 1);
    let t = send(
        &app,
        get(&format!("/v1/incidents/{id}/timeline"), &keys.viewer),
    )
    .await;
    assert_eq!(t.status, StatusCode::OK);
    assert_eq!(t.json["items"][0]["kind"], "opened");
    assert_eq!(
        t.json["items"][0]["envelope"]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    let missing = "inc_01JD3Z8X9Q6W2T4V5R7S8P0M1N";
    assert_eq!(
        send(&app, get(&format!("/v1/incidents/{missing}"), &keys.viewer))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(
            &app,
            get(&format!("/v1/incidents/{missing}/timeline"), &keys.viewer)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let bad = send(&app, get("/v1/incidents/not-an-id", &keys.viewer)).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_id")
    );
    assert!(
        !bad.text.contains("not-an-id"),
        "an error names the rule, not the value sent: {}",
        bad.text
    );
}

#[tokio::test]
async fn reading_needs_a_key() {
    let (_, _, app, id) = setup().await;
    for uri in [
        "/v1/incidents".to_string(),
        format!("/v1/incidents/{id}"),
        "/v1/incidents/recurrence".into(),
    ] {
        let a = send(&app, Request::get(&uri).body(Body::empty()).unwrap()).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
}

#[tokio::test]
async fn responders_act_with_optional_reason_and_expected_version() {
    let (_, keys, app, id) = setup().await;
    let a = send(
        &app,
        Request::post(format!("/v1/incidents/{id}/ack"))
            .header("authorization", format!("Bearer {}", keys.responder))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "an empty body is fine: {}",
        a.text
    );
    assert_eq!(a.json["state"], "acknowledged");
    let v = a.json["version"].as_u64().unwrap();

    let stale = act(
        &app,
        &keys.responder,
        &id,
        "mitigate",
        &format!("{{\"expected_version\": {}}}", v - 1),
    )
    .await;
    assert_eq!(
        (stale.status, stale.code()),
        (StatusCode::CONFLICT, "stale_version")
    );
    let ok = act(
        &app,
        &keys.responder,
        &id,
        "mitigate",
        &format!("{{\"expected_version\": {v}, \"reason\": \"feature flag off\"}}"),
    )
    .await;
    assert_eq!(ok.json["state"], "mitigated");
    let r = act(&app, &keys.responder, &id, "resolve", "{}").await;
    assert_eq!(r.json["state"], "resolved");
    let c = act(&app, &keys.responder, &id, "close", "").await;
    assert_eq!(c.json["state"], "closed");
    let illegal = act(&app, &keys.responder, &id, "ack", "{}").await;
    assert_eq!(
        (illegal.status, illegal.code()),
        (StatusCode::CONFLICT, "illegal_transition")
    );
    let reopen = act(&app, &keys.responder, &id, "reopen", "{}").await;
    assert_eq!(
        reopen.status,
        StatusCode::CONFLICT,
        "a closed incident cannot reopen"
    );

    let tl = send(
        &app,
        get(&format!("/v1/incidents/{id}/timeline"), &keys.viewer),
    )
    .await;
    let mitigated = tl.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to"] == "mitigated")
        .unwrap()
        .clone();
    assert_eq!(mitigated["reason"], "feature flag off");
    assert_eq!(mitigated["actor"], "responder");
}

#[tokio::test]
async fn bad_action_requests_are_refused_and_change_nothing() {
    let (_, keys, app, id) = setup().await;
    let cases = [
        (
            "unknown action",
            act(&app, &keys.responder, &id, "explode", "{}").await,
            StatusCode::NOT_FOUND,
        ),
        (
            "viewer",
            act(&app, &keys.viewer, &id, "ack", "{}").await,
            StatusCode::FORBIDDEN,
        ),
        (
            "malformed json",
            act(&app, &keys.responder, &id, "ack", "{\"reason\":").await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown field",
            act(&app, &keys.responder, &id, "ack", "{\"force\": true}").await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad version type",
            act(
                &app,
                &keys.responder,
                &id,
                "ack",
                "{\"expected_version\": \"one\"}",
            )
            .await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "not json",
            send(
                &app,
                Request::post(format!("/v1/incidents/{id}/ack"))
                    .header("authorization", format!("Bearer {}", keys.responder))
                    .header("content-type", "text/plain")
                    .body(Body::from("please"))
                    .unwrap(),
            )
            .await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "no key",
            send(
                &app,
                json_request(Method::POST, &format!("/v1/incidents/{id}/ack"), None, "{}"),
            )
            .await,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "bad id",
            act(&app, &keys.responder, "inc_x", "ack", "{}").await,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (name, a, status) in cases {
        assert_eq!(a.status, status, "{name}: {}", a.text);
        assert!(a.json["error"]["code"].is_string(), "{name}");
    }
    let a = send(&app, get(&format!("/v1/incidents/{id}"), &keys.viewer)).await;
    assert_eq!(
        (a.json["state"].as_str(), a.json["version"].as_u64()),
        (Some("open"), Some(1))
    );
}

#[tokio::test]
async fn comments_are_added_to_the_timeline() {
    let (_, keys, app, id) = setup().await;
    let uri = format!("/v1/incidents/{id}/comments");
    let a = send(
        &app,
        json_request(
            Method::POST,
            &uri,
            Some(&keys.responder),
            "{\"text\": \"db failover started\"}",
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json["kind"], "comment");
    for (body, status) in [
        ("{\"text\": \"\"}", StatusCode::BAD_REQUEST),
        ("{}", StatusCode::BAD_REQUEST),
        ("nope", StatusCode::BAD_REQUEST),
    ] {
        let a = send(
            &app,
            json_request(Method::POST, &uri, Some(&keys.responder), body),
        )
        .await;
        assert_eq!(a.status, status, "{body}");
    }
    let a = send(
        &app,
        json_request(Method::POST, &uri, Some(&keys.viewer), "{\"text\": \"hi\"}"),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let tl = send(
        &app,
        get(&format!("/v1/incidents/{id}/timeline"), &keys.viewer),
    )
    .await;
    let comments = tl.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "comment")
        .count();
    assert_eq!(comments, 1);
}

#[tokio::test]
async fn recurrence_groups_by_the_requested_dimension() {
    let (_, keys, app, _) = setup().await;
    let a = send(
        &app,
        get("/v1/incidents/recurrence?by=namespace", &keys.viewer),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["by"], "namespace");
    assert_eq!(a.json["groups"][0]["key"], "storage");
    assert_eq!(a.json["groups"][0]["incidents"], 2);
    let d = send(&app, get("/v1/incidents/recurrence", &keys.viewer)).await;
    assert_eq!(d.json["by"], "fingerprint");
    assert_eq!(d.json["groups"].as_array().unwrap().len(), 2);
    let bad = send(&app, get("/v1/incidents/recurrence?by=color", &keys.viewer)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn triage_returns_a_report_and_records_it_on_the_timeline() {
    let (_, keys, app, id) = setup().await;
    let uri = format!("/v1/incidents/{id}/triage");
    let empty = Request::post(&uri)
        .header("authorization", format!("Bearer {}", keys.responder))
        .body(Body::empty())
        .unwrap();
    let a = send(&app, empty).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["mode"], "deterministic_rules_v1");
    for field in ["likely_cause", "impact", "confidence"] {
        assert!(a.json[field].is_string(), "{field}: {}", a.text);
    }
    assert!(!a.json["next_actions"].as_array().unwrap().is_empty());
    assert!(!a.json["facts"].as_array().unwrap().is_empty());
    let a = act(
        &app,
        &keys.responder,
        &id,
        "triage",
        "{\"mode\": \"deterministic\"}",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);

    for (token, body, status, code) in [
        (
            &keys.responder,
            "{\"mode\": \"clairvoyant\"}",
            StatusCode::BAD_REQUEST,
            "unsupported_mode",
        ),
        (
            &keys.responder,
            "{\"mood\": 1}",
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            &keys.responder,
            "{",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (&keys.viewer, "", StatusCode::FORBIDDEN, "forbidden"),
    ] {
        let a = act(&app, token, &id, "triage", body).await;
        assert_eq!((a.status, a.code()), (status, code), "{body}: {}", a.text);
    }
    let missing = act(
        &app,
        &keys.responder,
        "inc_01JD0000000000000000000009",
        "triage",
        "",
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let tl = send(
        &app,
        get(&format!("/v1/incidents/{id}/timeline"), &keys.viewer),
    )
    .await;
    let triages: Vec<_> = tl.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "triage")
        .collect();
    assert_eq!(triages.len(), 2, "only the two accepted requests");
    assert_eq!(triages[0]["report"]["mode"], "deterministic_rules_v1");
}

/// A model that is always overloaded.
struct Overloaded;

#[async_trait::async_trait]
impl firewatch_domain::ports::Llm for Overloaded {
    fn provider(&self) -> &'static str {
        "openai_compatible"
    }
    fn model(&self) -> String {
        "busy-model".into()
    }
    async fn complete(
        &self,
        _req: &firewatch_domain::ports::LlmRequest,
    ) -> Result<firewatch_domain::ports::LlmAnswer, firewatch_domain::ports::LlmError> {
        Err(firewatch_domain::ports::LlmError::Server(
            "503 overloaded".into(),
        ))
    }
}

#[tokio::test]
async fn assisted_triage_falls_back_or_under_strict_answers_503_and_writes_nothing() {
    let (svc, keys) = services_with_keys().await;
    let id = open_incident(&svc).await;
    let mut settings = (*svc.settings).clone();
    settings.assisted_retry_base_ms = 1;
    let svc = svc
        .with_settings(settings.clone())
        .with_llm(Some(std::sync::Arc::new(Overloaded)));
    let app = firewatch_incidents::router(svc.clone());
    let a = act(
        &app,
        &keys.responder,
        &id,
        "triage",
        "{\"mode\": \"assisted\"}",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["mode"], "deterministic_rules_v1");
    assert_eq!(a.json["requested_mode"], "assisted");
    assert_eq!(a.json["degraded"], true);
    assert_eq!(a.json["evidence"]["assisted"]["fallback_used"], true);
    assert_eq!(
        a.json["evidence"]["assisted"]["error_class"],
        "server_error"
    );
    for field in ["summary", "impact_summary", "confidence_reason"] {
        assert!(a.json[field].is_string(), "{field}: {}", a.text);
    }
    assert!(a.json["facts_used"][0]["id"] == "F1", "{}", a.text);

    settings.assisted_failure_policy = firewatch_domain::settings::AssistedPolicy::Strict;
    let strict = svc.with_settings(settings);
    let app = firewatch_incidents::router(strict.clone());
    let before = send(
        &app,
        get(&format!("/v1/incidents/{id}/timeline"), &keys.viewer),
    )
    .await;
    let a = act(
        &app,
        &keys.responder,
        &id,
        "triage",
        "{\"mode\": \"assisted\"}",
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "assisted_mode_failed"),
        "{}",
        a.text
    );
    let after = send(
        &app,
        get(&format!("/v1/incidents/{id}/timeline"), &keys.viewer),
    )
    .await;
    assert_eq!(before.json["items"], after.json["items"], "nothing written");
}

const PLAYBOOK: &str = "name: NAME\ntitle: Restart\nmatch: { labels: { job: JOB } }\nrisk: low\napproval: never\nsteps:\n  - name: restart\n    kind: http\n    request: { method: POST, url: \"https://admin.example/restart\" }\n    expect: { status: [200] }\n";

#[tokio::test]
async fn assisted_triage_over_http_offers_the_matching_playbooks_to_the_model() {
    let (svc, keys) = services_with_keys().await;
    let id = open_incident(&svc).await;
    let llm = std::sync::Arc::new(firewatch_web::testing::ListeningModel::default());
    let svc = svc.with_llm(Some(llm.clone()));
    let mut loaded = firewatch_domain::playbooks::Loaded::default();
    for (name, job) in [("restart-node-exporter", "node"), ("restart-api", "api")] {
        loaded.add(
            &format!("{name}.yaml"),
            &PLAYBOOK.replace("NAME", name).replace("JOB", job),
        );
    }
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let catalog = std::sync::Arc::new(firewatch_domain::playbooks::Catalog::new(loaded));
    let app = firewatch_incidents::with_playbooks(
        svc,
        std::sync::Arc::new(firewatch_domain::playbooks::LazyCatalog::ready(catalog)),
    );
    let a = act(
        &app,
        &keys.responder,
        &id,
        "triage",
        "{\"mode\": \"assisted\"}",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let prompt = llm.0.lock().unwrap()[0].clone();
    assert!(prompt.contains("restart-node-exporter"), "{prompt}");
    assert!(!prompt.contains("restart-api"), "{prompt}");
}

#[tokio::test]
async fn triage_reports_read_back_as_json_or_markdown_and_take_feedback() {
    let (svc, keys, app, id) = setup().await;
    let latest = format!("/v1/incidents/{id}/triage/latest");
    let a = send(&app, get(&latest, &keys.viewer)).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::NOT_FOUND, "not_found"),
        "{}",
        a.text
    );
    // No mode named: the configured default (deterministic).
    let t = act(&app, &keys.responder, &id, "triage", "").await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    assert_eq!(t.json["mode"], "deterministic_rules_v1");
    let report = t.json["id"].as_str().unwrap().to_owned();

    let a = send(&app, get(&latest, &keys.viewer)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["id"], report.as_str());
    let md = send(
        &app,
        get(&format!("{latest}?format=markdown"), &keys.viewer),
    )
    .await;
    assert_eq!(md.status, StatusCode::OK, "{}", md.text);
    assert!(md.text.starts_with("## Triage: "), "{}", md.text);
    assert!(md.text.contains("### Next actions"), "{}", md.text);
    let bad = send(&app, get(&format!("{latest}?format=pdf"), &keys.viewer)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);

    let feedback = format!("/v1/incidents/{id}/triage/{report}/feedback");
    let vote = |token: &str, body: &str| {
        json_request(Method::POST, &feedback, Some(token), body.to_owned())
    };
    let a = send(
        &app,
        vote(
            &keys.responder,
            r#"{"helpful": true, "comment": "right on"}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json["helpful"], true);
    for (token, body, status) in [
        (&keys.viewer, r#"{"helpful": true}"#, StatusCode::FORBIDDEN),
        (
            &keys.responder,
            r#"{"helpful": "yes"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (&keys.responder, "{not json", StatusCode::BAD_REQUEST),
    ] {
        let a = send(&app, vote(token, body)).await;
        assert_eq!(a.status, status, "{body}: {}", a.text);
    }
    let elsewhere = send(
        &app,
        json_request(
            Method::POST,
            &format!("/v1/incidents/{id}/triage/trg_01JD0000000000000000000000/feedback"),
            Some(&keys.responder),
            r#"{"helpful": false}"#.to_owned(),
        ),
    )
    .await;
    assert_eq!(
        elsewhere.status,
        StatusCode::NOT_FOUND,
        "{}",
        elsewhere.text
    );

    let s = send(&app, get("/v1/triage/feedback/summary", &keys.viewer)).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    assert_eq!(
        s.json["overall"]["total"], 1,
        "refused votes changed nothing"
    );
    assert_eq!(s.json["by_mode"]["deterministic_rules_v1"]["helpful"], 1);
    assert_eq!(s.json["by_provider"]["rules"]["total"], 1);
    drop(svc);
}

#[tokio::test]
async fn telemetry_and_provider_answer_viewers_and_refuse_bad_windows() {
    let (svc, keys) = services_with_keys().await;
    let id = open_incident(&svc).await;
    let mut settings = (*svc.settings).clone();
    settings.assisted_retry_base_ms = 1;
    let svc = svc
        .with_settings(settings)
        .with_llm(Some(std::sync::Arc::new(Overloaded)));
    let app = firewatch_incidents::router(svc);
    let a = act(
        &app,
        &keys.responder,
        &id,
        "triage",
        r#"{"mode": "assisted"}"#,
    )
    .await;
    assert_eq!(a.json["degraded"], true, "{}", a.text);

    let t = send(&app, get("/v1/triage/telemetry", &keys.viewer)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    assert_eq!(t.json["by_status"]["fallback"], 1);
    assert_eq!(t.json["by_status"]["success"], 0);
    assert_eq!(t.json["by_error_class"]["server_error"], 1);
    assert_eq!(
        t.json["by_provider_model"]["openai_compatible/busy-model"],
        1
    );
    assert_eq!(t.json["window_hours"], 24);
    for bad in ["?hours=0", "?hours=abc", "?hours=100000", "?days=1"] {
        let a = send(
            &app,
            get(&format!("/v1/triage/telemetry{bad}"), &keys.viewer),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
    }

    let p = send(&app, get("/v1/triage/provider", &keys.viewer)).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert_eq!(p.json["provider"], "openai_compatible");
    assert_eq!(p.json["model"], "busy-model");
    assert_eq!(p.json["failure_policy"], "fallback");
    assert_eq!(p.json["default_mode"], "deterministic");
    assert_eq!(p.json["last_failure"]["error_class"], "server_error");
    assert!(p.json["last_success"].is_null());
    assert_eq!(p.json["credentials"]["resolved"], true);

    let anon = send(
        &app,
        Request::builder()
            .uri("/v1/triage/provider")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_ingest_key_reads_and_changes_nothing() {
    let (svc, _keys, app, id) = setup().await;
    let sender = ingest_key(&svc).await;
    for (action, body) in [
        ("ack", "{}"),
        ("resolve", "{}"),
        ("mitigate", "{}"),
        ("close", "{}"),
        ("comments", r#"{"text": "x"}"#),
        ("triage", "{}"),
    ] {
        let a = act(&app, &sender, &id, action, body).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{action}: {}", a.text);
    }
    for path in [format!("/v1/incidents/{id}"), "/v1/incidents".to_owned()] {
        let a = send(&app, get(&path, &sender)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.text);
    }
    let i = firewatch_domain::incidents::get(
        &svc,
        &firewatch_types::TenantId::default_tenant(),
        &firewatch_types::IncidentId::parse(&id).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        i.state,
        firewatch_types::IncidentState::Open,
        "nothing changed"
    );
}

#[tokio::test]
async fn assisted_triage_past_the_tenants_limit_answers_429_and_asks_no_model() {
    let (svc, keys) = services_with_keys().await;
    let id = open_incident(&svc).await;
    let mut settings = (*svc.settings).clone();
    settings.rate_limits.assisted_triage = 2;
    let model = std::sync::Arc::new(firewatch_web::testing::ListeningModel::default());
    let svc = svc.with_settings(settings).with_llm(Some(model.clone()));
    let app = firewatch_incidents::router(svc.clone());
    let assisted = "{\"mode\": \"assisted\"}";
    for _ in 0..2 {
        let a = act(&app, &keys.responder, &id, "triage", assisted).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    let asked = model.0.lock().unwrap().len();
    let a = act(&app, &keys.responder, &id, "triage", assisted).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(a.headers.contains_key("retry-after"));
    assert_eq!(
        model.0.lock().unwrap().len(),
        asked,
        "no model call was made"
    );
    // The rules alone cost nothing and stay available.
    let a = act(
        &app,
        &keys.responder,
        &id,
        "triage",
        "{\"mode\": \"deterministic\"}",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}
