//! Provider freshness: a low-noise check that alerts from each watched
//! provider keep arriving. A provider silent past its window raises one
//! alert (source `freshness`): the pipeline to firewatch may be broken, not
//! everything well. The next webhook from it resolves the alert.
//!
//! Watches come from `FIREWATCH_FRESHNESS` (`alertmanager:15m,sentry:1h`,
//! for every tenant that has received from the provider) and from the API
//! (per tenant, from the moment it is set). Ingest marks each
//! provider's last webhook at most once a minute per process
//! ([`Marks`]), so the hot path pays one small write a minute, not one
//! per webhook. `POST /v1/dossier/provider-heartbeat` records a synthetic
//! event per provider through the same path, keeping its envelope, without
//! opening an incident or reaching chat.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{Principal, Role, SourceKind, TenantId};
use serde::{Deserialize, Serialize};

use crate::auth::require_role;
use crate::cadence::{format_secs, span_secs};
use crate::due::{Budget, JobReport};
use crate::ports::{Condition, Query};
use crate::{keys, DomainError, Services};

pub const JOB: &str = "freshness";

pub use crate::ingest::seen::{mark, LastSeen, Marks, MARK_EVERY_SECS};

/// A watch configured through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ApiWatch {
    window_secs: i64,
}

/// What the job remembers per watched provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct WatchState {
    /// When the watch was first seen by the job (the window of a provider
    /// never heard from counts from here).
    since: Option<DateTime<Utc>>,
    alerting: bool,
    events: u64,
}

/// A provider's freshness, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Freshness {
    pub provider: SourceKind,
    /// `None` when the provider is not watched (listed because it sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// `env` or `api`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configured_by: Option<&'static str>,
    pub last_event_at: Option<DateTime<Utc>>,
    pub last_event_synthetic: bool,
    /// `fresh`, `stale`, `waiting` (watched, nothing yet, within the window)
    /// or `unwatched`.
    pub state: &'static str,
    pub alerting: bool,
}

