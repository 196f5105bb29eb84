//! `pipelines-summary`: how long the pipelines reads that cover a whole
//! tenant take with many pipelines and runs, on the embedded store
//! `firewatch dev` uses.
//!
//! Seeds `--dir` (when it holds no seed yet) through the one write path of
//! run events (`pipelines::record::record`, plain run reports): `--pipelines`
//! pipelines with `--runs-per-pipeline` finished runs each over the last 7
//! days, with cost, durations, a chained lineage (pipeline `n` reads what
//! `n-1` writes), an SLA on every tenth pipeline and a failure every 500th
//! run (so some pipelines end failing and the summary walks their impact).
//! Then times, `--reads` times each: `GET /v1/summary`, `GET
//! /v1/sla/pipelines`, `GET /v1/costs` and the first page of `GET
//! /v1/pipelines`, in process (no HTTP).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use firewatch_domain::pipelines::{self, costs, openlineage, read, record, sla};
use firewatch_domain::Services;
use firewatch_types::{Principal, Role, TenantId};

#[derive(clap::Args)]
pub struct Args {
    /// The data directory: seeded when it holds no seed, reused otherwise.
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    pipelines: usize,
    #[arg(long, default_value_t = 100)]
    runs_per_pipeline: usize,
    /// Concurrent writers while seeding.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Timed calls of each read.
    #[arg(long, default_value_t = 20)]
    reads: usize,
}

fn principal(role: Role) -> Principal {
    Principal {
        tenant: TenantId::default_tenant(),
        name: "bench".into(),
        role,
    }
}

async fn seed(svc: &Services, args: &Args) {
    let admin = principal(Role::Admin);
    for n in (0..args.pipelines).step_by(10) {
        let config = pipelines::Config {
            team: Some(format!("team-{}", n % 7)),
            sla: Some(pipelines::Sla {
                max_interval: Some("6h".into()),
                freshness: Some("1d".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        pipelines::configure(svc, &admin, &format!("bench/job.{n}"), config)
            .await
            .expect("configure");
    }
    let total = args.pipelines * args.runs_per_pipeline;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let now = Utc::now();
    let span_ms = Duration::from_secs(7 * 24 * 3600).as_millis() as i64;
    let mut tasks = Vec::new();
    for _ in 0..args.writers {
        let (svc, next) = (svc.clone(), next.clone());
        let (pipelines, runs) = (args.pipelines, args.runs_per_pipeline);
        tasks.push(tokio::spawn(async move {
            let responder = principal(Role::Responder);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let (n, k) = (i % pipelines, i / pipelines);
                let end = now - chrono::Duration::milliseconds(span_ms)
                    + chrono::Duration::milliseconds(span_ms * (k as i64 + 1) / runs as i64)
                    - chrono::Duration::seconds(n as i64 % 600 + 1);
                let failed = i % 500 == 499;
                let body = serde_json::json!({
                    "pipeline": format!("bench/job.{n}"),
                    "run_id": format!("run-{n}-{k}"),
                    "status": if failed { "failed" } else { "succeeded" },
                    "started_at": end - chrono::Duration::minutes(12),
                    "ended_at": end,
                    "cost": 0.25 + (n % 10) as f64 * 0.1,
                    "error": if failed { Some("OutOfMemoryError: Java heap space") } else { None },
                    "inputs": if n > 0 { vec![format!("warehouse/t{}", n - 1)] } else { vec![] },
                    "outputs": [format!("warehouse/t{n}")],
                });
                let raw = serde_json::to_vec(&body).unwrap();
                let report: openlineage::PlainRun = serde_json::from_slice(&raw).unwrap();
                let ev = openlineage::plain(report).expect("a valid report");
                record::record(&svc, &responder, ev, &raw)
                    .await
                    .expect("recorded");
                if (i + 1) % 100_000 == 0 {
                    println!(
                        "  seeded {} runs in {:.0}s",
                        i + 1,
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "seeded {} pipelines, {total} runs in {:.0}s ({:.0} runs/s)",
        args.pipelines,
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64()
    );
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} calls)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
}

pub async fn run(args: Args) {
    let marker = args.dir.join("seeded");
    let svc = firewatch_local::services(&args.dir).expect("the data directory opens");
    match std::fs::read_to_string(&marker) {
        Ok(m) => println!("reusing the seed in {}: {}", args.dir.display(), m.trim()),
        Err(_) => {
            seed(&svc, &args).await;
            std::fs::write(
                &marker,
                format!(
                    "{} pipelines, {} runs\n",
                    args.pipelines,
                    args.pipelines * args.runs_per_pipeline
                ),
            )
            .unwrap();
        }
    }
    let viewer = principal(Role::Viewer);
    let mut times = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let mut last = None;
    for _ in 0..args.reads {
        let t = Instant::now();
        let s = read::summary(&svc, &viewer).await.expect("summary");
        times[0].push(t.elapsed());
        let t = Instant::now();
        let c = sla::counts(&svc, &viewer).await.expect("sla counts");
        times[1].push(t.elapsed());
        let t = Instant::now();
        costs::tenant(&svc, &viewer).await.expect("costs");
        times[2].push(t.elapsed());
        let t = Instant::now();
        read::list(&svc, &viewer, &Default::default(), None, 50)
            .await
            .expect("list");
        times[3].push(t.elapsed());
        last = Some((s, c));
    }
    if let Some((s, c)) = last {
        println!(
            "summary of {} pipelines: {} failing, {} runs in 24h, {} SLA breaches, degraded {}",
            s.pipelines,
            s.by_state.get("failed").copied().unwrap_or(0),
            s.runs_24h,
            c.breaches(),
            s.degraded
        );
    }
    let [a, b, c, d] = times;
    report("GET /v1/summary", a);
    report("GET /v1/sla/pipelines", b);
    report("GET /v1/costs", c);
    report("GET /v1/pipelines (first 50)", d);
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(hwm) = status.lines().find(|l| l.starts_with("VmHWM")) {
            println!(
                "peak memory (seeding and reads): {}",
                hwm.trim_start_matches("VmHWM:").trim()
            );
        }
    }
}
