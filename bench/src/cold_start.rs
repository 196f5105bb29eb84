//! `cold-start`: runs a Lambda `bootstrap` binary under a Lambda Runtime API
//! of our own on 127.0.0.1 and measures the time from process start to its
//! first answered invocation (configuration read, SDK clients built, one
//! real request through DynamoDB Local), and the process's peak memory.
//!
//! The Runtime API is the documented one: `GET
//! /2018-06-01/runtime/invocation/next` hands out one event, `POST
//! .../invocation/{id}/response` takes the answer.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use firewatch_types::{Role, TenantId};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};

#[derive(clap::Args)]
pub struct Args {
    /// `name=path/to/bootstrap` pairs; the name (ingest, incidents, admin, scheduler, checks, playbooks, schedules, pipelines,
    /// dossier, silences, escalation, dispatch, slack, telegram, discord) picks the first request.
    #[arg(long, required = true)]
    function: Vec<String>,
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Untimed runs of each function first. They warm up the local servers
    /// (DynamoDB Local's JVM compiles its hot paths during the first
    /// requests, which real DynamoDB never makes a caller wait for), so the
    /// timed runs measure the function rather than the emulator.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[arg(long, env = "FIREWATCH_DYNAMODB_ENDPOINT")]
    dynamodb_endpoint: String,
    #[arg(long, env = "FIREWATCH_S3_ENDPOINT")]
    s3_endpoint: String,
}

struct Emulator {
    event: Mutex<Option<(String, String)>>,
    answers: mpsc::UnboundedSender<(String, String)>,
}

async fn next(State(em): State<Arc<Emulator>>) -> (StatusCode, HeaderMap, String) {
    let taken = em.event.lock().await.take();
    let Some((id, body)) = taken else {
        // One invocation per process: later polls wait until it is killed.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return (StatusCode::NO_CONTENT, HeaderMap::new(), String::new());
    };
    let mut h = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
    h.insert(
        "lambda-runtime-deadline-ms",
        deadline.to_string().parse().unwrap(),
    );
    h.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench"
            .parse()
            .unwrap(),
    );
    h.insert(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            .parse()
            .unwrap(),
    );
    h.insert("content-type", "application/json".parse().unwrap());
    (StatusCode::OK, h, body)
}

async fn response(
    State(em): State<Arc<Emulator>>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    let _ = em.answers.send((id, body));
    StatusCode::ACCEPTED
}

async fn error(State(em): State<Arc<Emulator>>, body: String) -> StatusCode {
    let _ = em.answers.send(("error".into(), body));
    StatusCode::ACCEPTED
}

/// Secrets the chat functions are started with, so the probes can be signed.
const SLACK_SIGNING: &str = "bench-signing-secret";
const TELEGRAM_SECRET: &str = "bench_webhook_secret";
const DISCORD_KEY: [u8; 32] = [7u8; 32];

fn http_event(
    method: &str,
    path: &str,
    route: &str,
    headers: serde_json::Value,
    body: Option<String>,
    base64: bool,
) -> String {
    serde_json::json!({
        "version": "2.0", "routeKey": route, "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {"accountId": "123456789012", "apiId": "bench", "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench", "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "bench", "routeKey": route, "stage": "$default", "time": "20/Nov/2026:12:00:00 +0000", "timeEpoch": 1795089600000u64},
        "body": body, "isBase64Encoded": base64
    })
    .to_string()
}

