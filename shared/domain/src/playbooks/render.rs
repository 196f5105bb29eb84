//! Rendering a step for a run: templates filled from the incident and the
//! parameters (secrets masked for what people see), answers scrubbed of
//! secrets, and the answer checked against the step's `expect`.

use std::collections::BTreeMap;

use firewatch_types::Incident;

use super::definition::{Expect, Playbook, Step, StepKind};
use super::incident_value;
use super::run::{
    RenderedRequest, RenderedStep, DEFAULT_INTERVAL_SECS, DEFAULT_TIMEOUT_SECS, DEFAULT_WAIT_SECS,
    RESPONSE_EXCERPT,
};
use crate::egress::{self, PinnedOrigin};
use crate::ports::OutboundResponse;
use crate::template::scrub;
use crate::template::Scope;
use crate::Services;

pub(crate) fn excerpt(
    v: &serde_json::Value,
    secrets: &std::collections::HashMap<String, String>,
) -> String {
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

/// The scope of a run's templates with its secrets masked.
pub fn masked_scope(inc: &Incident, def: &Playbook, params: &BTreeMap<String, String>) -> Scope {
    Scope::masked(incident_value(inc), params.clone(), &def.secret_names())
}
