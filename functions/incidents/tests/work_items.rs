//! Recurrence work items through the real router, with the real GitHub
//! adapter against a recording fake of its API.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use firewatch_domain::{incidents, Services};
use firewatch_egress::trackers::GitHub;
use firewatch_types::{IncidentId, SourceKind, TenantId};
use firewatch_web::testing::fakes::FakeTracker;
use firewatch_web::testing::{
    get, ingest_alert, json_request, send, services_with_keys, Answer, Keys,
};
use serde_json::json;

async fn setup(tracker: bool) -> (Services, Keys, axum::Router, FakeTracker) {
    let fake = FakeTracker::start().await;
    let (svc, keys) = services_with_keys().await;
    // More than three opens an hour per group, as a recurring group has
    // (over days; here within a second, so flap damping is off).
    let svc = svc.with_settings(firewatch_domain::Settings {
        rate_limit_per_hour: 100,
        flap: firewatch_domain::settings::FlapRule {
            max_flips: 100,
            ..Default::default()
        },
        ..Default::default()
    });
    let svc = if tracker {
        svc.with_tracker(Some(Arc::new(GitHub::new(
            fake.base(),
            "ghp_wi_token",
            "acme/ops",
        ))))
    } else {
        svc
    };
    let app = firewatch_incidents::router(svc.clone());
    (svc, keys, app, fake)
}

/// One incident of `fingerprint`: fires, then resolves.
async fn recur(svc: &Services, fingerprint: &str) -> IncidentId {
    // Each time a new firing, not a redelivery of the last one.
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let fire = json!({"title": "Disk almost full", "fingerprint": fingerprint, "severity": "sev3",
                      "labels": {"host": "db-1"}, "annotations": {"firing": n.to_string()}});
    let id = ingest_alert(svc, SourceKind::Generic, fire.to_string().as_bytes()).await;
    let mut done = fire;
    done["status"] = json!("resolved");
    ingest_alert(svc, SourceKind::Generic, done.to_string().as_bytes()).await;
    id
}

async fn post(app: &axum::Router, token: &str, path: &str, body: &str) -> Answer {
    send(
        app,
        json_request(Method::POST, path, Some(token), body.to_owned()),
    )
    .await
}

fn posts(fake: &FakeTracker) -> usize {
    fake.calls()
        .iter()
        .filter(|c| c.method == Method::POST)
        .count()
}

async fn work_item(app: &axum::Router, keys: &Keys) -> String {
    let l = send(app, get("/v1/work-items?by=fingerprint", &keys.viewer)).await;
    assert_eq!(l.status, StatusCode::OK, "{}", l.text);
    assert_eq!(l.json["items"].as_array().unwrap().len(), 1, "{}", l.text);
    assert_eq!(l.json["items"][0]["key"], "disk-full");
    assert_eq!(l.json["items"][0]["incidents"], 3);
    l.json["items"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_recurring_group_is_previewed_dry_run_and_handed_off_once() {
    let (svc, keys, app, fake) = setup(true).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(recur(&svc, "disk-full").await);
    }
    recur(&svc, "rare").await;
    let id = work_item(&app, &keys).await;
    let versions = |svc: Services, ids: Vec<IncidentId>| async move {
        let mut v = Vec::new();
        for i in &ids {
            v.push(
                incidents::get(&svc, &TenantId::default_tenant(), i)
                    .await
                    .unwrap()
                    .version,
            );
        }
        v
    };
    let before = versions(svc.clone(), ids.clone()).await;

    // The preview proposes a ticket, checks the tracker with a read, writes nothing.
    let p = send(
        &app,
        get(&format!("/v1/work-items/{id}/preview"), &keys.viewer),
    )
    .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert_eq!(p.json["proposed"], "open_ticket");
    assert_eq!(p.json["ready"], true, "{}", p.text);
    assert_eq!(p.json["no_write"], true);
    let checks: Vec<&str> = p.json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        [
            "tracker_configured",
            "tracker_reachable",
            "no_open_ticket_linked",
            "rate_limit_free"
        ]
    );
    assert_eq!(
        p.json["ticket"]["title"],
        "Recurring: Disk almost full (3 incidents, fingerprint disk-full)",
        "the title says what recurs, not only its key"
    );
    assert!(p.json["history"].as_array().unwrap().is_empty());
    assert_eq!(fake.calls()[0].method, Method::GET);
    assert_eq!(fake.calls()[0].path, "/repos/acme/ops");

    // The dry-run records the checks, and still creates nothing.
    let d = post(
        &app,
        &keys.responder,
        &format!("/v1/work-items/{id}/dry-run"),
        "",
    )
    .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    assert_eq!(d.json["history"][0]["kind"], "dry_run");
    assert_eq!(d.json["history"][0]["ok"], true);
    assert_eq!(posts(&fake), 0);
    assert_eq!(
        versions(svc.clone(), ids.clone()).await,
        before,
        "no incident touched"
    );

    // The handoff opens the ticket once.
    let h = post(
        &app,
        &keys.responder,
        &format!("/v1/work-items/{id}/handoff"),
        "",
    )
    .await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    assert_eq!(h.json["outcome"], "ticket_opened");
    let ticket = h.json["ticket"]["id"].as_str().unwrap().to_owned();
    assert!(ticket.starts_with("acme/ops#"), "{ticket}");
    let sent = fake
        .calls()
        .into_iter()
        .find(|c| c.method == Method::POST)
        .unwrap();
    assert!(sent.body["body"]
        .as_str()
        .unwrap()
        .contains(&ids[0].to_string()));
    assert!(sent.body["labels"]
        .as_array()
        .unwrap()
        .contains(&json!("recurring")));
    let again = post(
        &app,
        &keys.responder,
        &format!("/v1/work-items/{id}/handoff"),
        "",
    )
    .await;
    assert_eq!(again.json["outcome"], "ticket_linked");
    assert_eq!(again.json["ticket"]["id"], ticket.as_str());
    assert_eq!(posts(&fake), 1);
    let p = send(
        &app,
        get(&format!("/v1/work-items/{id}/preview"), &keys.viewer),
    )
    .await;
    assert_eq!(p.json["proposed"], "none");
    assert_eq!(p.json["history"].as_array().unwrap().len(), 2);

    // A later incident of the group shows the ticket from the start.
    let later = ingest_alert(
        &svc,
        SourceKind::Generic,
        json!({"title": "Disk almost full", "fingerprint": "disk-full", "severity": "sev3"})
            .to_string()
            .as_bytes(),
    )
    .await;
    let inc = incidents::get(&svc, &TenantId::default_tenant(), &later)
        .await
        .unwrap();
    assert_eq!(
        inc.ticket.as_ref().map(|t| t.id.as_str()),
        Some(ticket.as_str())
    );
    let card = firewatch_domain::chat::card(&inc, true);
    assert!(card.links[0].text.as_deref().unwrap().contains(&ticket));
    assert!(card
        .buttons
        .iter()
        .all(|b| b.action != firewatch_types::ButtonAction::Ticket));
    // Asking for a ticket for it answers with the group's.
    let a = post(
        &app,
        &keys.responder,
        &format!("/v1/incidents/{later}/ticket"),
        "",
    )
    .await;
    assert_eq!(a.json["status"], "linked", "{}", a.text);
}

