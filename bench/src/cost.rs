//! `cost`: what one alert costs on AWS, from counted requests.
//!
//! The ingest router and the dispatcher run in process on the AWS adapters
//! (the same `DynamoStore` and `S3Blobs` the Lambdas use), against DynamoDB
//! Local and a local S3 server. A counting proxy stands in front of
//! DynamoDB Local: it asks for `ReturnConsumedCapacity: TOTAL` on every
//! request and adds up the read and write request units DynamoDB Local
//! reports (doubled for transactions, which DynamoDB bills at twice the
//! units and DynamoDB Local does not); the blob port is wrapped to count
//! S3 requests. A fake Slack Web API answers the cards.
//!
//! Two workloads, each counted on its own after a warm-up: one-alert
//! Alertmanager webhooks that repeat a firing alert (deduplicated), and
//! one-alert webhooks that each open a new incident, whose Slack card the
//! dispatcher then posts. The per-alert counts and durations are printed
//! with the bill they make at list prices (docs/COST.md).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use firewatch_domain::ports::{BlobError, Blobs};
use firewatch_types::{Role, TenantId};
use serde_json::{json, Value};
use tower::ServiceExt;

#[derive(clap::Args)]
pub struct Args {
    /// DynamoDB Local.
    #[arg(long)]
    dynamodb_endpoint: String,
    /// The local S3 server.
    #[arg(long)]
    s3_endpoint: String,
    /// Deduplicated alerts to count (repeat notifications of one firing
    /// alert, one per webhook).
    #[arg(long, default_value_t = 1000)]
    repeats: usize,
    /// New incidents to count, each with a Slack card.
    #[arg(long, default_value_t = 300)]
    incidents: usize,
}

/// What the proxy counted.
#[derive(Default, Clone)]
struct Tally {
    requests: BTreeMap<String, u64>,
    read_units: f64,
    write_units: f64,
    /// Writes that can put a record on the table's stream (each put and
    /// delete, in or out of a transaction).
    stream_writes: u64,
    /// Of those, the puts the dispatcher's stream filter passes (items whose
    /// kind attribute `k` is `outbox` or `auditq`).
    dispatched_writes: u64,
}

impl Tally {
    fn minus(&self, before: &Tally) -> Tally {
        let mut requests = self.requests.clone();
        for (k, v) in &before.requests {
            *requests.entry(k.clone()).or_default() -= v;
        }
        requests.retain(|_, v| *v > 0);
        Tally {
            requests,
            read_units: self.read_units - before.read_units,
            write_units: self.write_units - before.write_units,
            stream_writes: self.stream_writes - before.stream_writes,
            dispatched_writes: self.dispatched_writes - before.dispatched_writes,
        }
    }
}

struct Proxy {
    http: reqwest::Client,
    upstream: String,
    tally: Mutex<Tally>,
}

const READS: [&str; 5] = [
    "GetItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "TransactGetItems",
];
const WRITES: [&str; 5] = [
    "PutItem",
    "DeleteItem",
    "UpdateItem",
    "BatchWriteItem",
    "TransactWriteItems",
];

/// Capacity units in a `ConsumedCapacity` (an object, or a list of them).
fn units(v: &Value) -> f64 {
    match v {
        Value::Array(a) => a.iter().map(units).sum(),
        Value::Object(o) => o
            .get("CapacityUnits")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        _ => 0.0,
    }
}

