//! The load generator the throughput benchmarks share: `clients` concurrent
//! workers take request numbers `0..total` in turn and time each answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sends requests `0..total` from `clients` workers; `send(i)` makes
/// request `i`, `ok` is the status that counts as success. Returns the
/// sorted latencies of the successes, the number of failures and the wall
/// time.
pub async fn drive<F>(
    clients: usize,
    total: usize,
    ok: u16,
    send: F,
) -> (Vec<Duration>, usize, Duration)
where
    F: Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let send = Arc::new(send);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (send, next) = (send.clone(), next.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut failed = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return (lat, failed);
                    }
                    let t = Instant::now();
                    match send(i).send().await {
                        Ok(r) if r.status().as_u16() == ok => {
                            let _ = r.bytes().await;
                            lat.push(t.elapsed());
                        }
                        Ok(r) => {
                            failed += 1;
                            if failed < 3 {
                                eprintln!(
                                    "status {}: {}",
                                    r.status(),
                                    r.text().await.unwrap_or_default()
                                );
                            }
                        }
                        Err(e) => {
                            failed += 1;
                            if failed < 3 {
                                eprintln!("error: {e}");
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut failed = 0;
    for w in workers {
        let (l, f) = w.await.expect("a worker panicked");
        lat.extend(l);
        failed += f;
    }
    let elapsed = start.elapsed();
    lat.sort();
    (lat, failed, elapsed)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Prints the latency percentiles of a sorted sample.
pub fn print_latency(lat: &[Duration]) {
    if let Some(max) = lat.last() {
        println!(
            "request latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            pct(lat, 0.50).as_secs_f64() * 1e3,
            pct(lat, 0.99).as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
}
