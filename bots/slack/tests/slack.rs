//! firewatch against a local fake of the Slack Web API that records every
//! request: the thread of an incident, signed button clicks and commands,
//! refusals, rate limits and outages. Requests and payloads are shaped as
//! Slack documents them (chat.postMessage / chat.update answers,
//! application/x-www-form-urlencoded slash commands and `payload=` block
//! actions, v0 signatures).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use chrono::Duration;
use firewatch_domain::dispatch::{self, drain};
use firewatch_domain::ports::FixedClock;
use firewatch_domain::settings::Secret;
use firewatch_domain::{incidents, Services};
use firewatch_slack::{router, sign, SlackChat, SlackConfig, SlackInbound};
use firewatch_types::{
    Destination, IncidentId, IncidentState, Principal, Role, SourceKind, TenantId,
};
use firewatch_web::testing::fakes::{FakeSlack, SlackCall as Received};
use firewatch_web::testing::{chat_services, ingest_alert, send};
use serde_json::json;
use std::sync::Arc;

const SIGNING: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const TOKEN: &str = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy";

struct World {
    svc: Services,
    clock: Arc<FixedClock>,
    fake: FakeSlack,
    base: String,
    app: Router,
}

async fn world() -> World {
    let fake = FakeSlack::start().await;
    let base = fake.base().to_owned();

    let config = SlackConfig::from_vars(|k| match k {
        "SLACK_BOT_TOKEN" => Some(TOKEN.into()),
        "SLACK_SIGNING_SECRET" => Some(SIGNING.into()),
        "SLACK_API_URL" => Some(format!("{base}/api")),
        _ => None,
    })
    .unwrap()
    .unwrap();
    let (svc, clock) = chat_services(
        Arc::new(SlackChat::new(config)),
        Destination::Slack {
            channel: "#incidents".into(),
        },
        "slack",
        "T0TEAM",
        "U0RESPONDER",
        "U0VIEWER",
    )
    .await;
    let app = router(
        svc.clone(),
        SlackInbound::new(Secret::new(SIGNING)).allowing_origin_of(&base),
        firewatch_web::testing::playbooks(),
    );
    World {
        svc,
        clock,
        fake,
        base,
        app,
    }
}

async fn fire(w: &World, starts: &str) -> IncidentId {
    let body = json!({"title": "checkout 5xx above 5%", "fingerprint": "checkout-5xx", "severity": "critical", "starts_at": starts, "labels": {"service": "checkout"}}).to_string();
    ingest_alert(&w.svc, SourceKind::Generic, body.as_bytes()).await
}

fn received(w: &World) -> Vec<Received> {
    w.fake.calls()
}

fn signed(w: &World, path: &str, body: String, ts_offset: i64, secret: &str) -> Request<Body> {
    let ts = w.clock.now_ts() + ts_offset;
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header(
            "x-slack-signature",
            sign(&Secret::new(secret), ts, body.as_bytes()),
        )
        .body(Body::from(body))
        .unwrap()
}

trait Ts {
    fn now_ts(&self) -> i64;
}
impl Ts for FixedClock {
    fn now_ts(&self) -> i64 {
        firewatch_domain::ports::Clock::now(self).timestamp()
    }
}

/// A trigger id as Slack makes one: unique per interaction.
fn trigger_id() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("13345224609.738474920.{n:031x}")
}

fn click(w: &World, user: &str, value: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": "jane", "name": "jane", "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "token": "verification-token-unused",
        "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": "C0INCIDENT1", "is_ephemeral": false},
        "trigger_id": trigger_id(),
        "team": {"id": "T0TEAM", "domain": "acme"},
        "channel": {"id": "C0INCIDENT1", "name": "incidents"},
        "response_url": format!("{}/api/response", w.base),
        "actions": [{"action_id": "fw_ack", "block_id": "fw_actions", "text": {"type": "plain_text", "text": "Acknowledge"}, "value": value, "type": "button", "action_ts": "1700000100.000000"}]
    });
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