async fn forward(State(p): State<Arc<Proxy>>, headers: HeaderMap, body: Bytes) -> Response {
    let op = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("")
        .to_owned();
    let counted = READS.contains(&op.as_str()) || WRITES.contains(&op.as_str());
    let mut request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let body = if counted {
        request["ReturnConsumedCapacity"] = json!("TOTAL");
        serde_json::to_vec(&request).unwrap_or_else(|_| body.to_vec())
    } else {
        body.to_vec()
    };
    let mut req = p.http.post(&p.upstream).body(body);
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    let res = match req.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = res.status();
    let res_headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap_or_default();
    {
        let mut t = p.tally.lock().unwrap();
        *t.requests.entry(op.clone()).or_default() += 1;
        let stream_writes = match op.as_str() {
            "PutItem" | "DeleteItem" | "UpdateItem" => 1,
            "TransactWriteItems" => request["TransactItems"].as_array().map_or(0, |a| {
                a.iter()
                    .filter(|i| i.get("ConditionCheck").is_none())
                    .count()
            }) as u64,
            _ => 0,
        };
        let dispatched =
            |item: &Value| matches!(item["k"]["S"].as_str(), Some("outbox" | "auditq")) as u64;
        let dispatched_writes = match op.as_str() {
            "PutItem" => dispatched(&request["Item"]),
            "TransactWriteItems" => request["TransactItems"]
                .as_array()
                .map_or(0, |a| a.iter().map(|i| dispatched(&i["Put"]["Item"])).sum()),
            _ => 0,
        };
        if status.is_success() {
            t.stream_writes += stream_writes;
            t.dispatched_writes += dispatched_writes;
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let mut u = units(&answer["ConsumedCapacity"]);
            if op.starts_with("Transact") {
                u *= 2.0;
            }
            if READS.contains(&op.as_str()) {
                t.read_units += u;
            } else {
                t.write_units += u;
            }
        } else if WRITES.contains(&op.as_str()) {
            // A write refused by its condition is billed too (at least one
            // unit per item; DynamoDB Local reports none).
            t.write_units +=
                stream_writes.max(1) as f64 * if op.starts_with("Transact") { 2.0 } else { 1.0 };
        }
    }
    let mut out = Response::builder().status(status.as_u16());
    for (k, v) in &res_headers {
        if k != "content-length" && k != "transfer-encoding" {
            out = out.header(k, v);
        }
    }
    out.body(axum::body::Body::from(bytes))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

/// The blob port, counted.
struct CountingBlobs {
    inner: Arc<dyn Blobs>,
    puts: AtomicU64,
    gets: AtomicU64,
    bytes: AtomicU64,
}

#[async_trait]
impl Blobs for CountingBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        self.puts.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.inner.put(key, bytes, content_type).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key).await
    }
}

/// One workload's counts.
struct Counted {
    alerts: usize,
    dynamo: Tally,
    s3_puts: u64,
    s3_gets: u64,
    s3_bytes: u64,
    ingest: Duration,
    dispatch: Duration,
    cards: usize,
}

/// List prices, us-east-1, on-demand (per unit).
const WRU: f64 = 0.625 / 1e6;
const RRU: f64 = 0.125 / 1e6;
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
const LAMBDA_GB_S: f64 = 0.000_016_666_7;
const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
const S3_PUT: f64 = 0.005 / 1e3;
const S3_GET: f64 = 0.0004 / 1e3;
/// The functions' memory (infra/template.yaml `MemorySize`), in GB.
const MEMORY_GB: f64 = 128.0 / 1024.0;
/// Stream records per dispatcher invocation at load (the template's
/// `BatchSize`).
const BATCH: f64 = 25.0;

