//! Playbook definitions: one YAML file per playbook, parsed and validated at
//! load. A file that does not validate is reported (file, line, field) and
//! skipped whole; nothing of it is half-loaded.

use std::collections::BTreeMap;
use std::path::Path;

use firewatch_types::Severity;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::egress::{self, PinnedOrigin};
use crate::template;

/// Largest definition file read.
pub const MAX_FILE_BYTES: usize = 64 * 1024;
/// Most steps in `steps` (and again in `rollback`).
pub const MAX_STEPS: usize = 20;
/// Longest wait a `wait_until` step may set.
pub const MAX_WAIT_SECS: u64 = 6 * 3600;

/// A template string with the place it was written.
pub type Text = Spanned<String>;

/// One playbook, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub name: Text,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Offered for incidents that match all of these.
    #[serde(default, rename = "match")]
    pub matcher: Match,
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
    pub risk: Risk,
    /// `never`, `always` (the default) or `{ when: <expression> }`.
    #[serde(default)]
    pub approval: Option<Spanned<Approval>>,
    /// How long an approval request stays open (`30m`); default 30 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expires: Option<Text>,
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback: Vec<Step>,
}

/// Which incidents a playbook is offered for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<Severity>,
    /// `"*"`: present with any value; `/regex/`: matches; else exact.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Text>,
}

/// A parameter: its default (a template over the incident) and, optionally,
/// the values allowed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

/// When a run needs a second person's approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Approval {
    Always(ApprovalWord),
    /// A template expression over `params` and `incident`.
    When {
        when: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalWord {
    Never,
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Http,
    WaitUntil,
    GithubWorkflowDispatch,
    LambdaInvoke,
    Notify,
    /// Asks for the incident's tracker ticket (docs/TICKETS.md).
    Ticket,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::WaitUntil => "wait_until",
            Self::GithubWorkflowDispatch => "github_workflow_dispatch",
            Self::LambdaInvoke => "lambda_invoke",
            Self::Notify => "notify",
            Self::Ticket => "ticket",
        }
    }
}

/// One step. Which fields it needs depends on its kind (checked at load).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: Text,
    pub kind: Spanned<StepKind>,
    /// Runs during a dry-run as a preflight (only `http` and `wait_until`
    /// with a GET or HEAD request may be).
    #[serde(default)]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// `wait_until`: time between polls (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Text>,
    /// `http`: the request's timeout (default 10s); `wait_until`: how long
    /// to keep polling (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Text>,
    /// `github_workflow_dispatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<Text>,
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<Text>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Text>,
    /// `github_workflow_dispatch`: the token (a template, normally
    /// `{{ secrets.GITHUB_TOKEN }}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Text>,
    /// `lambda_invoke`: the function name or ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<Text>,
    /// `lambda_invoke`: the payload; every string in it is a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// `notify`: the message posted into the incident's thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
}

/// An HTTP request; every string is a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    pub method: Text,
    pub url: Text,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Text>,
    /// A JSON body; every string in it is a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
}

/// What the answer must be for the step to succeed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Allowed status codes (default: any 2xx).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<u16>,
    /// Fields of the JSON answer (dotted paths) and the values they must
    /// have.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub json: BTreeMap<String, serde_json::Value>,
}

/// Why a definition was refused: the file, the line and column, the field,
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{file}:{line}:{column}: {field}: {message}")]
pub struct DefinitionError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    /// The field, as a path (`steps[1].request.url`); empty for a syntax
    /// error.
    pub field: String,
    pub message: String,
}

impl Playbook {
    pub fn name(&self) -> &str {
        &self.name.value
    }

    /// Seconds an approval request stays open.
    pub fn approval_expires_secs(&self) -> u64 {
        self.approval_expires
            .as_ref()
            .and_then(|t| duration_secs(&t.value).ok())
            .unwrap_or(30 * 60)
    }

    /// The secret names any template of this playbook refers to.
    pub fn secret_names(&self) -> Vec<String> {
        let mut all = String::new();
        for t in self.templates() {
            all.push_str(&t.1);
            all.push('\n');
        }
        template::secret_names(&all)
    }