fn command(user: &str, text: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", "verification-token-unused")
        .append_pair("team_id", "T0TEAM")
        .append_pair("team_domain", "acme")
        .append_pair("channel_id", "C0INCIDENT1")
        .append_pair("channel_name", "incidents")
        .append_pair("user_id", user)
        .append_pair("user_name", "jane")
        .append_pair("command", "/fw")
        .append_pair("text", text)
        .append_pair("api_app_id", "A0APP")
        .append_pair(
            "response_url",
            "https://hooks.slack.com/commands/T0TEAM/1/abc",
        )
        .append_pair("trigger_id", &trigger_id())
        .finish()
}

#[tokio::test]
async fn an_alert_becomes_a_thread_with_buttons_and_a_second_alert_replies_and_edits_the_card() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let r = received(&w);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].method, "chat.postMessage");
    assert_eq!(r[0].auth, format!("Bearer {TOKEN}"));
    assert_eq!(r[0].body["channel"], "#incidents");
    let blocks = r[0].body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap();
    let values: Vec<&str> = actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(values[0], format!("fw1:ack:{id}"));
    assert!(values.iter().all(|v| v.len() <= 64 && !v.contains(TOKEN)));

    fire(&w, "2026-11-20T11:30:00Z").await;
    drain(&w.svc).await.unwrap();
    let r = received(&w);
    assert_eq!(r[1].method, "chat.postMessage");
    assert_eq!(
        r[1].body["thread_ts"], "1700000000.000001",
        "the reply is in the thread"
    );
    assert_eq!(
        r[1].body["channel"], "C0INCIDENT1",
        "in the channel Slack answered with"
    );
    assert_eq!(r[2].method, "chat.update");
    assert_eq!(r[2].body["ts"], "1700000000.000001");
    assert!(
        r[2].body["text"].as_str().unwrap().contains("seen 2×"),
        "the card shows the new count"
    );
}

#[tokio::test]
async fn a_signed_click_acknowledges_and_the_thread_and_card_follow() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let a = send(
        &w.app,
        signed(
            &w,
            "/v1/chat/slack/interactions",
            click(&w, "U0RESPONDER", &format!("fw1:ack:{id}")),
            0,
            SIGNING,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let inc = incidents::get(&w.svc, &TenantId::default_tenant(), &id)
        .await
        .unwrap();
    assert_eq!(inc.state, IncidentState::Acknowledged);
    drain(&w.svc).await.unwrap();
    let r = received(&w);
    assert!(
        r[1].body["text"]
            .as_str()
            .unwrap()
            .contains("open → acknowledged by slack:U0RESPONDER"),
        "{:?}",
        r[1].body
    );
    assert_eq!(r[2].method, "chat.update");
    let buttons: Vec<&str> = r[2].body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap()["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"]["text"].as_str().unwrap())
        .collect();
    assert!(
        !buttons.contains(&"Acknowledge"),
        "the card no longer offers Acknowledge: {buttons:?}"
    );

    // Slack retries a click it thinks was lost: one effect.
    let again = send(
        &w.app,
        signed(
            &w,
            "/v1/chat/slack/interactions",
            click(&w, "U0RESPONDER", &format!("fw1:ack:{id}")),
            0,
            SIGNING,
        ),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    drain(&w.svc).await.unwrap();
    let tl = incidents::timeline(&w.svc, &TenantId::default_tenant(), &id, None, 50)
        .await
        .unwrap();
    let acks = tl
        .items
        .iter()
        .filter(|e| matches!(e.kind, firewatch_types::TimelineKind::StateChanged { .. }))
        .count();
    assert_eq!(acks, 1);
    let last = received(&w).last().unwrap().clone();
    assert_eq!(
        last.method, "response",
        "the second click is answered only to the clicker"
    );
    assert_eq!(last.body["response_type"], "ephemeral");
}

#[tokio::test]
async fn forged_stale_unmapped_and_viewer_clicks_change_nothing() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    let value = format!("fw1:ack:{id}");
    let forged = send(
        &w.app,
        signed(
            &w,
            "/v1/chat/slack/interactions",
            click(&w, "U0RESPONDER", &value),
            0,
            "not-the-secret",
        ),
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let stale = send(
        &w.app,
        signed(
            &w,
            "/v1/chat/slack/interactions",
            click(&w, "U0RESPONDER", &value),
            -600,
            SIGNING,
        ),
    )
    .await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    let mut unsigned = signed(
        &w,
        "/v1/chat/slack/interactions",
        click(&w, "U0RESPONDER", &value),
        0,
        SIGNING,
    );
    unsigned.headers_mut().remove("x-slack-signature");
    assert_eq!(
        send(&w.app, unsigned).await.status,
        StatusCode::UNAUTHORIZED
    );

    for user in ["U0STRANGER", "U0VIEWER"] {
        let a = send(
            &w.app,
            signed(
                &w,
                "/v1/chat/slack/interactions",
                click(&w, user, &value),
                0,
                SIGNING,
            ),
        )
        .await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "Slack gets its 200; the refusal goes to the clicker"
        );
        let last = received(&w).last().unwrap().clone();
        assert_eq!(last.method, "response");
        assert_eq!(last.body["response_type"], "ephemeral");
        assert_eq!(last.body["replace_original"], false);
    }
    let inc = incidents::get(&w.svc, &TenantId::default_tenant(), &id)
        .await
        .unwrap();
    assert_eq!(inc.state, IncidentState::Open, "nothing changed");
}

