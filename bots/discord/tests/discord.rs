//! firewatch against a local fake of Discord's REST API that records every
//! call. Interactions are shaped and signed as Discord documents them
//! (Ed25519 over timestamp + body; PING, MESSAGE_COMPONENT, APPLICATION_COMMAND).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use chrono::Duration;
use ed25519_dalek::{Signer, SigningKey};
use firewatch_discord::{router, DiscordChat, DiscordConfig, DiscordInbound};
use firewatch_domain::dispatch::{self, drain};
use firewatch_domain::ports::{Clock, FixedClock};
use firewatch_domain::{incidents, Services};
use firewatch_types::{
    Destination, IncidentId, IncidentState, Principal, Role, SourceKind, TenantId,
};
use firewatch_web::testing::fakes::{DiscordCall as Call, FakeDiscord};
use firewatch_web::testing::{chat_services, fixture, ingest_alert, send};
use serde_json::{json, Value};
use std::sync::Arc;

const TOKEN: &str = "MTA4NzY1NDMyMTA5ODc2NTQzMg.GhIjKl.fake_discord_bot_token_value";

struct World {
    svc: Services,
    clock: Arc<FixedClock>,
    fake: FakeDiscord,
    app: Router,
    key: SigningKey,
}

async fn world() -> World {
    let fake = FakeDiscord::start().await;
    let base = fake.base().to_owned();
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let public = hex::encode(key.verifying_key().to_bytes());
    let config = DiscordConfig::from_vars(|k| match k {
        "DISCORD_BOT_TOKEN" => Some(TOKEN.into()),
        "DISCORD_PUBLIC_KEY" => Some(public.clone()),
        "DISCORD_API_URL" => Some(base.clone()),
        _ => None,
    })
    .unwrap()
    .unwrap();
    let (svc, clock) = chat_services(
        Arc::new(DiscordChat::new(config.clone())),
        Destination::Discord {
            channel_id: "1000000000000000001".into(),
        },
        "discord",
        "1080000000000000000",
        "80351110224678912",
        "80351110224678913",
    )
    .await;
    let app = router(
        svc.clone(),
        DiscordInbound {
            public_key: config.public_key,
        },
        firewatch_web::testing::playbooks(),
    );
    World {
        svc,
        clock,
        fake,
        app,
        key,
    }
}

async fn fire(w: &World, starts: &str) -> IncidentId {
    let body = json!({"title": "api latency p99 above 2s", "fingerprint": "api-latency", "severity": "sev2", "starts_at": starts}).to_string();
    ingest_alert(&w.svc, SourceKind::Generic, body.as_bytes()).await
}

fn calls(w: &World) -> Vec<Call> {
    w.fake.calls()
}

fn signed(w: &World, body: Value, key: &SigningKey, ts_offset: i64) -> Request<Body> {
    let body = body.to_string();
    let ts = (w.clock.now().timestamp() + ts_offset).to_string();
    let sig = key.sign(format!("{ts}{body}").as_bytes());
    Request::post("/v1/chat/discord/interactions")
        .header("content-type", "application/json")
        .header("x-signature-ed25519", hex::encode(sig.to_bytes()))
        .header("x-signature-timestamp", ts)
        .body(Body::from(body))
        .unwrap()
}

/// A button click, from the fixture shaped as Discord documents it.
fn click(id: &str, user: &str, custom_id: &str) -> Value {
    let mut i: Value =
        serde_json::from_slice(&fixture("discord/component_interaction.json")).unwrap();
    i["id"] = json!(id);
    i["member"]["user"]["id"] = json!(user);
    i["data"]["custom_id"] = json!(custom_id);
    i
}

/// `/fw text: <text>`, from the documented fixture.
fn command(id: &str, user: &str, text: &str) -> Value {
    let mut i: Value =
        serde_json::from_slice(&fixture("discord/application_command_interaction.json")).unwrap();
    i["id"] = json!(id);
    i["member"]["user"]["id"] = json!(user);
    i["data"]["options"][0]["value"] = json!(text);
    i
}

