//! Client commands: talk to a running firewatch over its REST API and print
//! readable tables.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use firewatch_domain::incidents::Paged;
use firewatch_types::{ErrorBody, Incident, TimelineEntry, TimelineKind, TriageReport};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Remote;

#[derive(Subcommand)]
pub enum IncidentsCommand {
    /// List incidents, newest first.
    List {
        /// open, acknowledged, mitigated, resolved or closed.
        #[arg(long)]
        state: Option<String>,
        /// sev1 to sev4.
        #[arg(long)]
        severity: Option<String>,
        /// The provider: alertmanager, grafana, pagerduty, sentry, signoz,
        /// cloudwatch, generic, heartbeat, smoke, freshness or pipelines.
        #[arg(long)]
        source: Option<String>,
        /// How many to list (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Where the previous page ended (the `--cursor` it printed).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Print new incidents and changes to them as they happen (every
    /// second), until interrupted.
    Watch,
    /// Show one incident and its timeline.
    Show {
        /// The incident's id (`inc_...`).
        id: String,
    },
    /// Acknowledge an incident.
    Ack {
        /// The incident's id (`inc_...`).
        id: String,
        /// Why, for the timeline and the thread.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resolve an incident.
    Resolve {
        /// The incident's id (`inc_...`).
        id: String,
        /// Why, for the timeline and the thread.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Mark an incident mitigated (the harm stopped, the cause not fixed).
    Mitigate {
        /// The incident's id (`inc_...`).
        id: String,
        /// Why, for the timeline and the thread.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Close a resolved incident for good.
    Close {
        /// The incident's id (`inc_...`).
        id: String,
        /// Why, for the timeline and the thread.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reopen a resolved incident.
    Reopen {
        /// The incident's id (`inc_...`).
        id: String,
        /// Why, for the timeline and the thread.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Add a comment to an incident's timeline (and its threads).
    Comment {
        /// The incident's id (`inc_...`).
        id: String,
        /// The comment.
        text: String,
    },
    /// Pause an incident's reminders and escalation for a while.
    Snooze {
        /// The incident's id (`inc_...`).
        id: String,
        /// How long: 30m, 2h, 1d.
        #[arg(long = "for", value_name = "DURATION")]
        for_: String,
    },
    /// Triage an incident: likely cause, impact, next actions (also posted
    /// in its chat threads), in the server's default mode
    /// (`FIREWATCH_TRIAGE_DEFAULT`) unless one is named.
    Triage {
        /// The incident's id (`inc_...`).
        id: String,
        /// Ask a language model to enrich the rules' report.
        #[arg(long, conflicts_with = "deterministic")]
        assisted: bool,
        /// The rules alone.
        #[arg(long)]
        deterministic: bool,
        /// Print the report as Markdown, ready for a ticket or a chat.
        #[arg(long)]
        markdown: bool,
        /// Show the newest report instead of triaging again.
        #[arg(long, conflicts_with_all = ["assisted", "deterministic"])]
        latest: bool,
    },
    /// Say whether a triage report helped (one vote per person per report;
    /// a second replaces the first).
    Feedback {
        /// The incident's id (`inc_...`).
        id: String,
        /// The report's id (`trg_...`, printed under the report).
        report: String,
        /// It helped.
        #[arg(
            long,
            conflicts_with = "not_helpful",
            required_unless_present = "not_helpful"
        )]
        helpful: bool,
        /// It did not.
        #[arg(long)]
        not_helpful: bool,
        /// What was right or wrong, for whoever tunes the rules.
        #[arg(long)]
        comment: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum PlaybooksCommand {
    /// List the playbooks loaded, or those offered for an incident.
    List {
        /// Only those offered for this incident (`inc_...`), with their
        /// parameters as they would be filled.
        #[arg(long)]
        incident: Option<String>,
    },
    /// Dry-run a playbook for an incident: every request rendered (secrets
    /// masked), the read-only checks sent. Exits non-zero when the dry-run
    /// fails.
    DryRun {
        /// The incident's id (`inc_...`).
        incident: String,
        /// The playbook's name (`playbooks list --incident ID` shows them).
        name: String,
        /// Parameters as key=value.
        params: Vec<String>,
    },
    /// Approve a run someone else requested (approver role).
    Approve {
        /// The run's id (`run_...`).
        run: String,
    },
    /// Reject (or, as its requester, cancel) a run.
    Reject {
        /// The run's id (`run_...`).
        run: String,
        /// Why, for the thread and the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Run an approved run (or one that needs no approval).
    Run {
        /// The run's id (`run_...`).
        run: String,
        /// Print each transition as it happens and exit with the run's
        /// outcome (non-zero when it fails).
        #[arg(long)]
        follow: bool,
    },
    /// Roll back a failed or finished run.
    Rollback {
        /// The run's id (`run_...`).
        run: String,
        /// Print each transition as it happens and exit with the rollback's
        /// outcome (non-zero when it fails).
        #[arg(long)]
        follow: bool,
    },
    /// Show a run: state, rendered requests, each step's outcome.
    Show {
        /// The run's id (`run_...`).
        run: String,
    },
}

/// Reads in a row that may fail before `--follow` or `watch` gives up.
const MAX_MISSES: u32 = 30;

/// How long `--follow` waits between two reads of the run.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// A run that ended badly, as the command's error (its exit status).
fn outcome(r: &firewatch_domain::playbooks::runs::Run) -> Result<(), String> {
    use firewatch_domain::playbooks::runs::RunState;
    match r.state {
        RunState::DryRunFailed | RunState::Failed | RunState::RollbackFailed => {
            Err(format!("run {} ended {}", r.id, r.state.as_str()))
        }
        _ => Ok(()),
    }
}

/// Reads the run until its steps (or its rollback's) are done, printing
/// each transition once; answers the run as it ended.
async fn follow(
    api: &Api,
    started: firewatch_domain::playbooks::runs::Run,
) -> Result<firewatch_domain::playbooks::runs::Run, String> {
    use firewatch_domain::playbooks::runs::{Run, RunState};
    let mut run = started;
    let mut shown = run.history.len();
    let mut misses = 0;
    while matches!(run.state, RunState::Running | RunState::RollingBack) {
        tokio::time::sleep(FOLLOW_EVERY).await;
        run = match api
            .get::<Run>(&format!("/v1/playbook-runs/{}", run.id), &[])
            .await
        {
            Ok(r) => r,
            Err(e) => {
                // A read that fails (a restart, a blip) is tried again; the
                // run goes on without us.
                misses += 1;
                if misses >= MAX_MISSES {
                    return Err(e);
                }
                eprintln!("(could not read the run, trying again: {e})");
                continue;
            }
        };
        misses = 0;
        for t in run.history.iter().skip(shown).filter(|_| !api.json) {
            println!("{}", transition_line(t));
        }
        shown = run.history.len();
    }
    Ok(run)
}

pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    token: String,
    /// `--json`: answers are printed as JSON, not as text.
    pub(crate) json: bool,
}

impl Api {
    /// Prints an answer: as JSON with `--json`, otherwise as `text` has it.
    pub(crate) fn emit<T: serde::Serialize>(&self, v: &T, text: impl FnOnce(&T) -> String) {
        if self.json {
            match serde_json::to_string_pretty(v) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("error: cannot print the answer as JSON: {e}"),
            }
        } else {
            print!("{}", text(v));
        }
    }

    pub(crate) fn new(remote: &Remote) -> Result<Self, String> {
        let token = remote
            .token
            .clone()
            .or_else(|| crate::dev::read_dev_token(&remote.data_dir))
            .ok_or_else(|| {
                format!(
                    "no API key: pass --token, set FIREWATCH_TOKEN, or pass the --data-dir \
                     `firewatch dev` was started with (no dev key in {})",
                    remote.data_dir.display()
                )
            })?;
        Ok(Self {
            http: reqwest::Client::new(),
            base: remote.url.trim_end_matches('/').to_owned(),
            token,
            json: remote.json,
        })
    }

    pub(crate) async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, String> {
        let bytes = self.send_raw(req).await?;
        serde_json::from_slice(&bytes).map_err(|e| format!("unexpected answer: {e}"))
    }

    pub(crate) async fn send_raw(&self, req: reqwest::RequestBuilder) -> Result<Vec<u8>, String> {
        let res = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {}", self.base, e.without_url()))?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => format!("{} ({}): {}", status, b.error.code, b.error.message),
                Err(_) => format!("{status}: {}", String::from_utf8_lossy(&bytes)),
            });
        }
        Ok(bytes.to_vec())
    }

    /// Any request; its answer as JSON (`null` when it has no body).
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(b);
        }
        let bytes = self.send_raw(req).await?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("unexpected answer: {e}"))
    }

    pub(crate) async fn delete(&self, path: &str) -> Result<(), String> {
        self.send_raw(self.http.delete(format!("{}{path}", self.base)))
            .await
            .map(drop)
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, String> {
        self.send(self.http.get(format!("{}{path}", self.base)).query(query))
            .await
    }

    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, String> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// A POST with an `Idempotency-Key`, so that a retried command has one
    /// effect.
    pub(crate) async fn post_once<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, String> {
        let key = ulid::Ulid::new().to_string();
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("Idempotency-Key", key)
                .json(body),
        )
        .await
    }
}