#[tokio::test]
async fn slash_commands_list_show_ack_and_resolve() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    let run = |user: &str, text: String| {
        signed(
            &w,
            "/v1/chat/slack/commands",
            command(user, &text),
            0,
            SIGNING,
        )
    };
    let a = send(&w.app, run("U0RESPONDER", "incidents".into())).await;
    assert_eq!(a.json["response_type"], "ephemeral");
    assert!(a.json["text"].as_str().unwrap().contains(id.as_str()));
    let a = send(&w.app, run("U0VIEWER", format!("ack {id}"))).await;
    assert!(
        a.json["text"].as_str().unwrap().contains("responder role"),
        "{}",
        a.text
    );
    let a = send(&w.app, run("U0RESPONDER", format!("ack {id}"))).await;
    assert!(
        a.json["text"].as_str().unwrap().contains("acknowledged"),
        "{}",
        a.text
    );
    let a = send(
        &w.app,
        run("U0RESPONDER", format!("resolve {id} rolled back")),
    )
    .await;
    assert!(
        a.json["text"].as_str().unwrap().contains("resolved"),
        "{}",
        a.text
    );
    let a = send(&w.app, run("U0RESPONDER", format!("show {id}"))).await;
    assert!(a.json["text"].as_str().unwrap().contains("resolved"));
    let a = send(&w.app, run("U0STRANGER", "incidents".into())).await;
    assert!(a.json["text"].as_str().unwrap().contains("not mapped"));
    let a = send(&w.app, run("U0RESPONDER", "dance".into())).await;
    assert!(a.json["text"].as_str().unwrap().contains("Usage"));
    let forged = send(
        &w.app,
        signed(
            &w,
            "/v1/chat/slack/commands",
            command("U0RESPONDER", "incidents"),
            0,
            "nope",
        ),
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_429_then_200_is_delivered_once_after_retry_after() {
    let w = world().await;
    w.fake.answer_next(429);
    fire(&w, "2026-11-20T11:00:00Z").await;
    assert_eq!(drain(&w.svc).await.unwrap().retrying, 1);
    assert!(received(&w).is_empty());
    w.clock.advance(Duration::seconds(2));
    assert_eq!(drain(&w.svc).await.unwrap().delivered, 1);
    assert_eq!(received(&w).len(), 1, "delivered exactly once");
}

#[tokio::test]
async fn slack_down_dead_letters_and_a_retry_delivers() {
    let w = world().await;
    w.fake.set_down(true);
    fire(&w, "2026-11-20T11:00:00Z").await;
    for _ in 0..dispatch::MAX_ATTEMPTS {
        drain(&w.svc).await.unwrap();
        w.clock.advance(Duration::minutes(10));
    }
    let t = TenantId::default_tenant();
    let dead = dispatch::dead_letters(&w.svc, &t).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].last_error.contains("unavailable"),
        "{}",
        dead[0].last_error
    );
    assert!(
        !dead[0].last_error.contains(TOKEN),
        "the token never lands in an error"
    );
    w.fake.set_down(false);
    let p = Principal {
        tenant: t,
        name: "ops".into(),
        role: Role::Responder,
    };
    dispatch::retry_dead_letter(&w.svc, &p, &dead[0].id)
        .await
        .unwrap();
    assert_eq!(drain(&w.svc).await.unwrap().delivered, 1);
    assert_eq!(received(&w).len(), 1);
}

