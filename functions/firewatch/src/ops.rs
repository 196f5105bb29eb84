//! Client commands for the API families beyond incidents and playbooks:
//! heartbeats, smoke checks, silences, pipelines, dead letters, on-call
//! schedules and escalation policies. Each reads or changes one family over
//! the REST API; lists print as tables with headers, everything prints as
//! the API's JSON with `--json`.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::{table, Api};
use crate::Remote;

/// A value as a table cell: strings as they are, `-` for nothing, lists
/// joined, objects as `key=value` pairs, times to the minute.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => match s.parse::<DateTime<Utc>>() {
            Ok(t) => t.format("%Y-%m-%d %H:%M").to_string(),
            Err(_) => s.clone(),
        },
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(o) if o.is_empty() => "-".into(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}={}", cell(v)))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The cell at a JSON pointer of `v` (`-` when absent).
pub fn at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer).map(cell).unwrap_or_else(|| "-".into())
}

/// A path segment with everything but unreserved characters
/// percent-encoded (a pipeline id's `/` included).
fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%2D", "-")
        .replace("%5F", "_")
        .replace("%2E", ".")
}

/// The items of a list answer (`{"items": [...]}` or a bare array).
fn items(v: &Value) -> Vec<Value> {
    v.get("items")
        .unwrap_or(v)
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Prints a list answer: a table of `row` per item under `header`, or
/// `none` when empty, or the JSON with `--json`.
fn print_list(api: &Api, v: &Value, header: &[&str], row: fn(&Value) -> Vec<String>, none: &str) {
    api.emit(v, |v| {
        let rows: Vec<Vec<String>> = items(v).iter().map(row).collect();
        if rows.is_empty() {
            return format!("{none}\n");
        }
        let mut out = table(header, &rows);
        if let Some(next) = v.get("next_cursor").and_then(Value::as_str) {
            out.push_str(&format!("(more: the same command with --cursor {next})\n"));
        }
        out
    });
}

/// Prints `fields` of one record as `name: value` lines (or the JSON).
fn print_fields(api: &Api, v: &Value, fields: &[(&str, &str)]) {
    api.emit(v, |v| {
        let mut out = String::new();
        for (name, pointer) in fields {
            out.push_str(&format!("{name}: {}\n", at(v, pointer)));
        }
        out
    });
}

/// The query of a list's page: the most a page holds, from `cursor`.
fn page(cursor: Option<String>) -> Vec<(&'static str, String)> {
    limited(200, cursor)
}

/// The query of a page of `limit` items, from `cursor`.
fn limited(limit: usize, cursor: Option<String>) -> Vec<(&'static str, String)> {
    let mut q = vec![("limit", limit.to_string())];
    if let Some(c) = cursor {
        q.push(("cursor", c));
    }
    q
}

/// A duration such as `30m`, `2h` or `1d` from now.
fn from_now(d: &str) -> Result<DateTime<Utc>, String> {
    let secs = firewatch_domain::units::duration_secs(d)?;
    Ok(Utc::now() + chrono::Duration::seconds(secs as i64))
}

#[derive(Subcommand)]
pub enum HeartbeatsCommand {
    /// List heartbeats: state, schedule, last ping, next deadline.
    List {
        /// Where the previous page ended (the `--cursor` it printed).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show a heartbeat and its last pings.
    Show {
        /// The heartbeat's id (`hb_...`).
        id: String,
    },
    /// Create a heartbeat (admin); its ping URL is printed.
    Create {
        /// The job it watches, as alerts and cards will name it.
        #[arg(long)]
        name: String,
        /// Pings expected this often: 5m, 1h, 1d.
        #[arg(long, required_unless_present = "cron", conflicts_with = "cron")]
        period: Option<String>,
        /// Pings expected on this cron schedule: "0 3 * * *".
        #[arg(long)]
        cron: Option<String>,
        /// The cron schedule's IANA time zone (UTC when not given).
        #[arg(long, requires = "cron")]
        tz: Option<String>,
        /// How late a ping may be before it alerts (default 1m).
        #[arg(long)]
        grace: Option<String>,
        /// The alert's severity, sev1 to sev4 (default sev2).
        #[arg(long)]
        severity: Option<String>,
    },
    /// Stop checking a heartbeat (admin); a raised alert resolves.
    Pause {
        /// The heartbeat's id (`hb_...`).
        id: String,
    },
    /// Check a paused heartbeat again from its next ping (admin).
    Resume {
        /// The heartbeat's id (`hb_...`).
        id: String,
    },
    /// Delete a heartbeat (admin); its ping URL stops working at once.
    Delete {
        /// The heartbeat's id (`hb_...`).
        id: String,
    },
}

fn heartbeat_row(h: &Value) -> Vec<String> {
    let schedule = match h.get("cron").and_then(Value::as_str) {
        Some(c) => format!("cron {c} {}", at(h, "/tz"))
            .trim_end_matches(" -")
            .to_owned(),
        None => format!("every {}", at(h, "/period")),
    };
    vec![
        at(h, "/id"),
        at(h, "/name"),
        at(h, "/state"),
        schedule,
        at(h, "/last_ping/at"),
        at(h, "/next_deadline"),
    ]
}

const HEARTBEAT_HEADER: [&str; 6] = ["ID", "NAME", "STATE", "SCHEDULE", "LAST PING", "DEADLINE"];

pub async fn heartbeats(remote: &Remote, cmd: HeartbeatsCommand) -> Result<(), String> {
    let api = Api::new(remote)?;
    match cmd {
        HeartbeatsCommand::List { cursor } => {
            let v: Value = api.get("/v1/heartbeats", &page(cursor)).await?;
            print_list(&api, &v, &HEARTBEAT_HEADER, heartbeat_row, "no heartbeats");
        }
        HeartbeatsCommand::Show { id } => {
            let h: Value = api
                .get(&format!("/v1/heartbeats/{}", seg(&id)), &[])
                .await?;
            api.emit(&h, |h| {
                let mut out = table(&HEARTBEAT_HEADER, &[heartbeat_row(h)]);
                out.push_str(&format!("ping URL: {}\n", at(h, "/ping_url")));
                let pings: Vec<Vec<String>> = h["pings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| vec![at(p, "/at"), at(p, "/kind"), at(p, "/exit_status")])
                    .collect();
                if pings.is_empty() {
                    out.push_str("no pings yet\n");
                } else {
                    out.push_str(&table(&["PINGED", "KIND", "EXIT"], &pings));
                }
                out
            });
        }
        HeartbeatsCommand::Create {
            name,
            period,
            cron,
            tz,
            grace,
            severity,
        } => {
            let mut body = json!({ "name": name });
            for (k, v) in [
                ("period", period),
                ("cron", cron),
                ("tz", tz),
                ("grace", grace),
                ("severity", severity),
            ] {
                if let Some(v) = v {
                    body[k] = Value::String(v);
                }
            }
            let h: Value = api.post("/v1/heartbeats", &body).await?;
            api.emit(&h, |h| {
                format!(
                    "{} created; ping it from the job: curl -fsS {}\n",
                    at(h, "/id"),
                    at(h, "/ping_url")
                )
            });
        }
        HeartbeatsCommand::Pause { id } => pause_or_resume(&api, &id, "pause").await?,
        HeartbeatsCommand::Resume { id } => pause_or_resume(&api, &id, "resume").await?,
        HeartbeatsCommand::Delete { id } => {
            api.delete(&format!("/v1/heartbeats/{}", seg(&id))).await?;
            api.emit(&json!({ "deleted": id }), |_| format!("{id} deleted\n"));
        }
    }
    Ok(())
}

async fn pause_or_resume(api: &Api, id: &str, verb: &str) -> Result<(), String> {
    let h: Value = api
        .post(&format!("/v1/heartbeats/{}/{verb}", seg(id)), &json!({}))
        .await?;
    api.emit(&h, |h| {
        format!("{} is now {}\n", at(h, "/id"), at(h, "/state"))
    });
    Ok(())
}

#[derive(Subcommand)]
pub enum SmokeCommand {
    /// List smoke checks: where each is defined, its state and target.
    List {
        /// Where the previous page ended (the `--cursor` it printed).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show a smoke check: its definition, state, last run and next run.
    Show {
        /// The check's id (`smk_...`, or a file check's name).
        id: String,
    },
    /// Run a check now (responder) and print the run; exits non-zero when
    /// the check fails.
    Run {
        /// The check's id.
        id: String,
    },
    /// A check's runs, newest first (kept 14 days).
    Runs {
        /// The check's id.
        id: String,
        /// How many (1 to 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Where the previous page ended (the `--cursor` it printed).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Create a check (admin) from a JSON file of its definition
    /// (docs/SCHEDULES.md); `-` reads standard input.
    Create {
        /// The definition's file.
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Delete a check made through the API (admin).
    Delete {
        /// The check's id.
        id: String,
    },
}

fn run_row(r: &Value) -> Vec<String> {
    vec![
        at(r, "/at"),
        if r["ok"] == true { "passed" } else { "FAILED" }.into(),
        format!("{} ms", at(r, "/latency_ms")),
        at(r, "/failure/message"),
    ]
}

const RUN_HEADER: [&str; 4] = ["AT", "RESULT", "LATENCY", "FAILURE"];

/// A file's text, or standard input's for `-`.
fn read_input(path: &std::path::Path) -> Result<String, String> {
    if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// PUTs the JSON definition in `file` at `path` and says what it saved.
async fn put_from_file(api: &Api, path: &str, file: &std::path::Path) -> Result<(), String> {
    let text = read_input(file)?;
    let body: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
    let saved = api.call(Method::PUT, path, Some(&body)).await?;
    api.emit(&saved, |v| {
        format!("{} saved (version {})\n", at(v, "/id"), at(v, "/version"))
    });
    Ok(())
}

pub async fn smoke(remote: &Remote, cmd: SmokeCommand) -> Result<(), String> {
    let api = Api::new(remote)?;
    match cmd {
        SmokeCommand::List { cursor } => {
            let v: Value = api.get("/v1/smoke-checks", &page(cursor)).await?;
            print_list(
                &api,
                &v,
                &["ID", "NAME", "ORIGIN", "STATE", "EVERY", "TARGET"],
                |c| {
                    vec![
                        at(c, "/id"),
                        at(c, "/name"),
                        at(c, "/origin"),
                        at(c, "/state"),
                        at(c, "/interval"),
                        format!("{} {}", at(c, "/method"), at(c, "/url")),
                    ]
                },
                "no smoke checks",
            );
        }
        SmokeCommand::Show { id } => {
            let c: Value = api
                .get(&format!("/v1/smoke-checks/{}", seg(&id)), &[])
                .await?;
            print_fields(
                &api,
                &c,
                &[
                    ("id", "/id"),
                    ("name", "/name"),
                    ("origin", "/origin"),
                    ("state", "/state"),
                    ("request", "/method"),
                    ("url", "/url"),
                    ("every", "/interval"),
                    ("expected status", "/expected_status"),
                    ("severity", "/severity"),
                    ("last run", "/last_run/at"),
                    ("last failure", "/last_run/failure/message"),
                    ("next run", "/next_run_at"),
                ],
            );
        }
        SmokeCommand::Run { id } => {
            let r: Value = api
                .post(&format!("/v1/smoke-checks/{}/run", seg(&id)), &json!({}))
                .await?;
            api.emit(&r, |r| table(&RUN_HEADER, &[run_row(r)]));
            if r["ok"] != true {
                return Err(format!("smoke check {id} failed"));
            }
        }
        SmokeCommand::Runs { id, limit, cursor } => {
            let v: Value = api
                .get(
                    &format!("/v1/smoke-checks/{}/runs", seg(&id)),
                    &limited(limit, cursor),
                )
                .await?;
            print_list(&api, &v, &RUN_HEADER, run_row, "no runs yet");
        }
        SmokeCommand::Create { file } => {
            let text = read_input(&file)?;
            let body: Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
            let c: Value = api.post("/v1/smoke-checks", &body).await?;
            api.emit(&c, |c| {
                format!(
                    "{} created; first run {}\n",
                    at(c, "/id"),
                    at(c, "/next_run_at")
                )
            });
        }
        SmokeCommand::Delete { id } => {
            api.delete(&format!("/v1/smoke-checks/{}", seg(&id)))
                .await?;
            api.emit(&json!({ "deleted": id }), |_| format!("{id} deleted\n"));
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum SilencesCommand {
    /// List silences: active first, then pending, then expired.
    List {
        /// Only these states, comma-separated: active, pending, expired.
        #[arg(long)]
        state: Option<String>,
        /// Only silences having a matcher like this one (`team=db`).
        #[arg(long)]
        filter: Option<String>,
        /// Only stale silences (active, yet matching nothing that fires).
        #[arg(long)]
        stale: bool,
        /// Where the previous page ended (the `--cursor` it printed).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one silence.
    Show {
        /// The silence's id.
        id: String,
    },
    /// Silence the alerts matching every matcher (responder): `alertname=DiskFull`,
    /// `team!=db`, `env=~"prod|stage"`, `pod!~"canary-.*"`.
    Create {
        /// Label matchers, all of which an alert must match.
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long from now: 30m, 2h, 1d.
        #[arg(long = "for", value_name = "DURATION", default_value = "1h")]
        for_: String,
        /// Why, for whoever finds it later.
        #[arg(long)]
        comment: String,
    },
    /// End a silence now (responder): its held alerts that still fire open
    /// their incidents at once.
    Expire {
        /// The silence's id.
        id: String,
    },
}

fn matchers(s: &Value) -> String {
    s["matchers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let op = match (m["isEqual"] != false, m["isRegex"] == true) {
                (true, false) => "=",
                (false, false) => "!=",
                (true, true) => "=~",
                (false, true) => "!~",
            };
            format!("{}{op}{}", at(m, "/name"), at(m, "/value"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn silence_row(s: &Value) -> Vec<String> {
    vec![
        at(s, "/id"),
        at(s, "/state"),
        at(s, "/ends_at"),
        matchers(s),
        at(s, "/silenced_notifications"),
        at(s, "/created_by"),
        at(s, "/comment"),
    ]
}

const SILENCE_HEADER: [&str; 7] = ["ID", "STATE", "ENDS", "MATCHERS", "HELD", "BY", "COMMENT"];

pub async fn silences(remote: &Remote, cmd: SilencesCommand) -> Result<(), String> {
    let api = Api::new(remote)?;
    match cmd {
        SilencesCommand::List {
            state,
            filter,
            stale,
            cursor,
        } => {
            let mut q = page(cursor);
            if let Some(s) = state {
                q.push(("state", s));
            }
            if let Some(f) = filter {
                q.push(("filter", f));
            }
            if stale {
                q.push(("stale", "true".into()));
            }
            let v: Value = api.get("/v1/silences", &q).await?;
            print_list(&api, &v, &SILENCE_HEADER, silence_row, "no silences");
        }
        SilencesCommand::Show { id } => {
            let s: Value = api.get(&format!("/v1/silences/{}", seg(&id)), &[]).await?;
            api.emit(&s, |s| table(&SILENCE_HEADER, &[silence_row(s)]));
        }
        SilencesCommand::Create {
            matchers,
            for_,
            comment,
        } => {
            let ends_at = from_now(&for_)?;
            let s: Value = api
                .post(
                    "/v1/silences",
                    &json!({"matchers": matchers, "ends_at": ends_at, "comment": comment}),
                )
                .await?;
            api.emit(&s, |s| {
                format!(
                    "silence {} {} until {}\n",
                    at(s, "/id"),
                    at(s, "/state"),
                    at(s, "/ends_at")
                )
            });
        }
        SilencesCommand::Expire { id } => {
            let s = api
                .call(Method::DELETE, &format!("/v1/silences/{}", seg(&id)), None)
                .await?;
            api.emit(&s, |s| {
                format!("silence {} is now {}\n", at(s, "/id"), at(s, "/state"))
            });
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum PipelinesCommand {
    /// The tenant's pipelines at a glance: by state, failing, SLA breaches,
    /// runs, failures and spend.
    Summary,
    /// List pipelines: state, last run, 7-day runs and failures, SLA.
    List {
        /// Only pipelines in this state: succeeded, failed, running, aborted.
        #[arg(long)]
        state: Option<String>,
        /// Where the previous page ended (the `--cursor` it printed).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one pipeline (`namespace/name`).
    Show {
        /// The pipeline's id, `namespace/name`.
        id: String,
    },
    /// A pipeline's runs, newest first.
    Runs {
        /// The pipeline's id, `namespace/name`.
        id: String,
        /// How many (1 to 100).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Where the previous page ended (the `--cursor` it printed).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// What a pipeline's failure reaches downstream: consumers, most
    /// critical first.
    Impact {
        /// The pipeline's id, `namespace/name`.
        id: String,
    },
    /// A run's triage: likely cause, impact, next actions.
    Explain {
        /// The run's id.
        run: String,
    },
}

pub async fn pipelines(remote: &Remote, cmd: PipelinesCommand) -> Result<(), String> {
    let api = Api::new(remote)?;
    match cmd {
        PipelinesCommand::Summary => {
            let v: Value = api.get("/v1/summary", &[]).await?;
            print_fields(
                &api,
                &v,
                &[
                    ("pipelines", "/pipelines"),
                    ("by state", "/by_state"),
                    ("failing", "/failing"),
                    ("SLA breaches", "/sla_breaches"),
                    ("stale datasets", "/stale_datasets"),
                    ("runs (24h)", "/runs_24h"),
                    ("failures (24h)", "/failures_24h"),
                    ("cost (24h)", "/cost_24h"),
                    ("cost (7d)", "/cost_7d"),
                    ("warnings", "/warnings"),
                ],
            );
        }
        PipelinesCommand::List { state, cursor } => {
            let mut q = page(cursor);
            if let Some(s) = state {
                q.push(("state", s));
            }
            let v: Value = api.get("/v1/pipelines", &q).await?;
            print_list(
                &api,
                &v,
                &[
                    "ID",
                    "STATE",
                    "LAST RUN",
                    "ENDED",
                    "RUNS 7D",
                    "FAILED 7D",
                    "SLA",
                ],
                |p| {
                    vec![
                        at(p, "/id"),
                        at(p, "/state"),
                        at(p, "/last_run/run_id"),
                        at(p, "/last_finished_at"),
                        at(p, "/runs_7d"),
                        at(p, "/failures_7d"),
                        at(p, "/sla_state"),
                    ]
                },
                "no pipelines",
            );
        }
        PipelinesCommand::Show { id } => {
            let p: Value = api.get(&format!("/v1/pipelines/{}", seg(&id)), &[]).await?;
            print_fields(
                &api,
                &p,
                &[
                    ("id", "/id"),
                    ("state", "/state"),
                    ("last run", "/last_run/run_id"),
                    ("last error", "/last_run/error"),
                    ("last finished", "/last_finished_at"),
                    ("inputs", "/inputs"),
                    ("outputs", "/outputs"),
                    ("configuration", "/config"),
                    ("runs (7d)", "/runs_7d"),
                    ("failures (7d)", "/failures_7d"),
                    ("SLA", "/sla_state"),
                ],
            );
        }
        PipelinesCommand::Runs { id, limit, cursor } => {
            let v: Value = api
                .get(
                    &format!("/v1/pipelines/{}/runs", seg(&id)),
                    &limited(limit, cursor),
                )
                .await?;
            print_list(
                &api,
                &v,
                &["RUN", "STATUS", "STARTED", "ENDED", "ERROR"],
                |r| {
                    vec![
                        at(r, "/run_id"),
                        at(r, "/status"),
                        at(r, "/started_at"),
                        at(r, "/ended_at"),
                        at(r, "/error"),
                    ]
                },
                "no runs",
            );
        }
        PipelinesCommand::Impact { id } => {
            let v: Value = api
                .get(&format!("/v1/pipelines/{}/impact", seg(&id)), &[])
                .await?;
            api.emit(&v, |v| {
                let rows: Vec<Vec<String>> = v["downstream_consumers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        vec![
                            at(c, "/id"),
                            at(c, "/depth"),
                            at(c, "/criticality"),
                            at(c, "/state"),
                            at(c, "/team"),
                        ]
                    })
                    .collect();
                if rows.is_empty() {
                    "no downstream consumers\n".into()
                } else {
                    table(
                        &["CONSUMER", "DEPTH", "CRITICALITY", "STATE", "TEAM"],
                        &rows,
                    )
                }
            });
        }
        PipelinesCommand::Explain { run } => {
            let v: Value = api
                .get(&format!("/v1/runs/{}/explain", seg(&run)), &[])
                .await?;
            api.emit(&v, |v| {
                let mut out = format!(
                    "likely cause: {}\nimpact: {}\nconfidence: {}\n",
                    at(v, "/likely_cause"),
                    at(v, "/impact_summary"),
                    at(v, "/confidence")
                );
                for a in v["next_actions"].as_array().into_iter().flatten() {
                    out.push_str(&format!("- {}\n", cell(a)));
                }
                out
            });
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum DeadLettersCommand {
    /// List chat deliveries that failed for good.
    List,
    /// Put a dead letter back in the outbox for a fresh attempt (responder).
    Retry {
        /// The dead letter's id.
        id: String,
    },
}

pub async fn dead_letters(remote: &Remote, cmd: DeadLettersCommand) -> Result<(), String> {
    let api = Api::new(remote)?;
    match cmd {
        DeadLettersCommand::List => {
            let v: Value = api.get("/v1/dispatch/dead-letters", &[]).await?;
            print_list(
                &api,
                &v,
                &["ID", "FAILED", "ATTEMPTS", "LAST ERROR"],
                |d| {
                    vec![
                        at(d, "/id"),
                        at(d, "/failed_at"),
                        at(d, "/attempts"),
                        at(d, "/last_error"),
                    ]
                },
                "no dead letters",
            );
        }
        DeadLettersCommand::Retry { id } => {
            let v = api
                .call(
                    Method::POST,
                    &format!("/v1/dispatch/dead-letters/{}/retry", seg(&id)),
                    Some(&json!({})),
                )
                .await?;
            api.emit(&v, |_| format!("{id} is back in the outbox\n"));
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum OncallCommand {
    /// List on-call schedules.
    List,
    /// Who is on call now (or at `--at`), per rotation.
    Now {
        /// The schedule's id.
        id: String,
        /// Another moment (RFC 3339: 2026-12-24T20:00:00Z).
        #[arg(long)]
        at: Option<String>,
    },
    /// Create or replace a schedule (admin) from a JSON file of its
    /// definition (docs/ESCALATION.md); `-` reads standard input.
    Set {
        /// The schedule's id (1-64 of a-z 0-9 - _).
        id: String,
        /// The definition's file.
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Delete a schedule (admin).
    Delete {
        /// The schedule's id.
        id: String,
    },
    /// Put someone on call instead for a while (responder).
    Override {
        /// The schedule's id.
        id: String,
        /// Who: a chat identity (`slack:U0BOB`) or an email address.
        #[arg(long)]
        who: String,
        /// For how long from now: 2h, 1d.
        #[arg(long = "for", value_name = "DURATION")]
        for_: String,
        /// Only this rotation (every rotation when not given).
        #[arg(long)]
        rotation: Option<String>,
    },
}

pub async fn oncall(remote: &Remote, cmd: OncallCommand) -> Result<(), String> {
    let api = Api::new(remote)?;
    match cmd {
        OncallCommand::List => {
            let v: Value = api.get("/v1/oncall-schedules", &[]).await?;
            print_list(
                &api,
                &v,
                &["ID", "NAME", "TIME ZONE", "ROTATIONS", "OVERRIDES"],
                |s| {
                    let rotations: Vec<String> = s["rotations"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|r| format!("{} ({})", at(r, "/name"), at(r, "/length")))
                        .collect();
                    vec![
                        at(s, "/id"),
                        at(s, "/name"),
                        at(s, "/time_zone"),
                        rotations.join(", "),
                        s["overrides"].as_array().map_or(0, Vec::len).to_string(),
                    ]
                },
                "no on-call schedules",
            );
        }
        OncallCommand::Now { id, at: when } => {
            let q: Vec<(&str, String)> = when.into_iter().map(|a| ("at", a)).collect();
            let v: Value = api
                .get(&format!("/v1/oncall-schedules/{}/now", seg(&id)), &q)
                .await?;
            api.emit(&v, |v| {
                let rows: Vec<Vec<String>> = v["on_call"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|o| {
                        vec![
                            at(o, "/rotation"),
                            at(o, "/who"),
                            at(o, "/from"),
                            at(o, "/until"),
                            at(o, "/overridden"),
                        ]
                    })
                    .collect();
                if rows.is_empty() {
                    "nobody is on call\n".into()
                } else {
                    table(&["ROTATION", "WHO", "FROM", "UNTIL", "OVERRIDE"], &rows)
                }
            });
        }
        OncallCommand::Set { id, file } => {
            put_from_file(&api, &format!("/v1/oncall-schedules/{}", seg(&id)), &file).await?
        }
        OncallCommand::Delete { id } => {
            api.delete(&format!("/v1/oncall-schedules/{}", seg(&id)))
                .await?;
            api.emit(&json!({ "deleted": id }), |_| format!("{id} deleted\n"));
        }
        OncallCommand::Override {
            id,
            who,
            for_,
            rotation,
        } => {
            let until = from_now(&for_)?;
            let mut body = json!({"who": who, "from": Utc::now(), "until": until});
            if let Some(r) = rotation {
                body["rotation"] = Value::String(r);
            }
            let s: Value = api
                .post(
                    &format!("/v1/oncall-schedules/{}/overrides", seg(&id)),
                    &body,
                )
                .await?;
            api.emit(&s, |s| {
                format!(
                    "{who} is on call for {} until {}\n",
                    at(s, "/id"),
                    cell(&json!(until))
                )
            });
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum EscalationCommand {
    /// List escalation policies.
    List,
    /// Show a policy's steps.
    Show {
        /// The policy's id (`default` is the tenant's fallback).
        id: String,
    },
    /// Create or replace a policy (admin) from a JSON file of its
    /// definition (docs/ESCALATION.md); `-` reads standard input.
    Set {
        /// The policy's id (`default` is the tenant's fallback).
        id: String,
        /// The definition's file.
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Delete a policy (admin).
    Delete {
        /// The policy's id.
        id: String,
    },
}

fn step_rows(p: &Value) -> Vec<Vec<String>> {
    p["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let target = ["schedule", "destination"]
                .iter()
                .find_map(|k| s.get(*k).map(cell))
                .unwrap_or_else(|| "-".into());
            vec![
                format!("{} min", at(s, "/after_minutes")),
                at(s, "/when"),
                at(s, "/action"),
                target,
                s.get("repeat_every_minutes")
                    .map(|r| format!("every {} min", cell(r)))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect()
}

pub async fn escalation(remote: &Remote, cmd: EscalationCommand) -> Result<(), String> {
    let api = Api::new(remote)?;
    match cmd {
        EscalationCommand::List => {
            let v: Value = api.get("/v1/escalation-policies", &[]).await?;
            print_list(
                &api,
                &v,
                &["ID", "NAME", "STEPS", "UPDATED", "BY"],
                |p| {
                    vec![
                        at(p, "/id"),
                        at(p, "/name"),
                        p["steps"].as_array().map_or(0, Vec::len).to_string(),
                        at(p, "/updated_at"),
                        at(p, "/updated_by"),
                    ]
                },
                "no escalation policies",
            );
        }
        EscalationCommand::Set { id, file } => {
            put_from_file(
                &api,
                &format!("/v1/escalation-policies/{}", seg(&id)),
                &file,
            )
            .await?
        }
        EscalationCommand::Delete { id } => {
            api.delete(&format!("/v1/escalation-policies/{}", seg(&id)))
                .await?;
            api.emit(&json!({ "deleted": id }), |_| format!("{id} deleted\n"));
        }
        EscalationCommand::Show { id } => {
            let p: Value = api
                .get(&format!("/v1/escalation-policies/{}", seg(&id)), &[])
                .await?;
            api.emit(&p, |p| {
                format!(
                    "{} ({})\n{}",
                    at(p, "/id"),
                    at(p, "/name"),
                    table(
                        &["AFTER", "WHEN", "ACTION", "TARGET", "REPEAT"],
                        &step_rows(p)
                    )
                )
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_a_person_would_write_them() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!("2026-12-07T19:00:39.38Z")), "2026-12-07 19:00");
        assert_eq!(cell(&json!(["a", "b"])), "a, b");
        assert_eq!(cell(&json!({"failed": 1, "ok": 2})), "failed=1 ok=2");
        assert_eq!(cell(&json!(true)), "yes");
        assert_eq!(seg("etl/orders"), "etl%2Forders");
        assert_eq!(seg("../x"), "..%2Fx");
    }

    #[test]
    fn silence_matchers_print_as_expressions() {
        let s = json!({"matchers": [
            {"name": "alertname", "value": "DiskFull", "isRegex": false, "isEqual": true},
            {"name": "pod", "value": "canary-.*", "isRegex": true, "isEqual": false}
        ]});
        assert_eq!(matchers(&s), "alertname=DiskFull pod!~canary-.*");
    }
}