#[tokio::test]
async fn ping_is_answered_with_pong_and_bad_signatures_with_401() {
    let w = world().await;
    let ping: Value = serde_json::from_slice(&fixture("discord/ping.json")).unwrap();
    let a = send(&w.app, signed(&w, ping.clone(), &w.key, 0)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["type"], 1, "PONG");
    let other = SigningKey::from_bytes(&[9u8; 32]);
    assert_eq!(
        send(&w.app, signed(&w, ping.clone(), &other, 0))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&w.app, signed(&w, ping, &w.key, -3600)).await.status,
        StatusCode::UNAUTHORIZED,
        "stale timestamp"
    );
    let mut no_token = click("1200000000000000009", "80351110224678912", "fw1:ack:x");
    no_token.as_object_mut().unwrap().remove("token");
    let bad = send(&w.app, signed(&w, no_token, &w.key, 0)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(bad.text.contains("token"), "{}", bad.text);
}

#[tokio::test]
async fn an_alert_becomes_a_card_with_a_thread_and_later_events_go_into_it() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let c = calls(&w);
    assert_eq!(c[0].path, "/channels/1000000000000000001/messages");
    assert_eq!(c[0].auth, format!("Bot {TOKEN}"));
    let button = &c[0].body["components"][0]["components"][0];
    assert_eq!(button["custom_id"], format!("fw1:ack:{id}"));
    assert!(
        c[1].path.ends_with("/threads"),
        "a thread is started from the card"
    );

    fire(&w, "2026-11-20T11:30:00Z").await;
    drain(&w.svc).await.unwrap();
    let c = calls(&w);
    assert_eq!(
        c[2].path, "/channels/1220000000000000001/messages",
        "the reply goes into the thread"
    );
    assert_eq!(c[3].method, Method::PATCH);
    assert_eq!(
        c[3].path,
        "/channels/1000000000000000001/messages/110000000000000001"
    );
    assert_eq!(c[3].body["embeds"][0]["fields"][2]["value"], "2×");
}

#[tokio::test]
async fn a_signed_click_acknowledges_with_a_deferred_update_and_the_thread_follows() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let a = send(
        &w.app,
        signed(
            &w,
            click(
                "1200000000000000001",
                "80351110224678912",
                &format!("fw1:ack:{id}"),
            ),
            &w.key,
            0,
        ),
    )
    .await;
    assert_eq!(a.json["type"], 6, "a deferred update: {}", a.text);
    assert_eq!(
        incidents::get(&w.svc, &TenantId::default_tenant(), &id)
            .await
            .unwrap()
            .state,
        IncidentState::Acknowledged
    );
    let again = send(
        &w.app,
        signed(
            &w,
            click(
                "1200000000000000001",
                "80351110224678912",
                &format!("fw1:ack:{id}"),
            ),
            &w.key,
            0,
        ),
    )
    .await;
    assert_eq!(
        again.json["type"], 6,
        "the same interaction again has no effect"
    );
    drain(&w.svc).await.unwrap();
    let c = calls(&w);
    // Replies are escaped Markdown, like posts: read as Discord shows them.
    assert!(c.iter().any(|c| c.body["content"]
        .as_str()
        .unwrap_or("")
        .replace('\\', "")
        .contains("open → acknowledged by discord:80351110224678912")));
    assert_eq!(c.last().unwrap().method, Method::PATCH);
}

#[tokio::test]
async fn unmapped_and_viewer_clicks_are_refused_ephemerally_and_change_nothing() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    for (n, user) in [("1", "99999"), ("2", "80351110224678913")] {
        let a = send(
            &w.app,
            signed(&w, click(n, user, &format!("fw1:ack:{id}")), &w.key, 0),
        )
        .await;
        assert_eq!(a.json["type"], 4);
        assert_eq!(a.json["data"]["flags"], 64, "only the clicker sees it");
    }
    assert_eq!(
        incidents::get(&w.svc, &TenantId::default_tenant(), &id)
            .await
            .unwrap()
            .state,
        IncidentState::Open
    );
}