fn watched(
    svc: &Services,
    api: &BTreeMap<SourceKind, i64>,
) -> BTreeMap<SourceKind, (i64, &'static str)> {
    let mut out: BTreeMap<SourceKind, (i64, &'static str)> = svc
        .settings
        .freshness
        .iter()
        .map(|(s, w)| (*s, (*w, "env")))
        .collect();
    for (s, w) in api {
        out.insert(*s, (*w, "api"));
    }
    out
}

struct Partition {
    last: BTreeMap<SourceKind, LastSeen>,
    api: BTreeMap<SourceKind, i64>,
    state: BTreeMap<SourceKind, (WatchState, u64)>,
}

async fn read(svc: &Services, tenant: &TenantId) -> Result<Partition, DomainError> {
    let page = svc
        .store
        .query(Query::all(keys::freshness_pk(tenant), 100))
        .await?;
    let mut p = Partition {
        last: BTreeMap::new(),
        api: BTreeMap::new(),
        state: BTreeMap::new(),
    };
    for item in &page.items {
        let Some((kind, source)) = item.sk.split_once('#') else {
            continue;
        };
        let Some(source) = SourceKind::parse(source) else {
            continue;
        };
        match kind {
            "LAST" => {
                p.last.insert(source, keys::decode(item)?);
            }
            "WATCH" => {
                p.api
                    .insert(source, keys::decode::<ApiWatch>(item)?.window_secs);
            }
            "STATE" => {
                p.state.insert(source, (keys::decode(item)?, item.version));
            }
            _ => {}
        }
    }
    Ok(p)
}

/// Every watched provider, and every provider that sent, with its state.
pub async fn list(svc: &Services, p: &Principal) -> Result<Vec<Freshness>, DomainError> {
    require_role(p, Role::Viewer, "read provider freshness")?;
    let part = read(svc, &p.tenant).await?;
    let now = svc.clock.now();
    let watches = watched(svc, &part.api);
    let mut providers: Vec<SourceKind> = watches.keys().copied().collect();
    for s in part.last.keys() {
        if !providers.contains(s) {
            providers.push(*s);
        }
    }
    providers.sort();
    Ok(providers
        .into_iter()
        .map(|provider| {
            let last = part.last.get(&provider);
            let watch = watches.get(&provider);
            let (state, _) = part.state.get(&provider).cloned().unwrap_or_default();
            let label = match (watch, last) {
                (None, _) => "unwatched",
                (Some((w, _)), Some(l)) if now - l.at <= Duration::seconds(*w) => "fresh",
                (Some((w, _)), None)
                    if state.since.is_none_or(|s| now - s <= Duration::seconds(*w)) =>
                {
                    "waiting"
                }
                _ => "stale",
            };
            Freshness {
                provider,
                window: watch.map(|(w, _)| format_secs(*w)),
                configured_by: watch.map(|(_, by)| *by),
                last_event_at: last.map(|l| l.at),
                last_event_synthetic: last.is_some_and(|l| l.synthetic),
                state: label,
                alerting: state.alerting,
            }
        })
        .collect())
}

fn provider(name: &str) -> Result<SourceKind, DomainError> {
    SourceKind::parse(name)
        .filter(|s| !s.is_internal())
        .ok_or_else(|| {
            DomainError::NotFound(format!(
                "unknown provider {:?}",
                crate::limits::truncate(name, 40)
            ))
        })
}

/// Watches `provider` with `window` for the caller's tenant (admin); `None`
/// stops the API's watch (a `FIREWATCH_FRESHNESS` one stays).
pub async fn set_watch(
    svc: &Services,
    p: &Principal,
    name: &str,
    window: Option<&str>,
) -> Result<(), DomainError> {
    require_role(p, Role::Admin, "configure provider freshness")?;
    let source = provider(name)?;
    let sk = format!("WATCH#{source}");
    match window {
        Some(w) => {
            let window_secs = span_secs("window", w)?;
            let item = keys::item(
                keys::freshness_pk(&p.tenant),
                sk,
                1,
                &ApiWatch { window_secs },
            )?;
            crate::work::put(svc, item, Condition::Always).await?;
        }
        None => {
            crate::work::delete(svc, &keys::freshness_pk(&p.tenant), &sk, Condition::Always)
                .await?;
        }
    }
    Ok(())
}

/// `POST /v1/dossier/provider-heartbeat` (admin): a synthetic event for
/// each provider named (default: every watched one), kept as an envelope
/// in the blob store like a webhook and marked as the provider's last
/// event. No incident, no chat. Returns the envelopes' blob keys.
pub async fn provider_heartbeat(
    svc: &Services,
    p: &Principal,
    names: &[String],
) -> Result<Vec<(SourceKind, String)>, DomainError> {
    require_role(p, Role::Admin, "record provider heartbeats")?;
    let sources: Vec<SourceKind> = if names.is_empty() {
        let part = read(svc, &p.tenant).await?;
        let w = watched(svc, &part.api);
        if w.is_empty() {
            return Err(DomainError::bad_input(
                "no_providers",
                "no provider is watched: name them ({\"providers\": [\"alertmanager\"]})",
            ));
        }
        w.keys().copied().collect()
    } else {
        names
            .iter()
            .map(|n| provider(n))
            .collect::<Result<_, _>>()?
    };
    let mut out = Vec::new();
    for source in sources {
        let key = crate::ingest::keep_synthetic_envelope(svc, p, source, "heartbeat").await?;
        mark(svc, &p.tenant, source, true).await;
        out.push((source, key));
    }
    Ok(out)
}

/// The `freshness` job: for each tenant, raises an alert for each watched
/// provider silent past its window, and resolves it once it sends again.
pub async fn run(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    crate::recording::scope("job:freshness", run_scoped(svc, budget)).await
}

async fn run_scoped(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    let mut report = JobReport::default();
    for tenant in crate::auth::known_tenants(svc).await? {
        if budget.exhausted() {
            report.more = true;
            break;
        }
        match check_tenant(svc, &tenant, &mut report).await {
            Ok(()) => {}
            Err(e) => {
                report.failed += 1;
                tracing::warn!(%tenant, error = %e, "freshness check failed");
            }
        }
    }
    Ok(report)
}

async fn check_tenant(
    svc: &Services,
    tenant: &TenantId,
    report: &mut JobReport,
) -> Result<(), DomainError> {
    let part = read(svc, tenant).await?;
    let now = svc.clock.now();
    for (source, (window, by)) in watched(svc, &part.api) {
        // A FIREWATCH_FRESHNESS watch applies to a tenant once it has
        // received from the provider; one set through the API at once.
        if by == "env" && !part.last.contains_key(&source) {
            continue;
        }
        report.checked += 1;
        let (mut state, version) = part.state.get(&source).cloned().unwrap_or_default();
        let since = *state.since.get_or_insert(now);
        let last = part.last.get(&source).map(|l| l.at);
        let silent_since = last.unwrap_or(since);
        let stale = now - silent_since > Duration::seconds(window);
        let event = match (stale, state.alerting) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        };
        if let Some(firing) = event {
            state.events += 1;
            let alert = serde_json::json!({
                "title": format!("No alerts from {source} for {}", format_secs(window)),
                "status": if firing { "firing" } else { "resolved" },
                "severity": "sev3",
                "fingerprint": format!("freshness:{source}"),
                "labels": {"provider": source.as_str()},
                "annotations": {
                    "reason": if firing {
                        format!("nothing received from {source} since {silent_since}: the path from it to firewatch may be broken")
                    } else {
                        format!("{source} is sending again")
                    },
                    "event": state.events.to_string(),
                },
                if firing { "starts_at" } else { "ends_at" }: now,
            });
            crate::ingest::ingest_alert(
                svc,
                tenant,
                SourceKind::Freshness,
                "freshness".into(),
                &alert,
            )
            .await?;
            state.alerting = firing;
            report.alerts += 1;
        } else if version != 0 {
            continue;
        }
        // One writer per state: a concurrent tick that lost the race has
        // ingested the same event into the same open incident (dedup).
        let item = keys::item(
            keys::freshness_pk(tenant),
            format!("STATE#{source}"),
            version + 1,
            &state,
        )?;
        let condition = if version == 0 {
            Condition::Absent
        } else {
            Condition::Version(version)
        };
        match crate::work::put(svc, item, condition).await {
            Ok(()) => {}
            Err(e) if e.is_lost_race() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
