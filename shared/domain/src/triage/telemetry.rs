//! Telemetry of assisted triage: one small event per model-assisted triage
//! (its outcome, provider, model, error class, tokens and latency), kept 30
//! days, and what `GET /v1/triage/telemetry` and `GET /v1/triage/provider`
//! make of the most recent ones.
//!
//! An event is its own item (sort key a ULID), written in the transaction
//! that records the report, or alone when the strict policy writes no
//! report: concurrent triages never contend on a counter, and every outcome
//! is counted. Reads take the newest [`WINDOW_EVENTS`] events at most and
//! say when they stopped there.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{IncidentId, Principal, Role, TenantId};
use serde::{Deserialize, Serialize};

use crate::auth::require_role;
pub use crate::keys::triage_events_pk as events_pk;
use crate::ports::{Condition, Query};
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// Days an event is kept.
pub const EVENT_TTL_DAYS: i64 = 30;
/// The most events one read aggregates.
pub const WINDOW_EVENTS: usize = 2000;
/// Events listed under `recent`.
pub const RECENT_EVENTS: usize = 20;

/// How an assisted triage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The model's report validated and was kept.
    Success,
    /// The model failed; the deterministic report was kept (`degraded`).
    Fallback,
    /// The model failed under the strict policy: nothing was written.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Fallback => "fallback",
            Self::Failed => "failed",
        }
    }
}

/// One assisted triage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub at: DateTime<Utc>,
    pub incident_id: IncidentId,
    /// The report kept, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_id: Option<String>,
    pub status: Status,
    /// `bedrock`, `openai_compatible`, or `none`.
    pub provider: String,
    pub model: String,
    /// `throttled`, `server_error`, `timeout`, `refused`, `unavailable`,
    /// `invalid_answer`, `not_configured`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    pub latency_ms: u64,
}

/// Records `event` with `work`.
pub fn write(work: &mut Work<'_>, event: &Event, tenant: &TenantId) -> Result<(), DomainError> {
    let mut item = keys::item(events_pk(tenant), event.id.clone(), 1, event)?;
    item.expires_at = Some(event.at.timestamp() + EVENT_TTL_DAYS * 86_400);
    work.put(item, Condition::Absent);
    Ok(())
}

/// The newest events of `tenant` since `since`, at most [`WINDOW_EVENTS`],
/// newest first, and whether more were left unread.
pub async fn recent(
    svc: &Services,
    tenant: &TenantId,
    since: DateTime<Utc>,
) -> Result<(Vec<Event>, bool), DomainError> {
    let mut out: Vec<Event> = Vec::new();
    let mut after = None;
    loop {
        let page = svc
            .store
            .query(Query {
                pk: events_pk(tenant),
                sk_prefix: String::new(),
                after: after.take(),
                limit: (WINDOW_EVENTS - out.len()).min(500),
                descending: true,
            })
            .await?;
        for item in &page.items {
            let e: Event = keys::decode(item)?;
            if e.at < since {
                return Ok((out, false));
            }
            out.push(e);
        }
        match page.next {
            Some(n) if out.len() < WINDOW_EVENTS => after = Some(n),
            Some(_) => return Ok((out, true)),
            None => return Ok((out, false)),
        }
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
}

/// `GET /v1/triage/telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Telemetry {
    pub window_hours: i64,
    /// Events aggregated.
    pub events: usize,
    /// True when the window held more than [`WINDOW_EVENTS`] events: the
    /// counts are of the newest ones.
    pub truncated: bool,
    pub by_status: BTreeMap<String, u64>,
    /// Keyed `provider/model`.
    pub by_provider_model: BTreeMap<String, u64>,
    pub by_error_class: BTreeMap<String, u64>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub latency_ms: Latency,
    /// The newest events, at most [`RECENT_EVENTS`].
    pub recent: Vec<Event>,
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Aggregates `events` (newest first).
pub fn aggregate(events: Vec<Event>, window_hours: i64, truncated: bool) -> Telemetry {
    let mut t = Telemetry {
        window_hours,
        events: events.len(),
        truncated,
        by_status: ["success", "fallback", "failed"]
            .into_iter()
            .map(|s| (s.to_owned(), 0))
            .collect(),
        by_provider_model: BTreeMap::new(),
        by_error_class: BTreeMap::new(),
        tokens_in: 0,
        tokens_out: 0,
        latency_ms: Latency::default(),
        recent: Vec::new(),
    };
    let mut latencies = Vec::with_capacity(events.len());
    for e in &events {
        *t.by_status.entry(e.status.as_str().into()).or_default() += 1;
        *t.by_provider_model
            .entry(format!("{}/{}", e.provider, e.model))
            .or_default() += 1;
        if let Some(c) = &e.error_class {
            *t.by_error_class.entry(c.clone()).or_default() += 1;
        }
        t.tokens_in += e.input_tokens;
        t.tokens_out += e.output_tokens;
        latencies.push(e.latency_ms);
    }
    latencies.sort_unstable();
    t.latency_ms = Latency {
        p50: percentile(&latencies, 50.0),
        p90: percentile(&latencies, 90.0),
        p99: percentile(&latencies, 99.0),
        max: latencies.last().copied(),
    };
    t.recent = events.into_iter().take(RECENT_EVENTS).collect();
    t
}

/// Telemetry of the last `hours` hours (1 to 720) for a viewer.
pub async fn summary(svc: &Services, p: &Principal, hours: i64) -> Result<Telemetry, DomainError> {
    require_role(p, Role::Viewer, "read triage telemetry")?;
    if !(1..=EVENT_TTL_DAYS * 24).contains(&hours) {
        return Err(DomainError::bad_input(
            "invalid_window",
            format!("hours must be between 1 and {}", EVENT_TTL_DAYS * 24),
        ));
    }
    let since = svc.clock.now() - Duration::hours(hours);
    let (events, truncated) = recent(svc, &p.tenant, since).await?;
    Ok(aggregate(events, hours, truncated))
}

/// When the model last answered, or last failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub at: DateTime<Utc>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    pub model: String,
}

