//! End to end: the real `firewatch` binary on a free port, driven over HTTP
//! and through its own client commands, restarted on the same data dir.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_firewatch");

struct Server {
    child: Child,
    url: String,
    /// Everything the server printed after its first line.
    output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// Waits up to 5 s for the server to print `needle`.
    fn wait_for_output(&self, needle: &str) -> String {
        for _ in 0..100 {
            let out = self.output.lock().unwrap().clone();
            if out.contains(needle) {
                return out;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "the server never printed {needle:?}; it printed:\n{}",
            self.output.lock().unwrap()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `firewatch dev` on port 0 and reads the URL it prints.
fn start(data_dir: &Path, token: Option<&str>) -> Server {
    start_with(data_dir, token, &[])
}

/// [`start`], with more arguments for `firewatch dev`.
fn start_with(data_dir: &Path, token: Option<&str>, args: &[&str]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env_remove("FIREWATCH_DEV_TOKEN")
        .env("FIREWATCH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(t) = token {
        cmd.env("FIREWATCH_DEV_TOKEN", t);
    }
    let mut child = cmd.spawn().expect("the firewatch binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    // The URL line, after what the server says of its playbooks.
    let mut first = String::new();
    let mut before = String::new();
    while reader.read_line(&mut first).unwrap() > 0
        && !first.starts_with("firewatch dev listening on ")
    {
        before.push_str(&first);
        first.clear();
    }
    // Keep reading, so the server never writes into a closed pipe.
    let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = output.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    let url = first
        .trim()
        .strip_prefix("firewatch dev listening on ")
        .unwrap_or_else(|| panic!("no URL printed; the server printed {before:?}"))
        .to_owned();
    Server { child, url, output }
}

fn cli(args: &[&str], url: &str, token: &str) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .args(["--url", url, "--token", token])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn an_alert_becomes_an_incident_that_a_responder_acknowledges_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let token = "fw_e2e_test_token_0123456789";
    let server = start(dir.path(), Some(token));
    let http = reqwest::Client::new();

    let health: Value = http
        .get(format!("{}/health", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");

    let alert = json!({"title": "checkout latency high", "severity": "critical", "fingerprint": "e2e-1", "labels": {"service": "checkout"}});
    let res = http
        .post(format!("{}/v1/alerts/generic", server.url))
        .bearer_auth(token)
        .header("x-request-id", "e2e-req-1")
        .json(&alert)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(res.headers()["x-request-id"], "e2e-req-1");
    let report: Value = res.json().await.unwrap();
    let id = report["incidents"][0].as_str().unwrap().to_owned();

    let again: Value = http
        .post(format!("{}/v1/alerts/generic", server.url))
        .bearer_auth(token)
        .json(&alert)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["duplicate"], true);

    let (ok, out) = cli(&["incidents", "list"], &server.url, token);
    assert!(ok, "{out}");
    assert!(
        out.contains(&id) && out.contains("sev1") && out.contains("checkout latency high"),
        "{out}"
    );
    let console = server.wait_for_output("new incident thread");
    assert!(
        console.contains(&id) && console.contains("[Acknowledge]"),
        "the thread shows in the terminal: {console}"
    );
    let tag = &id[id.len() - 6..];
    let thread: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("new incident thread") || l.contains("│ "))
        .collect();
    assert!(
        !thread.is_empty() && thread.iter().all(|l| l.starts_with(&format!("{tag} "))),
        "every line of the thread starts with the incident's short id: {console}"
    );
    let (ok, out) = cli(
        &["incidents", "ack", &id, "--reason", "on it"],
        &server.url,
        token,
    );
    assert!(ok && out.contains("acknowledged"), "{out}");
    let (ok, out) = cli(&["incidents", "show", &id], &server.url, token);
    assert!(
        ok && out.contains("open -> acknowledged") && out.contains("on it"),
        "{out}"
    );
    server.wait_for_output("open → acknowledged by dev-admin (on it)");
    let (ok, out) = cli(&["incidents", "ack", &id], &server.url, token);
    assert!(!ok && out.contains("illegal_transition"), "{out}");
    let (ok, out) = cli(&["incidents", "triage", &id], &server.url, token);
    assert!(
        ok && out.contains("Likely cause: Requests are slow") && out.contains("Next:"),
        "{out}"
    );
    server.wait_for_output("🔎 Triage by dev-admin");

    let (ok, out) = cli(&["send-test-alert"], &server.url, token);
    assert!(ok && out.contains("opened"), "{out}");
    let (ok, out) = cli(&["incidents", "resolve", &id], &server.url, token);
    assert!(ok && out.contains("resolved"), "{out}");

    let res = http
        .get(format!("{}/nope", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = http
        .get(format!("{}/v1/incidents", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn data_and_the_generated_dev_key_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path(), None);
    let token = std::fs::read_to_string(dir.path().join("dev-token")).unwrap();
    let (ok, out) = cli(&["send-test-alert"], &first.url, &token);
    assert!(ok, "{out}");
    drop(first); // killed, not shut down cleanly

    let second = start(dir.path(), None);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("dev-token")).unwrap(),
        token,
        "the key is kept"
    );
    let (ok, out) = cli(&["incidents", "list"], &second.url, &token);
    assert!(ok && out.contains("payments-api 5xx rate"), "{out}");
    let (ok, out) = cli(&["send-test-alert"], &second.url, &token);
    assert!(ok, "{out}");
    let (_, list) = cli(&["incidents", "list"], &second.url, &token);
    assert_eq!(
        list.lines().filter(|l| l.starts_with("inc_")).count(),
        1,
        "still one incident: {list}"
    );
}

#[test]
fn client_commands_explain_a_missing_server() {
    let (ok, out) = cli(&["incidents", "list"], "http://127.0.0.1:9", "fw_x");
    assert!(!ok && out.contains("cannot reach"), "{out}");
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> Value {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Group commit keeps every answer true: 32 senders post new alerts while
/// the server is killed (no shutdown); after a restart, every webhook that
/// was answered `202` has its incident and its kept envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answered_webhook_survives_a_kill_under_32_concurrent_senders() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let token = "fw_e2e_crash_token_0123456789";
    let server = start(dir.path(), Some(token));
    let url = server.url.clone();
    let http = reqwest::Client::new();
    // (incident id, envelope sha256) of every answered webhook.
    let answered = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let mut senders = Vec::new();
    for s in 0..32 {
        let (http, url, answered) = (http.clone(), url.clone(), answered.clone());
        senders.push(tokio::spawn(async move {
            for i in 0.. {
                let alert = json!({"title": format!("crash {s}-{i}"), "severity": "warning",
                                   "fingerprint": format!("crash-{s}-{i}")});
                let Ok(res) = http
                    .post(format!("{url}/v1/alerts/generic"))
                    .bearer_auth(token)
                    .json(&alert)
                    .send()
                    .await
                else {
                    break;
                };
                if res.status() != 202 {
                    break;
                }
                let Ok(report) = res.json::<Value>().await else {
                    break;
                };
                answered.lock().unwrap().push((
                    report["incidents"][0].as_str().unwrap().to_owned(),
                    report["envelope_sha256"].as_str().unwrap().to_owned(),
                ));
            }
        }));
    }
    // Kill it mid-load, once a few hundred webhooks were answered.
    for _ in 0..600 {
        if answered.lock().unwrap().len() >= 300 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(server);
    for t in senders {
        t.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= 300, "only {} answered", answered.len());

    let server = start(dir.path(), Some(token));
    for (id, _) in &answered {
        let res = http
            .get(format!("{}/v1/incidents/{id}", server.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "answered incident {id} was lost");
    }
    let mut kept = std::collections::HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page = format!(
            "{}/v1/dossier/events?provider=generic&limit=200",
            server.url
        );
        if let Some(c) = &cursor {
            page.push_str(&format!("&cursor={c}"));
        }
        let body = get_json(&http, &page, token).await;
        for item in body["items"].as_array().unwrap() {
            kept.insert(
                item["sha256"].as_str().unwrap().to_owned(),
                item["id"].as_str().unwrap().to_owned(),
            );
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    for (_, sha) in &answered {
        let id = kept
            .get(sha)
            .unwrap_or_else(|| panic!("no dossier item for answered webhook {sha}"));
        let event = get_json(
            &http,
            &format!("{}/v1/dossier/events/{id}", server.url),
            token,
        )
        .await;
        assert!(
            event["envelope"]["body"].is_object(),
            "the envelope of answered webhook {sha} was lost: {event}"
        );
    }
}

/// A playbook whose one request reaches nothing: `firewatch dev`'s egress
/// guard refuses loopback. A read-only step fails its dry-run; any other
/// fails the run at its step.
fn unreachable_playbook(name: &str, read_only: bool) -> String {
    let method = if read_only { "GET" } else { "POST" };
    format!(
        r#"
name: {name}
title: Reach a target that is not there
match:
  labels: {{ service: "*" }}
risk: low
approval: never
steps:
  - name: reach
    kind: http
    read_only: {read_only}
    request: {{ method: {method}, url: "http://127.0.0.1:9/reach" }}
    expect: {{ status: [200] }}
"#
    )
}

#[tokio::test]
async fn the_cli_says_a_redelivery_changed_nothing_and_exits_with_a_run_s_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let playbooks = dir.path().join("playbooks");
    std::fs::create_dir(&playbooks).unwrap();
    std::fs::write(
        playbooks.join("probe.yaml"),
        unreachable_playbook("probe-unreachable", true),
    )
    .unwrap();
    std::fs::write(
        playbooks.join("poke.yaml"),
        unreachable_playbook("poke-unreachable", false),
    )
    .unwrap();
    let token = "fw_e2e_cli_token_0123456789";
    let server = start_with(
        &dir.path().join("data"),
        Some(token),
        &["--playbooks", playbooks.to_str().unwrap()],
    );
    let (ok, first) = cli(&["send-test-alert"], &server.url, token);
    assert!(ok && first.contains("-> opened"), "{first}");
    let (ok, again) = cli(&["send-test-alert"], &server.url, token);
    assert!(ok, "{again}");
    assert!(
        again.contains("nothing changed") && !again.contains("-> opened"),
        "a redelivery does not read as if it opened something: {again}"
    );
    let id = first
        .split_whitespace()
        .find(|w| w.starts_with("inc_"))
        .unwrap()
        .to_owned();

    let (ok, out) = cli(
        &["playbooks", "dry-run", &id, "probe-unreachable"],
        &server.url,
        token,
    );
    assert!(!ok, "a failed dry-run exits non-zero: {out}");
    assert!(out.contains("dry_run_failed"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("1. reach [read-only]: GET") && l.ends_with(')')),
        "the read-only step shows what its check found: {out}"
    );

    let dry_run = || {
        let (ok, out) = cli(
            &["playbooks", "dry-run", &id, "poke-unreachable"],
            &server.url,
            token,
        );
        assert!(ok, "{out}");
        out.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .find(|w| w.starts_with("run_"))
            .unwrap_or_else(|| panic!("no run id in {out}"))
            .to_owned()
    };
    let run = dry_run();
    // Every read answers JSON with --json, parsed back here.
    let json = |args: &[&str]| -> Value {
        let (ok, out) = cli(args, &server.url, token);
        assert!(ok, "{args:?}: {out}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    };
    assert_eq!(
        json(&["playbooks", "show", &run, "--json"])["state"],
        "dry_run_ok"
    );
    let listed = json(&["incidents", "list", "--json"]);
    assert_eq!(listed["items"][0]["id"], id.as_str(), "{listed}");
    let shown = json(&["incidents", "show", &id, "--json"]);
    assert_eq!(shown["incident"]["id"], id.as_str());
    assert!(shown["timeline"].as_array().is_some_and(|t| !t.is_empty()));
    assert!(json(&["keys", "list", "--json"])["items"].is_array());
    assert!(json(&["playbooks", "list", "--json"])["items"].is_array());

    let (ok, out) = cli(&["playbooks", "run", &run, "--follow"], &server.url, token);
    assert!(!ok, "a run that fails exits non-zero with --follow: {out}");
    assert!(out.contains("failed"), "{out}");

    // With --json, the run as it ended is the answer, and the exit says how.
    let again = dry_run();
    let followed = Command::new(BIN)
        .args(["playbooks", "run", &again, "--follow", "--json"])
        .args(["--url", &server.url, "--token", token])
        .output()
        .unwrap();
    assert!(!followed.status.success());
    let ended: Value = serde_json::from_slice(&followed.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&followed.stdout)));
    assert_eq!(ended["id"], again.as_str());
    assert_eq!(ended["state"], "failed", "{ended}");
}

#[test]
fn the_banner_s_first_alert_command_works_as_printed_whatever_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    // A data dir whose path has a space: the banner quotes it.
    let server = start(&dir.path().join("my data"), None);
    let banner = server.wait_for_output("firewatch incidents list");
    let printed = |cmd: &str| -> Vec<String> {
        let line = banner
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(cmd))
            .unwrap_or_else(|| panic!("no {cmd:?} in {banner}"));
        words(line).into_iter().skip(1).collect()
    };
    // Run from another directory, with no key given: the printed flags are
    // enough to find the dev key.
    for (cmd, expect) in [
        ("firewatch send-test-alert", "-> opened"),
        ("Then: firewatch incidents list", "payments-api"),
    ] {
        let args = printed(cmd);
        let args = if cmd.starts_with("Then") {
            &args[1..]
        } else {
            &args[..]
        };
        let out = Command::new(BIN)
            .args(args)
            .env_remove("FIREWATCH_TOKEN")
            .env_remove("FIREWATCH_URL")
            .current_dir(elsewhere.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains(expect),
            "{args:?}: {text}"
        );
    }
    // Without the flag, the error says which flag to add.
    let out = Command::new(BIN)
        .args(["incidents", "list", "--url", &server.url])
        .env_remove("FIREWATCH_TOKEN")
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("--data-dir"),
        "{text}"
    );
}

/// The README's "A first incident, step by step" block, run as written
/// (each `cargo run --profile local -p firewatch --` is this binary, and
/// `inc_...` the incident the first command opened), so the README cannot
/// drift from what the commands do.
#[test]
fn the_readme_s_first_incident_steps_run_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme
        .split("## A first incident, step by step")
        .nth(1)
        .expect("the README has its first-incident section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the section starts with a sh block");
    let prefix = "cargo run --profile local -p firewatch -- ";
    let commands: Vec<&str> = block
        .lines()
        .map(|l| l.split("   #").next().unwrap().trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(commands.len() >= 5, "{block}");

    // `firewatch dev` in a directory, the commands run from that directory.
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join(".firewatch"), None);
    let mut incident: Option<String> = None;
    for command in commands {
        let args = command
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("a step that is not a firewatch command: {command}"));
        let args: Vec<String> = words(args)
            .into_iter()
            .map(|w| match (&incident, w.as_str()) {
                (Some(id), "inc_...") => id.clone(),
                _ => w,
            })
            .collect();
        let out = Command::new(BIN)
            .args(&args)
            .env("FIREWATCH_URL", &server.url)
            .env_remove("FIREWATCH_TOKEN")
            .current_dir(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "`{command}` failed: {text}");
        if incident.is_none() {
            incident = text
                .split_whitespace()
                .find(|w| w.starts_with("inc_"))
                .map(str::to_owned);
        }
    }
    assert!(incident.is_some(), "the first step opened an incident");
}

/// Splits a command line into words, honouring double quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[test]
fn incidents_watch_prints_new_incidents_and_their_changes_as_they_happen() {
    let dir = tempfile::tempdir().unwrap();
    let token = "fw_e2e_watch_token_0123456789";
    let server = start(dir.path(), Some(token));
    let mut watch = Command::new(BIN)
        .args(["incidents", "watch", "--url", &server.url, "--token", token])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    let wait_for = |prefix: &str, needle: &str| {
        for _ in 0..100 {
            if lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.starts_with(prefix) && l.contains(needle))
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "no {prefix:?} line with {needle:?}: {:?}",
            lines.lock().unwrap()
        );
    };
    let (ok, out) = cli(&["send-test-alert"], &server.url, token);
    assert!(ok, "{out}");
    let id = out
        .split_whitespace()
        .find(|w| w.starts_with("inc_"))
        .unwrap();
    wait_for("new", id);
    let (ok, out) = cli(&["incidents", "ack", id], &server.url, token);
    assert!(ok, "{out}");
    wait_for("changed", "acknowledged");
    let _ = watch.kill();
    let _ = watch.wait();
    let header = lines.lock().unwrap()[0].clone();
    assert!(
        header.trim_start().starts_with("ID") && header.contains("STATE"),
        "{header}"
    );

    // With --json: one object a line, the active incident first.
    let mut watch = Command::new(BIN)
        .args([
            "incidents",
            "watch",
            "--json",
            "--url",
            &server.url,
            "--token",
            token,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(watch.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = watch.kill();
    let _ = watch.wait();
    let event: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(event["event"], "new", "{first}");
    assert_eq!(event["incident"]["id"], id, "{first}");
    assert_eq!(event["incident"]["state"], "acknowledged");
}

#[test]
fn the_cli_walks_an_incident_through_every_state_with_comments_and_snooze() {
    let dir = tempfile::tempdir().unwrap();
    let token = "fw_e2e_states_token_0123456789";
    let server = start(dir.path(), Some(token));
    let run = |args: &[&str]| -> String {
        let (ok, out) = cli(args, &server.url, token);
        assert!(ok, "{args:?}: {out}");
        out
    };
    let out = run(&["send-test-alert"]);
    let id = incident_id(&out);
    assert!(run(&["incidents", "ack", &id]).contains("acknowledged"));
    assert!(run(&["incidents", "mitigate", &id, "--reason", "rolled back"]).contains("mitigated"));
    assert!(
        run(&["incidents", "comment", &id, "watching the error rate"]).contains("comment added")
    );
    assert!(run(&["incidents", "snooze", &id, "--for", "30m"]).contains("snoozed until"));
    assert!(run(&["incidents", "resolve", &id]).contains("resolved"));
    assert!(run(&["incidents", "reopen", &id]).contains("open"));
    assert!(run(&["incidents", "resolve", &id]).contains("resolved"));
    assert!(run(&["incidents", "close", &id]).contains("closed"));
    let shown = run(&["incidents", "show", &id]);
    assert!(
        shown.contains("watching the error rate") && shown.contains("rolled back"),
        "{shown}"
    );
    let (ok, out) = cli(
        &["incidents", "snooze", &id, "--for", "soon"],
        &server.url,
        token,
    );
    assert!(!ok && out.contains("invalid_snooze"), "{out}");
}

/// The first incident id (`inc_...`) a command printed.
fn incident_id(out: &str) -> String {
    out.split_whitespace()
        .find(|w| w.starts_with("inc_"))
        .unwrap_or_else(|| panic!("no incident id in {out:?}"))
        .to_owned()
}

/// Sends `body` with `method` to the server's `path` as the dev admin.
fn admin_call(server: &Server, token: &str, method: &str, path: &str, body: Value) -> Value {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let res = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", server.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "{method} {path}: {}",
            res.status()
        );
        res.json().await.unwrap_or(Value::Null)
    })
}

/// Every API family beyond incidents and playbooks has client commands:
/// tables with headers, `--json` answers that parse back, and non-zero
/// exits for what fails.
#[test]
fn the_cli_covers_heartbeats_smoke_checks_silences_pipelines_oncall_escalation_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let token = "fw_e2e_families_token_0123456789";
    // The smoke check below probes this very server.
    let server = start_with(dir.path(), Some(token), &["--egress-allow", "127.0.0.1"]);
    // A key given by FIREWATCH_DEV_TOKEN is kept where the commands look.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("dev-token")).unwrap(),
        token
    );
    let run = |args: &[&str]| -> String {
        let (ok, out) = cli(args, &server.url, token);
        assert!(ok, "{args:?}: {out}");
        out
    };
    let json = |args: &[&str]| -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = run(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    };
    let fails = |args: &[&str], why: &str| {
        let (ok, out) = cli(args, &server.url, token);
        assert!(
            !ok && out.contains(why),
            "{args:?} should fail with {why}: {out}"
        );
    };