pub async fn playbooks(remote: &Remote, cmd: PlaybooksCommand) -> Result<(), String> {
    use firewatch_domain::playbooks::runs::Run;
    let api = Api::new(remote)?;
    let print_run = |r: &Run| api.emit(r, run_text);
    match cmd {
        PlaybooksCommand::List { incident } => {
            let path = match &incident {
                Some(id) => format!("/v1/incidents/{id}/playbooks"),
                None => "/v1/playbooks".into(),
            };
            let list: Value = api.get(&path, &[]).await?;
            if api.json {
                api.emit(&list, |_| String::new());
                return Ok(());
            }
            let items: Vec<&Value> = list["items"].as_array().into_iter().flatten().collect();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|p| {
                    let mut row = vec![
                        crate::ops::at(p, "/name"),
                        crate::ops::at(p, "/risk"),
                        crate::ops::at(p, "/approval"),
                        crate::ops::at(p, "/title"),
                    ];
                    if incident.is_some() {
                        row.push(p["params"].to_string());
                    }
                    row
                })
                .collect();
            let header: &[&str] = if incident.is_some() {
                &["NAME", "RISK", "APPROVAL", "TITLE", "PARAMS"]
            } else {
                &["NAME", "RISK", "APPROVAL", "TITLE"]
            };
            if items.is_empty() {
                println!("no playbooks");
            } else {
                print!("{}", table(header, &rows));
            }
            for e in list["errors"].as_array().into_iter().flatten() {
                println!(
                    "refused {}:{}:{}: {}: {}",
                    e["file"].as_str().unwrap_or(""),
                    e["line"],
                    e["column"],
                    e["field"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                );
            }
        }
        PlaybooksCommand::DryRun {
            incident,
            name,
            params,
        } => {
            let mut map = serde_json::Map::new();
            for kv in params {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("parameters are key=value, not {kv:?}"))?;
                map.insert(k.to_owned(), Value::String(v.to_owned()));
            }
            let run: Run = api
                .post_once(
                    &format!("/v1/incidents/{incident}/playbooks/{name}/dry-run"),
                    &serde_json::json!({"params": map}),
                )
                .await?;
            print_run(&run);
            return outcome(&run);
        }
        PlaybooksCommand::Approve { run } => print_run(
            &api.post_once(
                &format!("/v1/playbook-runs/{run}/approve"),
                &serde_json::json!({}),
            )
            .await
            .map_err(|e| {
                if e.contains("four eyes") {
                    format!(
                        "{e}\n(to try four eyes alone: `firewatch keys create --role approver \
                         --name bob --person bob` makes a key for a second person; approve \
                         with `--token` and that key)"
                    )
                } else {
                    e
                }
            })?,
        ),
        PlaybooksCommand::Reject { run, reason } => print_run(
            &api.post_once(
                &format!("/v1/playbook-runs/{run}/reject"),
                &serde_json::json!({"reason": reason}),
            )
            .await?,
        ),
        PlaybooksCommand::Run { run, follow } => {
            return start(&api, &format!("/v1/playbook-runs/{run}/execute"), follow).await
        }
        PlaybooksCommand::Rollback { run, follow } => {
            return start(&api, &format!("/v1/playbook-runs/{run}/rollback"), follow).await
        }
        PlaybooksCommand::Show { run } => {
            print_run(&api.get(&format!("/v1/playbook-runs/{run}"), &[]).await?)
        }
    }
    Ok(())
}

