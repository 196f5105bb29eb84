//! Tickets from an incident: `POST /v1/incidents/{id}/ticket` through the
//! real router, created by the dispatcher through the real GitHub adapter
//! against a recording fake of GitHub's issues API.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use firewatch_domain::ports::{Clock, FixedClock};
use firewatch_domain::{dispatch, incidents, Services};
use firewatch_egress::trackers::GitHub;
use firewatch_types::{IncidentId, SourceKind, TenantId};
use firewatch_web::testing::fakes::FakeTracker;
use firewatch_web::testing::{ingest_alert, json_request, send, services_with_keys, Answer, Keys};
use serde_json::json;

const TOKEN: &str = "ghp_tracker_token_never_shown";

async fn setup() -> (
    Services,
    Keys,
    axum::Router,
    FakeTracker,
    Arc<FixedClock>,
    IncidentId,
) {
    let fake = FakeTracker::start().await;
    let clock = Arc::new(FixedClock::new(chrono::Utc::now()));
    let (svc, keys) = services_with_keys().await;
    let svc = svc
        .with_clock(clock.clone())
        .with_tracker(Some(Arc::new(GitHub::new(fake.base(), TOKEN, "acme/ops"))));
    let alert = json!({"title": "Checkout errors", "fingerprint": "checkout-5xx", "severity": "sev2",
        "labels": {"service": "checkout"},
        "annotations": {"password": "hunter2-secret-value", "summary": "see https://user:pa55word@grafana.example/d/1"}});
    let id = ingest_alert(&svc, SourceKind::Generic, alert.to_string().as_bytes()).await;
    let app = firewatch_incidents::router(svc.clone());
    (svc, keys, app, fake, clock, id)
}

async fn ask(app: &axum::Router, token: &str, id: &IncidentId, body: &str) -> Answer {
    send(
        app,
        json_request(
            Method::POST,
            &format!("/v1/incidents/{id}/ticket"),
            Some(token),
            body.to_owned(),
        ),
    )
    .await
}