#[tokio::test]
async fn the_fw_command_runs_with_its_text_option() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    let cmd = command(
        "1300000000000000001",
        "80351110224678912",
        &format!("resolve {id} fixed"),
    );
    let a = send(&w.app, signed(&w, cmd, &w.key, 0)).await;
    assert!(
        a.json["data"]["content"]
            .as_str()
            .unwrap()
            .contains("resolved"),
        "{}",
        a.text
    );
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_an_outage_dead_letters_then_retries() {
    let w = world().await;
    w.fake.answer_next(429);
    fire(&w, "2026-11-20T11:00:00Z").await;
    assert_eq!(drain(&w.svc).await.unwrap().retrying, 1);
    w.clock.advance(Duration::seconds(2));
    assert_eq!(drain(&w.svc).await.unwrap().delivered, 1);
    assert_eq!(
        calls(&w)
            .iter()
            .filter(|c| c.path.ends_with("/messages") && c.method == Method::POST)
            .count(),
        1,
        "one card"
    );

    w.fake.set_down(true);
    let p = Principal {
        tenant: TenantId::default_tenant(),
        name: "ops".into(),
        role: Role::Responder,
    };
    let id = incidents::list(&w.svc, &p.tenant, &Default::default(), None, 1)
        .await
        .unwrap()
        .items[0]
        .id
        .clone();
    incidents::comment(&w.svc, &p, &id, "failing over")
        .await
        .unwrap();
    for _ in 0..dispatch::MAX_ATTEMPTS {
        drain(&w.svc).await.unwrap();
        w.clock.advance(Duration::minutes(10));
    }
    let dead = dispatch::dead_letters(&w.svc, &p.tenant).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(!dead[0].last_error.contains(TOKEN));
    w.fake.set_down(false);
    dispatch::retry_dead_letter(&w.svc, &p, &dead[0].id)
        .await
        .unwrap();
    assert_eq!(drain(&w.svc).await.unwrap().delivered, 1);
    assert!(calls(&w).iter().any(|c| c.body["content"]
        .as_str()
        .unwrap_or("")
        .contains("failing over")));
}