/// The first invocation each function gets: a real request of its kind that
/// goes through the store.
fn event(function: &str, token: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let host = "bench.execute-api.us-east-1.amazonaws.com";
    match function {
        "ingest" => {
            let alert =
                br#"{"title":"cold start probe","fingerprint":"cold-start","severity":"sev4"}"#;
            let headers = serde_json::json!({"authorization": format!("Bearer {token}"), "content-type": "application/json", "host": host});
            http_event(
                "POST",
                "/v1/alerts/generic",
                "POST /v1/alerts/{source}",
                headers,
                Some(base64::engine::general_purpose::STANDARD.encode(alert)),
                true,
            )
        }
        "incidents" => {
            let headers =
                serde_json::json!({"authorization": format!("Bearer {token}"), "host": host});
            http_event(
                "GET",
                "/v1/incidents",
                "GET /v1/incidents",
                headers,
                None,
                false,
            )
        }
        "admin" => {
            let headers =
                serde_json::json!({"authorization": format!("Bearer {token}"), "host": host});
            http_event(
                "GET",
                "/v1/dispatch/dead-letters",
                "GET /v1/dispatch/dead-letters",
                headers,
                None,
                false,
            )
        }
        "dossier" => {
            let headers =
                serde_json::json!({"authorization": format!("Bearer {token}"), "host": host});
            http_event(
                "GET",
                "/v1/dossier/coverage",
                "GET /v1/dossier/coverage",
                headers,
                None,
                false,
            )
        }
        "escalation" => {
            let headers =
                serde_json::json!({"authorization": format!("Bearer {token}"), "host": host});
            http_event(
                "GET",
                "/v1/escalation-policies",
                "GET /v1/escalation-policies",
                headers,
                None,
                false,
            )
        }
        "silences" => {
            let headers =
                serde_json::json!({"authorization": format!("Bearer {token}"), "host": host});
            http_event(
                "GET",
                "/api/v2/silences",
                "GET /api/v2/silences",
                headers,
                None,
                false,
            )
        }
        "schedules" => {
            let headers =
                serde_json::json!({"authorization": format!("Bearer {token}"), "host": host});
            http_event(
                "GET",
                "/v1/heartbeats",
                "GET /v1/heartbeats",
                headers,
                None,
                false,
            )
        }
        "pipelines" => {
            // An OpenLineage START event, as the clients send it.
            let ev = br#"{"eventType":"START","eventTime":"2026-11-20T12:00:00Z","run":{"runId":"01934b6e-0000-7000-8000-00000000c01d"},"job":{"namespace":"bench","name":"cold.start"},"inputs":[],"outputs":[{"namespace":"bench","name":"out"}],"producer":"https://github.com/OpenLineage/OpenLineage/tree/1.30.0/client/python","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}"#;
            let headers = serde_json::json!({"authorization": format!("Bearer {token}"), "content-type": "application/json", "host": host});
            http_event(
                "POST",
                "/api/v1/lineage",
                "POST /api/v1/lineage",
                headers,
                Some(base64::engine::general_purpose::STANDARD.encode(ev)),
                true,
            )
        }
        "playbooks" => {
            let headers =
                serde_json::json!({"authorization": format!("Bearer {token}"), "host": host});
            http_event(
                "GET",
                "/v1/playbooks",
                "GET /v1/playbooks",
                headers,
                None,
                false,
            )
        }
        "slack" => {
            let body =
                "command=%2Ffw&text=incidents&user_id=U0BENCH&team_id=T0BENCH&channel_id=C0BENCH"
                    .to_owned();
            let sig = {
                use hmac::Mac;
                let mut mac =
                    hmac::Hmac::<sha2::Sha256>::new_from_slice(SLACK_SIGNING.as_bytes()).unwrap();
                mac.update(format!("v0:{now}:{body}").as_bytes());
                format!("v0={}", hex::encode(mac.finalize().into_bytes()))
            };
            let headers = serde_json::json!({"content-type": "application/x-www-form-urlencoded", "host": host,
                "x-slack-request-timestamp": now, "x-slack-signature": sig});
            http_event(
                "POST",
                "/v1/chat/slack/commands",
                "POST /v1/chat/slack/commands",
                headers,
                Some(body),
                false,
            )
        }
        "telegram" => {
            let update = r#"{"update_id": 1, "message": {"message_id": 1, "from": {"id": 1, "is_bot": false, "first_name": "B"}, "chat": {"id": 1, "type": "private"}, "date": 1795089600, "text": "/help"}}"#;
            let headers = serde_json::json!({"content-type": "application/json", "host": host, "x-telegram-bot-api-secret-token": TELEGRAM_SECRET});
            http_event(
                "POST",
                "/v1/chat/telegram/webhook",
                "POST /v1/chat/telegram/webhook",
                headers,
                Some(update.to_owned()),
                false,
            )
        }
        "discord" => {
            use ed25519_dalek::Signer;
            let body =
                r#"{"id": "1", "application_id": "1", "type": 1, "token": "t", "version": 1}"#;
            let sig = ed25519_dalek::SigningKey::from_bytes(&DISCORD_KEY)
                .sign(format!("{now}{body}").as_bytes());
            let headers = serde_json::json!({"content-type": "application/json", "host": host,
                "x-signature-ed25519": hex::encode(sig.to_bytes()), "x-signature-timestamp": now});
            http_event(
                "POST",
                "/v1/chat/discord/interactions",
                "POST /v1/chat/discord/interactions",
                headers,
                Some(body.to_owned()),
                false,
            )
        }
        // scheduler: the retries job over an empty outbox.
        "scheduler" => r#"{"job": "retries"}"#.to_owned(),
        // checks: the heartbeats job over an empty due index.
        "checks" => r#"{"job": "heartbeats"}"#.to_owned(),
        // dispatch: a stream batch with nothing for it.
        _ => r#"{"Records": []}"#.to_owned(),
    }
}

