//! Playbook runs: what was asked, what it would send (secrets masked), what
//! happened at each step, and who decided what.
//!
//! States: `dry_run_ok | dry_run_failed → awaiting_approval → approved |
//! rejected | expired → running → succeeded | failed → rolling_back →
//! rolled_back | rollback_failed`; a run that needs no approval goes from
//! `dry_run_ok` straight to `running`. Every transition is one change of the
//! incident (a timeline entry that goes to chat and an audit event) written
//! in the same transaction as the run, conditional on the run's version, so
//! two callers can never both move it. A request that carries an
//! `Idempotency-Key` stores its answer in that transaction too; the same key
//! again gets the first answer.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{Incident, IncidentId, Principal, Role, TenantId, TimelineKind};
use serde::{Deserialize, Serialize};

use super::definition::{Approval, ApprovalWord, Expect, Playbook, Risk, Step, StepKind};
use super::template::Scope;
use super::{incident_value, matches, resolve_params, Catalog};
use crate::auth::require_role;
use crate::change::{Change, CommitError};
use crate::egress::{self, PinnedOrigin};
use crate::outbox::Effect;
use crate::ports::{Condition, OutboundError, OutboundRequest, OutboundResponse, Query, WriteOp};
use crate::{incidents, keys, DomainError, Services};

/// Hours an idempotency answer is kept.
const IDEMPOTENCY_HOURS: i64 = 24;
/// Runs listed per incident.
pub const RUNS_PER_INCIDENT: usize = 50;
/// Longest response excerpt kept with a step.
const RESPONSE_EXCERPT: usize = 2048;
/// Default timeout of one request.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;
/// Default time a `wait_until` step keeps polling, and between polls.
pub const DEFAULT_WAIT_SECS: u64 = 60;
pub const DEFAULT_INTERVAL_SECS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Asked for from chat; the dispatcher dry-runs it.
    Requested,
    DryRunOk,
    DryRunFailed,
    AwaitingApproval,
    Approved,
    Rejected,
    Expired,
    Running,
    Succeeded,
    Failed,
    RollingBack,
    RolledBack,
    RollbackFailed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::DryRunOk => "dry_run_ok",
            Self::DryRunFailed => "dry_run_failed",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::RollingBack => "rolling_back",
            Self::RolledBack => "rolled_back",
            Self::RollbackFailed => "rollback_failed",
        }
    }
}

/// A request as it would be (or was) sent, secrets masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedRequest {
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
}

/// One step, rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedStep {
    pub name: String,
    pub kind: StepKind,
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RenderedRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// `lambda_invoke`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// `notify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub timeout_secs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    /// Claimed by a dispatcher that is sending it now.
    Sending,
    /// A `wait_until` step between polls.
    Waiting,
    Succeeded,
    Failed,
}

/// What happened at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub name: String,
    pub status: StepStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Time of the last request, start to answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Requests sent (polls of a wait step).
    #[serde(default)]
    pub attempts: u32,
    /// While `sending`: no one else touches the step before this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_until: Option<DateTime<Utc>>,
    /// What happened, secrets masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The start of the answer, secrets masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
}

impl StepOutcome {
    pub fn pending(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            status: StepStatus::Pending,
            http_status: None,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            attempts: 0,
            claimed_until: None,
            detail: None,
            response: None,
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.status, StepStatus::Succeeded | StepStatus::Failed)
    }
}

/// One state a run passed through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub at: DateTime<Utc>,
    pub state: RunState,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A playbook run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub tenant: TenantId,
    pub incident_id: IncidentId,
    pub playbook: String,
    pub title: String,
    pub risk: Risk,
    pub state: RunState,
    pub params: BTreeMap<String, String>,
    pub requested_by: String,
    pub approval_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// Every step and rollback step as it would be sent, secrets masked.
    pub preview: Vec<RenderedStep>,
    pub rollback_preview: Vec<RenderedStep>,
    /// The read-only steps the dry-run sent.
    pub preflight: Vec<StepOutcome>,
    pub steps: Vec<StepOutcome>,
    pub rollback: Vec<StepOutcome>,
    pub history: Vec<Transition>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The definition the run was made from, so that what was approved is
    /// what runs even if the file changes.
    pub definition: Playbook,
    /// The item version the run was read at (not stored).
    #[serde(skip)]
    pub version: u64,
}

impl Run {
    /// The steps (or rollback steps) of the run, as defined.
    pub fn defined_steps(&self, rollback: bool) -> &[Step] {
        if rollback {
            &self.definition.rollback
        } else {
            &self.definition.steps
        }
    }

    pub fn outcomes_mut(&mut self, rollback: bool) -> &mut Vec<StepOutcome> {
        if rollback {
            &mut self.rollback
        } else {
            &mut self.steps
        }
    }

    fn enter(&mut self, state: RunState, by: &str, detail: Option<String>, at: DateTime<Utc>) {
        self.state = state;
        self.updated_at = at;
        self.history.push(Transition {
            at,
            state,
            by: by.to_owned(),
            detail,
        });
    }
}