fn report(name: &str, c: &Counted) -> f64 {
    let n = c.alerts as f64;
    let per = |x: f64| x / n;
    println!("\n## {name}: {} alerts counted", c.alerts);
    let reqs: Vec<String> = c
        .dynamo
        .requests
        .iter()
        .map(|(k, v)| format!("{k} {:.2}", per(*v as f64)))
        .collect();
    println!("DynamoDB requests per alert: {}", reqs.join(", "));
    println!(
        "request units per alert: {:.2} write, {:.2} read; stream writes {:.2}, of which the dispatcher's filter passes {:.2}",
        per(c.dynamo.write_units),
        per(c.dynamo.read_units),
        per(c.dynamo.stream_writes as f64),
        per(c.dynamo.dispatched_writes as f64)
    );
    println!(
        "S3 per alert: {:.2} PUT ({:.0} bytes), {:.2} GET",
        per(c.s3_puts as f64),
        per(c.s3_bytes as f64),
        per(c.s3_gets as f64)
    );
    let ingest_ms = c.ingest.as_secs_f64() * 1e3 / n;
    let dispatch_ms = c.dispatch.as_secs_f64() * 1e3 / n;
    println!(
        "time per alert (in process, DynamoDB Local): ingest {ingest_ms:.2} ms, dispatch {dispatch_ms:.2} ms ({} cards)",
        c.cards
    );
    // Per million alerts.
    let m = 1e6 / n;
    let dynamo = (c.dynamo.write_units * WRU + c.dynamo.read_units * RRU) * m;
    let s3 = (c.s3_puts as f64 * S3_PUT + c.s3_gets as f64 * S3_GET) * m;
    let api = 1e6 * HTTP_API_REQUEST;
    // One ingest invocation per webhook; the dispatcher is invoked for the
    // stream records its filter passes (outbox records and queued audit
    // events), in batches.
    let dispatch_invocations = c.dynamo.dispatched_writes as f64 * m / BATCH;
    let lambda_requests = (1e6 + dispatch_invocations) * LAMBDA_REQUEST;
    // Billed by the millisecond, at least 1 ms each.
    let ingest_gb_s = 1e6 * ingest_ms.max(1.0) / 1e3 * MEMORY_GB;
    let dispatch_gb_s = (dispatch_ms * 1e6 / 1e3).max(dispatch_invocations / 1e3) * MEMORY_GB;
    let lambda = lambda_requests + (ingest_gb_s + dispatch_gb_s) * LAMBDA_GB_S;
    let total = dynamo + s3 + api + lambda;
    println!("per million alerts: DynamoDB ${dynamo:.2}, Lambda ${lambda:.2} (requests ${lambda_requests:.2}, {:.0} GB-s), API Gateway ${api:.2}, S3 ${s3:.2}: ${total:.2}", ingest_gb_s + dispatch_gb_s);
    total
}

fn webhook(i: usize, new_incident: bool) -> Vec<u8> {
    let fp = if new_incident { i } else { 0 };
    serde_json::to_vec(&json!({
        "version": "4", "status": "firing", "receiver": "cost", "groupKey": format!("cost-{i}"),
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am.example",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "CostAlert", "instance": format!("host-{fp}"), "severity": "warning"},
            "annotations": {"summary": format!("cost alert {fp}")},
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example/graph",
            "fingerprint": format!("cost{fp:06}")
        }]
    }))
    .unwrap()
}