    /// Every template string with its field path and location, in order.
    fn templates(&self) -> Vec<(String, String, u64, u64)> {
        let mut out = Vec::new();
        let mut push = |path: String, t: &Text| {
            out.push((
                path,
                t.value.clone(),
                t.referenced.line(),
                t.referenced.column(),
            ));
        };
        for (k, p) in &self.params {
            if let Some(d) = &p.default {
                push(format!("params.{k}.default"), d);
            }
        }
        for (list, steps) in [("steps", &self.steps), ("rollback", &self.rollback)] {
            for (i, s) in steps.iter().enumerate() {
                let at = format!("{list}[{i}]");
                if let Some(r) = &s.request {
                    push(format!("{at}.request.method"), &r.method);
                    push(format!("{at}.request.url"), &r.url);
                    for (h, v) in &r.headers {
                        push(format!("{at}.request.headers.{h}"), v);
                    }
                }
                for (f, v) in [
                    ("owner", &s.owner),
                    ("repo", &s.repo),
                    ("workflow", &s.workflow),
                    ("ref", &s.git_ref),
                    ("token", &s.token),
                    ("function", &s.function),
                    ("text", &s.text),
                ] {
                    if let Some(v) = v {
                        push(format!("{at}.{f}"), v);
                    }
                }
                for (k, v) in &s.inputs {
                    push(format!("{at}.inputs.{k}"), v);
                }
            }
        }
        // JSON bodies and payloads: their strings carry no location of their
        // own, so they are placed at their step's name.
        for (list, steps) in [("steps", &self.steps), ("rollback", &self.rollback)] {
            for (i, s) in steps.iter().enumerate() {
                let line = (s.name.referenced.line(), s.name.referenced.column());
                let bodies = [
                    (
                        format!("{list}[{i}].request.json"),
                        s.request.as_ref().and_then(|r| r.json.as_ref()),
                    ),
                    (format!("{list}[{i}].payload"), s.payload.as_ref()),
                ];
                for (path, body) in bodies {
                    if let Some(v) = body {
                        template::walk_strings(v, &path, &mut |p, text| {
                            out_push(&mut out, p, text, line);
                        });
                    }
                }
            }
        }
        out
    }
}

fn out_push(out: &mut Vec<(String, String, u64, u64)>, path: &str, text: &str, at: (u64, u64)) {
    out.push((path.to_owned(), text.to_owned(), at.0, at.1));
}

pub use crate::units::duration_secs;

/// Parses and validates one definition. `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Playbook, DefinitionError> {
    let err = |line: u64, column: u64, field: &str, message: String| DefinitionError {
        file: file.to_owned(),
        line,
        column,
        field: field.to_owned(),
        message,
    };
    if text.len() > MAX_FILE_BYTES {
        return Err(err(
            1,
            1,
            "",
            format!("the file is over {} KB", MAX_FILE_BYTES / 1024),
        ));
    }
    let pb: Playbook = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
        let message = e.without_snippet().to_string();
        // The library's message starts with its own "line L column C: ".
        let message = message
            .split_once(": ")
            .filter(|(head, _)| head.starts_with("line ") || head.starts_with("error"))
            .map_or(message.clone(), |(_, m)| m.to_owned());
        let field = field_of(&message).unwrap_or_else(|| key_at(text, line, column));
        err(line, column, &field, message)
    })?;
    validate(&pb).map_err(|(line, column, field, message)| err(line, column, &field, message))?;
    Ok(pb)
}

/// The field a serde message names (`unknown field `x``, `missing field
/// `x``), for the error's field.
fn field_of(message: &str) -> Option<String> {
    for marker in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(rest) = message.split(marker).nth(1) {
            if let Some((name, _)) = rest.split_once('`') {
                return Some(name.to_owned());
            }
        }
    }
    None
}

