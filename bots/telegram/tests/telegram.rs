//! firewatch against a local fake of the Telegram Bot API that records every
//! call. Updates are shaped as the Bot API documents them (`Update` with
//! `message` or `callback_query`), answers as `{"ok": true, "result": ...}`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use chrono::Duration;
use firewatch_domain::dispatch::{self, drain};
use firewatch_domain::ports::{FixedClock, StoreError};
use firewatch_domain::settings::Secret;
use firewatch_domain::{incidents, Services};
use firewatch_telegram::{router, TelegramChat, TelegramConfig, TelegramInbound};
use firewatch_types::{
    Destination, IncidentId, IncidentState, Principal, Role, SourceKind, TenantId,
};
use firewatch_web::testing::fakes::{FakeTelegram, TelegramCall as Call};
use firewatch_web::testing::{chat_services, ingest_alert, send};
use serde_json::{json, Value};
use std::sync::Arc;

const TOKEN: &str = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const SECRET: &str = "fw_webhook_secret_0123";

struct World {
    svc: Services,
    clock: Arc<FixedClock>,
    fake: FakeTelegram,
    app: Router,
}

async fn world() -> World {
    let fake = FakeTelegram::start().await;
    let base = fake.base().to_owned();
    let config = TelegramConfig::from_vars(|k| match k {
        "TELEGRAM_BOT_TOKEN" => Some(TOKEN.into()),
        "TELEGRAM_WEBHOOK_SECRET" => Some(SECRET.into()),
        "TELEGRAM_API_URL" => Some(base.clone()),
        _ => None,
    })
    .unwrap()
    .unwrap();
    let bot = Arc::new(TelegramChat::new(config.clone()));
    let (svc, clock) = chat_services(
        bot.clone(),
        Destination::Telegram {
            chat_id: "-1001234567890".into(),
            topic_id: None,
        },
        "telegram",
        "-1001234567890",
        "5550001",
        "5550002",
    )
    .await;
    let app = router(
        svc.clone(),
        TelegramInbound {
            webhook_secret: config.webhook_secret.clone(),
            bot,
        },
        firewatch_web::testing::playbooks(),
    );
    World {
        svc,
        clock,
        fake,
        app,
    }
}

async fn fire(w: &World, starts: &str) -> IncidentId {
    let body = json!({"title": "orders queue backlog", "fingerprint": "orders-queue", "severity": "warning", "starts_at": starts}).to_string();
    ingest_alert(&w.svc, SourceKind::Generic, body.as_bytes()).await
}

fn calls(w: &World) -> Vec<Call> {
    w.fake.calls()
}

fn update(secret: &str, body: Value) -> Request<Body> {
    Request::post("/v1/chat/telegram/webhook")
        .header("content-type", "application/json")
        .header("x-telegram-bot-api-secret-token", secret)
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn press(update_id: i64, user: i64, data: &str) -> Value {
    json!({
        "update_id": update_id,
        "callback_query": {
            "id": format!("4382bfdwdsb323b2d9{update_id}"),
            "from": {"id": user, "is_bot": false, "first_name": "Jane", "username": "jane", "language_code": "en"},
            "message": {"message_id": 101, "date": 1795089600, "chat": {"id": -1001234567890i64, "type": "supergroup", "title": "Incidents"}, "text": "card"},
            "chat_instance": "-7389245738450932",
            "data": data
        }
    })
}

fn text(update_id: i64, user: i64, text: &str) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": 500 + update_id,
            "from": {"id": user, "is_bot": false, "first_name": "Jane"},
            "chat": {"id": -1001234567890i64, "type": "supergroup", "title": "Incidents"},
            "date": 1795089600,
            "text": text,
            "entities": [{"offset": 0, "length": text.split(' ').next().unwrap().len(), "type": "bot_command"}]
        }
    })
}

#[tokio::test]
async fn an_alert_becomes_a_card_and_later_events_reply_to_it_and_edit_it() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let c = calls(&w);
    assert_eq!(c[0].method, "sendMessage");
    assert_eq!(c[0].token, TOKEN);
    let keyboard = c[0].body["reply_markup"]["inline_keyboard"][0]
        .as_array()
        .unwrap();
    assert_eq!(keyboard[0]["callback_data"], format!("fw1:ack:{id}"));
    assert!(
        keyboard
            .iter()
            .all(|b| b["callback_data"].as_str().unwrap().len() <= 64),
        "callback_data fits in 64 bytes"
    );

    fire(&w, "2026-11-20T11:30:00Z").await;
    drain(&w.svc).await.unwrap();
    let c = calls(&w);
    assert_eq!(c[1].method, "sendMessage");
    assert_eq!(
        c[1].body["reply_parameters"]["message_id"], 101,
        "a reply to the card"
    );
    assert_eq!(c[2].method, "editMessageText");
    assert_eq!(c[2].body["message_id"], 101);
    assert!(c[2].body["text"].as_str().unwrap().contains("seen 2×"));
}