async fn incident(svc: &Services, id: &IncidentId) -> firewatch_types::Incident {
    incidents::get(svc, &TenantId::default_tenant(), id)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_ticket_is_created_once_linked_and_shown_on_the_card() {
    let (svc, keys, app, fake, _, id) = setup().await;
    let a = ask(&app, &keys.responder, &id, "").await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.json["status"], "requested");
    let key = a.json["key"].as_str().unwrap().to_owned();
    // Asked again before it exists: the same request.
    let again = ask(&app, &keys.responder, &id, "{}").await;
    assert_eq!(
        (again.status, again.json["status"].as_str()),
        (StatusCode::OK, Some("pending"))
    );
    assert_eq!(again.json["key"], key.as_str());

    dispatch::drain(&svc).await.unwrap();
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    let body = calls[0].body["body"].as_str().unwrap();
    assert_eq!(calls[0].body["title"], "[sev2] Checkout errors");
    assert!(
        body.contains("Checkout errors") && body.contains("`service`: checkout"),
        "{body}"
    );
    assert!(
        body.contains(&key),
        "the request key is in the body: {body}"
    );
    for secret in ["hunter2-secret-value", "pa55word", TOKEN] {
        assert!(
            !calls[0].body.to_string().contains(secret),
            "{secret} leaked: {body}"
        );
    }

    let inc = incident(&svc, &id).await;
    let t = inc.ticket.clone().expect("linked");
    assert_eq!(
        (t.tracker.as_str(), t.id.as_str(), t.key.as_str()),
        ("github", "acme/ops#12", key.as_str())
    );
    assert_eq!(t.url, "https://github.com/acme/ops/issues/12");
    assert!(inc.ticket_requested.is_none());
    let card = firewatch_domain::chat::card(&inc, false);
    assert_eq!(card.links[0].href, t.url);
    assert_eq!(card.links[0].text.as_deref(), Some("ticket acme/ops#12"));
    let timeline = incidents::timeline(&svc, &TenantId::default_tenant(), &id, None, 100)
        .await
        .unwrap();
    assert!(timeline.items.iter().any(|e| matches!(&e.kind,
        firewatch_types::TimelineKind::TicketLinked { ticket, .. } if ticket == "acme/ops#12")));

    // Redelivered, the effect creates nothing; asked again, the link.
    firewatch_domain::tickets::perform(&svc, &TenantId::default_tenant(), &id, &key, "ana")
        .await
        .unwrap();
    dispatch::drain(&svc).await.unwrap();
    assert_eq!(fake.calls().len(), 1);
    let linked = ask(&app, &keys.responder, &id, "").await;
    assert_eq!(linked.json["status"], "linked");
    assert_eq!(linked.json["ticket"]["id"], "acme/ops#12");
    // Unless asked for another on purpose.
    let another = ask(&app, &keys.responder, &id, r#"{"again": true}"#).await;
    assert_eq!(another.status, StatusCode::ACCEPTED, "{}", another.text);
    dispatch::drain(&svc).await.unwrap();
    assert_eq!(fake.calls().len(), 2);
    assert_eq!(incident(&svc, &id).await.ticket.unwrap().id, "acme/ops#13");
}

#[tokio::test]
async fn concurrent_requests_create_one_ticket() {
    let (svc, keys, app, fake, _, id) = setup().await;
    let asks = (0..10).map(|_| ask(&app, &keys.responder, &id, ""));
    let answers = futures_util::future::join_all(asks).await;
    let keys_seen: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| {
            assert!(a.status.is_success(), "{}", a.text);
            a.json["key"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(keys_seen.len(), 1, "{keys_seen:?}");
    dispatch::drain(&svc).await.unwrap();
    dispatch::drain(&svc).await.unwrap();
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn a_tracker_that_is_down_is_retried_and_a_refusal_is_a_dead_letter() {
    let (svc, keys, app, fake, clock, id) = setup().await;
    fake.set_down(true);
    assert_eq!(
        ask(&app, &keys.responder, &id, "").await.status,
        StatusCode::ACCEPTED
    );
    let d = dispatch::drain(&svc).await.unwrap();
    assert_eq!(d.retrying, 1, "{d:?}");
    assert!(incident(&svc, &id).await.ticket.is_none());
    fake.set_down(false);
    clock.advance(chrono::Duration::hours(1));
    dispatch::drain(&svc).await.unwrap();
    assert_eq!(incident(&svc, &id).await.ticket.unwrap().id, "acme/ops#12");

    // Refused credentials: retrying changes nothing, so a dead letter.
    fake.answer_next(401);
    let a = ask(&app, &keys.responder, &id, r#"{"again": true}"#).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let d = dispatch::drain(&svc).await.unwrap();
    assert_eq!(d.dead, 1, "{d:?}");
}

#[tokio::test]
async fn bad_ticket_requests_are_refused_and_change_nothing() {
    let (svc, keys, app, fake, _, id) = setup().await;
    let viewer = ask(&app, &keys.viewer, &id, "").await;
    assert_eq!(viewer.status, StatusCode::FORBIDDEN);
    let bad = ask(&app, &keys.responder, &id, r#"{"again": "yes"}"#).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown = ask(&app, &keys.responder, &id, r#"{"colour": "red"}"#).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let missing = ask(
        &app,
        &keys.responder,
        &IncidentId::parse("inc_01JD0000000000000000000009").unwrap(),
        "",
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    dispatch::drain(&svc).await.unwrap();
    assert!(fake.calls().is_empty());
    assert!(incident(&svc, &id).await.ticket_requested.is_none());

    // Without a tracker, a clear refusal.
    let (plain, keys2) = services_with_keys().await;
    let id2 = ingest_alert(&plain, SourceKind::Generic, br#"{"title": "x"}"#).await;
    let app2 = firewatch_incidents::router(plain);
    let a = ask(&app2, &keys2.responder, &id2, "").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.json["error"]["code"], "no_tracker", "{}", a.text);
}

#[tokio::test]
async fn a_route_rule_with_ticket_opens_one_for_every_incident_it_matches() {
    let (svc, _, _, fake, _, _) = setup().await;
    let admin = firewatch_types::Principal {
        tenant: TenantId::default_tenant(),
        name: "ops".into(),
        role: firewatch_types::Role::Admin,
    };
    let rule = firewatch_domain::routing::routes::Route {
        id: String::new(),
        when: firewatch_domain::routing::routes::Match {
            severities: vec![firewatch_types::Severity::Sev1],
            ..Default::default()
        },
        destinations: vec![firewatch_types::Destination::Console],
        ticket: true,
        escalation: None,
        flapping: None,
        version: 0,
    };
    firewatch_domain::routing::routes::put(&svc, &admin, "sev1-tickets", rule)
        .await
        .unwrap();
    let before = fake.calls().len();
    let sev1 = ingest_alert(
        &svc,
        SourceKind::Generic,
        json!({"title": "Payments down", "fingerprint": "payments", "severity": "sev1"})
            .to_string()
            .as_bytes(),
    )
    .await;
    let sev3 = ingest_alert(
        &svc,
        SourceKind::Generic,
        json!({"title": "Slow report", "fingerprint": "report", "severity": "sev3"})
            .to_string()
            .as_bytes(),
    )
    .await;
    for _ in 0..3 {
        dispatch::drain(&svc).await.unwrap();
    }
    assert_eq!(fake.calls().len(), before + 1, "the sev1 only");
    assert!(incident(&svc, &sev1).await.ticket.is_some());
    assert!(incident(&svc, &sev3).await.ticket.is_none());
    let timeline = incidents::timeline(&svc, &TenantId::default_tenant(), &sev1, None, 100)
        .await
        .unwrap();
    assert!(timeline
        .items
        .iter()
        .any(|e| e.actor == "route:sev1-tickets"
            && matches!(
                e.kind,
                firewatch_types::TimelineKind::TicketRequested { .. }
            )));
}

/// Leaves the claim an attempt that stopped would leave: claimed at `at`,
/// and the ticket it created, if it got that far.
async fn leave_claim(
    svc: &Services,
    id: &IncidentId,
    key: &str,
    at: chrono::DateTime<chrono::Utc>,
    created: serde_json::Value,
) {
    use firewatch_domain::keys;
    let item = keys::item(
        keys::incident_pk(&TenantId::default_tenant(), id),
        keys::ticket_claim_sk(key),
        1,
        &json!({"at": at, "created": created}),
    )
    .unwrap();
    svc.store
        .put(item, firewatch_domain::ports::Condition::Always)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_ticket_is_claimed_before_it_is_created_so_a_stopped_attempt_opens_no_second_one() {
    let (svc, keys, app, fake, clock, id) = setup().await;
    let t = TenantId::default_tenant();
    let perform = |key: String| {
        let svc = svc.clone();
        let id = id.clone();
        let t = t.clone();
        async move { firewatch_domain::tickets::perform(&svc, &t, &id, &key, "ana").await }
    };

    // Stopped after the tracker created the ticket and the claim kept it:
    // the retry links that ticket and calls the tracker no more.
    let key = ask(&app, &keys.responder, &id, "").await.json["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = json!({"key": key, "tracker": "github", "id": "acme/ops#7",
        "url": "https://github.com/acme/ops/issues/7", "created_at": clock.now()});
    leave_claim(&svc, &id, &key, clock.now(), created).await;
    perform(key.clone()).await.unwrap();
    assert_eq!(incident(&svc, &id).await.ticket.unwrap().id, "acme/ops#7");
    assert!(fake.calls().is_empty());

    // Claimed a moment ago by an attempt still under way: wait for it.
    let a = ask(&app, &keys.responder, &id, r#"{"again": true}"#).await;
    let key = a.json["key"].as_str().unwrap().to_owned();
    leave_claim(&svc, &id, &key, clock.now(), serde_json::Value::Null).await;
    let busy = perform(key.clone()).await.unwrap_err();
    assert!(
        matches!(busy, firewatch_domain::DomainError::Unavailable(_)),
        "{busy:?}"
    );
    assert!(fake.calls().is_empty());

    // Claimed and never heard of again: the tracker may hold the ticket,
    // so none is opened on its own; the thread says so and the request ends.
    clock.advance(chrono::Duration::minutes(5));
    perform(key.clone()).await.unwrap();
    assert!(fake.calls().is_empty(), "no second ticket");
    let inc = incident(&svc, &id).await;
    assert!(inc.ticket_requested.is_none());
    assert_eq!(
        inc.ticket.unwrap().id,
        "acme/ops#7",
        "the earlier link stays"
    );
    let timeline = incidents::timeline(&svc, &t, &id, None, 100).await.unwrap();
    assert!(timeline.items.iter().any(|e| matches!(&e.kind,
        firewatch_types::TimelineKind::Comment { text } if text.contains(&key) && text.contains("may hold the ticket"))));

    // Asked again on purpose, a ticket is opened once.
    let a = ask(&app, &keys.responder, &id, r#"{"again": true}"#).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    dispatch::drain(&svc).await.unwrap();
    assert_eq!(fake.calls().len(), 1);
}

/// Every token of the redaction corpus, sent in an alert's labels,
/// annotations and links, reaches none of the places text goes: the
/// incident and its timeline as the API shows them, the kept envelope, the
/// dossier, the Slack card and thread, the ticket, the model's prompt and
/// the logs.
#[tokio::test]
async fn the_redaction_corpus_reaches_no_card_log_ticket_prompt_or_stored_item() {
    use firewatch_domain::redact::SAMPLE_TOKENS;
    let slack = firewatch_web::testing::fakes::FakeSlack::start().await;
    let config = firewatch_slack::SlackConfig::from_vars(|k| match k {
        "SLACK_BOT_TOKEN" => Some("xoxb-0-0-test".into()),
        "SLACK_SIGNING_SECRET" => Some("signing-secret-test".into()),
        "SLACK_API_URL" => Some(format!("{}/api", slack.base())),
        _ => None,
    })
    .unwrap()
    .unwrap();
    let (svc, _clock) = firewatch_web::testing::chat_services(
        Arc::new(firewatch_slack::SlackChat::new(config)),
        firewatch_types::Destination::Slack {
            channel: "#incidents".into(),
        },
        "slack",
        "T0TEAM",
        "U0RESPONDER",
        "U0VIEWER",
    )
    .await;
    let (svc, keys) = firewatch_web::testing::services_and_keys(svc).await;
    let fake = FakeTracker::start().await;
    let llm = Arc::new(firewatch_web::testing::ListeningModel::default());
    let svc = svc
        .with_tracker(Some(Arc::new(GitHub::new(fake.base(), TOKEN, "acme/ops"))))
        .with_llm(Some(llm.clone()));
    let (logs, _guard) = firewatch_web::testing::capture_logs();

    let mut labels = serde_json::Map::new();
    let mut annotations = serde_json::Map::new();
    for (i, token) in SAMPLE_TOKENS.iter().enumerate() {
        labels.insert(format!("note{i}"), json!(format!("deploy leaked {token}")));
        annotations.insert(
            format!("detail{i}"),
            json!(format!(
                "Authorization: Token {token} at https://api.example.com/x?key={token}"
            )),
        );
    }
    let alert = json!({"title": format!("Checkout errors {}", SAMPLE_TOKENS[0]),
        "fingerprint": "checkout-corpus", "severity": "sev2",
        "labels": labels, "annotations": annotations,
        "links": [{"href": format!("https://grafana.example/d/1?token={}", SAMPLE_TOKENS[2]), "text": "dashboard"}]});
    let id = ingest_alert(&svc, SourceKind::Generic, alert.to_string().as_bytes()).await;
    dispatch::drain(&svc).await.unwrap();
    let app = firewatch_incidents::router(svc.clone());
    let triaged = send(
        &app,
        json_request(
            Method::POST,
            &format!("/v1/incidents/{id}/triage"),
            Some(&keys.responder),
            r#"{"mode": "assisted"}"#,
        ),
    )
    .await;
    assert_eq!(triaged.status, StatusCode::OK, "{}", triaged.text);
    let asked = ask(&app, &keys.responder, &id, "").await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.text);
    dispatch::drain(&svc).await.unwrap();

    let shown = send(
        &app,
        firewatch_web::testing::get(&format!("/v1/incidents/{id}"), &keys.viewer),
    )
    .await;
    let timeline = send(
        &app,
        firewatch_web::testing::get(&format!("/v1/incidents/{id}/timeline"), &keys.viewer),
    )
    .await;
    let envelope_key = timeline.json["items"][0]["envelope"]["blob_key"]
        .as_str()
        .expect("the opening entry names its envelope")
        .to_owned();
    let envelope = svc.blobs.get(&envelope_key).await.unwrap().expect("kept");
    let viewer = firewatch_types::Principal {
        tenant: TenantId::default_tenant(),
        name: "viewer".into(),
        role: firewatch_types::Role::Viewer,
    };
    let dossier = firewatch_domain::dossier::list(&svc, &viewer, &Default::default(), None, 50)
        .await
        .unwrap();
    assert!(!slack.calls().is_empty() && !fake.calls().is_empty() && !llm.prompts().is_empty());
    let places = [
        ("incident", shown.text.clone()),
        ("timeline", timeline.text.clone()),
        ("triage report", triaged.text.clone()),
        ("envelope", String::from_utf8_lossy(&envelope).into_owned()),
        ("dossier", format!("{dossier:?}")),
        ("slack", format!("{:?}", slack.calls())),
        ("ticket", format!("{:?}", fake.calls())),
        ("prompt", llm.prompts().join("\n")),
        ("logs", logs.text()),
    ];
    for token in SAMPLE_TOKENS {
        for (place, text) in &places {
            assert!(!text.contains(token), "{token} reached the {place}: {text}");
        }
    }
}