    // Heartbeats.
    let hb = json(&[
        "heartbeats",
        "create",
        "--name",
        "nightly-backup",
        "--period",
        "1h",
    ]);
    let hb_id = hb["id"].as_str().unwrap().to_owned();
    assert!(hb["ping_url"].as_str().unwrap().contains("/ping/"));
    let list = run(&["heartbeats", "list"]);
    assert!(
        list.starts_with("ID  ") && list.contains("nightly-backup"),
        "{list}"
    );
    assert!(list.contains("every 1h"), "{list}");
    assert_eq!(
        json(&["heartbeats", "list"])["items"][0]["id"],
        hb_id.as_str()
    );
    assert!(run(&["heartbeats", "pause", &hb_id]).contains("is now paused"));
    assert!(run(&["heartbeats", "resume", &hb_id]).contains("is now new"));
    assert!(run(&["heartbeats", "show", &hb_id]).contains("no pings yet"));
    assert!(run(&["heartbeats", "delete", &hb_id]).contains("deleted"));
    fails(&["heartbeats", "show", &hb_id], "404");

    // Smoke checks: one that passes (this server's /health) and one that
    // does not; `run` exits with the check's outcome.
    let file = dir.path().join("check.json");
    let check = |name: &str, path: &str| json!({"name": name, "interval": "1h", "url": format!("{}{path}", server.url), "expected_status": 200});
    std::fs::write(&file, check("health", "/health").to_string()).unwrap();
    let ok_check = json(&["smoke-checks", "create", "--file", file.to_str().unwrap()]);
    let ok_id = ok_check["id"].as_str().unwrap().to_owned();
    std::fs::write(&file, check("missing", "/no-such-page").to_string()).unwrap();
    let bad_id = json(&["smoke-checks", "create", "--file", file.to_str().unwrap()])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(run(&["smoke-checks", "run", &ok_id]).contains("passed"));
    fails(&["smoke-checks", "run", &bad_id], "failed");
    let runs = json(&["smoke-checks", "runs", &bad_id]);
    assert_eq!(runs["items"][0]["ok"], false, "{runs}");
    let list = run(&["smoke-checks", "list"]);
    assert!(list.contains("health") && list.contains("ORIGIN"), "{list}");
    assert!(run(&["smoke-checks", "delete", &bad_id]).contains("deleted"));

