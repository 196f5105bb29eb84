//! firewatch benchmarks (driven by bench/run.sh; see docs/BENCHMARKS.md).

mod chat_latency;
mod cold_start;
mod cost;
mod ingest;
mod lineage;
mod load;
mod pings;
mod summary;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Alerts per second and latency against a running `firewatch dev`.
    Ingest(ingest::Args),
    /// Cold start of Lambda bootstraps under a local Lambda Runtime API.
    ColdStart(cold_start::Args),
    /// Ingest accepted to root card at a (fake) Slack, in `firewatch dev`.
    ChatLatency(chat_latency::Args),
    /// Heartbeat pings per second and latency against a running `firewatch dev`.
    Pings(pings::Args),
    /// OpenLineage run events per second and latency against a running `firewatch dev`.
    Lineage(lineage::Args),
    /// What one alert costs on AWS: requests counted against DynamoDB
    /// Local and a local S3 server, priced at list prices.
    Cost(cost::Args),
    /// Pipelines summary, SLA counts, costs and list latency over a seeded
    /// embedded store (10,000 pipelines, 1,000,000 runs by default).
    PipelinesSummary(summary::Args),
}

#[tokio::main]
async fn main() {
    match Cli::parse().command {
        Command::Ingest(a) => ingest::run(a).await,
        Command::ColdStart(a) => cold_start::run(a).await,
        Command::Cost(a) => cost::run(a).await,
        Command::ChatLatency(a) => chat_latency::run(a).await,
        Command::Pings(a) => pings::run(a).await,
        Command::Lineage(a) => lineage::run(a).await,
        Command::PipelinesSummary(a) => summary::run(a).await,
    }
}
