//! The dossier routes, in process through the real routers: webhooks posted
//! to the ingest router as providers send them, then read back.

use axum::http::{Method, StatusCode};
use firewatch_domain::Services;
use firewatch_types::{Role, TenantId};
use firewatch_web::testing::{fixture, get, json_request, send, services_with_keys, Keys};
use serde_json::{json, Value};
use sha2::Digest;

async fn setup() -> (Services, Keys, axum::Router, axum::Router) {
    let (svc, keys) = services_with_keys().await;
    let ingest = firewatch_ingest::router(svc.clone());
    let dossier = firewatch_dossier::router(svc.clone());
    (svc, keys, ingest, dossier)
}

async fn post(app: &axum::Router, token: &str, path: &str, body: &str) -> Value {
    let a = send(
        app,
        json_request(Method::POST, path, Some(token), body.to_owned()),
    )
    .await;
    assert!(a.status.is_success(), "{path}: {} {}", a.status, a.text);
    a.json
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn every_webhook_is_indexed_with_its_source_links_and_incidents() {
    let (_, keys, ingest, app) = setup().await;
    let body = String::from_utf8(fixture("alertmanager/firing.json")).unwrap();
    let first = post(&ingest, &keys.responder, "/v1/alerts/alertmanager", &body).await;
    // The provider sends it again: a second item, flagged.
    post(&ingest, &keys.responder, "/v1/alerts/alertmanager", &body).await;

    let page = send(&app, get("/v1/dossier/events", &keys.viewer)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let list = items(&page.json);
    assert_eq!(list.len(), 2, "{}", page.text);
    let (newest, oldest) = (&list[0], &list[1]);
    assert_eq!(newest["duplicate"], true);
    assert_eq!(oldest["duplicate"], false);
    assert_eq!(oldest["provider"], "alertmanager");
    assert_eq!(oldest["stage"], "firing");
    assert_eq!(
        oldest["provider_event_id"],
        "{}/{job=\"node\"}:{alertname=\"InstanceDown\"}"
    );
    assert_eq!(oldest["alertname"], "InstanceDown");
    assert_eq!(oldest["namespace"], "storage");
    assert_eq!(oldest["target"], "db-1:9100");
    assert_eq!(oldest["severity"], "sev1");
    assert_eq!(oldest["incidents"], first["incidents"]);
    assert_eq!(
        newest["incidents"], first["incidents"],
        "the first answer's"
    );
    assert_eq!(
        oldest["sha256"],
        hex::encode(sha2::Sha256::digest(body.as_bytes()))
    );
    assert_eq!(oldest["length"], body.len());
    let kinds: Vec<&str> = oldest["source_refs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"generator"), "{kinds:?}");
    assert!(oldest["provider_timestamp"].is_string());

    // The first delivery changed the incident: its envelope is kept.
    let id = oldest["id"].as_str().unwrap();
    let one = send(&app, get(&format!("/v1/dossier/events/{id}"), &keys.viewer)).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(one.json["envelope"]["source"], "alertmanager");
    assert_eq!(
        one.json["envelope"]["body"]["groupKey"],
        "{}/{job=\"node\"}:{alertname=\"InstanceDown\"}"
    );
    let dup = newest["id"].as_str().unwrap();
    let one = send(
        &app,
        get(&format!("/v1/dossier/events/{dup}"), &keys.viewer),
    )
    .await;
    assert!(one.json["envelope"].is_null());
    assert!(one.json["warnings"][0]
        .as_str()
        .unwrap()
        .contains("redelivery"));
}

#[tokio::test]
async fn secrets_never_reach_the_preview_or_the_envelope() {
    let (_, keys, ingest, app) = setup().await;
    let body = json!({"title": "DB login failing", "fingerprint": "db-login", "severity": "sev2",
        "annotations": {"password": "hunter2-very-secret", "note": "token=ghp_abcdefghijklmnopqrstuvwxyz0123456789"}})
    .to_string();
    post(&ingest, &keys.responder, "/v1/alerts/generic", &body).await;
    let page = send(&app, get("/v1/dossier/events", &keys.viewer)).await;
    let item = &items(&page.json)[0];
    assert_eq!(item["redacted"], true);
    let id = item["id"].as_str().unwrap();
    let one = send(&app, get(&format!("/v1/dossier/events/{id}"), &keys.viewer)).await;
    for text in [&page.text, &one.text] {
        assert!(!text.contains("hunter2-very-secret"), "{text}");
        assert!(
            !text.contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            "{text}"
        );
    }
    assert!(one.json["envelope"]["body"].is_object(), "{}", one.text);
}

#[tokio::test]
async fn filters_pages_and_coverage_count_what_each_provider_sent() {
    let (_, keys, ingest, app) = setup().await;
    let am = String::from_utf8(fixture("alertmanager/firing.json")).unwrap();
    let am_incident = post(&ingest, &keys.responder, "/v1/alerts/alertmanager", &am).await
        ["incidents"][0]
        .as_str()
        .unwrap()
        .to_owned();
    post(&ingest, &keys.responder, "/v1/alerts/alertmanager", &am).await;
    for n in 0..3 {
        let body =
            json!({"title": format!("plain {n}"), "fingerprint": format!("plain-{n}")}).to_string();
        post(&ingest, &keys.responder, "/v1/alerts/generic", &body).await;
    }
    let sentry = String::from_utf8(fixture("sentry/event_alert.json")).unwrap();
    let mut req = json_request(
        Method::POST,
        "/v1/alerts/sentry",
        Some(&keys.responder),
        sentry,
    );
    req.headers_mut().insert(
        "sentry-hook-resource",
        axum::http::HeaderValue::from_static("event_alert"),
    );
    let a = send(&ingest, req).await;
    assert!(a.status.is_success(), "{}", a.text);

    let only = |q: &str| {
        let app = app.clone();
        let token = keys.viewer.clone();
        let q = q.to_owned();
        async move { send(&app, get(&format!("/v1/dossier/events?{q}"), &token)).await }
    };
    assert_eq!(items(&only("provider=generic").await.json).len(), 3);
    assert_eq!(
        items(&only(&format!("incident={am_incident}")).await.json).len(),
        2
    );
    assert_eq!(items(&only("fingerprint=plain-1").await.json).len(), 1);

    // Pages of two, newest first, with a cursor until the end.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".into(),
        };
        let p = only(&q).await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text);
        seen.extend(items(&p.json).into_iter().map(|i| i["id"].clone()));
        match p.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), 6, "no item twice");

    let c = send(&app, get("/v1/dossier/coverage", &keys.viewer)).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.json["total"]["events"], 6);
    assert_eq!(c.json["total"]["duplicates"], 1);
    let am = &c.json["providers"]["alertmanager"];
    assert_eq!(am["events"], 2);
    assert_eq!(am["with_source_refs"], 2);
    assert!(am["refs_by_kind"]["generator"].as_u64().unwrap() >= 2);
    assert_eq!(c.json["providers"]["generic"]["without_source_refs"], 3);
    assert_eq!(
        c.json["providers"]["sentry"]["refs_by_kind"]["sentry"], 1,
        "{}",
        c.text
    );
    let g = send(
        &app,
        get("/v1/dossier/coverage?provider=generic", &keys.viewer),
    )
    .await;
    assert_eq!(g.json["total"]["events"], 3);
    assert!(g.json["providers"]["alertmanager"].is_null());

    for bad in [
        "/v1/dossier/events?provider=nagios",
        "/v1/dossier/events?limit=0",
        "/v1/dossier/events?limit=201",
        "/v1/dossier/events?cursor=not-a-cursor",
        "/v1/dossier/events?colour=red",
        "/v1/dossier/coverage?provider=nagios",
    ] {
        let a = send(&app, get(bad, &keys.viewer)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
    }
    let a = send(&app, get("/v1/dossier/events/dos_nope", &keys.viewer)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = send(&app, get("/v1/dossier/events", "fw_not_a_key")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_refused_webhook_leaves_nothing_and_tenants_see_only_their_own() {
    let (svc, keys, ingest, app) = setup().await;
    let bad = send(
        &ingest,
        json_request(
            Method::POST,
            "/v1/alerts/generic",
            Some(&keys.responder),
            "{not json",
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let page = send(&app, get("/v1/dossier/events", &keys.viewer)).await;
    assert!(items(&page.json).is_empty(), "{}", page.text);

    post(
        &ingest,
        &keys.responder,
        "/v1/alerts/generic",
        &json!({"title": "ours"}).to_string(),
    )
    .await;
    let ours = items(
        &send(&app, get("/v1/dossier/events", &keys.viewer))
            .await
            .json,
    );
    let id = ours[0]["id"].as_str().unwrap().to_owned();
    let other = TenantId::parse("acme").unwrap();
    let token = firewatch_domain::auth::create_api_key(&svc, &other, "acme", Role::Viewer)
        .await
        .unwrap();
    let theirs = send(&app, get("/v1/dossier/events", &token)).await;
    assert!(items(&theirs.json).is_empty(), "{}", theirs.text);
    let c = send(&app, get("/v1/dossier/coverage", &token)).await;
    assert_eq!(c.json["total"]["events"], 0);
    let a = send(&app, get(&format!("/v1/dossier/events/{id}"), &token)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}