/// Masks every secret value in `text` and redacts what looks like one.
pub fn scrub(text: &str, secrets: &std::collections::HashMap<String, String>) -> String {
    let mut out = text.to_owned();
    let mut values: Vec<_> = secrets.iter().filter(|(_, v)| v.len() >= 4).collect();
    // Longest first, so a secret containing another is masked whole.
    values.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (name, value) in values {
        // As sent in a URL too: a target echoing its request back quotes
        // the percent-encoded form.
        for form in [value.clone(), egress::encode_value(value)] {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), &super::template::mask(name));
            }
        }
    }
    crate::redact::redact_text(&out)
}

fn excerpt(v: &serde_json::Value, secrets: &std::collections::HashMap<String, String>) -> String {
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut cut = text.len().min(RESPONSE_EXCERPT);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    scrub(&text[..cut], secrets)
}

/// Renders a request URL: its origin as its definition pins it (written
/// out, a parameter limited to its `allowed` origins, or a secret base URL),
/// the rest with every value percent-encoded. The result is checked against
/// the pinned origin (but for a masked secret base, whose origin is not
/// known until it is sent).
fn render_url(scope: &Scope, text: &str) -> Result<String, String> {
    let split = egress::split_origin(text)?;
    let (base, masked) = match &split.origin {
        PinnedOrigin::Literal(o) => (o.clone(), false),
        PinnedOrigin::Param { name, .. } => (
            scope
                .params
                .get(name)
                .cloned()
                .ok_or_else(|| format!("parameter `{name}` has no value"))?,
            false,
        ),
        PinnedOrigin::Secret(name) => {
            let v = scope
                .secrets
                .get(name)
                .cloned()
                .ok_or_else(|| format!("secret {name} is not configured"))?;
            let masked = scope.is_masked(name, &v);
            (v, masked)
        }
    };
    let rest = scope.render_url_rest(&split.rest)?;
    let url = format!("{}{rest}", base.trim_end_matches('/'));
    if masked {
        return Ok(url);
    }
    let origin = egress::origin_of(&base)?;
    egress::check_rendered(&url, &origin)
}

/// Renders one step with `scope` (masked for previews, real when sending).
pub fn render_step(svc: &Services, step: &Step, scope: &Scope) -> Result<RenderedStep, String> {
    let name = step.name.value.clone();
    let secs = |t: &Option<super::definition::Text>, d: u64| {
        t.as_ref()
            .and_then(|t| super::definition::duration_secs(&t.value).ok())
            .unwrap_or(d)
    };
    let mut out = RenderedStep {
        name: name.clone(),
        kind: step.kind.value,
        read_only: step.read_only,
        request: None,
        expect: step.expect.clone(),
        function: None,
        payload: None,
        text: None,
        timeout_secs: secs(&step.timeout, DEFAULT_TIMEOUT_SECS),
        interval_secs: None,
    };
    let field = |f: &str, e: String| format!("step `{name}` {f}: {e}");
    match step.kind.value {
        StepKind::Http | StepKind::WaitUntil => {
            let r = step
                .request
                .as_ref()
                .ok_or_else(|| field("request", "missing".into()))?;
            let mut headers = BTreeMap::new();
            for (k, v) in &r.headers {
                headers.insert(k.clone(), scope.render(&v.value).map_err(|e| field(k, e))?);
            }
            out.request = Some(RenderedRequest {
                method: scope
                    .render(&r.method.value)
                    .map_err(|e| field("method", e))?
                    .trim()
                    .to_ascii_uppercase(),
                url: render_url(scope, &r.url.value).map_err(|e| field("url", e))?,
                headers,
                json: match &r.json {
                    Some(j) => Some(scope.render_json(j).map_err(|e| field("json", e))?),
                    None => None,
                },
            });
            if step.kind.value == StepKind::WaitUntil {
                out.timeout_secs = secs(&step.timeout, DEFAULT_WAIT_SECS);
                out.interval_secs = Some(secs(&step.interval, DEFAULT_INTERVAL_SECS));
            }
        }
        StepKind::GithubWorkflowDispatch => {
            let get = |f: &str, t: &Option<super::definition::Text>| -> Result<String, String> {
                let t = t.as_ref().ok_or_else(|| field(f, "missing".into()))?;
                scope.render(&t.value).map_err(|e| field(f, e))
            };
            let (owner, repo, workflow) = (
                get("owner", &step.owner)?,
                get("repo", &step.repo)?,
                get("workflow", &step.workflow)?,
            );
            let mut inputs = serde_json::Map::new();
            for (k, v) in &step.inputs {
                inputs.insert(
                    k.clone(),
                    scope.render(&v.value).map_err(|e| field(k, e))?.into(),
                );
            }
            let seg =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            out.request = Some(RenderedRequest {
                method: "POST".into(),
                url: format!(
                    "{}/repos/{}/{}/actions/workflows/{}/dispatches",
                    svc.settings.github_api_url,
                    seg(&owner),
                    seg(&repo),
                    seg(&workflow)
                ),
                headers: BTreeMap::from([
                    (
                        "Accept".to_owned(),
                        "application/vnd.github+json".to_owned(),
                    ),
                    (
                        "Authorization".to_owned(),
                        format!("Bearer {}", get("token", &step.token)?),
                    ),
                    ("X-GitHub-Api-Version".to_owned(), "2022-11-28".to_owned()),
                    ("User-Agent".to_owned(), "firewatch".to_owned()),
                ]),
                json: Some(
                    serde_json::json!({"ref": get("ref", &step.git_ref)?, "inputs": inputs}),
                ),
            });
            if out.expect.is_none() {
                // GitHub answers a dispatch with 204 No Content.
                out.expect = Some(Expect {
                    status: vec![204],
                    json: BTreeMap::new(),
                });
            }
        }
        StepKind::LambdaInvoke => {
            let f = step
                .function
                .as_ref()
                .ok_or_else(|| field("function", "missing".into()))?;
            out.function = Some(scope.render(&f.value).map_err(|e| field("function", e))?);
            out.payload = Some(match &step.payload {
                Some(p) => scope.render_json(p).map_err(|e| field("payload", e))?,
                None => serde_json::json!({}),
            });
        }
        StepKind::Notify => {
            let t = step
                .text
                .as_ref()
                .ok_or_else(|| field("text", "missing".into()))?;
            out.text = Some(scope.render(&t.value).map_err(|e| field("text", e))?);
        }
        StepKind::Ticket => {}
    }
    Ok(out)
}