#[tokio::test]
async fn a_button_press_acknowledges_is_answered_and_a_redelivery_has_one_effect() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let a = send(
        &w.app,
        update(SECRET, press(9001, 5550001, &format!("fw1:ack:{id}"))),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        incidents::get(&w.svc, &TenantId::default_tenant(), &id)
            .await
            .unwrap()
            .state,
        IncidentState::Acknowledged
    );
    let answer = calls(&w)
        .into_iter()
        .find(|c| c.method == "answerCallbackQuery")
        .unwrap();
    assert_eq!(answer.body["callback_query_id"], "4382bfdwdsb323b2d99001");
    assert!(answer.body["text"]
        .as_str()
        .unwrap()
        .contains("acknowledged"));

    let again = send(
        &w.app,
        update(SECRET, press(9001, 5550001, &format!("fw1:ack:{id}"))),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        calls(&w)
            .iter()
            .filter(|c| c.method == "answerCallbackQuery")
            .count(),
        1,
        "the redelivered update is ignored"
    );
    drain(&w.svc).await.unwrap();
    let c = calls(&w);
    assert!(c.iter().any(|c| c.method == "sendMessage"
        && c.body["text"]
            .as_str()
            .unwrap_or("")
            .contains("open → acknowledged by telegram:5550001")));
    assert_eq!(c.last().unwrap().method, "editMessageText");
}