/// The key written at a position: the key the column points into (a flow
/// mapping such as `{ a: 1, b: 2 }`), else the line's own key.
fn key_at(text: &str, line: u64, column: u64) -> String {
    let Some(l) = text.lines().nth(line.saturating_sub(1) as usize) else {
        return String::new();
    };
    let is_key = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let key_before_colon = |s: &str| -> Option<String> {
        let (k, _) = s.split_once(':')?;
        let k = k.trim().trim_start_matches("- ").trim();
        is_key(k).then(|| k.to_owned())
    };
    // The key whose value the column points at: the last `key:` before it.
    let upto: String = l.chars().take(column as usize).collect();
    let before = upto.rsplit([',', '{']).find_map(&key_before_colon);
    before
        .or_else(|| key_before_colon(l.trim_start().trim_start_matches("- ")))
        .unwrap_or_default()
}

type Invalid = (u64, u64, String, String);

/// Checks a definition that did not come through [`parse`] (the copy a
/// run keeps, first read from the compiled catalog): the same rules, so
/// the one that sends never trusts where a definition came from. Positions
/// are not known after a definition was stored; the error names the field.
pub fn check(pb: &Playbook) -> Result<(), String> {
    validate(pb).map_err(|(_, _, field, message)| {
        format!("the playbook definition is not valid: {field}: {message}")
    })
}