/// Starts a run's steps (or its rollback) and prints the run; with
/// `--follow`, each transition until it ends. Fails when the run did.
async fn start(api: &Api, path: &str, follow_it: bool) -> Result<(), String> {
    let started: firewatch_domain::playbooks::runs::Run =
        api.post_once(path, &serde_json::json!({})).await?;
    let ended = if follow_it {
        if !api.json {
            print!("{}", run_text(&started));
        }
        let ended = follow(api, started).await?;
        if api.json {
            api.emit(&ended, run_text);
        }
        ended
    } else {
        api.emit(&started, run_text);
        started
    };
    outcome(&ended)
}

/// One line of a run's history: time, state, who, and why.
fn transition_line(t: &firewatch_domain::playbooks::run::Transition) -> String {
    format!(
        "{}  {:<17} {}{}",
        t.at.format("%H:%M:%S"),
        t.state.as_str(),
        t.by,
        t.detail
            .as_ref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default()
    )
}

/// A run as text: the message its thread shows (state, each request as it
/// would be sent with secrets masked, each step's outcome), then its history.
pub fn run_text(r: &firewatch_domain::playbooks::runs::Run) -> String {
    let mut out = firewatch_domain::playbooks::chat::run_message(r).text;
    out.push_str("\nHistory:");
    for t in &r.history {
        out.push('\n');
        out.push_str(&transition_line(t));
    }
    out.push('\n');
    out
}

