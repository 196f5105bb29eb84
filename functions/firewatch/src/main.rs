//! The `firewatch` command line.
//!
//! `firewatch dev` runs every router on one local port over the embedded
//! store; the other commands talk to any running firewatch over HTTP.

mod client;
mod demo;
mod dev;
mod ops;
mod sample;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "firewatch",
    version,
    about = "firewatch: alerts in, incidents out, responders in chat"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
pub struct Remote {
    /// Base URL of a running firewatch.
    #[arg(
        long,
        global = true,
        env = "FIREWATCH_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// API key (the dev key is printed by `firewatch dev` and kept in its data dir).
    #[arg(long, global = true, env = "FIREWATCH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Data dir to read the dev key from when no --token is given (the
    /// `--data-dir` of `firewatch dev`).
    #[arg(long, global = true, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Print the API's answer as JSON instead of text (to read with jq or a
    /// script).
    #[arg(long, global = true)]
    pub json: bool,
}

/// Where `firewatch dev` keeps its data, and where the client commands look
/// for its key, unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = ".firewatch";

#[derive(Subcommand)]
enum Command {
    /// Run everything locally on one port over the embedded store.
    Dev(dev::DevArgs),
    /// Post a realistic Alertmanager webhook to a running firewatch.
    SendTestAlert {
        #[command(flatten)]
        remote: Remote,
        /// Send the resolved variant instead of the firing one.
        #[arg(long)]
        resolve: bool,
    },
    /// List, show and act on incidents.
    Incidents {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: client::IncidentsCommand,
    },
    /// List playbooks; dry-run, approve, run, roll back and show runs.
    Playbooks {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: client::PlaybooksCommand,
    },
    /// Heartbeats: list, show, create, pause, resume and delete.
    Heartbeats {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: ops::HeartbeatsCommand,
    },
    /// Smoke checks: list, show, run now, runs, create and delete.
    SmokeChecks {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: ops::SmokeCommand,
    },
    /// Silences: list, show, create and expire.
    Silences {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: ops::SilencesCommand,
    },
    /// Pipelines: summary, list, show, runs, downstream impact, a run's triage.
    Pipelines {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: ops::PipelinesCommand,
    },
    /// Chat deliveries that failed for good: list and retry.
    DeadLetters {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: ops::DeadLettersCommand,
    },
    /// On-call schedules: list, set, delete, who is on call, overrides.
    Oncall {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: ops::OncallCommand,
    },
    /// Escalation policies: list, show, set and delete.
    Escalation {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: ops::EscalationCommand,
    },
    /// List, create, revoke and rotate the tenant's API keys (admin).
    Keys {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: client::KeysCommand,
    },
    /// Create an API key in a local data dir (the server need not run).
    CreateKey {
        /// viewer, responder, approver or admin.
        #[arg(long)]
        role: String,
        /// A name that audit events and timelines will show.
        #[arg(long)]
        name: String,
        /// The tenant the key belongs to.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// The data dir of `firewatch dev` to create it in.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Create the key in the DynamoDB table of a deployed stack
        /// (FIREWATCH_TABLE, FIREWATCH_BUCKET, AWS credentials and region
        /// from the environment) instead of a local data dir.
        #[cfg(feature = "aws")]
        #[arg(long)]
        aws: bool,
    },
}

/// `firewatch dev` allocates and frees small buffers on every alert from many
/// threads at once, which mimalloc serves with less contention and CPU than
/// the system allocator (see docs/BENCHMARKS.md). The Lambda functions keep
/// the system allocator: one request at a time, and a smaller artifact.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::SendTestAlert { remote, resolve } => {
            client::send_test_alert(&remote, resolve).await
        }
        Command::Incidents { remote, command } => client::incidents(&remote, command).await,
        Command::Keys { remote, command } => client::keys(&remote, command).await,
        Command::Heartbeats { remote, command } => ops::heartbeats(&remote, command).await,
        Command::SmokeChecks { remote, command } => ops::smoke(&remote, command).await,
        Command::Silences { remote, command } => ops::silences(&remote, command).await,
        Command::Pipelines { remote, command } => ops::pipelines(&remote, command).await,
        Command::DeadLetters { remote, command } => ops::dead_letters(&remote, command).await,
        Command::Oncall { remote, command } => ops::oncall(&remote, command).await,
        Command::Escalation { remote, command } => ops::escalation(&remote, command).await,
        Command::Playbooks { remote, command } => client::playbooks(&remote, command).await,
        Command::CreateKey {
            role,
            name,
            tenant,
            data_dir,
            #[cfg(feature = "aws")]
            aws,
        } => {
            #[cfg(feature = "aws")]
            let target = if aws {
                dev::KeyStore::Aws
            } else {
                dev::KeyStore::Local(data_dir)
            };
            #[cfg(not(feature = "aws"))]
            let target = dev::KeyStore::Local(data_dir);
            dev::create_key(target, &tenant, &name, &role).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command and every argument of every command says what it is
    /// (`firewatch help ...` never shows a blank).
    #[test]
    fn every_command_and_argument_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, blank: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    blank.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let here = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    blank.push(here.clone());
                }
                walk(sub, &here, blank);
            }
        }
        let mut blank = Vec::new();
        walk(&Cli::command(), "firewatch", &mut blank);
        assert!(blank.is_empty(), "without help text: {blank:#?}");
    }
}
