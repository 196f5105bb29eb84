//! Outbound calls: [`OpenAiCompatibleLlm`] (assisted triage's model over
//! chat completions), and those of playbook steps and smoke checks, behind
//! the domain's
//! [`Egress`](firewatch_domain::ports::Egress) port.
//!
//! [`HttpEgress`] sends a step's request with reqwest, only to addresses the
//! egress policy permits (public ones, and what `FIREWATCH_EGRESS_ALLOW`
//! names), checked on the address dialled: no redirects followed (a
//! mutating request is never re-sent somewhere else), no proxy, the step's
//! own timeout, at most 64 KB of the answer read. Failures are classified the
//! way the step runner needs them: a request that never left (connection
//! refused, DNS, TLS, a bad URL) may be sent again; one that left and got no
//! answer (a timeout, a broken connection) must not be.

mod llm;
pub mod pagerduty;
pub mod trackers;

pub use llm::OpenAiCompatibleLlm;
pub use pagerduty::pager_from_env;
pub use trackers::tracker_from_env;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use firewatch_domain::egress::EgressAllow;
use firewatch_domain::ports::{Egress, OutboundError, OutboundRequest, OutboundResponse};

/// Largest answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// The one egress client for requests whose target a definition or API
/// input can set: HTTP with reqwest, guarded by the egress policy
/// ([`firewatch_domain::egress`]). Names are resolved by [`Guard`], which
/// hands reqwest only the addresses the policy permits, so the address
/// dialled is the address checked (no second lookup to rebind); address
/// literals are checked before the request is built. No proxy is used and
/// no redirect is followed. Lambda invocations are not available.
#[derive(Clone)]
pub struct HttpEgress {
    client: reqwest::Client,
    allow: Arc<EgressAllow>,
}

impl HttpEgress {
    /// A client that reaches public addresses and what `allow` names.
    pub fn new(allow: EgressAllow) -> Self {
        let allow = Arc::new(allow);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(Guard {
                allow: allow.clone(),
            }))
            .user_agent(concat!("firewatch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("a reqwest client with rustls builds");
        Self { client, allow }
    }

    /// Refuses a target the policy does not permit, before anything is
    /// sent: a port the allow list excludes, an address literal that is not
    /// public, or a name none of whose addresses may be dialled.
    async fn admit(&self, url: &reqwest::Url) -> Result<(), OutboundError> {
        let refused =
            |why: String| OutboundError::Unsupported(format!("refused by the egress guard: {why}"));
        let port = url.port_or_known_default().unwrap_or(80);
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(refused("the URL has no host".into())),
        };
        if !self.allow.port_allowed(&host, port) {
            return Err(refused(format!(
                "FIREWATCH_EGRESS_ALLOW names this host only on other ports than {port}"
            )));
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
            _ => None,
        };
        if let Some(ip) = literal {
            if !self.allow.permits(&host, ip) {
                return Err(refused(not_public(ip)));
            }
            return Ok(());
        }
        match Guard::lookup(&self.allow, &host).await {
            Ok(_) => Ok(()),
            Err(GuardError::Refused(m)) => Err(refused(m)),
            // Not resolvable: the request itself says so.
            Err(GuardError::Lookup(_)) => Ok(()),
        }
    }
}

/// Why an address is refused, naming its kind but neither the host nor the
/// address (a base URL may be a secret).
fn not_public(ip: IpAddr) -> String {
    let kind = firewatch_domain::egress::kind_of(ip).unwrap_or("an address it may not reach");
    format!("the target is {kind}, not a public one; allow it with FIREWATCH_EGRESS_ALLOW")
}

/// The resolver reqwest uses: each name resolved once, and only the
/// addresses the policy permits handed back to be dialled.
struct Guard {
    allow: Arc<EgressAllow>,
}

#[derive(Debug, thiserror::Error)]
enum GuardError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Lookup(std::io::Error),
}

impl Guard {
    async fn lookup(allow: &EgressAllow, host: &str) -> Result<Vec<SocketAddr>, GuardError> {
        let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(GuardError::Lookup)?
            .collect();
        let permitted: Vec<SocketAddr> = all
            .iter()
            .copied()
            .filter(|a| allow.permits(host, a.ip()))
            .collect();
        if permitted.is_empty() && !all.is_empty() {
            return Err(GuardError::Refused(not_public(all[0].ip())));
        }
        Ok(permitted)
    }
}

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let addrs = Guard::lookup(&allow, name.as_str()).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
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
        self.admit(&url).await?;
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
