//! Pages through PagerDuty's Events API v2 (`POST /v2/enqueue`), behind the
//! domain's `Pager` port: a trigger carries `payload` (summary, source,
//! severity, custom details), `links` and the incident's `dedup_key`;
//! acknowledge and resolve carry the routing key and the dedup key only.
//!
//! `FIREWATCH_PAGERDUTY_EVENTS_URL` points elsewhere (default
//! `https://events.pagerduty.com`, the EU service is
//! `https://events.eu.pagerduty.com`). A 429, a 5xx, a timeout or an
//! unreachable service is worth retrying; a 400 (an invalid event or routing
//! key) is not. No error or log carries the routing key.

use std::sync::Arc;

use async_trait::async_trait;
use firewatch_domain::ports::{PageEvent, Pager, PagerError};
use firewatch_types::Severity;
use serde_json::{json, Value};

/// The Events API v2.
pub struct PagerDutyEvents {
    base: String,
    client: reqwest::Client,
}

impl PagerDutyEvents {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("firewatch/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }
}

/// The `FIREWATCH_PAGERDUTY_EVENTS_URL` service (or PagerDuty's own).
pub fn pager_from_env() -> Arc<dyn Pager> {
    let base = std::env::var("FIREWATCH_PAGERDUTY_EVENTS_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "https://events.pagerduty.com".into());
    Arc::new(PagerDutyEvents::new(&base))
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Sev1 => "critical",
        Severity::Sev2 => "error",
        Severity::Sev3 => "warning",
        Severity::Sev4 => "info",
    }
}

/// The event's JSON, as the Events API v2 documents it.
pub fn body(e: &PageEvent) -> Value {
    let mut v = json!({
        "routing_key": e.routing_key,
        "event_action": e.action,
        "dedup_key": e.dedup_key,
    });
    if e.action == "trigger" {
        v["client"] = json!("firewatch");
        v["payload"] = json!({
            "summary": e.summary,
            "source": e.source,
            "severity": severity(e.severity),
            "custom_details": e.custom_details,
        });
        v["links"] = e
            .links
            .iter()
            .map(|l| json!({"href": l.href, "text": l.text.clone().unwrap_or_else(|| l.href.clone())}))
            .collect();
    }
    v
}

#[async_trait]
impl Pager for PagerDutyEvents {
    async fn send(&self, e: &PageEvent) -> Result<(), PagerError> {
        let res = self
            .client
            .post(format!("{}/v2/enqueue", self.base))
            .json(&body(e))
            .send()
            .await
            .map_err(|err| {
                PagerError::Retryable(format!(
                    "PagerDuty Events API unreachable: {}",
                    err.without_url()
                ))
            })?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        // The answer's `message` and `errors` say what was wrong; they never
        // echo the routing key.
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        let why = format!(
            "{} {} {}",
            status.as_u16(),
            answer["message"].as_str().unwrap_or(""),
            answer["errors"]
        );
        if status.as_u16() == 429 || status.is_server_error() {
            Err(PagerError::Retryable(why))
        } else {
            Err(PagerError::Permanent(why))
        }
    }
}