/// Whether an answer meets the step's expectation; `Err` says how not.
pub fn evaluate(expect: Option<&Expect>, resp: &OutboundResponse) -> Result<(), String> {
    let statuses = expect.map(|e| e.status.as_slice()).unwrap_or(&[]);
    let status_ok = if statuses.is_empty() {
        (200..300).contains(&resp.status)
    } else {
        statuses.contains(&resp.status)
    };
    if !status_ok {
        let want = if statuses.is_empty() {
            "2xx".to_owned()
        } else {
            statuses
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        };
        return Err(format!("expected status {want}, got {}", resp.status));
    }
    for (path, want) in expect.map(|e| &e.json).into_iter().flatten() {
        let got = path
            .split('.')
            .try_fold(&resp.body, |v, k| v.get(k))
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        if &got != want {
            return Err(format!("expected {path} = {want}, got {got}"));
        }
    }
    Ok(())
}

/// Sends one rendered (real) step that calls out.
pub async fn send(svc: &Services, step: &RenderedStep) -> Result<OutboundResponse, OutboundError> {
    match step.kind {
        StepKind::LambdaInvoke => {
            let payload = step.payload.clone().unwrap_or_default();
            svc.egress
                .invoke_lambda(step.function.as_deref().unwrap_or_default(), &payload)
                .await
        }
        _ => {
            let r = step
                .request
                .as_ref()
                .ok_or_else(|| OutboundError::Unsupported("the step has no request".into()))?;
            svc.egress
                .send(&OutboundRequest {
                    method: r.method.clone(),
                    url: r.url.clone(),
                    headers: r.headers.clone().into_iter().collect(),
                    json: r.json.clone(),
                    timeout: std::time::Duration::from_secs(step.timeout_secs),
                })
                .await
        }
    }
}

/// The scope of a run's templates with its secrets masked.
pub fn masked_scope(inc: &Incident, def: &Playbook, params: &BTreeMap<String, String>) -> Scope {
    Scope::masked(incident_value(inc), params.clone(), &def.secret_names())
}

/// Sends a step for real: secrets resolved, rendered, sent, the answer
/// judged; everything it returns is masked.
pub async fn send_for_real(
    svc: &Services,
    step: &Step,
    masked: &Scope,
) -> (
    Result<OutboundResponse, OutboundError>,
    std::collections::HashMap<String, String>,
    u64,
) {
    let names: Vec<String> = masked.secrets.keys().cloned().collect();
    // Playbooks are the operator's (files, the bucket prefix): their
    // secrets are the operator's.
    let secrets = match crate::secrets::resolve(svc, &crate::secrets::Owner::Operator, &names).await
    {
        Ok(s) => s,
        Err(e) => return (Err(OutboundError::Unsupported(e)), Default::default(), 0),
    };
    let mut real = masked.clone();
    real.secrets = secrets.clone();
    let rendered = match render_step(svc, step, &real) {
        Ok(r) => r,
        Err(e) => {
            return (
                Err(OutboundError::Unsupported(scrub(&e, &secrets))),
                secrets,
                0,
            )
        }
    };
    let started = std::time::Instant::now();
    let result = send(svc, &rendered).await;
    let ms = started.elapsed().as_millis() as u64;
    let result = result.map_err(|e| match e {
        OutboundError::Unreached(m) => OutboundError::Unreached(scrub(&m, &secrets)),
        OutboundError::NoAnswer(m) => OutboundError::NoAnswer(scrub(&m, &secrets)),
        OutboundError::Unsupported(m) => OutboundError::Unsupported(scrub(&m, &secrets)),
    });
    (result, secrets, ms)
}

/// Fills an outcome from an answer (or its absence).
pub fn record_answer(
    out: &mut StepOutcome,
    expect: Option<&Expect>,
    result: &Result<OutboundResponse, OutboundError>,
    secrets: &std::collections::HashMap<String, String>,
    ms: u64,
) -> Result<(), String> {
    out.attempts += 1;
    out.duration_ms = Some(ms);
    match result {
        Ok(resp) => {
            out.http_status = Some(resp.status);
            out.response = Some(excerpt(&resp.body, secrets));
            let verdict = evaluate(expect, resp).map_err(|e| scrub(&e, secrets));
            out.detail = Some(match &verdict {
                Ok(()) => format!("status {} in {ms} ms", resp.status),
                Err(e) => e.clone(),
            });
            verdict
        }
        Err(e) => {
            out.detail = Some(e.to_string());
            Err(e.to_string())
        }
    }
}

// ---- the lifecycle ----

