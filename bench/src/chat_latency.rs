//! `chat-latency`: time from an alert being sent (so: at least from its
//! acceptance) to the chat platform receiving the incident's root card, in
//! `firewatch dev`.
//!
//! A fake Slack Web API of our own (127.0.0.1) records when each
//! `chat.postMessage` arrives; `firewatch dev` is pointed at it with
//! `SLACK_API_URL` by bench/run.sh. Each alert opens a new incident, posted
//! one at a time so each measurement is the path itself, not a queue.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(clap::Args)]
pub struct Args {
    /// Where firewatch dev listens.
    #[arg(long)]
    url: String,
    #[arg(long, env = "FIREWATCH_TOKEN")]
    token: String,
    /// The port for the fake Slack API (firewatch dev's SLACK_API_URL).
    #[arg(long)]
    slack_port: u16,
    #[arg(long, default_value_t = 300)]
    alerts: usize,
}

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

async fn post_message(State(seen): State<Seen>, Json(body): Json<Value>) -> Json<Value> {
    let now = Instant::now();
    if body.get("thread_ts").is_none() {
        if let Some(text) = body["text"].as_str() {
            // The card text names the incident id.
            if let Some(id) = text.split_whitespace().find(|w| w.starts_with("inc_")) {
                seen.lock().await.insert(
                    id.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                        .to_owned(),
                    now,
                );
            }
        }
    }
    Json(json!({"ok": true, "channel": "C0BENCH", "ts": "1700000000.000100"}))
}

pub async fn run(args: Args) {
    let seen: Seen = Arc::default();
    let fake = Router::new()
        .route("/api/chat.postMessage", post(post_message))
        .route(
            "/api/chat.update",
            post(|| async { Json(json!({"ok": true})) }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.slack_port))
        .await
        .expect("the fake Slack port");
    tokio::spawn(async move { axum::serve(listener, fake).await });

    let http = reqwest::Client::new();
    let url = format!("{}/v1/alerts/generic", args.url.trim_end_matches('/'));
    let mut latencies = Vec::with_capacity(args.alerts);
    for i in 0..args.alerts {
        let body = json!({"title": format!("latency probe {i}"), "fingerprint": format!("chat-latency-{i}-{}", std::process::id()), "severity": "sev2"});
        // From the moment the alert is sent: an upper bound of "accepted to
        // card", since the card may reach Slack before the 202 reaches us.
        let sent = Instant::now();
        let res = http
            .post(&url)
            .bearer_auth(&args.token)
            .json(&body)
            .send()
            .await
            .expect("firewatch answers");
        assert_eq!(res.status().as_u16(), 202);
        let report: Value = res.json().await.unwrap();
        let id = report["incidents"][0].as_str().unwrap().to_owned();
        let deadline = sent + Duration::from_secs(5);
        loop {
            if let Some(at) = seen.lock().await.get(&id) {
                latencies.push(at.saturating_duration_since(sent));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never reached the fake Slack"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "alert sent -> root card at the fake Slack: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} incidents",
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(*latencies.last().unwrap()),
        latencies.len()
    );
}