/// Starts the counting proxy in front of `upstream` (DynamoDB Local);
/// answers it and its URL.
async fn start_proxy(upstream: &str) -> (Arc<Proxy>, String) {
    let proxy = Arc::new(Proxy {
        http: reqwest::Client::new(),
        upstream: upstream.trim_end_matches('/').to_owned() + "/",
        tally: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(forward).with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (proxy, url)
}

pub async fn run(args: Args) {
    let (proxy, proxy_url) = start_proxy(&args.dynamodb_endpoint).await;

    // A fake Slack Web API.
    let cards = Arc::new(AtomicU64::new(0));
    let counter = cards.clone();
    let slack = Router::new()
        .route(
            "/api/chat.postMessage",
            post(move |Json(_): Json<Value>| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                    Json(json!({"ok": true, "channel": "C0COST", "ts": "1700000000.000100"}))
                }
            }),
        )
        .fallback(|| async { Json(json!({"ok": true})) });
    let slack_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slack_url = format!("http://{}/api", slack_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(slack_listener, slack).await });

    let sdk =
        firewatch_aws::static_sdk_config("us-east-1", "AKIAFIREWATCHCOST", "firewatchcostsecret")
            .await;
    let run_id = ulid::Ulid::new().to_string().to_lowercase();
    let cfg = firewatch_aws::AwsConfig {
        table: format!("firewatch-cost-{run_id}"),
        bucket: format!("firewatch-cost-{run_id}"),
        region: Some("us-east-1".into()),
        dynamodb_endpoint: Some(proxy_url.clone()),
        s3_endpoint: Some(args.s3_endpoint.clone()),
    };
    firewatch_aws::ensure_table(
        &firewatch_aws::dynamo_client(&sdk, Some(&proxy_url)),
        &cfg.table,
    )
    .await
    .expect("the table");
    firewatch_aws::ensure_bucket(
        &firewatch_aws::s3_client(&sdk, Some(&args.s3_endpoint)),
        &cfg.bucket,
    )
    .await
    .expect("the bucket");
    let settings = firewatch_domain::settings::Settings {
        rate_limit_per_hour: 1_000_000,
        // Every new incident gets its own card: no storm thread collapses
        // them (a storm would post fewer cards, and cost less).
        storm_incidents: 0,
        default_destinations: vec![firewatch_types::Destination::Slack {
            channel: "C0COST".into(),
        }],
        ..Default::default()
    };
    let mut services = firewatch_aws::services_with(&sdk, &cfg, settings);
    let blobs = Arc::new(CountingBlobs {
        inner: services.blobs.clone(),
        puts: AtomicU64::new(0),
        gets: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
    });
    services.blobs = blobs.clone();
    let slack_cfg = firewatch_slack::SlackConfig::from_vars(|k| match k {
        "SLACK_BOT_TOKEN" => Some("xoxb-cost-bench".into()),
        "SLACK_SIGNING_SECRET" => Some("cost-bench-signing".into()),
        "SLACK_API_URL" => Some(slack_url.clone()),
        _ => None,
    })
    .unwrap()
    .unwrap();
    let services = services.with_chat(Arc::new(firewatch_domain::chat::ChatHub {
        console: None,
        slack: Some(Arc::new(firewatch_slack::SlackChat::new(slack_cfg))),
        discord: None,
        telegram: None,
    }));
    let token = firewatch_domain::auth::generate_token();
    firewatch_domain::auth::replace_named_key(
        &services,
        &TenantId::default_tenant(),
        "cost-bench",
        Role::Ingest,
        &token,
    )
    .await
    .unwrap();
    let router = firewatch_ingest::router(services.clone());
    let send = |body: Vec<u8>| {
        let router = router.clone();
        let token = token.clone();
        async move {
            let req = axum::http::Request::post("/v1/alerts/alertmanager")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            let res = router.oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::ACCEPTED);
        }
    };
    let snapshot = || {
        (
            proxy.tally.lock().unwrap().clone(),
            blobs.puts.load(Ordering::Relaxed),
            blobs.gets.load(Ordering::Relaxed),
            blobs.bytes.load(Ordering::Relaxed),
            cards.load(Ordering::Relaxed),
        )
    };
    let counted = |before: &(Tally, u64, u64, u64, u64), alerts, ingest, dispatch| {
        let after = snapshot();
        Counted {
            alerts,
            dynamo: after.0.minus(&before.0),
            s3_puts: after.1 - before.1,
            s3_gets: after.2 - before.2,
            s3_bytes: after.3 - before.3,
            ingest,
            dispatch,
            cards: (after.4 - before.4) as usize,
        }
    };

    // Warm-up: the first alert opens the incident the repeats deduplicate
    // into, and its card goes out.
    send(webhook(0, false)).await;
    firewatch_domain::dispatch::drain(&services).await.unwrap();

    let before = snapshot();
    let mut ingest = Duration::ZERO;
    for i in 1..=args.repeats {
        let t = Instant::now();
        send(webhook(i, false)).await;
        ingest += t.elapsed();
    }
    let t = Instant::now();
    firewatch_domain::dispatch::drain(&services).await.unwrap();
    let dedup = counted(&before, args.repeats, ingest, t.elapsed());

    let before = snapshot();
    let (mut ingest, mut dispatch) = (Duration::ZERO, Duration::ZERO);
    for i in 1..=args.incidents {
        let t = Instant::now();
        send(webhook(1_000_000 + i, true)).await;
        ingest += t.elapsed();
        let t = Instant::now();
        firewatch_domain::dispatch::drain(&services).await.unwrap();
        dispatch += t.elapsed();
    }
    let fresh = counted(&before, args.incidents, ingest, dispatch);

    println!("# firewatch cost per alert (counted against DynamoDB Local; list prices, us-east-1)");
    let a = report("Deduplicated (a repeat of a firing alert)", &dedup);
    let b = report("New incident, with its Slack card", &fresh);
    // A tenant at 10 alerts per second, all month.
    let month = 10.0 * 86_400.0 * 30.0 / 1e6;
    println!(
        "\nA tenant at 10 alerts/s (25.9 million a month): ${:.2} a month if all deduplicate, ${:.2} with 1% new incidents, ${:.2} if every one is new",
        month * a,
        month * (0.99 * a + 0.01 * b),
        month * b
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use firewatch_domain::ports::{Condition, Item, Query, Store, WriteOp};

    /// The counter against a scenario counted by hand, on DynamoDB Local
    /// (which the test command starts).
    #[tokio::test]
    async fn the_counter_matches_a_scenario_counted_by_hand() {
        let endpoint = std::env::var("FIREWATCH_TEST_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
            panic!("FIREWATCH_TEST_DYNAMODB_ENDPOINT is not set: run `bash tests/run.sh`, which starts DynamoDB Local")
        });
        let (proxy, url) = start_proxy(&endpoint).await;
        let sdk =
            firewatch_aws::static_sdk_config("us-east-1", "AKIAFIREWATCHCOST", "secret").await;
        let client = firewatch_aws::dynamo_client(&sdk, Some(&url));
        let table = format!("cost-test-{}", ulid::Ulid::new().to_string().to_lowercase());
        firewatch_aws::ensure_table(&client, &table).await.unwrap();
        let before = proxy.tally.lock().unwrap().clone();
        let store = firewatch_aws::DynamoStore::new(client, table);
        let item = |sk: &str, bytes: usize| Item {
            pk: "t#X".into(),
            sk: sk.into(),
            version: 1,
            expires_at: None,
            data: "x".repeat(bytes),
            kind: None,
        };
        // About 1.5 KB: 2 write units.
        store
            .put(item("big", 1500), Condition::Absent)
            .await
            .unwrap();
        // Two items under 1 KB in a transaction: 1 unit each, doubled: 4.
        store
            .transact(vec![
                WriteOp::Put {
                    item: item("a", 100),
                    condition: Condition::Absent,
                },
                WriteOp::Put {
                    item: item("b", 100),
                    condition: Condition::Absent,
                },
            ])
            .await
            .unwrap();
        // Refused by its condition, and billed: 1.
        assert!(store.put(item("big", 10), Condition::Absent).await.is_err());
        // A strongly consistent read of 1.5 KB: 1 read unit (4 KB each).
        store.get("t#X", "big").await.unwrap().unwrap();
        // The partition, 1.7 KB in all, strongly consistent: 1.
        let page = store.query(Query::all("t#X", 10)).await.unwrap();
        assert_eq!(page.items.len(), 3);
        let t = proxy.tally.lock().unwrap().minus(&before);
        assert_eq!(t.write_units, 7.0, "2 + 4 + 1");
        assert_eq!(t.read_units, 2.0, "1 + 1");
        assert_eq!(t.stream_writes, 3, "the put and the transaction's two");
        assert_eq!(t.requests["PutItem"], 2);
        assert_eq!(t.requests["TransactWriteItems"], 1);
        assert_eq!(t.requests["GetItem"], 1);
        assert_eq!(t.requests["Query"], 1);
    }
}