async fn load(svc: &Services, tenant: &TenantId, run_id: &str) -> Result<Run, DomainError> {
    let item = svc
        .store
        .get(&keys::playbook_runs_pk(tenant), run_id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("no playbook run {run_id}")))?;
    let mut run: Run = keys::decode(&item)?;
    run.version = item.version;
    Ok(run)
}

/// A run by id.
pub async fn get(svc: &Services, principal: &Principal, run_id: &str) -> Result<Run, DomainError> {
    require_role(principal, Role::Viewer, "reading a playbook run")?;
    load(svc, &principal.tenant, run_id).await
}

/// The runs of an incident, newest first (at most [`RUNS_PER_INCIDENT`]).
pub async fn for_incident(
    svc: &Services,
    principal: &Principal,
    incident: &IncidentId,
) -> Result<Vec<Run>, DomainError> {
    require_role(principal, Role::Viewer, "listing playbook runs")?;
    let inc = incidents::get(svc, &principal.tenant, incident).await?;
    let page = svc
        .store
        .query(Query {
            pk: keys::incident_pk(&inc.tenant, &inc.id),
            sk_prefix: keys::INCIDENT_RUN_PREFIX.into(),
            after: None,
            limit: RUNS_PER_INCIDENT,
            descending: true,
        })
        .await?;
    let mut out = Vec::new();
    for item in page.items {
        let id = item.sk.trim_start_matches(keys::INCIDENT_RUN_PREFIX);
        out.push(load(svc, &inc.tenant, id).await?);
    }
    Ok(out)
}

/// An answer kept for an idempotency key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Kept {
    op: String,
    target: String,
    run: Run,
    run_version: u64,
}

fn idem_sk(op: &str, key: &str) -> String {
    format!("{op}#{key}")
}

/// The first answer to `key`, if there was one.
async fn kept(
    svc: &Services,
    tenant: &TenantId,
    op: &str,
    target: &str,
    key: Option<&str>,
) -> Result<Option<Run>, DomainError> {
    let Some(key) = key else { return Ok(None) };
    check_key(key)?;
    let Some(item) = svc
        .store
        .get(&keys::idempotency_pk(tenant), &idem_sk(op, key))
        .await?
    else {
        return Ok(None);
    };
    let k: Kept = keys::decode(&item)?;
    if k.target != target {
        return Err(DomainError::conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used for another request",
        ));
    }
    let mut run = k.run;
    run.version = k.run_version;
    Ok(Some(run))
}

fn check_key(key: &str) -> Result<(), DomainError> {
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DomainError::bad_input(
            "bad_idempotency_key",
            "Idempotency-Key must be 1-200 visible ASCII characters",
        ));
    }
    Ok(())
}

/// Commits a run's transition as a change of its incident: a timeline entry
/// per new state (in chat), an audit event, the run itself conditional on
/// the version read, the idempotency answer, and the next effect.
#[allow(clippy::too_many_arguments)]
async fn commit(
    svc: &Services,
    inc: Incident,
    run: &mut Run,
    read_version: Option<u64>,
    actor: &str,
    states: &[(RunState, Option<String>)],
    effect: Option<Effect>,
    idem: Option<(&str, &str)>,
) -> Result<(), CommitError> {
    let mut change = Change::to(svc, inc);
    // The state the run was in before these transitions.
    let before = run
        .history
        .len()
        .checked_sub(states.len() + 1)
        .map(|i| run.history[i].state);
    let mut effect = effect;
    for (i, (state, detail)) in states.iter().enumerate() {
        let entry = change.entry(
            actor,
            TimelineKind::Playbook {
                run_id: run.id.clone(),
                playbook: run.playbook.clone(),
                state: state.as_str().into(),
                detail: detail.clone(),
            },
        );
        match (i + 1 == states.len(), effect.take()) {
            (true, Some(fx)) => change.show_with_effect(entry, fx),
            (_, fx) => {
                effect = fx;
                change.show(entry);
            }
        }
        change.audit_target(
            actor,
            format!("playbook.{}", state.as_str()),
            run.id.clone(),
            serde_json::json!({"state": before.map(RunState::as_str)}),
            serde_json::json!({"state": state.as_str(), "playbook": run.playbook, "incident": run.incident_id}),
            detail.clone(),
        );
    }
    let version = read_version.map_or(1, |v| v + 1);
    let item = keys::item(
        keys::playbook_runs_pk(&run.tenant),
        run.id.clone(),
        version,
        run,
    )
    .map_err(CommitError::Domain)?;
    change.also(WriteOp::Put {
        item,
        condition: read_version.map_or(Condition::Absent, Condition::Version),
    });
    if read_version.is_none() {
        let pointer = keys::item(
            keys::incident_pk(&run.tenant, &run.incident_id),
            format!("{}{}", keys::INCIDENT_RUN_PREFIX, run.id),
            1,
            &run.created_at,
        )
        .map_err(CommitError::Domain)?;
        change.also(WriteOp::Put {
            item: pointer,
            condition: Condition::Absent,
        });
    }
    if let Some((op, key)) = idem {
        let kept = Kept {
            op: op.to_owned(),
            target: idem_target(op, run),
            run: run.clone(),
            run_version: version,
        };
        let mut item = keys::item(
            keys::idempotency_pk(&run.tenant),
            idem_sk(op, key),
            1,
            &kept,
        )
        .map_err(CommitError::Domain)?;
        item.expires_at = Some(svc.clock.now().timestamp() + IDEMPOTENCY_HOURS * 3600);
        change.also(WriteOp::Put {
            item,
            condition: Condition::Absent,
        });
    }
    change.commit().await?;
    run.version = version;
    Ok(())
}

