//! `ingest`: posts Alertmanager webhooks to a running firewatch as fast as `--clients`
//! concurrent clients can, and prints throughput and latency percentiles.
//!
//! The alerts cycle over `--fingerprints` fingerprints, each round with a new
//! start time, so after the first round every alert is deduplicated into an
//! existing incident as a new occurrence: the steady state of a noisy system.

use serde_json::json;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, env = "FIREWATCH_TOKEN")]
    token: String,
    /// Alerts to send in all.
    #[arg(long, default_value_t = 100_000)]
    alerts: usize,
    /// Distinct fingerprints (incidents) they fold into.
    #[arg(long, default_value_t = 1_000)]
    fingerprints: usize,
    /// Alerts per webhook (Alertmanager groups alerts).
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// `repeat`: after the first round every alert is a repeat notification
    /// of the same firing (deduplicated, nothing to write). `occurrences`:
    /// every round starts anew, so every alert is a new occurrence written
    /// to its incident (the worst case).
    #[arg(long, default_value = "repeat")]
    mode: String,
}

fn webhook(first: usize, batch: usize, fingerprints: usize, new_rounds: bool) -> serde_json::Value {
    let alerts: Vec<_> = (first..first + batch)
        .map(|i| {
            let fp = i % fingerprints;
            let round = if new_rounds { i / fingerprints } else { 0 };
            json!({
                "status": "firing",
                "labels": {"alertname": "BenchAlert", "instance": format!("host-{fp}"), "severity": "warning"},
                "annotations": {"summary": format!("bench alert {fp}")},
                "startsAt": format!("2026-01-01T{:02}:{:02}:{:02}Z", (round / 3600) % 24, (round / 60) % 60, round % 60),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": format!("bench{fp:06}")
            })
        })
        .collect();
    json!({"version": "4", "status": "firing", "receiver": "bench", "groupKey": format!("bench-{first}"),
           "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am.example", "alerts": alerts})
}

pub async fn run(args: Args) {
    let requests = args.alerts / args.batch;
    let new_rounds = match args.mode.as_str() {
        "repeat" => false,
        "occurrences" => true,
        other => panic!("--mode must be repeat or occurrences, not {other}"),
    };
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..requests)
            .map(|r| {
                serde_json::to_vec(&webhook(
                    r * args.batch,
                    args.batch,
                    args.fingerprints,
                    new_rounds,
                ))
                .unwrap()
            })
            .collect(),
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()
        .unwrap();
    let url = format!("{}/v1/alerts/alertmanager", args.url.trim_end_matches('/'));
    let token = args.token.clone();
    let (lat, failed, elapsed) = crate::load::drive(args.clients, bodies.len(), 202, move |i| {
        http.post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(bodies[i].clone())
    })
    .await;
    let ok_alerts = lat.len() * args.batch;
    println!(
        "mode {}: {} requests ok, {failed} failed; {} alerts per request; {} clients",
        args.mode,
        lat.len(),
        args.batch,
        args.clients
    );
    println!(
        "alerts: {ok_alerts} over {} fingerprints in {:.2}s",
        args.fingerprints,
        elapsed.as_secs_f64()
    );
    println!(
        "throughput: {:.0} alerts/s ({:.0} requests/s)",
        ok_alerts as f64 / elapsed.as_secs_f64(),
        lat.len() as f64 / elapsed.as_secs_f64()
    );
    crate::load::print_latency(&lat);
    if failed > 0 {
        std::process::exit(1);
    }
}
