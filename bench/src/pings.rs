//! `pings`: heartbeat pings per second against a running `firewatch dev`.
//!
//! Creates `--heartbeats` heartbeats through the API, then sends `--pings`
//! success pings (`POST /ping/{uuid}` with a short body, as a cron wrapper
//! sends its output) round-robin over them from `--clients` concurrent
//! clients. Every ping is written: the heartbeat's new state, its due-index
//! entry and the ping's record, in one transaction.

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, env = "FIREWATCH_TOKEN")]
    token: String,
    #[arg(long, default_value_t = 50_000)]
    pings: usize,
    /// Enough that no check passes the 120 pings a minute each may take.
    #[arg(long, default_value_t = 500)]
    heartbeats: usize,
    #[arg(long, default_value_t = 8)]
    clients: usize,
}

pub async fn run(args: Args) {
    let base = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()
        .unwrap();
    let mut paths = Vec::with_capacity(args.heartbeats);
    for i in 0..args.heartbeats {
        let res = http
            .post(format!("{base}/v1/heartbeats"))
            .bearer_auth(&args.token)
            .json(&serde_json::json!({"name": format!("bench-{i}"), "period": "1h", "grace": "5m"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201, "creating a heartbeat");
        let v: serde_json::Value = res.json().await.unwrap();
        paths.push(format!("{base}{}", v["ping_path"].as_str().unwrap()));
    }
    let (lat, failed, elapsed) = crate::load::drive(args.clients, args.pings, 200, move |i| {
        http.post(&paths[i % paths.len()])
            .body("backup finished: 1204 files, 3.1 GB")
    })
    .await;
    println!(
        "pings: {} ok, {failed} failed, over {} heartbeats from {} clients in {:.2}s",
        lat.len(),
        args.heartbeats,
        args.clients,
        elapsed.as_secs_f64()
    );
    println!(
        "throughput: {:.0} pings/s",
        lat.len() as f64 / elapsed.as_secs_f64()
    );
    crate::load::print_latency(&lat);
    if failed > 0 {
        std::process::exit(1);
    }
}