    // Silences.
    let s = json(&[
        "silences",
        "create",
        "alertname=DiskFull",
        "team!=db",
        "--for",
        "2h",
        "--comment",
        "db maintenance",
    ]);
    let silence = s["id"].as_str().unwrap().to_owned();
    assert_eq!(s["state"], "active");
    let list = run(&["silences", "list"]);
    assert!(list.contains("alertname=DiskFull team!=db"), "{list}");
    assert_eq!(
        json(&["silences", "list"])["items"][0]["id"],
        silence.as_str()
    );
    assert!(run(&["silences", "expire", &silence]).contains("expired"));
    fails(
        &[
            "silences",
            "create",
            "alertname=X",
            "--for",
            "soon",
            "--comment",
            "c",
        ],
        "duration",
    );

    // Pipelines: a failed run reported, then read back every way.
    admin_call(
        &server,
        token,
        "POST",
        "/v1/pipelines/runs",
        json!({
            "pipeline": "etl/orders", "run_id": "r-1", "status": "failed", "error": "missing input",
            "started_at": "2026-12-01T02:00:00Z", "ended_at": "2026-12-01T02:05:00Z"
        }),
    );
    assert!(run(&["pipelines", "list"]).contains("etl/orders"));
    assert_eq!(
        json(&["pipelines", "show", "etl/orders"])["state"],
        "failed"
    );
    assert!(run(&["pipelines", "runs", "etl/orders"]).contains("missing input"));
    assert!(run(&["pipelines", "summary"]).contains("failing: etl/orders"));
    assert!(run(&["pipelines", "impact", "etl/orders"]).contains("no downstream consumers"));
    assert!(run(&["pipelines", "explain", "r-1"]).contains("likely cause:"));
    fails(&["pipelines", "show", "etl/nothing"], "404");