#[tokio::test]
async fn the_triage_button_posts_a_report_in_the_thread() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let a = send(
        &w.app,
        signed(
            &w,
            click(
                "1200000000000000031",
                "80351110224678912",
                &format!("fw1:triage:{id}"),
            ),
            &w.key,
            0,
        ),
    )
    .await;
    assert_eq!(a.json["type"], 6, "a deferred update: {}", a.text);
    drain(&w.svc).await.unwrap();
    let reply = calls(&w)
        .into_iter()
        .rfind(|c| c.method == Method::POST && c.path.ends_with("/messages"))
        .unwrap();
    assert_eq!(
        reply.path, "/channels/1220000000000000001/messages",
        "in the incident's thread"
    );
    // Markdown in the report is escaped (alert text is not markup).
    let text = reply.body["content"].as_str().unwrap().replace('\\', "");
    assert!(
        text.starts_with(
            "🔎 Triage by discord:80351110224678912 (deterministic, medium confidence)"
        ),
        "{text}"
    );
    assert!(text.contains("Likely cause: Requests are slow"), "{text}");

    // 👍/👎 under the report; a click on one is a vote.
    let ids = custom_ids(&reply.body["components"]);
    assert_eq!(ids.len(), 2, "{}", reply.body);
    assert!(ids[0].starts_with("fw1:up:trg_") && ids[1].starts_with("fw1:down:trg_"));
    let a = send(
        &w.app,
        signed(
            &w,
            click("1200000000000000032", "80351110224678912", &ids[1]),
            &w.key,
            0,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let votes = firewatch_web::testing::triage_votes(&w.svc).await;
    assert_eq!((votes.total, votes.not_helpful), (1, 1));
}

/// The custom ids of a message's (or an answer's) buttons.
fn custom_ids(components: &Value) -> Vec<String> {
    components
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().unwrap().iter())
        .map(|b| b["custom_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_playbook_buttons_dry_run_run_and_edit_the_runs_message_in_the_thread() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let mut n = 1300000000000000000u64;
    let mut tap = |custom_id: String| {
        n += 1;
        signed(
            &w,
            click(&n.to_string(), "80351110224678912", &custom_id),
            &w.key,
            0,
        )
    };

    // Playbooks: an ephemeral answer with the choices as buttons.
    let offer = send(&w.app, tap(format!("fw1:playbooks:{id}"))).await;
    assert_eq!(offer.json["type"], 4, "{}", offer.text);
    assert_eq!(offer.json["data"]["flags"], 64, "only the clicker sees it");
    let choices = custom_ids(&offer.json["data"]["components"]);
    assert_eq!(
        choices,
        [format!("fw1:dry:{id}.0"), format!("fw1:dry:{id}.1")]
    );

    // A choice dry-runs it; the run's message goes into the thread.
    let chose = send(&w.app, tap(choices[0].clone())).await;
    assert_eq!(chose.json["type"], 6, "{}", chose.text);
    firewatch_web::testing::settle(&w.svc).await;
    let c = calls(&w);
    let (at, run_msg) = c
        .iter()
        .enumerate()
        .find(|(_, c)| {
            custom_ids(&c.body["components"])
                .iter()
                .any(|b| b.starts_with("fw1:run:"))
        })
        .expect("the run's message");
    assert_eq!(
        run_msg.path, "/channels/1220000000000000001/messages",
        "in the thread"
    );
    let run_msg_id = format!("11000000000000000{}", at + 1);
    let run_button = custom_ids(&run_msg.body["components"])[0].clone();

    // Run: replies in the thread, and the run's message edited in place.
    let before = calls(&w).len();
    send(&w.app, tap(run_button)).await;
    firewatch_web::testing::settle(&w.svc).await;
    let c = calls(&w)[before..].to_vec();
    let replies: Vec<&str> = c
        .iter()
        .filter(|c| c.method == Method::POST)
        .map(|c| c.body["content"].as_str().unwrap_or(""))
        .collect();
    assert!(replies.iter().any(|t| t.contains("running")), "{replies:?}");
    assert!(
        replies.iter().any(|t| t.contains("succeeded")),
        "{replies:?}"
    );
    let edit_path = format!("/channels/1220000000000000001/messages/{run_msg_id}");
    let edits: Vec<_> = c
        .iter()
        .filter(|c| c.method == Method::PATCH && c.path == edit_path)
        .collect();
    assert!(edits.len() >= 2, "{c:#?}");
    let last = edits.last().unwrap();
    assert!(last.body["content"].as_str().unwrap().contains("succeeded"));
    assert!(custom_ids(&last.body["components"]).is_empty());

    // The requester of a guarded run pressing Approve is refused in place.
    send(&w.app, tap(choices[1].clone())).await;
    firewatch_web::testing::settle(&w.svc).await;
    let approve = calls(&w)
        .iter()
        .rev()
        .find_map(|c| {
            custom_ids(&c.body["components"])
                .into_iter()
                .find(|b| b.starts_with("fw1:approve:"))
        })
        .expect("Approve is offered");
    let refused = send(&w.app, tap(approve)).await;
    assert_eq!(refused.json["type"], 4);
    assert_eq!(refused.json["data"]["flags"], 64);
    assert!(
        refused.json["data"]["content"]
            .as_str()
            .unwrap()
            .contains("approver"),
        "{}",
        refused.text
    );
}

#[tokio::test]
async fn the_open_ticket_button_opens_one_gitlab_issue_linked_in_the_thread() {
    let mut w = world().await;
    let tracker = firewatch_web::testing::fakes::FakeTracker::start().await;
    w.svc = w
        .svc
        .clone()
        .with_tracker(Some(Arc::new(firewatch_egress::trackers::GitLab::new(
            &format!("{}/api/v4", tracker.base()),
            "glpat-discord-test",
            "platform/ops",
        ))));
    w.app = router(
        w.svc.clone(),
        DiscordInbound {
            public_key: w.key.verifying_key().to_bytes(),
        },
        firewatch_web::testing::playbooks(),
    );
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let custom_id = format!("fw1:ticket:{id}");
    let root = calls(&w)
        .into_iter()
        .find(|c| c.method == Method::POST && c.path.ends_with("/messages"))
        .unwrap();
    assert!(
        custom_ids(&root.body["components"]).contains(&custom_id),
        "{}",
        root.body
    );
    let a = send(
        &w.app,
        signed(
            &w,
            click("1200000000000000051", "80351110224678912", &custom_id),
            &w.key,
            0,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    drain(&w.svc).await.unwrap();
    drain(&w.svc).await.unwrap();
    assert_eq!(tracker.calls().len(), 1);
    assert_eq!(
        tracker.calls()[0].path,
        "/api/v4/projects/platform%2Fops/issues"
    );
    let linked = calls(&w).into_iter().any(|c| {
        c.path == "/channels/1220000000000000001/messages"
            && c.body["content"].as_str().is_some_and(|t| {
                t.replace('\\', "")
                    .contains("Ticket platform/ops#3 opened in gitlab")
            })
    });
    assert!(
        linked,
        "{:?}",
        calls(&w)
            .iter()
            .map(|c| c.body["content"].clone())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_escalation_reply_is_escaped_and_pings_only_the_people_it_names() {
    use firewatch_domain::chat::ChatClient;
    let w = world().await;
    let chat = DiscordChat::new(
        DiscordConfig::from_vars(|k| match k {
            "DISCORD_BOT_TOKEN" => Some(TOKEN.into()),
            "DISCORD_PUBLIC_KEY" => Some("00".repeat(32)),
            "DISCORD_API_URL" => Some(w.fake.base().to_owned()),
            _ => None,
        })
        .unwrap()
        .unwrap(),
    );
    let thread = firewatch_types::ThreadRef {
        destination: Destination::Discord {
            channel_id: "1000000000000000001".into(),
        },
        root_id: "1100000000000000001".into(),
        thread_id: Some("1100000000000000002".into()),
    };
    chat.reply_mentioning(
        &thread,
        "escalated: [click](https://evil.example) @everyone <@&42>",
        &[
            "discord:80351110224678912".into(),
            "email:[x](https://y)".into(),
        ],
    )
    .await
    .unwrap();
    let sent = calls(&w).last().unwrap().body.clone();
    let content = sent["content"].as_str().unwrap();
    assert!(content.contains(r"\[click\]\(https\:"), "{content}");
    assert!(content.contains(r"\<@&42\>"), "{content}");
    assert!(content.contains(r"\[x\]\(https\:"), "{content}");
    assert!(
        content.ends_with("<@80351110224678912> \\[x\\]\\(https\\://y\\)"),
        "{content}"
    );
    assert_eq!(
        sent["allowed_mentions"],
        json!({"parse": [], "roles": [], "users": ["80351110224678912"]}),
        "only the named user may be pinged"
    );
}

/// `/fw <text>` sent by `user` in a direct message with the bot: no guild,
/// the user at the top level, as Discord sends it.
fn dm_command(id: &str, user: &str, channel: &str, text: &str) -> Value {
    let mut i = command(id, user, text);
    let o = i.as_object_mut().unwrap();
    let member = o.remove("member").unwrap();
    for k in ["guild_id", "guild", "guild_locale"] {
        o.remove(k);
    }
    o.insert("user".into(), member["user"].clone());
    o.insert("context".into(), json!(1));
    o.insert("channel_id".into(), json!(channel));
    o.insert(
        "channel".into(),
        json!({"id": channel, "type": 1, "flags": 0}),
    );
    i
}

#[tokio::test]
async fn a_link_code_redeemed_in_one_dm_claims_that_users_dms_only() {
    let w = world().await;
    let other = TenantId::parse("other").unwrap();
    firewatch_domain::auth::ensure_tenant(&w.svc, &other)
        .await
        .unwrap();
    let admin = firewatch_types::Principal {
        tenant: other.clone(),
        name: "other-admin".into(),
        role: firewatch_types::Role::Admin,
    };
    let code = firewatch_domain::routing::links::create_code(&w.svc, &admin, "discord")
        .await
        .unwrap();
    let a = send(
        &w.app,
        signed(
            &w,
            dm_command(
                "1300000000000000051",
                "111",
                "2000000000000000111",
                &format!("link {}", code.code),
            ),
            &w.key,
            0,
        ),
    )
    .await;
    assert!(a.text.contains("Linked"), "{}", a.text);
    let linked = |ws: &'static str| {
        let svc = w.svc.clone();
        let other = other.clone();
        async move {
            firewatch_domain::routing::links::require_workspace(&svc, &other, "discord", ws)
                .await
                .is_ok()
        }
    };
    assert!(
        linked("dm-111").await,
        "the redeeming user's DMs are linked"
    );
    assert!(!linked("dm-222").await, "another user's DMs are not");
    assert!(!linked("dm").await);
}