/// True when the answer is the success the probe expects.
fn answered(function: &str, answer: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(answer).unwrap_or_default();
    match function {
        "dispatch" => v.get("batchItemFailures").is_some(),
        "scheduler" => v.get("delivered").is_some(),
        "checks" => v.get("checked").is_some(),
        _ => matches!(v["statusCode"].as_u64(), Some(200..=299)),
    }
}

fn peak_memory_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub async fn run(args: Args) {
    let (table, bucket) = ("firewatch-bench", "firewatch-bench");
    // The table, bucket and a key the probe requests use.
    let cfg = firewatch_aws::AwsConfig {
        table: table.into(),
        bucket: bucket.into(),
        region: Some("us-east-1".into()),
        dynamodb_endpoint: Some(args.dynamodb_endpoint.clone()),
        s3_endpoint: Some(args.s3_endpoint.clone()),
    };
    let sdk = firewatch_aws::sdk_config(cfg.region.clone()).await;
    let ddb = firewatch_aws::dynamo_client(&sdk, Some(&args.dynamodb_endpoint));
    firewatch_aws::ensure_table(&ddb, table)
        .await
        .expect("table");
    let s3 = firewatch_aws::s3_client(&sdk, Some(&args.s3_endpoint));
    firewatch_aws::ensure_bucket(&s3, bucket)
        .await
        .expect("bucket");
    let svc = firewatch_aws::services_with(&sdk, &cfg, Default::default());
    let token = "fw_bench_cold_start_key_0123456789abcdef";
    firewatch_domain::auth::register_api_key(
        &svc,
        &TenantId::default_tenant(),
        "bench",
        Role::Responder,
        token,
    )
    .await
    .expect("key");

    for spec in &args.function {
        let (name, path) = spec.split_once('=').expect("--function name=path");
        let mut times = Vec::new();
        let mut peaks = Vec::new();
        for run in 0..args.warmup + args.runs {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let em = Arc::new(Emulator {
                event: Mutex::new(Some((format!("req-{run}"), event(name, token)))),
                answers: tx,
            });
            let app = Router::new()
                .route("/2018-06-01/runtime/invocation/next", get(next))
                .route(
                    "/2018-06-01/runtime/invocation/{id}/response",
                    post(response),
                )
                .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
                .route("/2018-06-01/runtime/init/error", post(error))
                .with_state(em);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let api = listener.local_addr().unwrap();
            let server = tokio::spawn(async move { axum::serve(listener, app).await });

            let start = Instant::now();
            let mut child = tokio::process::Command::new(path)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
                .env("AWS_LAMBDA_FUNCTION_NAME", format!("firewatch-{name}"))
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "AKIAFIREWATCHBENCH")
                .env("AWS_SECRET_ACCESS_KEY", "firewatchbenchsecret")
                .env("FIREWATCH_TABLE", table)
                .env("FIREWATCH_BUCKET", bucket)
                .env("FIREWATCH_DYNAMODB_ENDPOINT", &args.dynamodb_endpoint)
                .env("FIREWATCH_S3_ENDPOINT", &args.s3_endpoint)
                .env("FIREWATCH_LOG", "warn")
                .env("SLACK_BOT_TOKEN", "xoxb-bench")
                .env("SLACK_SIGNING_SECRET", SLACK_SIGNING)
                .env("TELEGRAM_BOT_TOKEN", "1:bench")
                .env("TELEGRAM_WEBHOOK_SECRET", TELEGRAM_SECRET)
                .env("TELEGRAM_API_URL", "http://127.0.0.1:9")
                .env("DISCORD_BOT_TOKEN", "bench")
                .env(
                    "DISCORD_PUBLIC_KEY",
                    hex::encode(
                        ed25519_dalek::SigningKey::from_bytes(&DISCORD_KEY)
                            .verifying_key()
                            .to_bytes(),
                    ),
                )
                .kill_on_drop(true)
                .spawn()
                .expect("the bootstrap starts");
            let (id, answer) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
                .await
                .expect("an answer within 20 s")
                .expect("an answer");
            let elapsed = start.elapsed();
            assert!(
                id != "error" && answered(name, &answer),
                "{name}: unexpected answer {answer}"
            );
            let timed = run >= args.warmup;
            if let Some(pid) = child.id().filter(|_| timed) {
                peaks.extend(peak_memory_kb(pid));
            }
            let _ = child.kill().await;
            server.abort();
            if timed {
                times.push(elapsed);
            }
        }
        times.sort();
        let median = times[times.len() / 2];
        let max_peak = peaks.iter().max().copied().unwrap_or(0);
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!(
            "{name}: first answer after start: median {:.1} ms, min {:.1} ms, max {:.1} ms over {} runs; peak memory {:.1} MB; binary {:.1} MB",
            median.as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            times.len(),
            max_peak as f64 / 1024.0,
            size as f64 / 1_048_576.0
        );
    }
}