fn at<T>(s: &Spanned<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

fn invalid(pos: (u64, u64), field: impl Into<String>, message: impl Into<String>) -> Invalid {
    (pos.0, pos.1, field.into(), message.into())
}

fn validate(pb: &Playbook) -> Result<(), Invalid> {
    let name_ok = {
        let n = &pb.name.value;
        !n.is_empty()
            && n.len() <= 63
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !n.starts_with('-')
    };
    if !name_ok {
        return Err(invalid(
            at(&pb.name),
            "name",
            "must be 1-63 characters of a-z, 0-9 and '-', not starting with '-'",
        ));
    }
    if pb.steps.is_empty() {
        return Err(invalid(
            at(&pb.name),
            "steps",
            "a playbook needs at least one step",
        ));
    }
    for (list, steps) in [("steps", &pb.steps), ("rollback", &pb.rollback)] {
        if steps.len() > MAX_STEPS {
            return Err(invalid(
                at(&steps[MAX_STEPS].name),
                list,
                format!("at most {MAX_STEPS} steps"),
            ));
        }
        for (i, s) in steps.iter().enumerate() {
            validate_step(s, &format!("{list}[{i}]"))?;
        }
    }
    for (k, v) in &pb.matcher.labels {
        let t = &v.value;
        if t.len() >= 2 && t.starts_with('/') && t.ends_with('/') {
            regex_lite::Regex::new(&t[1..t.len() - 1]).map_err(|e| {
                invalid(
                    at(v),
                    format!("match.labels.{k}"),
                    format!("not a valid regex: {e}"),
                )
            })?;
        }
    }
    for (k, p) in &pb.params {
        if !template::is_identifier(k) {
            return Err(invalid(
                p.default.as_ref().map_or(at(&pb.name), at),
                format!("params.{k}"),
                "parameter names are letters, digits and '_'",
            ));
        }
        if let Some(d) = &p.default {
            no_secrets(
                d,
                format!("params.{k}.default"),
                "a parameter cannot read secrets: parameters are shown, and may reach the thread",
            )?;
        }
        if let (Some(allowed), Some(d)) = (&p.allowed, &p.default) {
            if !d.value.contains("{{") && !allowed.contains(&d.value) {
                return Err(invalid(
                    at(d),
                    format!("params.{k}.default"),
                    format!("`{}` is not one of the allowed values", d.value),
                ));
            }
        }
    }
    if let Some(a) = &pb.approval {
        if let Approval::When { when } = &a.value {
            template::check_expression(when).map_err(|m| invalid(at(a), "approval.when", m))?;
        }
    }
    if let Some(e) = &pb.approval_expires {
        duration_secs(&e.value).map_err(|m| invalid(at(e), "approval_expires", m))?;
    }
    for (path, text, line, column) in pb.templates() {
        template::check(&text).map_err(|m| invalid((line, column), path, m))?;
    }
    for (list, steps) in [("steps", &pb.steps), ("rollback", &pb.rollback)] {
        for (i, s) in steps.iter().enumerate() {
            validate_egress(pb, s, &format!("{list}[{i}]"))?;
        }
    }
    Ok(())
}

/// Refuses a template that names a secret where its text would be shown.
fn no_secrets(t: &Text, field: String, why: &str) -> Result<(), Invalid> {
    if template::secret_names(&t.value).is_empty() {
        Ok(())
    } else {
        Err(invalid(at(t), field, why))
    }
}

/// Where a step may send what it carries: a request URL's origin is pinned
/// (written out, a parameter limited to an `allowed` list of origins, or a
/// secret base URL), so every secret the step uses goes to that origin and
/// nowhere else; text that goes to the thread and the payload of a Lambda
/// whose name is not written out may not carry secrets at all.
fn validate_egress(pb: &Playbook, s: &Step, path: &str) -> Result<(), Invalid> {
    if let Some(r) = &s.request {
        let field = format!("{path}.request.url");
        let split =
            egress::split_origin(&r.url.value).map_err(|m| invalid(at(&r.url), &field, m))?;
        if let PinnedOrigin::Param { name, .. } = &split.origin {
            let spec = pb.params.get(name).ok_or_else(|| {
                invalid(
                    at(&r.url),
                    &field,
                    format!("`params.{name}` is not a parameter of this playbook"),
                )
            })?;
            let allowed = spec.allowed.as_ref().filter(|a| !a.is_empty()).ok_or_else(|| {
                invalid(
                    at(&r.url),
                    &field,
                    format!(
                        "`params.{name}` chooses where the request goes, so it needs an `allowed` list of origins"
                    ),
                )
            })?;
            for v in allowed {
                match egress::origin_of(v) {
                    Ok(o) if o == v.trim_end_matches('/') => {}
                    _ => {
                        return Err(invalid(
                            at(&r.url),
                            format!("params.{name}.allowed"),
                            format!(
                                "`{v}` is not an origin (scheme://host[:port], nothing after it)"
                            ),
                        ))
                    }
                }
            }
        }
    }
    if let Some(t) = &s.text {
        no_secrets(
            t,
            format!("{path}.text"),
            "this text goes to the incident's thread: it cannot use secrets",
        )?;
    }
    if let (Some(f), Some(payload)) = (&s.function, &s.payload) {
        let mut uses_secrets = false;
        template::walk_strings(payload, "", &mut |_, text| {
            uses_secrets |= !template::secret_names(text).is_empty();
        });
        if uses_secrets && (f.value.contains("{{") || f.value.contains("{%")) {
            return Err(invalid(
                at(f),
                format!("{path}.function"),
                "a payload that carries secrets goes to one function: write its name out",
            ));
        }
    }
    Ok(())
}

fn validate_step(s: &Step, path: &str) -> Result<(), Invalid> {
    let kind = s.kind.value;
    let need = |present: bool, field: &str| -> Result<(), Invalid> {
        if present {
            Ok(())
        } else {
            Err(invalid(
                at(&s.kind),
                format!("{path}.{field}"),
                format!("a {} step needs `{field}`", kind.as_str()),
            ))
        }
    };
    let refuse = |present: bool, field: &str| -> Result<(), Invalid> {
        if present {
            Err(invalid(
                at(&s.kind),
                format!("{path}.{field}"),
                format!("a {} step has no `{field}`", kind.as_str()),
            ))
        } else {
            Ok(())
        }
    };
    if s.name.value.trim().is_empty() {
        return Err(invalid(
            at(&s.name),
            format!("{path}.name"),
            "a step needs a name",
        ));
    }
    let http_like = matches!(kind, StepKind::Http | StepKind::WaitUntil);
    let github = kind == StepKind::GithubWorkflowDispatch;
    let lambda = kind == StepKind::LambdaInvoke;
    let notify = kind == StepKind::Notify;
    if http_like {
        need(s.request.is_some(), "request")?;
    } else {
        refuse(s.request.is_some(), "request")?;
        refuse(s.expect.is_some() && !lambda, "expect")?;
    }
    if github {
        for (f, v) in [
            ("owner", &s.owner),
            ("repo", &s.repo),
            ("workflow", &s.workflow),
            ("ref", &s.git_ref),
            ("token", &s.token),
        ] {
            need(v.is_some(), f)?;
        }
    } else {
        for (f, v) in [
            ("owner", &s.owner),
            ("repo", &s.repo),
            ("workflow", &s.workflow),
            ("ref", &s.git_ref),
            ("token", &s.token),
        ] {
            refuse(v.is_some(), f)?;
        }
        refuse(!s.inputs.is_empty(), "inputs")?;
    }
    if lambda {
        need(s.function.is_some(), "function")?;
    } else {
        refuse(s.function.is_some(), "function")?;
        refuse(s.payload.is_some(), "payload")?;
    }
    if notify {
        need(s.text.is_some(), "text")?;
    } else {
        refuse(s.text.is_some(), "text")?;
    }
    if kind != StepKind::WaitUntil {
        refuse(s.interval.is_some(), "interval")?;
    }
    if s.read_only {
        let get = s.request.as_ref().is_some_and(|r| {
            let m = r.method.value.trim().to_ascii_uppercase();
            m == "GET" || m == "HEAD"
        });
        if !(http_like && get) {
            return Err(invalid(
                at(&s.name),
                format!("{path}.read_only"),
                "only http and wait_until steps with a GET or HEAD request can be read-only",
            ));
        }
    }
    if let Some(r) = &s.request {
        let m = r.method.value.trim().to_ascii_uppercase();
        if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()) {
            return Err(invalid(
                at(&r.method),
                format!("{path}.request.method"),
                "one of GET, HEAD, POST, PUT, PATCH, DELETE",
            ));
        }
    }
    if let Some(e) = &s.expect {
        if let Some(bad) = e.status.iter().find(|c| !(100..=599).contains(*c)) {
            return Err(invalid(
                at(&s.name),
                format!("{path}.expect.status"),
                format!("{bad} is not an HTTP status"),
            ));
        }
    }
    for (f, v) in [("interval", &s.interval), ("timeout", &s.timeout)] {
        if let Some(v) = v {
            let secs =
                duration_secs(&v.value).map_err(|m| invalid(at(v), format!("{path}.{f}"), m))?;
            if secs == 0 || secs > MAX_WAIT_SECS {
                return Err(invalid(
                    at(v),
                    format!("{path}.{f}"),
                    format!("between 1s and {}h", MAX_WAIT_SECS / 3600),
                ));
            }
        }
    }
    Ok(())
}