    // On-call and escalation.
    std::fs::write(
        &file,
        json!({
            "name": "Primary", "time_zone": "Europe/Berlin",
            "rotations": [{"name": "primary", "participants": ["alice@example.com", "bob@example.com"],
                           "handoff": "09:00", "length": "weekly", "start": "2026-11-30"}]
        })
        .to_string(),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    assert!(run(&["oncall", "set", "primary", "--file", f]).contains("primary saved (version 1)"));
    fails(&["oncall", "now", "nope"], "404");
    assert!(run(&["oncall", "list"]).contains("primary (weekly)"));
    assert!(run(&[
        "oncall",
        "override",
        "primary",
        "--who",
        "carol@example.com",
        "--for",
        "2h"
    ])
    .contains("carol@example.com is on call"));
    let now = json(&["oncall", "now", "primary"]);
    assert_eq!(now["on_call"][0]["who"], "carol@example.com", "{now}");
    assert_eq!(now["on_call"][0]["overridden"], true);
    std::fs::write(
        &file,
        json!({
            "name": "Default",
            "steps": [{"after_minutes": 15, "action": "mention_oncall", "schedule": "primary"}]
        })
        .to_string(),
    )
    .unwrap();
    assert!(run(&["escalation", "set", "default", "--file", f]).contains("default saved"));
    assert_eq!(
        json(&["escalation", "show", "default"])["steps"][0]["action"],
        "mention_oncall"
    );
    assert!(run(&["escalation", "list"]).contains("Default"));
    let shown = run(&["escalation", "show", "default"]);
    assert!(
        shown.contains("mention_oncall") && shown.contains("primary"),
        "{shown}"
    );
    fails(&["escalation", "show", "nope"], "404");
    assert!(run(&["escalation", "delete", "default"]).contains("deleted"));
    fails(&["escalation", "show", "default"], "404");

    // Dead letters: none yet; retrying an unknown one fails.
    assert!(run(&["dead-letters", "list"]).contains("no dead letters"));
    assert!(json(&["dead-letters", "list"])["items"]
        .as_array()
        .unwrap()
        .is_empty());
    fails(&["dead-letters", "retry", "nope"], "404");

    // Triage feedback.
    let out = run(&["send-test-alert"]);
    let id = incident_id(&out);
    let report = json(&["incidents", "triage", &id]);
    let rid = report["id"].as_str().unwrap();
    let vote = json(&[
        "incidents",
        "feedback",
        &id,
        rid,
        "--not-helpful",
        "--comment",
        "wrong host",
    ]);
    assert_eq!(vote["helpful"], false, "{vote}");
    fails(
        &["incidents", "feedback", &id, "trg_nope", "--helpful"],
        "404",
    );

    // Lists page with the --cursor they print.
    admin_call(
        &server,
        token,
        "POST",
        "/v1/alerts/generic",
        json!({"title": "queue backing up", "fingerprint": "queue-1"}),
    );
    let first = run(&["incidents", "list", "--limit", "1"]);
    let cursor = first
        .split("--cursor ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no cursor in {first}"));
    let second = run(&["incidents", "list", "--limit", "1", "--cursor", cursor]);
    assert!(
        first.contains("queue backing up") && second.contains(&id),
        "{first}{second}"
    );
}