/// What an idempotency key is bound to: the run (or, for a dry-run, the
/// incident and playbook it was asked for).
fn idem_target(op: &str, run: &Run) -> String {
    if op == "dry-run" {
        format!("{}/{}", run.incident_id, run.playbook)
    } else {
        run.id.clone()
    }
}

/// Dry-runs playbook `name` for an incident: parameters resolved, every
/// step rendered as it would be sent (secrets masked), the read-only steps
/// sent as preflight, nothing else. The run is `dry_run_ok` (then
/// `awaiting_approval` when the playbook wants approval for these
/// parameters) or `dry_run_failed`.
pub async fn dry_run(
    svc: &Services,
    catalog: &Catalog,
    principal: &Principal,
    incident_id: &IncidentId,
    name: &str,
    overrides: &BTreeMap<String, String>,
    idempotency_key: Option<&str>,
) -> Result<Run, DomainError> {
    require_role(principal, Role::Responder, "dry-running a playbook")?;
    let tenant = &principal.tenant;
    let target = format!("{incident_id}/{name}");
    if let Some(key) = idempotency_key {
        check_key(key)?;
        if let Some(run) = kept(svc, tenant, "dry-run", &target, Some(key)).await? {
            return Ok(run);
        }
    }
    let (inc, pb) = offered(svc, catalog, principal, incident_id, name).await?;
    let params = resolve_params(pb, &inc, overrides)?;
    crate::throttle::take(svc, tenant, crate::throttle::Action::DryRun).await?;
    let mut run = new_run(svc, principal, &inc, pb, params, RunState::DryRunOk);
    let states = prepare(svc, &inc, &mut run, None).await;
    let idem = idempotency_key.map(|k| ("dry-run", k));
    match commit(
        svc,
        inc,
        &mut run,
        None,
        &principal.name,
        &states,
        None,
        idem,
    )
    .await
    {
        Ok(()) => Ok(run),
        Err(e) if e.is_lost_race() => {
            match kept(svc, tenant, "dry-run", &target, idempotency_key).await? {
                Some(first) => Ok(first),
                None => Err(lost()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The dry-run itself: every step rendered (secrets masked), the approval
/// rule evaluated, the read-only steps sent; the run moved to `dry_run_ok`
/// (and `awaiting_approval`) or `dry_run_failed`. `failure` is a reason
/// found before (parameters that could not be filled). Returns the states
/// entered, with their details.
async fn prepare(
    svc: &Services,
    inc: &Incident,
    run: &mut Run,
    failure: Option<String>,
) -> Vec<(RunState, Option<String>)> {
    let pb = run.definition.clone();
    let now = svc.clock.now();
    let masked = masked_scope(inc, &pb, &run.params);
    let mut failure = failure;
    if failure.is_none() {
        let render_all = |steps: &[Step]| -> Result<Vec<RenderedStep>, String> {
            steps.iter().map(|s| render_step(svc, s, &masked)).collect()
        };
        match (render_all(&pb.steps), render_all(&pb.rollback)) {
            (Ok(p), Ok(r)) => {
                run.preview = p;
                run.rollback_preview = r;
            }
            (Err(e), _) | (_, Err(e)) => failure = Some(e),
        }
    }
    run.approval_required = match pb.approval.as_ref().map(|a| &a.value) {
        Some(Approval::Always(ApprovalWord::Never)) => false,
        None | Some(Approval::Always(ApprovalWord::Always)) => true,
        Some(Approval::When { when }) => match masked.truthy(when) {
            Ok(b) => b,
            Err(e) => {
                failure.get_or_insert(format!("approval.when: {e}"));
                true
            }
        },
    };
    if failure.is_none() {
        for step in pb.steps.iter().filter(|s| s.read_only) {
            let mut out = StepOutcome::pending(&step.name.value);
            out.started_at = Some(svc.clock.now());
            let (result, secrets, ms) = send_for_real(svc, step, &masked).await;
            let verdict = record_answer(&mut out, step.expect.as_ref(), &result, &secrets, ms);
            out.finished_at = Some(svc.clock.now());
            out.status = if verdict.is_ok() {
                StepStatus::Succeeded
            } else {
                StepStatus::Failed
            };
            run.preflight.push(out);
            if let Err(e) = verdict {
                failure = Some(format!("preflight `{}` failed: {e}", step.name.value));
                break;
            }
        }
    }
    let by = run.requested_by.clone();
    let mut states = Vec::new();
    match failure {
        Some(why) => {
            run.enter(RunState::DryRunFailed, &by, Some(why.clone()), now);
            states.push((RunState::DryRunFailed, Some(why)));
        }
        None => {
            let steps = format!(
                "{} steps, {} read-only checked",
                run.steps.len(),
                run.preflight.len()
            );
            run.enter(RunState::DryRunOk, &by, Some(steps.clone()), now);
            states.push((RunState::DryRunOk, Some(steps)));
            if run.approval_required {
                let expires = now + Duration::seconds(pb.approval_expires_secs() as i64);
                run.approval_expires_at = Some(expires);
                let detail = format!(
                    "approval needed by {}",
                    expires.format("%Y-%m-%d %H:%M UTC")
                );
                run.enter(RunState::AwaitingApproval, &by, Some(detail.clone()), now);
                states.push((RunState::AwaitingApproval, Some(detail)));
            }
        }
    }
    states
}

/// Asks for a dry-run without waiting for it (a chat button or command,
/// which must answer within seconds): the run is recorded as `requested`
/// with the parameters given, and the dispatcher performs the dry-run
/// ([`perform_dry_run`]); its outcome arrives in the thread.
pub async fn request_dry_run(
    svc: &Services,
    catalog: &Catalog,
    principal: &Principal,
    incident_id: &IncidentId,
    name: &str,
    overrides: &BTreeMap<String, String>,
) -> Result<Run, DomainError> {
    require_role(principal, Role::Responder, "dry-running a playbook")?;
    let (inc, pb) = offered(svc, catalog, principal, incident_id, name).await?;
    if let Some(unknown) = overrides.keys().find(|k| !pb.params.contains_key(*k)) {
        return Err(DomainError::bad_input(
            "unknown_param",
            format!("playbook {} has no parameter `{unknown}`", pb.name()),
        ));
    }
    // Counted when asked for, like the API's: the dispatcher sends it.
    crate::throttle::take(svc, &principal.tenant, crate::throttle::Action::DryRun).await?;
    let now = svc.clock.now();
    let mut run = new_run(
        svc,
        principal,
        &inc,
        pb,
        overrides.clone(),
        RunState::Requested,
    );
    let detail = "dry-run requested".to_owned();
    run.enter(
        RunState::Requested,
        &principal.name,
        Some(detail.clone()),
        now,
    );
    let effect = Effect::PlaybookDryRun {
        run_id: run.id.clone(),
    };
    commit(
        svc,
        inc,
        &mut run,
        None,
        &principal.name,
        &[(RunState::Requested, Some(detail))],
        Some(effect),
        None,
    )
    .await?;
    Ok(run)
}

/// The dispatcher's side of [`request_dry_run`]: a run still `requested`
/// is dry-run now (a run already past it is left alone, so a redelivered
/// record does nothing twice).
pub async fn perform_dry_run(
    svc: &Services,
    tenant: &TenantId,
    run_id: &str,
) -> Result<(), StepError> {
    let mut run = match load(svc, tenant, run_id).await {
        Ok(r) => r,
        Err(DomainError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if run.state != RunState::Requested {
        return Ok(());
    }
    let read = run.version;
    let inc = incidents::get(svc, tenant, &run.incident_id).await?;
    let failure = match resolve_params(&run.definition, &inc, &run.params) {
        Ok(p) => {
            run.params = p;
            None
        }
        Err(e) => Some(e.to_string()),
    };
    let states = prepare(svc, &inc, &mut run, failure).await;
    let actor = run.requested_by.clone();
    match commit(svc, inc, &mut run, Some(read), &actor, &states, None, None).await {
        // Another dispatcher finished it first.
        Err(e) if e.is_lost_race() => Ok(()),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(()),
    }
}

/// The incident and the playbook `name`, which must be offered for it.
async fn offered<'c>(
    svc: &Services,
    catalog: &'c Catalog,
    principal: &Principal,
    incident_id: &IncidentId,
    name: &str,
) -> Result<(Incident, &'c Playbook), DomainError> {
    let inc = incidents::get(svc, &principal.tenant, incident_id).await?;
    let pb = catalog
        .get(name)
        .ok_or_else(|| DomainError::NotFound(format!("no playbook {name}")))?;
    if !matches(pb, &inc) {
        return Err(DomainError::conflict(
            "playbook_not_offered",
            format!("playbook {name} does not match incident {incident_id}"),
        ));
    }
    Ok((inc, pb))
}

/// A new run of `pb` for `inc`, every step pending.
fn new_run(
    svc: &Services,
    principal: &Principal,
    inc: &Incident,
    pb: &Playbook,
    params: BTreeMap<String, String>,
    state: RunState,
) -> Run {
    let now = svc.clock.now();
    let pending = |steps: &[Step]| {
        steps
            .iter()
            .map(|s| StepOutcome::pending(&s.name.value))
            .collect()
    };
    Run {
        id: format!("run_{}", svc.ids.ulid()),
        tenant: principal.tenant.clone(),
        incident_id: inc.id.clone(),
        playbook: pb.name().to_owned(),
        title: pb.title.clone(),
        risk: pb.risk,
        state,
        params,
        requested_by: principal.name.clone(),
        approval_required: true,
        approval_expires_at: None,
        decided_by: None,
        steps: pending(&pb.steps),
        rollback: pending(&pb.rollback),
        preview: Vec::new(),
        rollback_preview: Vec::new(),
        preflight: Vec::new(),
        history: Vec::new(),
        created_at: now,
        updated_at: now,
        definition: pb.clone(),
        version: 0,
    }
}

fn lost() -> DomainError {
    DomainError::conflict(
        "conflict",
        "the run was changed by someone else; read it again",
    )
}

/// What a decision on a run needs: the role, the states it applies to.
struct Decision<'a> {
    op: &'a str,
    role: Role,
    what: &'a str,
}

/// Runs `decide` on the current run and commits what it returns, once per
/// idempotency key; a run whose approval request has passed its expiry is
/// moved to `expired` first and the decision refused.
async fn decide_on(
    svc: &Services,
    principal: &Principal,
    run_id: &str,
    idempotency_key: Option<&str>,
    d: Decision<'_>,
    decide: impl Fn(
        &mut Run,
        DateTime<Utc>,
    ) -> Result<(Vec<(RunState, Option<String>)>, Option<Effect>), DomainError>,
) -> Result<Run, DomainError> {
    require_role(principal, d.role, d.what)?;
    let tenant = &principal.tenant;
    let mut tries = crate::retry::Tries::new(crate::retry::ATTEMPTS);
    while tries.next().await {
        if let Some(run) = kept(svc, tenant, d.op, run_id, idempotency_key).await? {
            return Ok(run);
        }
        let mut run = load(svc, tenant, run_id).await?;
        let read = run.version;
        let now = svc.clock.now();
        let inc = incidents::get(svc, tenant, &run.incident_id).await?;
        if run.state == RunState::AwaitingApproval
            && run.approval_expires_at.is_some_and(|at| at <= now)
        {
            let detail = "the approval request expired".to_owned();
            run.enter(RunState::Expired, "firewatch", Some(detail.clone()), now);
            match commit(
                svc,
                inc,
                &mut run,
                Some(read),
                "firewatch",
                &[(RunState::Expired, Some(detail))],
                None,
                None,
            )
            .await
            {
                Ok(()) => {}
                Err(e) if e.is_lost_race() => continue,
                Err(e) => return Err(e.into()),
            }
            return Err(DomainError::conflict(
                "approval_expired",
                format!("run {run_id}: the approval request expired; dry-run again"),
            ));
        }
        let (states, effect) = match decide(&mut run, now) {
            Ok(d) => d,
            Err(e) => {
                // The same key may have moved the run since it was checked
                // above: its first answer stands.
                if let Some(first) = kept(svc, tenant, d.op, run_id, idempotency_key).await? {
                    return Ok(first);
                }
                return Err(e);
            }
        };
        for (s, detail) in &states {
            run.enter(*s, &principal.name, detail.clone(), now);
        }
        let idem = idempotency_key.map(|k| (d.op, k));
        match commit(
            svc,
            inc,
            &mut run,
            Some(read),
            &principal.name,
            &states,
            effect,
            idem,
        )
        .await
        {
            Ok(()) => return Ok(run),
            Err(e) if e.is_lost_race() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Someone else moved the run each time; the last word is theirs.
    if let Some(run) = kept(svc, tenant, d.op, run_id, idempotency_key).await? {
        return Ok(run);
    }
    Err(lost())
}

/// The transition that starts a run's steps (or its rollback steps) and
/// the effect that performs the first one.
fn start(run: &Run, rollback: bool) -> (Vec<(RunState, Option<String>)>, Option<Effect>) {
    let (state, label, steps) = if rollback {
        (RunState::RollingBack, "rollback step", &run.rollback)
    } else {
        (RunState::Running, "step", &run.steps)
    };
    let first = steps.first().map(|s| s.name.clone()).unwrap_or_default();
    (
        vec![(state, Some(format!("{label} 1/{}: {first}", steps.len())))],
        Some(Effect::PlaybookStep {
            run_id: run.id.clone(),
            rollback,
            index: 0,
        }),
    )
}

fn wrong_state(run: &Run, op: &str) -> DomainError {
    DomainError::conflict(
        "invalid_run_state",
        format!(
            "run {} is {}; it cannot be {op}",
            run.id,
            run.state.as_str()
        ),
    )
}

/// Approves a run awaiting approval: an approver (or admin) who is not the
/// requester, before the request expires.
pub async fn approve(
    svc: &Services,
    principal: &Principal,
    run_id: &str,
    idempotency_key: Option<&str>,
) -> Result<Run, DomainError> {
    let d = Decision {
        op: "approve",
        role: Role::Approver,
        what: "approving a playbook run",
    };
    decide_on(svc, principal, run_id, idempotency_key, d, |run, _| {
        if run.state != RunState::AwaitingApproval {
            return Err(wrong_state(run, "approved"));
        }
        if run.requested_by == principal.name {
            return Err(DomainError::Forbidden(format!(
                "four eyes: {} requested this run and cannot approve it; another approver must",
                principal.name
            )));
        }
        run.decided_by = Some(principal.name.clone());
        Ok((
            vec![(
                RunState::Approved,
                Some(format!("approved by {}", principal.name)),
            )],
            None,
        ))
    })
    .await
}

/// Rejects a run awaiting approval (an approver), or cancels one (its
/// requester), before it runs.
pub async fn reject(
    svc: &Services,
    principal: &Principal,
    run_id: &str,
    reason: Option<String>,
    idempotency_key: Option<&str>,
) -> Result<Run, DomainError> {
    let d = Decision {
        op: "reject",
        role: Role::Responder,
        what: "rejecting a playbook run",
    };
    decide_on(svc, principal, run_id, idempotency_key, d, |run, _| {
        if !matches!(
            run.state,
            RunState::AwaitingApproval | RunState::DryRunOk | RunState::Approved
        ) {
            return Err(wrong_state(run, "rejected"));
        }
        if run.requested_by != principal.name && !principal.can(Role::Approver) {
            return Err(DomainError::Forbidden(
                "rejecting someone else's run needs the approver role".into(),
            ));
        }
        run.decided_by = Some(principal.name.clone());
        let why = reason.clone().map(|r| crate::redact::redact_text(&r));
        Ok((
            vec![(
                RunState::Rejected,
                why.or_else(|| Some(format!("rejected by {}", principal.name))),
            )],
            None,
        ))
    })
    .await
}

/// Starts a run that is approved, or needs no approval: its first step goes
/// to the dispatcher.
pub async fn execute(
    svc: &Services,
    principal: &Principal,
    run_id: &str,
    idempotency_key: Option<&str>,
) -> Result<Run, DomainError> {
    let d = Decision {
        op: "execute",
        role: Role::Responder,
        what: "running a playbook",
    };
    decide_on(svc, principal, run_id, idempotency_key, d, |run, _| {
        match run.state {
            RunState::Approved => {}
            RunState::DryRunOk if !run.approval_required => {}
            RunState::DryRunOk | RunState::AwaitingApproval => {
                return Err(DomainError::conflict(
                    "approval_required",
                    format!("run {} needs an approver's approval first", run.id),
                ))
            }
            _ => return Err(wrong_state(run, "run")),
        }
        Ok(start(run, false))
    })
    .await
}

/// Rolls back a run that failed (or succeeded): its rollback steps go to the
/// dispatcher.
pub async fn rollback(
    svc: &Services,
    principal: &Principal,
    run_id: &str,
    idempotency_key: Option<&str>,
) -> Result<Run, DomainError> {
    let d = Decision {
        op: "rollback",
        role: Role::Responder,
        what: "rolling back a playbook run",
    };
    decide_on(svc, principal, run_id, idempotency_key, d, |run, _| {
        if !matches!(run.state, RunState::Failed | RunState::Succeeded) {
            return Err(wrong_state(run, "rolled back"));
        }
        if run.rollback.is_empty() {
            return Err(DomainError::conflict(
                "no_rollback",
                format!("playbook {} defines no rollback steps", run.playbook),
            ));
        }
        Ok(start(run, true))
    })
    .await
}

/// Commits a step's progress (the dispatcher's side): the run conditional
/// on the version read, entries for new states, the next effect or a poll.
pub(crate) async fn commit_progress(
    svc: &Services,
    run: &mut Run,
    read_version: u64,
    states: &[(RunState, Option<String>)],
    effect: Option<Effect>,
    poll_at: Option<(Effect, DateTime<Utc>)>,
) -> Result<(), CommitError> {
    let inc = incidents::get(svc, &run.tenant, &run.incident_id)
        .await
        .map_err(CommitError::Domain)?;
    if let Some((fx, at)) = poll_at {
        // A poll alone: the run and the scheduled effect, nothing in chat.
        let mut change = Change::to(svc, inc);
        let about = change.entry(
            "firewatch",
            TimelineKind::Playbook {
                run_id: run.id.clone(),
                playbook: run.playbook.clone(),
                state: run.state.as_str().into(),
                detail: None,
            },
        );
        change.schedule_effect(about, fx, at);
        let item = keys::item(
            keys::playbook_runs_pk(&run.tenant),
            run.id.clone(),
            read_version + 1,
            run,
        )
        .map_err(CommitError::Domain)?;
        change.also(WriteOp::Put {
            item,
            condition: Condition::Version(read_version),
        });
        change.commit().await?;
        run.version = read_version + 1;
        return Ok(());
    }
    commit(
        svc,
        inc,
        run,
        Some(read_version),
        "firewatch",
        states,
        effect,
        None,
    )
    .await
}

/// Writes the run alone (a step claimed or released), conditional on the
/// version read.
pub(crate) async fn put_run(
    svc: &Services,
    run: &mut Run,
    read_version: u64,
) -> Result<(), crate::ports::StoreError> {
    let item = keys::item(
        keys::playbook_runs_pk(&run.tenant),
        run.id.clone(),
        read_version + 1,
        run,
    )
    .map_err(|e| crate::ports::StoreError::Invalid(e.to_string()))?;
    svc.store
        .put(item, Condition::Version(read_version))
        .await?;
    run.version = read_version + 1;
    Ok(())
}

pub(crate) async fn load_run(
    svc: &Services,
    tenant: &TenantId,
    run_id: &str,
) -> Result<Run, DomainError> {
    load(svc, tenant, run_id).await
}

/// Why a step's effect did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    /// Worth another try (the request never left, the store was busy).
    pub retryable: bool,
    pub message: String,
}

impl From<DomainError> for StepError {
    fn from(e: DomainError) -> Self {
        Self {
            retryable: matches!(
                e,
                DomainError::Unavailable(_) | DomainError::Conflict { .. }
            ),
            message: e.to_string(),
        }
    }
}

impl From<crate::change::CommitError> for StepError {
    fn from(e: crate::change::CommitError) -> Self {
        DomainError::from(e).into()
    }
}

impl From<crate::ports::StoreError> for StepError {
    fn from(e: crate::ports::StoreError) -> Self {
        DomainError::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_masked_raw_and_percent_encoded() {
        let secrets = std::collections::HashMap::from([("T".to_owned(), "ab+c/d=".to_owned())]);
        let echoed = "no route /x?key=ab%2Bc%2Fd%3D; body ab+c/d=";
        assert_eq!(
            scrub(echoed, &secrets),
            "no route /x?key=***T***; body ***T***"
        );
    }
}
