//! Escalation through the real routers with a fake clock: on-call schedules
//! (now, overrides, the iCalendar feed), policies whose steps run at their
//! minutes, stop on acknowledge and pause while snoozed, with the thread on a
//! fake of Slack's Web API and pages on a fake of PagerDuty's Events API v2.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use firewatch_domain::dispatch::drain;
use firewatch_domain::ports::{Clock, FixedClock};
use firewatch_domain::schedules::Budget;
use firewatch_domain::Services;
use firewatch_slack::{SlackChat, SlackConfig};
use firewatch_types::{Destination, Principal, Role, SourceKind, TenantId};
use firewatch_web::testing::fakes::{FakePagerDuty, FakeSlack};
use firewatch_web::testing::{chat_services, get, ingest_alert, json_request, send, Answer};
use serde_json::{json, Value};

const ROUTING_KEY: &str = "R0UT1NGKEY0000000000000000000042";

struct World {
    svc: Services,
    clock: Arc<FixedClock>,
    slack: FakeSlack,
    pd: FakePagerDuty,
    app: axum::Router,
    incidents: axum::Router,
    /// Minute 0 of every test.
    start: DateTime<Utc>,
    admin: String,
    responder: String,
    viewer: String,
}

async fn world() -> World {
    let slack = FakeSlack::start().await;
    let base = slack.base().to_owned();
    let config = SlackConfig::from_vars(|k| match k {
        "SLACK_BOT_TOKEN" => Some("xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy".into()),
        "SLACK_SIGNING_SECRET" => Some("8f742231b10e8888abcd99yyyzzz85a5".into()),
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
    // A whole minute, so "after N minutes" reads exactly; the real minute,
    // so that what the store keeps for a while (claims, progress) is not
    // already past its expiry by the real clock the store reads.
    let start = {
        use chrono::DurationRound;
        clock.now().duration_trunc(Duration::minutes(1)).unwrap()
    };
    clock.advance(start - clock.now());
    let pd = FakePagerDuty::start().await;
    let svc = svc.with_pager(Some(Arc::new(
        firewatch_egress::pagerduty::PagerDutyEvents::new(pd.base()),
    )));
    let t = TenantId::default_tenant();
    // The routing key is the tenant's own secret.
    let owner = Principal {
        tenant: t.clone(),
        name: "admin".into(),
        role: Role::Admin,
    };
    firewatch_domain::secrets::put(&svc, &owner, "pd_payments", ROUTING_KEY)
        .await
        .unwrap();
    let key = |role: Role| {
        let svc = svc.clone();
        let t = t.clone();
        async move {
            firewatch_domain::auth::create_api_key(&svc, &t, role.as_str(), role)
                .await
                .unwrap()
        }
    };
    World {
        app: firewatch_escalation::router(svc.clone()),
        incidents: firewatch_incidents::router(svc.clone()),
        start,
        admin: key(Role::Admin).await,
        responder: key(Role::Responder).await,
        viewer: key(Role::Viewer).await,
        svc,
        clock,
        slack,
        pd,
    }
}

impl World {
    async fn call(&self, method: Method, path: &str, token: &str, body: Value) -> Answer {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        send(&self.app, json_request(method, path, Some(token), body)).await
    }

    async fn act(&self, id: &str, action: &str, body: Value) -> Answer {
        send(
            &self.incidents,
            json_request(
                Method::POST,
                &format!("/v1/incidents/{id}/{action}"),
                Some(&self.responder),
                body.to_string(),
            ),
        )
        .await
    }

    /// Puts the `primary` on-call schedule (as admin), which must succeed.
    async fn put_primary(&self, schedule: Value) {
        let a = self
            .call(
                Method::PUT,
                "/v1/oncall-schedules/primary",
                &self.admin,
                schedule,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }

    /// One tick of the reminders job at now + `minutes`, then delivery.
    async fn at(&self, minutes: i64) -> usize {
        self.clock
            .advance(self.start + Duration::minutes(minutes) - self.clock.now());
        let r = firewatch_domain::escalation::reminders::run(
            &self.svc,
            &Budget::new(std::time::Duration::from_secs(5)),
        )
        .await
        .unwrap();
        assert_eq!(r.failed, 0, "{r:?}");
        drain(&self.svc).await.unwrap();
        drain(&self.svc).await.unwrap();
        r.alerts
    }

    fn thread(&self) -> Vec<String> {
        self.slack
            .calls()
            .iter()
            .filter(|c| c.method == "chat.postMessage" && c.body["thread_ts"].is_string())
            .filter_map(|c| c.body["text"].as_str().map(str::to_owned))
            .collect()
    }
}

async fn fire(w: &World, severity: &str) -> String {
    let body = json!({"title": "payments 5xx", "fingerprint": format!("pay-{severity}"),
        "severity": severity, "labels": {"service": "payments"}})
    .to_string();
    let id = ingest_alert(&w.svc, SourceKind::Generic, body.as_bytes()).await;
    drain(&w.svc).await.unwrap();
    id.to_string()
}

/// The schedule of [`schedule`], its rotation starting with a hand-off an
/// hour before `start` (in Berlin's time), so Bob's first shift holds
/// `start` whatever the day.
fn schedule_holding(start: DateTime<Utc>) -> Value {
    let handoff = jiff::Timestamp::from_second((start - Duration::hours(1)).timestamp())
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").unwrap());
    let mut s = schedule();
    s["rotations"][0]["handoff"] = json!(handoff.strftime("%H:%M").to_string());
    s["rotations"][0]["start"] = json!(handoff.strftime("%Y-%m-%d").to_string());
    s
}

fn schedule() -> Value {
    json!({
        "name": "Payments primary",
        "time_zone": "Europe/Berlin",
        "rotations": [{"name": "primary", "participants": ["slack:U0BOB", "alice@example.com"],
                       "handoff": "09:00", "length": "daily", "start": "2026-11-23"}]
    })
}

#[tokio::test]
async fn steps_run_at_their_minutes_stop_on_ack_and_pause_while_snoozed() {
    let w = world().await;
    w.put_primary(schedule_holding(w.start)).await;
    let policy = json!({"name": "Default", "steps": [
        {"after_minutes": 5, "action": "remind", "repeat_every_minutes": 10},
        {"after_minutes": 15, "action": "mention_oncall", "schedule": "primary"},
        {"after_minutes": 60, "when": "unresolved", "action": "remind"}
    ]});
    let a = w
        .call(
            Method::PUT,
            "/v1/escalation-policies/default",
            &w.admin,
            policy,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let id = fire(&w, "warning").await;
    let before = w.thread().len();

    assert_eq!(w.at(4).await, 0);
    assert_eq!(w.at(5).await, 1, "the first reminder at minute 5");
    assert_eq!(w.at(5).await, 0, "a retried tick sends nothing twice");
    let t = w.thread();
    assert_eq!(t.len(), before + 1, "{t:?}");
    assert_eq!(t.last().unwrap(), "⏰ Reminder: unacknowledged for 5 min");
    assert_eq!(w.at(14).await, 0);
    // Minute 15: the repeat and the on-call mention (Bob's shift began an
    // hour before minute 0), pinged as Slack does.
    assert_eq!(w.at(15).await, 2);
    let t = w.thread();
    assert!(
        t.iter()
            .any(|m| m == "📣 unacknowledged for 15 min; on call for Payments primary: <@U0BOB>"),
        "{t:?}"
    );

    // Snoozed for 30 minutes: nothing until minute 46.
    let s = w.act(&id, "snooze", json!({"for": "30m"})).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    let until = w.start + Duration::minutes(45);
    assert_eq!(
        s.json["snoozed_until"],
        until.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    let shown = format!("Snoozed until {}", until.format("%Y-%m-%d %H:%M UTC"));
    drain(&w.svc).await.unwrap();
    assert!(w
        .thread()
        .last()
        .unwrap()
        .starts_with(&format!("😴 {shown}")));
    let card = w
        .slack
        .calls()
        .into_iter()
        .rfind(|c| c.method == "chat.update")
        .unwrap();
    assert!(card.body.to_string().contains(&shown), "{}", card.body);
    assert_eq!(w.at(25).await, 0);
    assert_eq!(w.at(44).await, 0);
    // Back: the reminders due meanwhile are caught up in one message.
    assert_eq!(w.at(46).await, 1);
    assert_eq!(
        w.thread().last().unwrap(),
        "⏰ Reminder: unacknowledged for 46 min"
    );

    // Acknowledged: the unacknowledged steps stop; the unresolved one runs.
    let a = w.act(&id, "ack", json!({})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(w.at(55).await, 0);
    assert_eq!(w.at(60).await, 1);
    assert_eq!(
        w.thread().last().unwrap(),
        "⏰ Reminder: unresolved for 60 min"
    );
    // Resolved: nothing more.
    w.act(&id, "resolve", json!({})).await;
    assert_eq!(w.at(120).await, 0);
    // A viewer may not snooze; a resolved incident cannot be snoozed.
    let a = send(
        &w.incidents,
        json_request(
            Method::POST,
            &format!("/v1/incidents/{id}/snooze"),
            Some(&w.viewer),
            r#"{"for":"30m"}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.act(&id, "snooze", json!({"for": "30m"})).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        w.act(&id, "snooze", json!({"for": "soon"})).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_sev1_pages_pagerduty_which_follows_the_incident_to_resolved() {
    let w = world().await;
    use firewatch_domain::routing::{links, routes};
    let admin = Principal {
        tenant: TenantId::default_tenant(),
        name: "admin".into(),
        role: Role::Admin,
    };
    let dest = Destination::Slack {
        channel: "#incidents".into(),
    };
    links::link_destination_directly(&w.svc, &admin.tenant, &dest)
        .await
        .unwrap();
    let a = w
        .call(
            Method::PUT,
            "/v1/escalation-policies/payments",
            &w.admin,
            json!({"name": "Payments", "steps": [], "pagerduty": {"routing_key_secret": "pd_payments"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // A routing rule picks the policy for sev1 incidents.
    routes::put(
        &w.svc,
        &admin,
        "sev1",
        routes::Route {
            id: String::new(),
            when: routes::Match {
                severities: vec![firewatch_types::Severity::Sev1],
                ..Default::default()
            },
            destinations: vec![dest],
            ticket: false,
            escalation: Some("payments".into()),
            flapping: None,
            version: 0,
        },
    )
    .await
    .unwrap();

    // A sev3 incident is not paged; a sev1 is, at once.
    fire(&w, "warning").await;
    let id = fire(&w, "critical").await;
    // PagerDuty is down at first: the page is retried, not lost.
    w.pd.answer_next(500);
    assert_eq!(w.at(0).await, 1);
    assert!(w.pd.calls().is_empty());
    w.clock.advance(Duration::minutes(2));
    firewatch_domain::dispatch::sweep(&w.svc, Duration::zero())
        .await
        .unwrap();
    let calls = w.pd.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let trigger = &calls[0];
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], ROUTING_KEY);
    assert_eq!(trigger["dedup_key"], format!("firewatch-default-{id}"));
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["summary"], "[sev1] payments 5xx");
    assert_eq!(trigger["payload"]["source"], "payments");
    assert_eq!(
        trigger["payload"]["custom_details"]["incident"],
        id.as_str()
    );
    assert!(w
        .thread()
        .iter()
        .any(|m| m.starts_with("📟 Paged through PagerDuty")));

    // Acknowledged, then resolved: PagerDuty is told each once.
    w.act(&id, "ack", json!({})).await;
    assert_eq!(w.at(3).await, 1);
    w.act(&id, "resolve", json!({})).await;
    assert_eq!(w.at(4).await, 1);
    assert_eq!(w.at(5).await, 0);
    let actions: Vec<Value> =
        w.pd.calls()
            .iter()
            .map(|c| c["event_action"].clone())
            .collect();
    assert_eq!(
        actions,
        [json!("trigger"), json!("acknowledge"), json!("resolve")]
    );
    for c in &w.pd.calls()[1..] {
        assert_eq!(c["dedup_key"], format!("firewatch-default-{id}"));
    }

    // The routing key is nowhere but in the request to PagerDuty.
    let timeline = send(
        &w.incidents,
        get(&format!("/v1/incidents/{id}/timeline"), &w.viewer),
    )
    .await;
    assert!(!timeline.text.contains(ROUTING_KEY));
    let policy = w
        .call(
            Method::GET,
            "/v1/escalation-policies/payments",
            &w.viewer,
            Value::Null,
        )
        .await;
    assert!(!policy.text.contains(ROUTING_KEY));
    assert!(w
        .slack
        .calls()
        .iter()
        .all(|c| !c.body.to_string().contains(ROUTING_KEY)));
}

#[tokio::test]
async fn on_call_now_overrides_and_the_calendar_feed() {
    let w = world().await;
    let a = w
        .call(
            Method::PUT,
            "/v1/oncall-schedules/primary",
            &w.admin,
            schedule(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let now = w
        .call(
            Method::GET,
            "/v1/oncall-schedules/primary/now?at=2026-11-24T07:59:00Z",
            &w.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(now.json["on_call"][0]["who"], "slack:U0BOB", "{}", now.text);
    let now = w
        .call(
            Method::GET,
            "/v1/oncall-schedules/primary/now?at=2026-11-24T08:00:00Z",
            &w.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(now.json["on_call"][0]["who"], "alice@example.com");
    assert_eq!(now.json["on_call"][0]["until"], "2026-11-25T08:00:00Z");

    // A responder swaps a shift; a viewer may not.
    let o = json!({"who": "carol@example.com", "from": "2026-11-24T12:00:00Z", "until": "2026-11-24T18:00:00Z"});
    let a = w
        .call(
            Method::POST,
            "/v1/oncall-schedules/primary/overrides",
            &w.viewer,
            o.clone(),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = w
        .call(
            Method::POST,
            "/v1/oncall-schedules/primary/overrides",
            &w.responder,
            o,
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let now = w
        .call(
            Method::GET,
            "/v1/oncall-schedules/primary/now?at=2026-11-24T13:00:00Z",
            &w.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(now.json["on_call"][0]["who"], "carol@example.com");
    assert_eq!(now.json["on_call"][0]["overridden"], true);

    let ics = send(
        &w.app,
        get(
            "/v1/oncall-schedules/primary/calendar.ics?from=2026-11-23T08:00:00Z&days=3",
            &w.viewer,
        ),
    )
    .await;
    assert_eq!(ics.status, StatusCode::OK);
    assert_eq!(ics.headers["content-type"], "text/calendar; charset=utf-8");
    let cal: icalendar::Calendar = ics.text.parse().expect("a valid iCalendar feed");
    use icalendar::Component;
    let events: Vec<(String, String)> = cal
        .components
        .iter()
        .filter_map(|c| c.as_event())
        .map(|e| {
            (
                e.get_summary().unwrap_or("").to_owned(),
                e.property_value("DTSTART").unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            (
                "On call (primary): slack:U0BOB".to_owned(),
                "20261123T080000Z".to_owned()
            ),
            (
                "On call (primary): alice@example.com".to_owned(),
                "20261124T080000Z".to_owned()
            ),
            (
                "On call (primary): carol@example.com (override)".to_owned(),
                "20261124T120000Z".to_owned()
            ),
            (
                "On call (primary): alice@example.com".to_owned(),
                "20261124T180000Z".to_owned()
            ),
            (
                "On call (primary): slack:U0BOB".to_owned(),
                "20261125T080000Z".to_owned()
            ),
        ]
    );

    // `/fw oncall` in chat, which reads the clock: the rotation moved so
    // that Bob's shift holds now.
    w.put_primary(schedule_holding(w.start)).await;
    let p = Principal {
        tenant: TenantId::default_tenant(),
        name: "viewer".into(),
        role: Role::Viewer,
    };
    let catalog = firewatch_web::testing::playbooks();
    let m = firewatch_domain::chat::run_command(&w.svc, &catalog, &p, "oncall", "/fw ")
        .await
        .unwrap();
    assert!(
        m.text
            .starts_with("Payments primary (primary) · primary: slack:U0BOB until"),
        "{}",
        m.text
    );
}

#[tokio::test]
async fn bad_schedules_and_policies_are_refused_and_change_nothing() {
    let w = world().await;
    for (body, says) in [
        (
            json!({"name": "x", "time_zone": "Mars/Olympus", "rotations": []}),
            "IANA",
        ),
        (
            json!({"name": "x", "time_zone": "UTC", "rotations": []}),
            "1 to 8 rotations",
        ),
        (
            json!({"name": "x", "time_zone": "UTC", "rotations": [{"name": "r", "participants": ["bob"], "handoff": "09:00", "length": "daily", "start": "2026-11-23"}]}),
            "neither",
        ),
        (
            json!({"name": "x", "time_zone": "UTC", "rotations": [{"name": "r", "participants": ["a@b.io"], "handoff": "9am", "length": "daily", "start": "2026-11-23"}]}),
            "HH:MM",
        ),
        (
            json!({"name": "x", "time_zone": "UTC", "rotations": [{"name": "r", "participants": ["a@b.io"], "handoff": "09:00", "length": "hourly", "start": "2026-11-23"}]}),
            "unknown variant",
        ),
    ] {
        let a = w
            .call(Method::PUT, "/v1/oncall-schedules/s", &w.admin, body)
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
        assert!(a.text.contains(says), "{says}: {}", a.text);
    }
    let a = w
        .call(
            Method::PUT,
            "/v1/oncall-schedules/s",
            &w.responder,
            schedule(),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = w
        .call(
            Method::PUT,
            "/v1/oncall-schedules/Bad%20Id",
            &w.admin,
            schedule(),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = w
        .call(
            Method::GET,
            "/v1/oncall-schedules/nope/now",
            &w.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = w
        .call(Method::GET, "/v1/oncall-schedules", &w.viewer, Value::Null)
        .await;
    assert_eq!(a.json, json!([]));

    for (body, status, says) in [
        (
            json!({"name": "p", "steps": [{"after_minutes": 5, "action": "page"}]}),
            400,
            "routing_key_secret",
        ),
        (
            json!({"name": "p", "steps": [{"after_minutes": 5, "action": "mention_oncall", "schedule": "nope"}]}),
            400,
            "no on-call schedule",
        ),
        (
            json!({"name": "p", "steps": [{"after_minutes": 5, "action": "remind", "repeat_every_minutes": 1}]}),
            400,
            "5 minutes to a week",
        ),
        (json!({"name": "p", "steps": []}), 400, "needs a step"),
        (
            json!({"name": "p", "steps": [{"after_minutes": 5, "action": "notify", "destination": {"platform": "slack", "channel": "C0OTHER"}}]}),
            403,
            "not linked",
        ),
        (
            json!({"name": "p", "steps": [], "pagerduty": {"routing_key_secret": "R0UT1NG KEY"}}),
            400,
            "names a secret",
        ),
    ] {
        let a = w
            .call(Method::PUT, "/v1/escalation-policies/p", &w.admin, body)
            .await;
        assert_eq!(a.status.as_u16(), status, "{}", a.text);
        assert!(a.text.contains(says), "{says}: {}", a.text);
    }
    let a = w
        .call(
            Method::GET,
            "/v1/escalation-policies",
            &w.viewer,
            Value::Null,
        )
        .await;
    assert_eq!(a.json, json!([]));

    // Another tenant sees none of it.
    w.call(
        Method::PUT,
        "/v1/oncall-schedules/primary",
        &w.admin,
        schedule(),
    )
    .await;
    let other = TenantId::parse("acme").unwrap();
    firewatch_domain::auth::ensure_tenant(&w.svc, &other)
        .await
        .unwrap();
    let token = firewatch_domain::auth::create_api_key(&w.svc, &other, "acme", Role::Admin)
        .await
        .unwrap();
    let a = w
        .call(
            Method::GET,
            "/v1/oncall-schedules/primary",
            &token,
            Value::Null,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

/// A tenant's policy that names another tenant's PagerDuty routing key
/// pages nothing with it: a secret resolves in its owner's tenant only, so
/// the page is not sent (and says why), and PagerDuty never sees the key.
#[tokio::test]
async fn a_policy_naming_another_tenants_routing_key_pages_nothing_with_it() {
    let w = world().await;
    let beta = TenantId::parse("beta").unwrap();
    let beta_admin = firewatch_domain::auth::create_api_key(&w.svc, &beta, "admin", Role::Admin)
        .await
        .unwrap();
    // `pd_payments` is the default tenant's secret, not beta's.
    let saved = w
        .call(
            Method::PUT,
            "/v1/escalation-policies/default",
            &beta_admin,
            json!({"name": "Beta", "steps": [],
                   "pagerduty": {"routing_key_secret": "pd_payments", "page_sev1": true}}),
        )
        .await;
    if saved.status == StatusCode::OK {
        let p = Principal {
            tenant: beta.clone(),
            name: "source:test".into(),
            role: Role::Responder,
        };
        let body = json!({"title": "beta 5xx", "fingerprint": "beta-1", "severity": "critical"})
            .to_string();
        firewatch_domain::ingest::ingest(
            &w.svc,
            firewatch_domain::ingest::IngestRequest {
                principal: &p,
                source: SourceKind::Generic,
                body: body.as_bytes(),
                headers: vec![],
            },
        )
        .await
        .unwrap();
        drain(&w.svc).await.unwrap();
        w.at(0).await;
        w.clock.advance(Duration::minutes(2));
        firewatch_domain::dispatch::sweep(&w.svc, Duration::zero())
            .await
            .unwrap();
        assert!(
            w.pd.calls().is_empty(),
            "nothing was sent: {:?}",
            w.pd.calls()
        );
    } else {
        assert_eq!(saved.status, StatusCode::BAD_REQUEST, "{}", saved.text);
    }
    assert!(
        w.pd.calls()
            .iter()
            .all(|c| !c.to_string().contains(ROUTING_KEY)),
        "{:?}",
        w.pd.calls()
    );
    assert!(!saved.text.contains(ROUTING_KEY));
}