/// The terminal thread as a reader follows it, with what changes from run
/// to run made constant: incident ids become `inc_A`, `inc_B` (and their
/// short-id tags `A`, `B`) in the order they first appear, run ids
/// `run_1`, times `<time>`, latencies `<n> ms`. A run message's edit shows
/// the run as it is when the edit is sent, which may be a step later when
/// steps are quick: while it runs (or rolls back) the edit reads
/// `<running or succeeded>` (`<rolling back or rolled back>`).
fn normalise_transcript(out: &str) -> Vec<String> {
    // Every incident and run id, in the order they first appear.
    let mut ids: Vec<String> = Vec::new();
    for prefix in ["inc_", "run_"] {
        let mut rest = out;
        while let Some(at) = rest.find(prefix) {
            let id: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if id.len() == prefix.len() + 26 && !ids.contains(&id) {
                ids.push(id.clone());
            }
            rest = &rest[at + prefix.len()..];
        }
    }
    let (mut incidents, mut runs) = (0u8, 0);
    let names: Vec<(String, String, String)> = ids
        .iter()
        .map(|id| {
            let short = id[id.len() - 6..].to_uppercase();
            if id.starts_with("inc_") {
                incidents += 1;
                let n = ((b'A' + incidents - 1) as char).to_string();
                (id.clone(), format!("inc_{n}"), n)
            } else {
                runs += 1;
                (id.clone(), format!("run_{runs}"), short)
            }
        })
        .collect();
    out.lines()
        .skip_while(|l| !l.contains("┌─ new incident thread"))
        .map(|line| {
            let mut l = line.to_owned();
            for (id, name, tag) in &names {
                l = l.replace(id.as_str(), name);
                if id.starts_with("inc_") {
                    let short = id[id.len() - 6..].to_uppercase();
                    if let Some(rest) = l.strip_prefix(&format!("{short} ")) {
                        l = format!("{tag} {rest}");
                    }
                }
            }
            regex_lite_replace(&l)
        })
        .collect()
}