#[tokio::test]
async fn concurrent_handoffs_open_one_ticket_and_a_manual_handoff_is_recorded() {
    let (svc, keys, app, fake) = setup(true).await;
    for _ in 0..3 {
        recur(&svc, "disk-full").await;
    }
    let id = work_item(&app, &keys).await;
    let path = format!("/v1/work-items/{id}/handoff");
    let answers =
        futures_util::future::join_all((0..5).map(|_| post(&app, &keys.responder, &path, "")))
            .await;
    assert!(
        answers.iter().any(|a| a.json["outcome"] == "ticket_opened"),
        "{:?}",
        answers.iter().map(|a| a.text.clone()).collect::<Vec<_>>()
    );
    for a in &answers {
        assert!(
            a.status == StatusCode::OK || a.status == StatusCode::CONFLICT,
            "{}",
            a.text
        );
    }
    assert_eq!(posts(&fake), 1);

    for _ in 0..3 {
        recur(&svc, "cert-expiry").await;
    }
    let l = send(&app, get("/v1/work-items?by=fingerprint", &keys.viewer)).await;
    let cert = l.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == "cert-expiry")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let m = post(&app, &keys.responder, &format!("/v1/work-items/{cert}/handoff"),
        r#"{"mode": "manual", "url": "https://wiki.example/certs", "note": "rotation tracked by the platform team"}"#).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    assert_eq!(m.json["outcome"], "manual");
    assert_eq!(m.json["manual"]["url"], "https://wiki.example/certs");
    assert_eq!(posts(&fake), 1, "a manual handoff calls no tracker");
}

#[tokio::test]
async fn failing_checks_and_bad_requests_are_refused_clearly() {
    let (svc, keys, app, fake) = setup(false).await;
    for _ in 0..3 {
        recur(&svc, "disk-full").await;
    }
    let id = work_item(&app, &keys).await;
    let d = post(
        &app,
        &keys.responder,
        &format!("/v1/work-items/{id}/dry-run"),
        "",
    )
    .await;
    assert_eq!(d.json["history"][0]["ok"], false, "{}", d.text);
    assert_eq!(d.json["checks"][0]["ok"], false);
    let h = post(
        &app,
        &keys.responder,
        &format!("/v1/work-items/{id}/handoff"),
        "",
    )
    .await;
    assert_eq!(h.status, StatusCode::CONFLICT, "{}", h.text);
    assert_eq!(h.json["error"]["code"], "preflight_failed");
    assert!(h.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("tracker_configured"));

    for (token, path, body, status) in [
        (
            &keys.viewer,
            format!("/v1/work-items/{id}/dry-run"),
            "",
            StatusCode::FORBIDDEN,
        ),
        (
            &keys.viewer,
            format!("/v1/work-items/{id}/handoff"),
            "",
            StatusCode::FORBIDDEN,
        ),
        (
            &keys.responder,
            format!("/v1/work-items/{id}/handoff"),
            r#"{"mode": "fax"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            &keys.responder,
            format!("/v1/work-items/{id}/handoff"),
            r#"{"mode": "manual", "url": "ftp://x"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            &keys.responder,
            format!("/v1/work-items/{id}/handoff"),
            r#"{"colour": 1}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            &keys.responder,
            "/v1/work-items/wi_00000000000000000000/dry-run".to_owned(),
            "",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let a = post(&app, token, &path, body).await;
        assert_eq!(a.status, status, "{path} {body}: {}", a.text);
    }
    let a = send(&app, get("/v1/work-items/nope/preview", &keys.viewer)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = send(&app, get("/v1/work-items?by=colour", &keys.viewer)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(fake.calls().is_empty());
}