#[tokio::test]
async fn forged_unmapped_and_viewer_presses_change_nothing_but_are_answered() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    let data = format!("fw1:ack:{id}");
    let forged = send(&w.app, update("wrong_secret", press(1, 5550001, &data))).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let missing = Request::post("/v1/chat/telegram/webhook")
        .header("content-type", "application/json")
        .body(Body::from(press(2, 5550001, &data).to_string()))
        .unwrap();
    assert_eq!(send(&w.app, missing).await.status, StatusCode::UNAUTHORIZED);
    for (n, user) in [(3, 5559999), (4, 5550002)] {
        let a = send(&w.app, update(SECRET, press(n, user, &data))).await;
        assert_eq!(a.status, StatusCode::OK);
        let answer = calls(&w)
            .into_iter()
            .rev()
            .find(|c| c.method == "answerCallbackQuery")
            .unwrap();
        let text = answer.body["text"].as_str().unwrap().to_owned();
        assert!(
            text.contains("not mapped") || text.contains("responder role"),
            "{text}"
        );
    }
    assert_eq!(
        incidents::get(&w.svc, &TenantId::default_tenant(), &id)
            .await
            .unwrap()
            .state,
        IncidentState::Open
    );
    let bad = send(&w.app, update(SECRET, json!({"update_id": "x"}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let mut no_sender = press(5, 5550001, &data);
    no_sender["callback_query"]
        .as_object_mut()
        .unwrap()
        .remove("from");
    let unreadable = send(&w.app, update(SECRET, no_sender)).await;
    assert_eq!(unreadable.status, StatusCode::BAD_REQUEST);
    assert_eq!(unreadable.code(), "invalid_update");
    assert!(
        unreadable.text.contains("missing field `from`"),
        "{}",
        unreadable.text
    );
    assert_eq!(
        incidents::get(&w.svc, &TenantId::default_tenant(), &id)
            .await
            .unwrap()
            .state,
        IncidentState::Open
    );
}

#[tokio::test]
async fn commands_work_with_or_without_the_bot_name() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    send(&w.app, update(SECRET, text(1, 5550001, "/incidents"))).await;
    send(
        &w.app,
        update(
            SECRET,
            text(2, 5550001, &format!("/ack@firewatch_bot {id}")),
        ),
    )
    .await;
    send(&w.app, update(SECRET, text(3, 5559999, "/incidents"))).await;
    let answers: Vec<String> = calls(&w)
        .iter()
        .filter(|c| c.method == "sendMessage")
        .map(|c| c.body["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(answers[0].contains(id.as_str()), "{answers:?}");
    assert!(answers[1].contains("acknowledged"), "{answers:?}");
    assert!(answers[2].contains("not mapped"), "{answers:?}");
}

#[tokio::test]
async fn a_429_then_200_is_delivered_once_and_an_outage_dead_letters_then_retries() {
    let w = world().await;
    w.fake.answer_next(429);
    fire(&w, "2026-11-20T11:00:00Z").await;
    assert_eq!(drain(&w.svc).await.unwrap().retrying, 1);
    w.clock.advance(Duration::seconds(2));
    assert_eq!(drain(&w.svc).await.unwrap().delivered, 1);
    assert_eq!(calls(&w).len(), 1);

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
    incidents::comment(&w.svc, &p, &id, "scaling consumers")
        .await
        .unwrap();
    for _ in 0..dispatch::MAX_ATTEMPTS {
        drain(&w.svc).await.unwrap();
        w.clock.advance(Duration::minutes(10));
    }
    let dead = dispatch::dead_letters(&w.svc, &p.tenant).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        !dead[0].last_error.contains(TOKEN),
        "the token is in every URL but never in an error"
    );
    w.fake.set_down(false);
    dispatch::retry_dead_letter(&w.svc, &p, &dead[0].id)
        .await
        .unwrap();
    assert_eq!(drain(&w.svc).await.unwrap().delivered, 1);
    assert!(calls(&w).iter().any(|c| c.body["text"]
        .as_str()
        .unwrap_or("")
        .contains("scaling consumers")));
}

#[tokio::test]
async fn the_triage_button_posts_a_report_in_the_reply_chain() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let a = send(
        &w.app,
        update(SECRET, press(9100, 5550001, &format!("fw1:triage:{id}"))),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let answer = calls(&w)
        .into_iter()
        .find(|c| c.method == "answerCallbackQuery")
        .unwrap();
    assert!(
        answer.body["text"]
            .as_str()
            .unwrap()
            .contains("posted in its thread: Consumers are falling behind"),
        "{}",
        answer.body
    );
    drain(&w.svc).await.unwrap();
    let reply = calls(&w)
        .into_iter()
        .rfind(|c| c.method == "sendMessage")
        .unwrap();
    assert_eq!(reply.body["reply_parameters"]["message_id"], 101);
    let text = reply.body["text"].as_str().unwrap();
    assert!(
        text.starts_with("🔎 Triage by telegram:5550001 (deterministic, medium confidence)"),
        "{text}"
    );
    assert!(text.contains("\n1. Acknowledge"), "{text}");
    // 👍/👎 under the report, as an inline keyboard within callback_data's
    // 64 bytes; a press on one is a vote.
    let data: Vec<String> = reply.body["reply_markup"]["inline_keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter())
        .map(|b| b["callback_data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(data.len(), 2, "{}", reply.body);
    assert!(data[0].starts_with("fw1:up:trg_") && data[0].len() <= 64);
    let a = send(&w.app, update(SECRET, press(9102, 5550001, &data[0]))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let votes = firewatch_web::testing::triage_votes(&w.svc).await;
    assert_eq!((votes.total, votes.helpful), (1, 1));

    // A viewer's press is answered with the refusal and posts nothing.
    let before = calls(&w).len();
    send(
        &w.app,
        update(SECRET, press(9101, 5550002, &format!("fw1:triage:{id}"))),
    )
    .await;
    drain(&w.svc).await.unwrap();
    let c = calls(&w);
    assert_eq!(c.len(), before + 1, "only the answer");
    assert!(c[before].body["text"]
        .as_str()
        .unwrap()
        .contains("responder role"));
}

/// The store, failing its next `n` transactions as unavailable.
struct FlakyStore {
    inner: Arc<dyn firewatch_domain::ports::Store>,
    failing: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl firewatch_domain::ports::Store for FlakyStore {
    async fn get(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<firewatch_domain::ports::Item>, StoreError> {
        self.inner.get(pk, sk).await
    }
    async fn put(
        &self,
        item: firewatch_domain::ports::Item,
        c: firewatch_domain::ports::Condition,
    ) -> Result<(), StoreError> {
        self.inner.put(item, c).await
    }
    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        c: firewatch_domain::ports::Condition,
    ) -> Result<(), StoreError> {
        self.inner.delete(pk, sk, c).await
    }
    async fn transact(&self, ops: Vec<firewatch_domain::ports::WriteOp>) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self
            .failing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Unavailable("throttled".into()));
        }
        self.inner.transact(ops).await
    }
    async fn query(
        &self,
        q: firewatch_domain::ports::Query,
    ) -> Result<firewatch_domain::ports::Page, StoreError> {
        self.inner.query(q).await
    }
}

#[tokio::test]
async fn a_press_whose_commit_failed_is_not_marked_handled_so_the_redelivery_acts() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let flaky = Arc::new(FlakyStore {
        inner: w.svc.store.clone(),
        failing: std::sync::atomic::AtomicU32::new(1),
    });
    let mut svc = w.svc.clone();
    svc.store = flaky;
    let bot = Arc::new(TelegramChat::new(
        TelegramConfig::from_vars(|k| match k {
            "TELEGRAM_BOT_TOKEN" => Some(TOKEN.into()),
            "TELEGRAM_WEBHOOK_SECRET" => Some(SECRET.into()),
            "TELEGRAM_API_URL" => Some(w.fake.base().to_owned()),
            _ => None,
        })
        .unwrap()
        .unwrap(),
    ));
    let app = router(
        svc,
        TelegramInbound {
            webhook_secret: Secret::new(SECRET),
            bot,
        },
        firewatch_web::testing::playbooks(),
    );
    let click = || update(SECRET, press(9001, 5550001, &format!("fw1:ack:{id}")));
    let first = send(&app, click()).await;
    assert_eq!(
        first.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "Telegram redelivers an update answered 5xx: {}",
        first.text
    );
    let state = || async {
        incidents::get(&w.svc, &TenantId::default_tenant(), &id)
            .await
            .unwrap()
            .state
    };
    assert_eq!(state().await, IncidentState::Open, "nothing changed");
    let redelivery = send(&app, click()).await;
    assert_eq!(redelivery.status, StatusCode::OK, "{}", redelivery.text);
    assert_eq!(state().await, IncidentState::Acknowledged);
}

/// The callback data of every button of a sent message.
fn keyboard_data(body: &Value) -> Vec<String> {
    body["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().unwrap().iter())
        .map(|b| b["callback_data"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_playbook_buttons_dry_run_run_and_edit_the_runs_message_in_the_thread() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let mut update_id = 9100;
    let mut tap = |data: String| {
        update_id += 1;
        update(SECRET, press(update_id, 5550001, &data))
    };

    // Playbooks: the choices come as a reply with buttons, and the press is
    // answered.
    assert_eq!(
        send(&w.app, tap(format!("fw1:playbooks:{id}")))
            .await
            .status,
        StatusCode::OK
    );
    let c = calls(&w);
    let offer = c.iter().rev().find(|c| c.method == "sendMessage").unwrap();
    assert_eq!(offer.body["reply_parameters"]["message_id"], 101);
    let choices = keyboard_data(&offer.body);
    assert_eq!(
        choices,
        [format!("fw1:dry:{id}.0"), format!("fw1:dry:{id}.1")]
    );
    assert!(choices.iter().all(|d| d.len() <= 64));
    assert_eq!(c.last().unwrap().method, "answerCallbackQuery");

    // A choice dry-runs it: the run's message is a reply to the card, with
    // Run and Cancel.
    let before = calls(&w).len();
    send(&w.app, tap(choices[0].clone())).await;
    firewatch_web::testing::settle(&w.svc).await;
    let c = calls(&w)[before..].to_vec();
    let run_msg = c
        .iter()
        .find(|c| {
            c.method == "sendMessage"
                && keyboard_data(&c.body)
                    .iter()
                    .any(|d| d.starts_with("fw1:run:"))
        })
        .expect("the run's message");
    assert_eq!(run_msg.body["reply_parameters"]["message_id"], 101);
    let n = calls(&w)
        .iter()
        .position(|x| x.body == run_msg.body)
        .unwrap() as i64
        + 1;
    let run_msg_id = 100 + n;
    let run_button = keyboard_data(&run_msg.body)[0].clone();

    // Run: each transition is a reply, and the run's message is edited.
    let before = calls(&w).len();
    send(&w.app, tap(run_button)).await;
    firewatch_web::testing::settle(&w.svc).await;
    let c = calls(&w)[before..].to_vec();
    let replies: Vec<&str> = c
        .iter()
        .filter(|c| c.method == "sendMessage")
        .map(|c| c.body["text"].as_str().unwrap())
        .collect();
    assert!(replies.iter().any(|t| t.contains("running")), "{replies:?}");
    assert!(
        replies.iter().any(|t| t.contains("succeeded")),
        "{replies:?}"
    );
    let edits: Vec<_> = c
        .iter()
        .filter(|c| c.method == "editMessageText" && c.body["message_id"] == run_msg_id)
        .collect();
    assert!(edits.len() >= 2, "{c:#?}");
    assert!(edits.last().unwrap().body["text"]
        .as_str()
        .unwrap()
        .contains("succeeded"));

    // The requester of a guarded run pressing Approve is refused in place.
    send(&w.app, tap(choices[1].clone())).await;
    firewatch_web::testing::settle(&w.svc).await;
    let approve = calls(&w)
        .iter()
        .rev()
        .find_map(|c| {
            keyboard_data(&c.body)
                .into_iter()
                .find(|d| d.starts_with("fw1:approve:"))
        })
        .expect("Approve is offered");
    send(&w.app, tap(approve)).await;
    let answer = calls(&w).last().unwrap().clone();
    assert_eq!(answer.method, "answerCallbackQuery");
    assert!(
        answer.body["text"].as_str().unwrap().contains("approver"),
        "{:?}",
        answer.body
    );
}

#[tokio::test]
async fn the_open_ticket_button_and_fw_ticket_open_one_ticket_linked_in_the_reply_chain() {
    let mut w = world().await;
    let tracker = firewatch_web::testing::fakes::FakeTracker::start().await;
    w.svc = w
        .svc
        .clone()
        .with_tracker(Some(Arc::new(firewatch_egress::trackers::Jira::new(
            tracker.base(),
            "ops@acme.example",
            "jira-token",
            "OPS",
        ))));
    let bot = Arc::new(TelegramChat::new(
        TelegramConfig::from_vars(|k| match k {
            "TELEGRAM_BOT_TOKEN" => Some(TOKEN.into()),
            "TELEGRAM_WEBHOOK_SECRET" => Some(SECRET.into()),
            "TELEGRAM_API_URL" => Some(w.fake.base().to_owned()),
            _ => None,
        })
        .unwrap()
        .unwrap(),
    ));
    w.app = router(
        w.svc.clone(),
        TelegramInbound {
            webhook_secret: Secret::new(SECRET),
            bot,
        },
        firewatch_web::testing::playbooks(),
    );
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let data = format!("fw1:ticket:{id}");
    assert!(data.len() <= 64, "Telegram's callback_data limit");
    assert!(keyboard_data(&calls(&w)[0].body).contains(&data));
    let a = send(&w.app, update(SECRET, press(9301, 5550001, &data))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // The command asks too: the same pending ticket.
    let a = send(
        &w.app,
        update(SECRET, text(9302, 5550001, &format!("/fw ticket {id}"))),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    drain(&w.svc).await.unwrap();
    drain(&w.svc).await.unwrap();
    assert_eq!(tracker.calls().len(), 1);
    assert_eq!(tracker.calls()[0].body["fields"]["project"]["key"], "OPS");
    let linked = calls(&w).into_iter().any(|c| {
        c.method == "sendMessage"
            && c.body["text"]
                .as_str()
                .is_some_and(|t| t.contains("Ticket OPS-7 opened in jira"))
    });
    assert!(
        linked,
        "{:?}",
        calls(&w)
            .iter()
            .map(|c| c.body["text"].clone())
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_update_delivered_many_times_at_once_acts_once() {
    let w = world().await;
    let id = fire(&w, "2026-11-20T11:00:00Z").await;
    drain(&w.svc).await.unwrap();
    let sends: Vec<_> = (0..8)
        .map(|_| {
            let app = w.app.clone();
            let req = update(SECRET, press(9002, 5550001, &format!("fw1:ack:{id}")));
            tokio::spawn(async move { send(&app, req).await })
        })
        .collect();
    for s in sends {
        let a = s.await.unwrap();
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    let answered = calls(&w)
        .iter()
        .filter(|c| c.method == "answerCallbackQuery")
        .count();
    assert_eq!(answered, 1, "one delivery acted and answered");
    let timeline = incidents::timeline(&w.svc, &TenantId::default_tenant(), &id, None, 100)
        .await
        .unwrap();
    let acks = timeline
        .items
        .iter()
        .filter(|e| matches!(&e.kind, firewatch_types::TimelineKind::StateChanged { to, .. } if *to == IncidentState::Acknowledged))
        .count();
    assert_eq!(acks, 1);
}
