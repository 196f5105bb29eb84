//! `lineage`: OpenLineage run events per second against a running
//! `firewatch dev`.
//!
//! Sends `--events` events to `POST /api/v1/lineage` from `--clients`
//! concurrent clients, as the OpenLineage clients send them: each run is a
//! START then a COMPLETE (with a cost facet), runs spread round-robin over
//! `--pipelines` pipelines with one input and one output dataset each. A
//! START writes the event, the run, the pipeline and its history entry; a
//! COMPLETE also moves the pipeline's day and the tenant's hour totals (one
//! item every run of the tenant shares: the worst case for contention).

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, env = "FIREWATCH_TOKEN")]
    token: String,
    #[arg(long, default_value_t = 40_000)]
    events: usize,
    #[arg(long, default_value_t = 200)]
    pipelines: usize,
    #[arg(long, default_value_t = 8)]
    clients: usize,
}

pub async fn run(args: Args) {
    let url = format!("{}/api/v1/lineage", args.url.trim_end_matches('/'));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()
        .unwrap();
    let pipelines = args.pipelines;
    let token = args.token.clone();
    let start = chrono::Utc::now() - chrono::Duration::hours(1);
    let (lat, failed, elapsed) = crate::load::drive(args.clients, args.events, 201, move |i| {
        let run = i / 2;
        let job = run % pipelines;
        let complete = i % 2 == 1;
        let at = start + chrono::Duration::milliseconds(i as i64);
        let mut run_facets = serde_json::json!({});
        if complete {
            run_facets["firewatch_cost"] = serde_json::json!({"_producer": "bench", "_schemaURL": "https://example.com/cost.json", "amount": 0.25, "currency": "USD"});
        }
        let body = serde_json::json!({
            "eventType": if complete { "COMPLETE" } else { "START" },
            "eventTime": at.to_rfc3339(),
            "run": {"runId": format!("01934b6e-0000-7000-8000-{run:012}"), "facets": run_facets},
            "job": {"namespace": "bench", "name": format!("job.{job}"), "facets": {}},
            "inputs": [{"namespace": "warehouse", "name": format!("raw.t{job}")}],
            "outputs": [{"namespace": "warehouse", "name": format!("mart.t{job}")}],
            "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
        });
        http.post(&url).bearer_auth(&token).json(&body)
    })
    .await;
    println!(
        "events: {} ok, {failed} failed, over {} pipelines from {} clients in {:.2}s",
        lat.len(),
        args.pipelines,
        args.clients,
        elapsed.as_secs_f64()
    );
    println!(
        "throughput: {:.0} events/s",
        lat.len() as f64 / elapsed.as_secs_f64()
    );
    crate::load::print_latency(&lat);
    if failed > 0 {
        std::process::exit(1);
    }
}