pub async fn send_test_alert(remote: &Remote, resolve: bool) -> Result<(), String> {
    let api = Api::new(remote)?;
    let report: Value = api
        .post(
            "/v1/alerts/alertmanager",
            &crate::sample::alertmanager(resolve),
        )
        .await?;
    if api.json {
        api.emit(&report, |_| String::new());
        return Ok(());
    }
    let results = report["results"].as_array().cloned().unwrap_or_default();
    if report["duplicate"] == true {
        // The answer repeats the first delivery's results; saying them
        // again would read as if this one opened something.
        let incidents: Vec<&str> = report["incidents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "already received this exact webhook: nothing changed{}",
            if incidents.is_empty() {
                String::new()
            } else {
                format!(" (its incident: {})", incidents.join(", "))
            }
        );
        return Ok(());
    }
    for r in results {
        println!(
            "{} {} -> {} {}",
            r["fingerprint"].as_str().unwrap_or(""),
            r["status"].as_str().unwrap_or(""),
            r["outcome"].as_str().unwrap_or(""),
            r["incident_id"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List the tenant's API keys (never their tokens).
    List,
    /// Create a key; its token is printed once.
    Create {
        /// ingest (alert senders), viewer, responder, approver or admin.
        #[arg(long)]
        role: String,
        /// The key's name, to tell it apart in the list.
        #[arg(long)]
        name: String,
        /// The person the key acts as (audit events, timelines, four eyes);
        /// you, when not given. A second approver needs a key for a
        /// second person.
        #[arg(long)]
        person: Option<String>,
    },
    /// Revoke a key at once.
    Revoke {
        /// The key's id (`key_...`, from `keys list`).
        id: String,
    },
    /// Replace a key by a new one with the same name and role.
    Rotate {
        /// The key's id (`key_...`, from `keys list`).
        id: String,
    },
}

#[derive(serde::Deserialize, serde::Serialize)]
struct KeyView {
    id: String,
    name: String,
    role: String,
    created_at: DateTime<Utc>,
    token_hint: String,
    #[serde(default)]
    token: Option<String>,
}

#[derive(serde::Deserialize, serde::Serialize)]
struct KeyList {
    items: Vec<KeyView>,
}

fn new_key_text(k: &KeyView) -> String {
    let mut out = format!(
        "{} {} ({}), token hint {}\n",
        k.id, k.name, k.role, k.token_hint
    );
    if let Some(t) = &k.token {
        out.push_str(&format!("token (shown once): {t}\n"));
    }
    out
}

pub async fn keys(remote: &Remote, cmd: KeysCommand) -> Result<(), String> {
    let api = Api::new(remote)?;
    match cmd {
        KeysCommand::List => {
            let list: KeyList = api.get("/v1/keys", &[]).await?;
            api.emit(&list, |list| {
                let mut out = format!(
                    "{:<32} {:<10} {:<10} {:<17} NAME\n",
                    "ID", "ROLE", "HINT", "CREATED"
                );
                for k in &list.items {
                    out.push_str(&format!(
                        "{:<32} {:<10} {:<10} {:<17} {}\n",
                        k.id,
                        k.role,
                        k.token_hint,
                        k.created_at.format("%Y-%m-%d %H:%M"),
                        k.name
                    ));
                }
                out
            });
        }
        KeysCommand::Create { role, name, person } => {
            let k: KeyView = api
                .post(
                    "/v1/keys",
                    &serde_json::json!({"name": name, "role": role, "person": person}),
                )
                .await?;
            api.emit(&k, new_key_text);
        }
        KeysCommand::Revoke { id } => {
            api.delete(&format!("/v1/keys/{id}")).await?;
            api.emit(&serde_json::json!({ "revoked": id }), |_| {
                format!("{id} revoked\n")
            });
        }
        KeysCommand::Rotate { id } => {
            let k: KeyView = api
                .post(&format!("/v1/keys/{id}/rotate"), &serde_json::json!({}))
                .await?;
            api.emit(&k, |k| {
                format!("{id} revoked; its replacement:\n{}", new_key_text(k))
            });
        }
    }
    Ok(())
}

pub async fn incidents(remote: &Remote, cmd: IncidentsCommand) -> Result<(), String> {
    let api = Api::new(remote)?;
    match cmd {
        IncidentsCommand::List {
            state,
            severity,
            source,
            limit,
            cursor,
        } => {
            let mut q = vec![("limit", limit.to_string())];
            for (k, v) in [
                ("state", state),
                ("severity", severity),
                ("source", source),
                ("cursor", cursor),
            ] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            let page: Paged<Incident> = api.get("/v1/incidents", &q).await?;
            api.emit(&page, |page| {
                let mut out = incident_table(&page.items, Utc::now());
                if let Some(next) = &page.next_cursor {
                    out.push_str(&format!("(more: the same command with --cursor {next})\n"));
                }
                out
            });
        }
        IncidentsCommand::Watch => watch(&api).await?,
        IncidentsCommand::Feedback {
            id,
            report,
            helpful,
            not_helpful: _,
            comment,
        } => {
            let vote: Value = api
                .post(
                    &format!("/v1/incidents/{id}/triage/{report}/feedback"),
                    &serde_json::json!({ "helpful": helpful, "comment": comment }),
                )
                .await?;
            api.emit(&vote, |_| {
                format!(
                    "{report}: counted as {}\n",
                    if helpful { "helpful" } else { "not helpful" }
                )
            });
        }
        IncidentsCommand::Show { id } => {
            let inc: Incident = api.get(&format!("/v1/incidents/{id}"), &[]).await?;
            let tl: Paged<TimelineEntry> = api
                .get(&format!("/v1/incidents/{id}/timeline"), &[])
                .await?;
            let shown = serde_json::json!({"incident": inc, "timeline": tl.items});
            api.emit(&shown, |_| incident_detail(&inc, &tl.items));
        }
        IncidentsCommand::Ack { id, reason } => act(&api, &id, "ack", reason).await?,
        IncidentsCommand::Resolve { id, reason } => act(&api, &id, "resolve", reason).await?,
        IncidentsCommand::Mitigate { id, reason } => act(&api, &id, "mitigate", reason).await?,
        IncidentsCommand::Close { id, reason } => act(&api, &id, "close", reason).await?,
        IncidentsCommand::Reopen { id, reason } => act(&api, &id, "reopen", reason).await?,
        IncidentsCommand::Comment { id, text } => {
            let e: TimelineEntry = api
                .post(
                    &format!("/v1/incidents/{id}/comments"),
                    &serde_json::json!({ "text": text }),
                )
                .await?;
            api.emit(&e, |e| {
                format!("{id}: comment added at {}\n", e.at.format("%H:%M:%S"))
            });
        }
        IncidentsCommand::Snooze { id, for_ } => {
            let inc: Incident = api
                .post(
                    &format!("/v1/incidents/{id}/snooze"),
                    &serde_json::json!({ "for": for_ }),
                )
                .await?;
            api.emit(&inc, |inc| match inc.snoozed_until {
                Some(t) => format!(
                    "{} snoozed until {}\n",
                    inc.id,
                    t.format("%Y-%m-%d %H:%M UTC")
                ),
                None => format!("{} is not snoozed\n", inc.id),
            });
        }
        IncidentsCommand::Triage {
            id,
            assisted,
            deterministic,
            markdown,
            latest,
        } => {
            let report: TriageReport = if latest {
                api.get(&format!("/v1/incidents/{id}/triage/latest"), &[])
                    .await?
            } else {
                let body = match (assisted, deterministic) {
                    (true, _) => serde_json::json!({"mode": "assisted"}),
                    (_, true) => serde_json::json!({"mode": "deterministic"}),
                    _ => serde_json::json!({}),
                };
                api.post(&format!("/v1/incidents/{id}/triage"), &body)
                    .await?
            };
            if markdown && !api.json {
                let inc: Incident = api.get(&format!("/v1/incidents/{id}"), &[]).await?;
                print!(
                    "{}",
                    firewatch_domain::triage::markdown::render(&inc, &report)
                );
            } else {
                api.emit(&report, |report| {
                    let mut out = format!("{}\n", firewatch_domain::chat::triage_text(report, "you"));
                    if let Some(rid) = &report.id {
                        out.push_str(&format!("Report {rid}: say whether it helped with `firewatch incidents feedback {id} {rid} --helpful` (or --not-helpful)\n"));
                    }
                    out
                });
            }
        }
    }
    Ok(())
}

/// How often `incidents watch` reads the newest incidents.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// `incidents watch`: the newest incidents read every second; each one new
/// or changed since the last read (by its version) printed once, as a
/// table row or, with `--json`, as one JSON object per line.
async fn watch(api: &Api) -> Result<(), String> {
    let mut seen: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut first = true;
    if !api.json {
        println!("{}", watch_columns("", &INCIDENT_HEADER.map(String::from)));
    }
    let mut misses = 0;
    loop {
        let page: Paged<Incident> = match api
            .get("/v1/incidents", &[("limit", "200".to_owned())])
            .await
        {
            Ok(p) => p,
            Err(e) => {
                misses += 1;
                if misses >= MAX_MISSES {
                    return Err(e);
                }
                eprintln!("(could not read the incidents, trying again: {e})");
                tokio::time::sleep(WATCH_EVERY).await;
                continue;
            }
        };
        misses = 0;
        // Oldest first, so the output reads in the order things happened.
        for inc in page.items.iter().rev() {
            let id = inc.id.to_string();
            let known = seen.insert(id, inc.version);
            if known == Some(inc.version) || (first && !inc.state.is_active()) {
                continue;
            }
            let what = if known.is_none() { "new" } else { "changed" };
            if api.json {
                let line = serde_json::json!({"event": what, "incident": inc});
                println!("{line}");
            } else {
                println!("{}", watch_columns(what, &incident_cells(inc, Utc::now())));
            }
        }
        first = false;
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

/// A line of `incidents watch` in fixed columns, so the rows printed over
/// time line up under the one header: what happened, then the incident's
/// cells.
fn watch_columns(what: &str, cells: &[String]) -> String {
    const WIDTHS: [usize; 7] = [8, 30, 12, 4, 12, 5, 6];
    let mut out = String::new();
    let all = std::iter::once(what).chain(cells.iter().map(String::as_str));
    for (i, c) in all.enumerate() {
        match WIDTHS.get(i) {
            Some(w) => out.push_str(&format!("{c:<w$}  ")),
            None => out.push_str(c),
        }
    }
    out.trim_end().to_owned()
}

async fn act(api: &Api, id: &str, action: &str, reason: Option<String>) -> Result<(), String> {
    let inc: Incident = api
        .post(
            &format!("/v1/incidents/{id}/{action}"),
            &serde_json::json!({ "reason": reason }),
        )
        .await?;
    api.emit(&inc, |inc| {
        format!(
            "{} is now {} (version {})\n",
            inc.id, inc.state, inc.version
        )
    });
    Ok(())
}

fn age(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - since).num_seconds().max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d", s / 86_400),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Renders incidents as an aligned table.
pub fn incident_table(items: &[Incident], now: DateTime<Utc>) -> String {
    if items.is_empty() {
        return "no incidents\n".into();
    }
    let rows: Vec<Vec<String>> = items.iter().map(|i| incident_cells(i, now)).collect();
    table(&INCIDENT_HEADER, &rows)
}

const INCIDENT_HEADER: [&str; 7] = ["ID", "STATE", "SEV", "SOURCE", "SEEN", "AGE", "TITLE"];

/// An incident's cells in a list, under [`INCIDENT_HEADER`].
fn incident_cells(i: &Incident, now: DateTime<Utc>) -> Vec<String> {
    vec![
        i.id.to_string(),
        i.state.to_string(),
        i.severity.to_string(),
        i.source.to_string(),
        i.occurrences.to_string(),
        age(i.created_at, now),
        truncate(&i.title, 60),
    ]
}

/// An aligned table: a header row, then a row per item, columns two spaces
/// apart. Every list the CLI prints is one of these.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for r in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn describe(kind: &TimelineKind) -> String {
    match kind {
        TimelineKind::Opened { fingerprint } => format!("opened by alert {fingerprint}"),
        TimelineKind::Occurrence { fingerprint } => format!("alert {fingerprint} fired again"),
        TimelineKind::AlertResolved { fingerprint } => format!("alert {fingerprint} resolved"),
        TimelineKind::AlertAcknowledged { fingerprint } => {
            format!("alert {fingerprint} acknowledged at the source")
        }
        TimelineKind::StateChanged { from, to } => format!("{from} -> {to}"),
        TimelineKind::Comment { text } => format!("comment: {text}"),
        TimelineKind::Suppressed { fingerprint } => {
            format!("alert {fingerprint} suppressed (rate limit)")
        }
        TimelineKind::Triage { report } => format!(
            "triage ({} confidence): {}",
            report.confidence, report.likely_cause
        ),
        TimelineKind::TriageRequested { mode } => format!("{mode} triage requested"),
        TimelineKind::TicketRequested { .. } => "ticket requested".into(),
        TimelineKind::TicketLinked {
            tracker,
            ticket,
            url,
        } => format!("ticket {ticket} in {tracker}: {url}"),
        TimelineKind::Snoozed { until } => format!("snoozed until {until}"),
        TimelineKind::Flapping { state, flips, .. } => format!("flapping {state} ({flips} flips)"),
        TimelineKind::Escalation {
            policy,
            action,
            detail,
            ..
        } => format!("escalation {policy} {action}: {detail}"),
        TimelineKind::Silence {
            silence_id,
            state,
            until,
            matchers,
        } => format!("silence {silence_id} {matchers} {state} (until {until})"),
        TimelineKind::Playbook {
            run_id,
            playbook,
            state,
            detail,
        } => match detail {
            Some(d) => format!("playbook {playbook} ({run_id}): {state}: {d}"),
            None => format!("playbook {playbook} ({run_id}): {state}"),
        },
    }
}

/// Renders one incident with its timeline.
pub fn incident_detail(inc: &Incident, timeline: &[TimelineEntry]) -> String {
    let mut out = format!(
        "{}  {}  {}\n{}\nsource: {}  group: {}  seen: {}  version: {}\n",
        inc.id,
        inc.state,
        inc.severity,
        inc.title,
        inc.source,
        inc.group_key,
        inc.occurrences,
        inc.version
    );
    if !inc.labels.is_empty() {
        let labels: Vec<String> = inc.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("labels: {}\n", labels.join(" ")));
    }
    // What the opening alert says: its summary, description, reason...
    for (k, v) in &inc.annotations {
        if v.trim() != inc.title {
            out.push_str(&format!("{k}: {}\n", v.trim()));
        }
    }
    for l in &inc.links {
        out.push_str(&format!(
            "link: {} {}\n",
            l.text.as_deref().unwrap_or(""),
            l.href
        ));
    }
    out.push_str("timeline:\n");
    for e in timeline {
        let reason = e
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {}  {:<22} {}{}\n",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            e.actor,
            describe(&e.kind),
            reason
        ));
    }
    out
}