#[tokio::test]
async fn the_triage_button_posts_a_report_in_the_thread() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let root_ts = received(&w)[0].clone();
    assert_eq!(root_ts.method, "chat.postMessage");
    let body = click(&w, "U0RESPONDER", &format!("fw1:triage:{id}"));
    for _ in 0..2 {
        // The second is a replay of the first (same trigger id): one effect.
        let a = send(
            &w.app,
            signed(&w, "/v1/chat/slack/interactions", body.clone(), 0, SIGNING),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    drain(&w.svc).await.unwrap();
    let reports = received(&w)
        .iter()
        .filter(|r| {
            r.body["text"]
                .as_str()
                .unwrap_or("")
                .starts_with("🔎 Triage")
        })
        .count();
    assert_eq!(reports, 1, "a replayed click has one effect");
    let reply = received(&w)
        .into_iter()
        .rfind(|r| r.method == "chat.postMessage")
        .unwrap();
    assert!(reply.body["thread_ts"].is_string(), "{}", reply.body);
    let text = reply.body["text"].as_str().unwrap();
    assert!(
        text.starts_with("🔎 Triage by slack:U0RESPONDER (deterministic, medium confidence)"),
        "{text}"
    );
    assert!(
        text.contains("Likely cause: Requests are failing"),
        "{text}"
    );
    assert!(text.contains("Scope: service=checkout"), "{text}");

    // 👍/👎 under the report, as Block Kit buttons; a click on one is a vote.
    let values: Vec<String> = reply.body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().iter())
        .map(|e| e["value"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(values.len(), 2, "{}", reply.body);
    assert!(values[0].starts_with("fw1:up:trg_"), "{values:?}");
    click_as(&w, "U0RESPONDER", &values[0]).await;
    let votes = firewatch_web::testing::triage_votes(&w.svc).await;
    assert_eq!((votes.total, votes.helpful), (1, 1));
}

#[tokio::test]
async fn fw_link_with_a_code_makes_the_channel_a_destination_of_the_codes_tenant() {
    use firewatch_domain::routing::{links, routes};
    let w = world().await;
    let admin = firewatch_types::Principal {
        tenant: TenantId::default_tenant(),
        name: "admin".into(),
        role: firewatch_types::Role::Admin,
    };
    let route = routes::Route {
        id: String::new(),
        when: Default::default(),
        destinations: vec![Destination::Slack {
            channel: "C0INCIDENT1".into(),
        }],
        ticket: false,
        escalation: None,
        flapping: None,
        version: 0,
    };
    assert!(
        routes::put(&w.svc, &admin, "ops", route.clone())
            .await
            .is_err(),
        "not linked yet"
    );
    let code = links::create_code(&w.svc, &admin, "slack").await.unwrap();
    // Anyone in the channel may post the code: no mapping needed.
    let a = send(
        &w.app,
        signed(
            &w,
            "/v1/chat/slack/commands",
            command("U0SOMEONE", &format!("link {}", code.code)),
            0,
            SIGNING,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(
        a.json["text"].as_str().unwrap().starts_with("Linked"),
        "{}",
        a.text
    );
    routes::put(&w.svc, &admin, "ops", route).await.unwrap();
}

/// The values of the buttons in a message's actions block.
fn button_values(body: &serde_json::Value) -> Vec<String> {
    body["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().iter())
        .map(|e| e["value"].as_str().unwrap().to_owned())
        .collect()
}

async fn click_as(w: &World, user: &str, value: &str) {
    let a = send(
        &w.app,
        signed(
            w,
            "/v1/chat/slack/interactions",
            click(w, user, value),
            0,
            SIGNING,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

#[tokio::test]
async fn the_playbook_buttons_dry_run_run_and_edit_the_runs_message_in_the_thread() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();

    // Playbooks: the matching playbooks, as buttons, to the clicker only.
    click_as(&w, "U0RESPONDER", &format!("fw1:playbooks:{id}")).await;
    let offer = received(&w).last().unwrap().clone();
    assert_eq!(
        (offer.method.as_str(), &offer.body["response_type"]),
        ("response", &json!("ephemeral"))
    );
    assert!(offer.body["text"].as_str().unwrap().contains("tell-team"));
    let choices = button_values(&offer.body);
    assert_eq!(
        choices,
        [format!("fw1:dry:{id}.0"), format!("fw1:dry:{id}.1")]
    );

    // A choice dry-runs it; the run's message comes into the thread with Run.
    let before = received(&w).len();
    click_as(&w, "U0RESPONDER", &choices[0]).await;
    firewatch_web::testing::settle(&w.svc).await;
    let r = received(&w)[before..].to_vec();
    let reply = r
        .iter()
        .find(|c| {
            c.method == "chat.postMessage"
                && c.body["blocks"].is_null()
                && c.body["text"].as_str().unwrap().contains("dry run ok")
        })
        .expect("the dry-run's outcome is a reply in the thread");
    assert_eq!(reply.body["thread_ts"], "1700000000.000001");
    let run_msg = r
        .iter()
        .find(|c| c.method == "chat.postMessage" && !c.body["blocks"].is_null())
        .unwrap();
    assert_eq!(
        run_msg.body["thread_ts"], "1700000000.000001",
        "the run's message is in the thread"
    );
    let run_buttons = button_values(&run_msg.body);
    assert_eq!(run_buttons.len(), 2, "Run and Cancel: {run_buttons:?}");
    assert!(run_buttons[0].starts_with("fw1:run:run_"));
    // The fake answers the n-th call with ts `1700000000.<n>`.
    let n = received(&w)
        .iter()
        .position(|c| c.body == run_msg.body)
        .unwrap()
        + 1;
    let run_ts = format!("1700000000.{n:06}");

    // Run: the step is performed, the thread gets each transition as a
    // reply, and the run's message is edited to its end state.
    let before = received(&w).len();
    click_as(&w, "U0RESPONDER", &run_buttons[0]).await;
    firewatch_web::testing::settle(&w.svc).await;
    let r = received(&w)[before..].to_vec();
    let replies: Vec<&str> = r
        .iter()
        .filter(|c| c.method == "chat.postMessage")
        .map(|c| c.body["text"].as_str().unwrap())
        .collect();
    assert!(replies.iter().any(|t| t.contains("running")), "{replies:?}");
    assert!(
        replies
            .iter()
            .any(|t| t.contains("succeeded") && t.contains("Looking at checkout 5xx above 5%")),
        "{replies:?}"
    );
    let run_edits: Vec<_> = r
        .iter()
        .filter(|c| c.method == "chat.update" && c.body["ts"] == run_ts.as_str())
        .collect();
    assert!(
        run_edits.len() >= 2,
        "the run's message is edited at each transition: {r:#?}"
    );
    let last = run_edits.last().unwrap();
    assert!(last.body["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("succeeded"));
    assert!(
        button_values(&last.body).is_empty(),
        "no buttons once it is done"
    );

    // A playbook that needs an approver: its requester pressing Approve is
    // refused in place, with the reason.
    click_as(&w, "U0RESPONDER", &choices[1]).await;
    firewatch_web::testing::settle(&w.svc).await;
    let guarded = received(&w)
        .into_iter()
        .rev()
        .find(|c| {
            c.method == "chat.postMessage"
                && button_values(&c.body)
                    .iter()
                    .any(|v| v.starts_with("fw1:approve:"))
        })
        .expect("the guarded run's message offers Approve");
    let approve = button_values(&guarded.body)[0].clone();
    click_as(&w, "U0RESPONDER", &approve).await;
    let refusal = received(&w).last().unwrap().clone();
    assert_eq!(refusal.method, "response");
    assert!(
        refusal.body["text"].as_str().unwrap().contains("approver"),
        "{:?}",
        refusal.body
    );
}

#[tokio::test]
async fn fw_playbooks_dry_run_and_run_commands() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let run_cmd = |text: String| {
        signed(
            &w,
            "/v1/chat/slack/commands",
            command("U0RESPONDER", &text),
            0,
            SIGNING,
        )
    };
    let list = send(&w.app, run_cmd(format!("playbooks {id}"))).await;
    assert_eq!(list.json["response_type"], "ephemeral");
    assert_eq!(button_values(&list.json).len(), 2, "{}", list.text);

    // The dry-run is requested at once and done by the dispatcher: a chat
    // request answers within Slack's three seconds whatever the checks take.
    let dry = send(&w.app, run_cmd(format!("dry-run {id} tell-team"))).await;
    let text = dry.json["text"].as_str().unwrap();
    assert!(text.contains("requested"), "{text}");
    let run_id = text
        .split_whitespace()
        .find(|w| w.starts_with("run_"))
        .unwrap()
        .to_owned();
    let early = send(&w.app, run_cmd(format!("run {run_id}"))).await;
    assert!(
        early.json["text"].as_str().unwrap().contains("requested"),
        "{}",
        early.text
    );
    firewatch_web::testing::settle(&w.svc).await;
    let bad = send(
        &w.app,
        run_cmd(format!("dry-run {id} tell-team colour=red")),
    )
    .await;
    assert!(
        bad.json["text"]
            .as_str()
            .unwrap()
            .contains("no parameter `colour`"),
        "{}",
        bad.text
    );

    let run = send(&w.app, run_cmd(format!("run {run_id}"))).await;
    assert!(
        run.json["text"]
            .as_str()
            .unwrap()
            .contains("is now running"),
        "{}",
        run.text
    );
    firewatch_web::testing::settle(&w.svc).await;
    let again = send(&w.app, run_cmd(format!("rollback {run_id}"))).await;
    assert!(
        again.json["text"].as_str().unwrap().contains("no rollback"),
        "{}",
        again.text
    );
}

#[tokio::test]
async fn the_open_ticket_button_opens_one_ticket_and_its_link_follows_in_the_thread() {
    let mut w = world().await;
    let tracker = firewatch_web::testing::fakes::FakeTracker::start().await;
    w.svc = w
        .svc
        .clone()
        .with_tracker(Some(Arc::new(firewatch_egress::trackers::GitHub::new(
            tracker.base(),
            "ghp_slack_test_token",
            "acme/ops",
        ))));
    w.app = router(
        w.svc.clone(),
        SlackInbound::new(Secret::new(SIGNING)).allowing_origin_of(&w.base),
        firewatch_web::testing::playbooks(),
    );
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let ticket = format!("fw1:ticket:{id}");
    assert!(
        button_values(&received(&w)[0].body).contains(&ticket),
        "{}",
        received(&w)[0].body
    );
    // Two presses, one ticket.
    click_as(&w, "U0RESPONDER", &ticket).await;
    click_as(&w, "U0RESPONDER", &ticket).await;
    // The ticket's link is a change of its own, delivered on the next pass.
    drain(&w.svc).await.unwrap();
    drain(&w.svc).await.unwrap();
    assert_eq!(tracker.calls().len(), 1);
    let texts: Vec<String> = received(&w)
        .iter()
        .filter(|r| r.method == "chat.postMessage" && r.body["thread_ts"].is_string())
        .filter_map(|r| r.body["text"].as_str().map(str::to_owned))
        .collect();
    assert!(
        texts.iter().any(|t| t
            == "🎫 Ticket acme/ops#12 opened in github: https://github.com/acme/ops/issues/12"),
        "{texts:?}"
    );
    // The card now links the ticket and no longer offers one.
    let card = received(&w)
        .into_iter()
        .rfind(|r| r.method == "chat.update")
        .unwrap();
    assert!(
        !button_values(&card.body).contains(&ticket),
        "{}",
        card.body
    );
    assert!(
        card.body
            .to_string()
            .contains("https://github.com/acme/ops/issues/12"),
        "{}",
        card.body
    );
    // A viewer's press opens nothing.
    let viewer_click = click(&w, "U0VIEWER", &format!("fw1:ticket:{id}"));
    let a = send(
        &w.app,
        signed(&w, "/v1/chat/slack/interactions", viewer_click, 0, SIGNING),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    drain(&w.svc).await.unwrap();
    assert_eq!(tracker.calls().len(), 1);
}

fn thread_texts(w: &World) -> Vec<String> {
    received(w)
        .iter()
        .filter(|r| r.method == "chat.postMessage" && r.body["thread_ts"].is_string())
        .filter_map(|r| r.body["text"].as_str().map(str::to_owned))
        .collect()
}

async fn silences_job(w: &World) -> usize {
    let budget = firewatch_domain::schedules::Budget::new(std::time::Duration::from_secs(5));
    let r = firewatch_domain::silence_ends::run_due(&w.svc, &budget)
        .await
        .unwrap();
    drain(&w.svc).await.unwrap();
    r.alerts
}

#[tokio::test]
async fn the_silence_button_quiets_the_thread_then_warns_and_ends_in_it() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let silence = format!("fw1:silence:{id}");
    assert!(
        button_values(&received(&w)[0].body).contains(&silence),
        "{}",
        received(&w)[0].body
    );
    // A viewer's press silences nothing.
    let a = send(
        &w.app,
        signed(
            &w,
            "/v1/chat/slack/interactions",
            click(&w, "U0VIEWER", &silence),
            0,
            SIGNING,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    drain(&w.svc).await.unwrap();
    assert!(thread_texts(&w).iter().all(|t| !t.contains("Silenced")));

    click_as(&w, "U0RESPONDER", &silence).await;
    drain(&w.svc).await.unwrap();
    let texts = thread_texts(&w);
    let made = texts
        .iter()
        .find(|t| t.starts_with("🔕 Silenced until"))
        .unwrap_or_else(|| panic!("{texts:?}"));
    assert!(made.contains("service=\"checkout\""), "{made}");
    let before = received(&w).len();

    // The alert fires again: on the timeline, but nobody is told.
    w.clock.advance(Duration::minutes(5));
    fire(&w, "2026-11-20T11:05:00Z").await;
    drain(&w.svc).await.unwrap();
    assert_eq!(received(&w).len(), before, "{:?}", &received(&w)[before..]);
    let tl = incidents::timeline(&w.svc, &TenantId::default_tenant(), &id, None, 50)
        .await
        .unwrap();
    assert!(tl
        .items
        .iter()
        .any(|e| e.reason.as_deref() == Some("silenced")));

    // Ten minutes before the end, once however often the job runs.
    w.clock.advance(Duration::minutes(45));
    assert_eq!(silences_job(&w).await, 1);
    assert_eq!(silences_job(&w).await, 0);
    let warned: Vec<String> = thread_texts(&w)
        .into_iter()
        .filter(|t| t.starts_with("⏳ Silence"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("in 10 minutes"), "{}", warned[0]);

    // The end.
    w.clock.advance(Duration::minutes(10));
    assert_eq!(silences_job(&w).await, 1);
    silences_job(&w).await;
    let ended: Vec<String> = thread_texts(&w)
        .into_iter()
        .filter(|t| t.starts_with("🔔 Silence"))
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");

    // Loud again.
    let before = received(&w).len();
    fire(&w, "2026-11-20T12:30:00Z").await;
    drain(&w.svc).await.unwrap();
    assert!(received(&w).len() > before);
}

#[tokio::test]
async fn silence_commands_create_list_and_end_silences() {
    let w = world().await;
    let run = |text: &str| {
        signed(
            &w,
            "/v1/chat/slack/commands",
            command("U0RESPONDER", text),
            0,
            SIGNING,
        )
    };
    let a = send(
        &w.app,
        run("silence alertname=DiskFull env=~\"prod|stage\" 2h disk swap"),
    )
    .await;
    let text = a.json["text"].as_str().unwrap().to_owned();
    assert!(
        text.starts_with("Silenced {alertname=\"DiskFull\", env=~\"prod|stage\"} until"),
        "{text}"
    );
    let id = text.split("(silence ").nth(1).unwrap()[..36].to_owned();
    let a = send(&w.app, run("silences")).await;
    let list = a.json["text"].as_str().unwrap();
    assert!(list.contains(&id) && list.contains("disk swap"), "{list}");
    // Matchers without a comment, or nothing but a duration, are refused.
    let a = send(&w.app, run("silence alertname=DiskFull 2h")).await;
    assert!(a.json["text"].as_str().unwrap().contains("needs a comment"));
    let a = send(&w.app, run("silence 2h")).await;
    assert!(a.json["text"].as_str().unwrap().starts_with("Usage"));
    let a = send(&w.app, run("silence env=~( 2h x")).await;
    assert!(
        a.json["text"].as_str().unwrap().contains("not a regex"),
        "{}",
        a.text
    );
    let a = send(&w.app, run(&format!("unsilence {id}"))).await;
    assert_eq!(a.json["text"], format!("Silence {id} expired."));
    let a = send(&w.app, run("silences")).await;
    assert_eq!(a.json["text"], "No active or pending silences.");
}
