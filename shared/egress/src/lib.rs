//! Outbound calls: [`OpenAiCompatibleLlm`] (assisted triage's model over
//! chat completions), and those of playbook steps and smoke checks, behind
//! the domain's
//! [`Egress`](firewatch_domain::ports::Egress) port.
//!
//! [`HttpEgress`] sends a step's request with reqwest: no redirects followed
//! (a mutating request is never re-sent somewhere else), the step's own
//! timeout, at most 64 KB of the answer read. Failures are classified the
//! way the step runner needs them: a request that never left (connection
//! refused, DNS, TLS, a bad URL) may be sent again; one that left and got no
//! answer (a timeout, a broken connection) must not be.

mod llm;
pub mod pagerduty;
pub mod trackers;

pub use llm::OpenAiCompatibleLlm;
pub use pagerduty::pager_from_env;
pub use trackers::tracker_from_env;

use async_trait::async_trait;
use firewatch_domain::ports::{Egress, OutboundError, OutboundRequest, OutboundResponse};

/// Largest answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// HTTP requests with reqwest; Lambda invocations are not available.
#[derive(Clone)]
pub struct HttpEgress {
    client: reqwest::Client,
}

impl Default for HttpEgress {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpEgress {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("firewatch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self { client }
    }
}

/// Describes a reqwest error without the URL (which may hold a secret).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

#[async_trait]
impl Egress for HttpEgress {
    async fn send(&self, req: &OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let url = reqwest::Url::parse(&req.url)
            .map_err(|e| OutboundError::Unsupported(format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::Unsupported(format!(
                "only http and https URLs can be called, not {}",
                url.scheme()
            )));
        }
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| OutboundError::Unsupported(format!("bad method {}", req.method)))?;
        let mut b = self.client.request(method, url).timeout(req.timeout);
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some(j) = &req.json {
            b = b.json(j);
        }
        let resp = b.send().await.map_err(|e| {
            if e.is_connect() || e.is_builder() {
                OutboundError::Unreached(describe(&e))
            } else {
                OutboundError::NoAnswer(describe(&e))
            }
        })?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        let mut resp = resp;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_ANSWER - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= MAX_ANSWER {
                        break;
                    }
                }
                Ok(None) => break,
                // The status came; a body that broke off is kept as far as
                // it got.
                Err(_) => break,
            }
        }
        let body = serde_json::from_slice(&body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())
        });
        Ok(OutboundResponse { status, body })
    }

    async fn invoke_lambda(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<OutboundResponse, OutboundError> {
        // No Lambda client here: refused as everywhere outside AWS.
        firewatch_domain::ports::NoEgress
            .invoke_lambda(function, payload)
            .await
    }
}