/// Times and latencies made constant (see [`normalise_transcript`]).
fn regex_lite_replace(l: &str) -> String {
    let mut out = String::new();
    let words: Vec<&str> = l.split(' ').collect();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let is_date = w.len() == 10 && w.as_bytes()[4] == b'-' && w.as_bytes()[7] == b'-';
        let is_time = |s: &str| {
            s.len() >= 5 && s.as_bytes()[2] == b':' && s[..2].bytes().all(|b| b.is_ascii_digit())
        };
        let piece = if is_date && i + 1 < words.len() && is_time(words[i + 1]) {
            i += 1;
            "<time>".to_owned()
        } else if w.bytes().all(|b| b.is_ascii_digit())
            && words.get(i + 1).is_some_and(|n| n.starts_with("ms"))
        {
            "<n>".to_owned()
        } else {
            w.to_owned()
        };
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&piece);
        i += 1;
    }
    let edit = " now: Playbook restart-service · ";
    if let Some(at) = out.find(edit) {
        let (head, state) = out.split_at(at + edit.len());
        for racing in [["running", "succeeded"], ["rolling back", "rolled back"]] {
            if racing.iter().any(|s| state.starts_with(&format!("{s} · "))) {
                return format!("{head}<{}>", racing.join(" or "));
            }
        }
    }
    out
}

