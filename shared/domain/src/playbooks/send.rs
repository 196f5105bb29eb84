//! Sending a rendered step through the one egress client, with its real
//! secrets, and recording the answer on the run.

use super::definition::{Expect, Step, StepKind};
use super::render::{evaluate, excerpt, render_step};
use super::run::{RenderedStep, StepOutcome};
use crate::ports::{OutboundError, OutboundRequest, OutboundResponse};
use crate::template::scrub;
use crate::template::Scope;
use crate::Services;

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