/// Whether the model's credentials resolve, found without calling it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Credentials {
    pub resolved: bool,
    pub detail: String,
}

/// `GET /v1/triage/provider`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provider {
    /// `bedrock`, `openai_compatible`, or `none`.
    pub provider: String,
    pub model: Option<String>,
    /// `fallback` or `strict`.
    pub failure_policy: &'static str,
    /// The mode the Triage button and a bare `/fw triage` use.
    pub default_mode: &'static str,
    pub retry_max_attempts: u32,
    pub retry_base_ms: u64,
    pub budget_ms: u64,
    pub last_success: Option<Outcome>,
    pub last_failure: Option<Outcome>,
    pub credentials: Credentials,
}

/// The configured provider and how it has fared lately (from the last
/// [`EVENT_TTL_DAYS`] days of events), without calling the model.
pub async fn provider(svc: &Services, p: &Principal) -> Result<Provider, DomainError> {
    require_role(p, Role::Viewer, "read the triage provider")?;
    let since = svc.clock.now() - Duration::days(EVENT_TTL_DAYS);
    let (events, _) = recent(svc, &p.tenant, since).await?;
    let outcome = |e: &Event| Outcome {
        at: e.at,
        status: e.status,
        error_class: e.error_class.clone(),
        model: e.model.clone(),
    };
    let last_success = events
        .iter()
        .find(|e| e.status == Status::Success)
        .map(outcome);
    let last_failure = events
        .iter()
        .find(|e| e.status != Status::Success)
        .map(outcome);
    let (provider, model, credentials) = match svc.llm.as_deref() {
        None => (
            "none".to_owned(),
            None,
            Credentials {
                resolved: false,
                detail: "no model is configured (ASSISTED_TRIAGE_PROVIDER, BEDROCK_MODEL_ID or OPENAI_MODEL)".into(),
            },
        ),
        Some(llm) => {
            let credentials = match llm.credentials().await {
                Ok(detail) => Credentials {
                    resolved: true,
                    detail,
                },
                Err(detail) => Credentials {
                    resolved: false,
                    detail,
                },
            };
            (llm.provider().to_owned(), Some(llm.model()), credentials)
        }
    };
    let s = &svc.settings;
    Ok(Provider {
        provider,
        model,
        failure_policy: match s.assisted_failure_policy {
            crate::settings::AssistedPolicy::Fallback => "fallback",
            crate::settings::AssistedPolicy::Strict => "strict",
        },
        default_mode: s.triage_default.as_str(),
        retry_max_attempts: s.assisted_retry_max_attempts,
        retry_base_ms: s.assisted_retry_base_ms,
        budget_ms: u64::try_from(super::assisted::BUDGET.as_millis()).unwrap_or(u64::MAX),
        last_success,
        last_failure,
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(status: Status, class: Option<&str>, latency_ms: u64) -> Event {
        Event {
            id: "01J".into(),
            at: Utc::now(),
            incident_id: IncidentId::parse("inc_01JD0000000000000000000001").unwrap(),
            report_id: None,
            status,
            provider: "bedrock".into(),
            model: "m".into(),
            error_class: class.map(Into::into),
            input_tokens: 100,
            output_tokens: 20,
            latency_ms,
        }
    }

    #[test]
    fn counts_tokens_and_percentiles_come_from_the_events() {
        let mut events: Vec<Event> = (1..=10)
            .map(|n| ev(Status::Success, None, n * 100))
            .collect();
        events.push(ev(Status::Fallback, Some("throttled"), 5000));
        events.push(ev(Status::Failed, Some("timeout"), 20000));
        let t = aggregate(events, 24, false);
        assert_eq!(t.events, 12);
        assert_eq!(t.by_status["success"], 10);
        assert_eq!(t.by_status["fallback"], 1);
        assert_eq!(t.by_status["failed"], 1);
        assert_eq!(t.by_provider_model["bedrock/m"], 12);
        assert_eq!(t.by_error_class["throttled"], 1);
        assert_eq!(t.tokens_in, 1200);
        assert_eq!(t.tokens_out, 240);
        assert_eq!(t.latency_ms.p50, Some(600));
        assert_eq!(t.latency_ms.max, Some(20000));
        assert_eq!(t.recent.len(), 12);
    }

    #[test]
    fn no_events_give_zero_counts_and_no_percentiles() {
        let t = aggregate(Vec::new(), 24, false);
        assert_eq!(t.by_status["success"], 0);
        assert_eq!(t.latency_ms, Latency::default());
    }
}