/// The playbooks of a directory and the files that were refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Loaded {
    pub playbooks: Vec<Playbook>,
    pub errors: Vec<DefinitionError>,
}

/// Loads every `*.yaml` / `*.yml` file directly in `dir` (not its
/// subdirectories), in name order. A file that fails is reported and
/// skipped; a second file with a name already loaded is refused.
pub fn load_dir(dir: &Path) -> std::io::Result<Loaded> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut out = Loaded::default();
    for path in files {
        let file = path.display().to_string();
        let text = match std::fs::read(&path) {
            Ok(b) if b.len() > MAX_FILE_BYTES => {
                out.errors.push(DefinitionError {
                    file,
                    line: 1,
                    column: 1,
                    field: String::new(),
                    message: format!("the file is over {} KB", MAX_FILE_BYTES / 1024),
                });
                continue;
            }
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                out.errors.push(DefinitionError {
                    file,
                    line: 1,
                    column: 1,
                    field: String::new(),
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        out.add(&file, &text);
    }
    Ok(out)
}

impl Loaded {
    /// Parses one more definition into the set.
    pub fn add(&mut self, file: &str, text: &str) {
        match parse(file, text) {
            Ok(pb) if self.playbooks.iter().any(|p| p.name() == pb.name()) => {
                self.errors.push(DefinitionError {
                    file: file.to_owned(),
                    line: pb.name.referenced.line(),
                    column: pb.name.referenced.column(),
                    field: "name".into(),
                    message: format!("another file already defines `{}`", pb.name()),
                });
            }
            Ok(pb) => self.playbooks.push(pb),
            Err(e) => self.errors.push(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> DefinitionError {
        parse("pb.yaml", text).unwrap_err()
    }

    const HEAD: &str = "name: p\ntitle: t\nrisk: low\n";

    #[test]
    fn the_shipped_examples_all_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/examples");
        let loaded = load_dir(&dir).unwrap();
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let names: Vec<_> = loaded.playbooks.iter().map(Playbook::name).collect();
        for want in [
            "restart-service",
            "airflow-rerun-dag",
            "dbt-cloud-rerun-job",
            "github-actions-dispatch",
            "kubernetes-rollout-restart",
            "elasticsearch-clear-cache",
            "lambda-invoke",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let restart = loaded
            .playbooks
            .iter()
            .find(|p| p.name() == "restart-service")
            .unwrap();
        assert_eq!(restart.secret_names(), ["ADMIN_API", "ADMIN_TOKEN"]);
        assert_eq!(restart.approval_expires_secs(), 1800);
        assert_eq!(restart.steps.len(), 3);
        assert!(restart.steps[0].read_only);
    }

    #[test]
    fn an_unknown_step_kind_names_file_line_and_field() {
        let e = refused(&format!(
            "{HEAD}steps:\n  - name: x\n    kind: htp\n    request: {{ method: GET, url: u }}\n"
        ));
        assert_eq!(
            (e.file.as_str(), e.line, e.field.as_str()),
            ("pb.yaml", 6, "kind"),
            "{e}"
        );
        assert!(e.message.contains("htp"), "{e}");
        assert!(e.to_string().starts_with("pb.yaml:6:"), "{e}");
    }

    #[test]
    fn an_unknown_field_in_a_flow_mapping_is_named() {
        let e = refused(&format!(
            "{HEAD}steps:\n  - name: x\n    kind: http\n    request: {{ method: GET, urll: u }}\n"
        ));
        assert_eq!((e.line, e.field.as_str()), (7, "urll"), "{e}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let e = refused("name: p\nrisk: low\nsteps: []\n");
        assert_eq!(e.field, "title", "{e}");
    }

    #[test]
    fn a_wrong_risk_is_refused_at_its_line() {
        let e = refused("name: p\ntitle: t\nrisk: extreme\nsteps: []\n");
        assert_eq!((e.line, e.field.as_str()), (3, "risk"), "{e}");
    }

    #[test]
    fn kind_specific_fields_are_checked_with_the_step_path() {
        let e = refused(&format!("{HEAD}steps:\n  - name: x\n    kind: http\n"));
        assert_eq!((e.line, e.field.as_str()), (6, "steps[0].request"), "{e}");
        let e = refused(&format!(
            "{HEAD}steps:\n  - name: x\n    kind: notify\n    text: hi\n    function: f\n"
        ));
        assert_eq!(e.field, "steps[0].function", "{e}");
        let e = refused(&format!(
            "{HEAD}steps:\n  - name: x\n    kind: http\n    read_only: true\n    request: {{ method: POST, url: u }}\n"
        ));
        assert_eq!(e.field, "steps[0].read_only", "{e}");
    }

    #[test]
    fn template_errors_name_the_field_and_its_line() {
        let e = refused(&format!(
            "{HEAD}steps:\n  - name: x\n    kind: http\n    request:\n      method: GET\n      url: \"{{{{ env.HOME }}}}/x\"\n"
        ));
        assert_eq!(
            (e.line, e.field.as_str()),
            (9, "steps[0].request.url"),
            "{e}"
        );
        assert!(e.message.contains("unknown variable `env`"), "{e}");
        let e = refused(&format!(
            "{HEAD}steps:\n  - name: x\n    kind: notify\n    text: \"{{{{ params.x \"\n"
        ));
        assert_eq!(e.field, "steps[0].text", "{e}");
    }

    #[test]
    fn a_request_pins_its_origin_and_secrets_go_nowhere_else() {
        let step = |url: &str| {
            format!("{HEAD}params:\n  host: {{ default: \"https://a.example\" }}\nsteps:\n  - name: x\n    kind: http\n    request: {{ method: GET, url: \"{url}\", headers: {{ A: \"{{{{ secrets.T }}}}\" }} }}\n")
        };
        // A parameter that chooses the host needs an allowed list of origins.
        let e = refused(&step("{{ params.host }}/x"));
        assert_eq!(e.field, "steps[0].request.url", "{e}");
        assert!(e.message.contains("allowed"), "{e}");
        // The host may not be assembled from values.
        for url in [
            "https://{{ params.host }}/x",
            "https://api.{{ params.host }}/x",
            "{{ incident.labels.url }}/x",
        ] {
            assert_eq!(refused(&step(url)).field, "steps[0].request.url", "{url}");
        }
        // Allowed values must be origins, nothing after them.
        let e = refused(&format!(
            "{HEAD}params:\n  host: {{ default: \"https://a.example/api\", allowed: [\"https://a.example/api\"] }}\nsteps:\n  - name: x\n    kind: http\n    request: {{ method: GET, url: \"{{{{ params.host }}}}/x\" }}\n"
        ));
        assert_eq!(e.field, "params.host.allowed", "{e}");
        // Secrets never go to the thread, nor into parameters.
        let e = refused(&format!(
            "{HEAD}steps:\n  - name: x\n    kind: notify\n    text: \"{{{{ secrets.T }}}}\"\n"
        ));
        assert_eq!(e.field, "steps[0].text", "{e}");
        let e = refused(&format!(
            "{HEAD}params:\n  p: {{ default: \"{{{{ secrets.T }}}}\" }}\nsteps:\n  - name: x\n    kind: notify\n    text: hi\n"
        ));
        assert_eq!(e.field, "params.p.default", "{e}");
        // Written out, or pinned by an allowed list: both load.
        parse("pb.yaml", &step("https://a.example/{{ params.host }}")).unwrap();
        parse(
            "pb.yaml",
            &format!("{HEAD}params:\n  host: {{ default: \"https://a.example\", allowed: [\"https://a.example\", \"https://b.example\"] }}\nsteps:\n  - name: x\n    kind: http\n    request: {{ method: GET, url: \"{{{{ params.host }}}}/x\" }}\n"),
        )
        .unwrap();
    }

    #[test]
    fn durations_regexes_and_defaults_are_checked() {
        let e = refused(&format!(
            "{HEAD}steps:\n  - name: x\n    kind: wait_until\n    request: {{ method: GET, url: u }}\n    timeout: soon\n"
        ));
        assert_eq!((e.line, e.field.as_str()), (8, "steps[0].timeout"), "{e}");
        let e = refused(
            "name: p\ntitle: t\nrisk: low\nmatch:\n  labels: { a: \"/[/\" }\nsteps:\n  - name: x\n    kind: notify\n    text: hi\n",
        );
        assert_eq!(e.field, "match.labels.a", "{e}");
        let e = refused(&format!(
            "{HEAD}params:\n  mode: {{ allowed: [a, b], default: c }}\nsteps:\n  - name: x\n    kind: notify\n    text: hi\n"
        ));
        assert_eq!(
            (e.line, e.field.as_str()),
            (5, "params.mode.default"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_file_is_skipped_whole_and_the_others_load() {
        let dir = tempfile_dir();
        std::fs::write(
            dir.join("a.yaml"),
            format!("{HEAD}steps:\n  - name: x\n    kind: notify\n    text: hi\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("b.yaml"),
            format!("{HEAD}steps:\n  - name: x\n    kind: nope\n"),
        )
        .unwrap();
        std::fs::write(dir.join("c.yml"), "name: [\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "not a playbook").unwrap();
        let loaded = load_dir(&dir).unwrap();
        assert_eq!(loaded.playbooks.len(), 1);
        assert_eq!(loaded.errors.len(), 2, "{:?}", loaded.errors);
        assert!(loaded.errors[0].file.ends_with("b.yaml"));
        assert!(loaded.errors[1].file.ends_with("c.yml"));
        // A second file with the same name is refused, not merged.
        let mut again = loaded.clone();
        again.add(
            "d.yaml",
            &format!("{HEAD}steps:\n  - name: y\n    kind: notify\n    text: hi\n"),
        );
        assert_eq!(again.playbooks.len(), 1);
        assert!(again
            .errors
            .last()
            .unwrap()
            .message
            .contains("already defines"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "fw-playbooks-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