/// The README's first playbook, run as written: the example
/// `restart-service` playbook against the demo target `firewatch dev`
/// serves, a refused self-approval, approval by a second person's key, the
/// run followed to its end, the rollback. A second incident interleaves
/// with the first; the terminal thread of both is checked line by line.
#[test]
fn the_readme_s_first_playbook_runs_as_written_and_the_terminal_thread_reads_line_by_line() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let block = readme
        .split("A first playbook, with no service of your own")
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|b| b.split("```").next())
        .expect("the README has its first-playbook block");
    // Each step: its words, and whether the README says it is refused.
    let steps: Vec<(Vec<String>, bool)> = block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (command, comment) = l.split_once("   #").unwrap_or((l, ""));
            let args = command
                .trim()
                .strip_prefix("firewatch ")
                .unwrap_or_else(|| panic!("a step that is not a firewatch command: {l}"));
            (words(args), comment.contains("refused"))
        })
        .collect();
    assert!(steps.len() >= 7, "{block}");

    // `firewatch dev` with the examples, the commands run from its directory.
    let dir = tempfile::tempdir().unwrap();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../playbooks/examples");
    let server = start_with(
        &dir.path().join(".firewatch"),
        None,
        &["--playbooks", examples],
    );
    let banner =
        server.wait_for_output("demo target for the restart-service playbook: http://localhost:");
    assert!(
        banner.contains("egress (playbook steps, smoke checks): public addresses and localhost:"),
        "{banner}"
    );
    let firewatch = |args: &[String]| -> (bool, String) {
        let out = Command::new(BIN)
            .args(args)
            .env("FIREWATCH_URL", &server.url)
            .env_remove("FIREWATCH_TOKEN")
            .current_dir(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let token = std::fs::read_to_string(dir.path().join(".firewatch/dev-token")).unwrap();
    // Each step waits for its lines in the thread, so the order is the
    // order of the steps.
    let mut printed = 0;
    let mut wait_lines = |needle: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let out = server.output.lock().unwrap().clone();
            if let Some(at) = out[printed..].find(needle) {
                printed = printed + at + out[printed + at..].find('\n').unwrap_or(0) + 1;
                std::thread::sleep(std::time::Duration::from_millis(150));
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in:\n{out}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };

    let (mut incident, mut run, mut second_key) = (None::<String>, None::<String>, None::<String>);
    for (i, (args, refused)) in steps.iter().enumerate() {
        let args: Vec<String> = args
            .iter()
            .map(|w| match w.as_str() {
                "inc_..." => incident.clone().expect("an incident by now"),
                "run_..." => run.clone().expect("a run by now"),
                "fw_..." => second_key.clone().expect("a second key by now"),
                _ => w.clone(),
            })
            .collect();
        let (ok, out) = firewatch(&args);
        let shown = args.join(" ");
        if *refused {
            assert!(!ok, "`{shown}` should be refused: {out}");
            assert!(
                out.contains("four eyes") && out.contains("--person"),
                "{out}"
            );
            continue;
        }
        assert!(ok, "`{shown}` failed: {out}");
        let find = |prefix: &str| {
            out.split_whitespace()
                .find(|w| w.starts_with(prefix))
                .map(str::to_owned)
        };
        if args[0] == "send-test-alert" {
            incident = find("inc_");
            wait_lines("[Acknowledge]");
            // A second incident, and a change to each, between the steps.
            assert_eq!(i, 0, "the test alert comes first");
            admin_call(
                &server,
                token.trim(),
                "POST",
                "/v1/alerts/generic",
                json!({
                    "title": "orders queue backing up", "severity": "sev3",
                    "fingerprint": "orders-queue", "labels": {"queue": "orders"}
                }),
            );
            wait_lines("[Acknowledge]");
            let a = incident.clone().unwrap();
            assert!(
                firewatch(&[
                    "incidents".into(),
                    "ack".into(),
                    a.clone(),
                    "--reason".into(),
                    "looking".into()
                ])
                .0
            );
            wait_lines("card now:");
            let list = firewatch(&["incidents".into(), "list".into(), "--json".into()]).1;
            let b = serde_json::from_str::<Value>(&list).unwrap()["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .find(|id| *id != a)
                .unwrap();
            assert!(
                firewatch(&[
                    "incidents".into(),
                    "comment".into(),
                    b,
                    "consumer lag is growing".into()
                ])
                .0
            );
            wait_lines("💬");
        } else if args[..2] == ["playbooks", "dry-run"] {
            assert!(
                out.contains("awaiting approval") && out.contains("✅ 1. service exists"),
                "{out}"
            );
            run = find("run_");
            wait_lines(" now: Playbook");
        } else if args[..2] == ["keys", "create"] {
            second_key = find("fw_");
        } else if args[..2] == ["playbooks", "approve"] {
            assert!(out.contains("approved"), "{out}");
            wait_lines(" now: Playbook");
        } else if args[..2] == ["playbooks", "run"] {
            assert!(out.contains("succeeded"), "{out}");
            wait_lines("succeeded: step 3/3");
            wait_lines(" now: Playbook");
        } else if args[..2] == ["playbooks", "rollback"] {
            assert!(out.contains("rolled_back"), "{out}");
            wait_lines("rolled back: rollback step 1/1");
            wait_lines(" now: Playbook");
        }
    }
    assert!(
        second_key.is_some() && run.is_some(),
        "the README approved a run with a second key"
    );

    let raw = server.output.lock().unwrap().clone();
    let last_edit = raw
        .lines()
        .rev()
        .find(|l| l.contains(" now: Playbook"))
        .unwrap();
    assert!(
        last_edit.contains("rolled back · medium risk"),
        "{last_edit}"
    );
    assert!(!raw.contains("demo_"), "the demo token never shows");
    let got = normalise_transcript(&raw);
    if std::env::var("PRINT_TRANSCRIPT").is_ok() {
        println!("{}", got.join("\n"));
    }
    let want: Vec<&str> = TRANSCRIPT.trim().lines().collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g,
            w,
            "line {} of the thread differs; the whole:\n{}",
            i + 1,
            got.join("\n")
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "the whole thread:\n{}",
        got.join("\n")
    );
}

/// What the terminal shows for the steps above, normalised.
const TRANSCRIPT: &str = r#"
A ┌─ new incident thread ─────────────
A │ [sev1] open · alertmanager · inc_A · seen 1×
A │ payments-api 5xx rate above 5% for 10 minutes
A │ 5xx ratio is 7.3% (threshold 5%).
A │ alertname=HighErrorRate service=payments-api namespace=checkout instance=payments-api-7d9f8c6b5-x2x9k:8080
A │ source: http://prometheus.example:9090/graph?g0.expr=job%3Apayments_5xx%3Aratio5m+%3E+0.05
A │ runbook: https://runbooks.example/payments/high-error-rate
A │ [Acknowledge] [Resolve] [Triage] [Playbooks] [Silence 1h] [Snooze 30m] [Snooze 2h]
B ┌─ new incident thread ─────────────
B │ [sev3] open · generic · inc_B · seen 1×
B │ orders queue backing up
B │ [Acknowledge] [Resolve] [Triage] [Playbooks] [Silence 1h] [Snooze 30m] [Snooze 2h]
A ├─ open → acknowledged by dev-admin (looking)
A │ card now: [sev1] acknowledged · seen 1× · inc_A
B ├─ 💬 consumer lag is growing by dev-admin
A ├─ ✅ Playbook `restart-service` (run_1) dry run ok: 3 steps, 1 read-only checked · by dev-admin
A ├─┬─ message 2
A │ │ Playbook restart-service · awaiting approval · medium risk
A │ │ Restart a service through its admin API
A │ │ Run run_1 for inc_A · requested by dev-admin
A │ │ Approval open until <time> UTC
A │ │ Params: mode=graceful service=payments-api
A │ │ Steps:
A │ │ ✅ 1. service exists [read-only]: GET ***ADMIN_API***/services/payments-api (status 200 in <n> ms)
A │ │ · 2. restart: POST ***ADMIN_API***/services/payments-api/restart
A │ │ · 3. healthy again: GET ***ADMIN_API***/services/payments-api/health
A │ │ Rollback:
A │ │ · 1. restore previous mode: POST ***ADMIN_API***/services/payments-api/rollback
A │ │ Last: approval needed by <time> UTC
A │ │ [Approve] [Reject]
A ├─ ✋ Playbook `restart-service` (run_1) awaiting approval: approval needed by <time> UTC · by dev-admin
A ├─ message 2 now: Playbook restart-service · awaiting approval · medium risk [Approve] [Reject]
A ├─ ✅ Playbook `restart-service` (run_1) approved: approved by bob · by bob
A ├─ message 2 now: Playbook restart-service · approved · medium risk [Run] [Cancel]
A ├─ ▶️ Playbook `restart-service` (run_1) running: step 1/3: service exists · by dev-admin
A ├─ message 2 now: Playbook restart-service · <running or succeeded>
A ├─ ▶️ Playbook `restart-service` (run_1) running: step 1/3 `service exists` ok (status 200 in <n> ms); step 2/3: restart · by firewatch
A ├─ message 2 now: Playbook restart-service · <running or succeeded>
A ├─ ▶️ Playbook `restart-service` (run_1) running: step 2/3 `restart` ok (status 202 in <n> ms); step 3/3: healthy again · by firewatch
A ├─ message 2 now: Playbook restart-service · <running or succeeded>
A ├─ ✅ Playbook `restart-service` (run_1) succeeded: step 3/3 `healthy again` ok (status 200 in <n> ms) · by firewatch
A ├─ message 2 now: Playbook restart-service · <running or succeeded>
A ├─ ▶️ Playbook `restart-service` (run_1) rolling back: rollback step 1/1: restore previous mode · by dev-admin
A ├─ message 2 now: Playbook restart-service · <rolling back or rolled back>
A ├─ ✅ Playbook `restart-service` (run_1) rolled back: rollback step 1/1 `restore previous mode` ok (status 202 in <n> ms) · by firewatch
A ├─ message 2 now: Playbook restart-service · <rolling back or rolled back>
"#;
