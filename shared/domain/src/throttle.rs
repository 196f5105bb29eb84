//! Rate limits on what costs: per tenant, dry-runs (which send read-only
//! requests with real secrets), assisted triage (a paid model call) and
//! silence creation; per heartbeat, pings. A limit is a count per fixed
//! one-minute window; past it the caller is answered `429` with
//! `Retry-After` (the seconds left in the window) and nothing changes.
//!
//! Tenant counts live in one store item per tenant, action and minute, so
//! every function instance sees the same count; a ping's count lives in its
//! heartbeat's own item, which the ping writes anyway.

use chrono::{DateTime, Utc};
use firewatch_types::TenantId;
use serde::{Deserialize, Serialize};

use crate::keys;
use crate::ports::Condition;
use crate::{DomainError, Services};

/// Seconds in a window.
pub const WINDOW_SECS: i64 = 60;

/// Per-minute limits (`FIREWATCH_RATE_LIMITS`, e.g.
/// `dry_runs=30,assisted_triage=10,silences=30,pings=120`; 0 turns one off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Playbook dry-runs per tenant (API and chat alike).
    pub dry_runs: u32,
    /// Assisted triage requests per tenant.
    pub assisted_triage: u32,
    /// Silences created or updated per tenant (API, amtool and chat).
    pub silences: u32,
    /// Pings per heartbeat.
    pub pings: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            dry_runs: 30,
            assisted_triage: 10,
            silences: 30,
            pings: 120,
        }
    }
}

impl Limits {
    /// Parses `name=N` entries over the defaults.
    pub fn parse(v: &str) -> Result<Self, String> {
        let mut l = Self::default();
        for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, n) = entry.split_once('=').ok_or_else(|| {
                "FIREWATCH_RATE_LIMITS entries must look like name=N (dry_runs=30)".to_string()
            })?;
            let n: u32 = n.trim().parse().map_err(|_| {
                format!(
                    "FIREWATCH_RATE_LIMITS: {} must be a whole number",
                    name.trim()
                )
            })?;
            match name.trim() {
                "dry_runs" => l.dry_runs = n,
                "assisted_triage" => l.assisted_triage = n,
                "silences" => l.silences = n,
                "pings" => l.pings = n,
                other => {
                    return Err(format!(
                        "FIREWATCH_RATE_LIMITS: unknown limit {other:?} (dry_runs, assisted_triage, silences, pings)"
                    ))
                }
            }
        }
        Ok(l)
    }
}

/// An action limited per tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    DryRun,
    AssistedTriage,
    Silence,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::DryRun => "dry_runs",
            Self::AssistedTriage => "assisted_triage",
            Self::Silence => "silences",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::DryRun => "playbook dry-runs",
            Self::AssistedTriage => "assisted triage requests",
            Self::Silence => "silence changes",
        }
    }

    fn limit(self, l: &Limits) -> u32 {
        match self {
            Self::DryRun => l.dry_runs,
            Self::AssistedTriage => l.assisted_triage,
            Self::Silence => l.silences,
        }
    }
}

/// A count within one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Unix seconds at which the window began.
    pub start: i64,
    pub count: u32,
}

impl Window {
    /// Counts one more at `now` against `limit`: the window it belongs to,
    /// or the refusal when the window is full.
    pub fn take(self, now: DateTime<Utc>, limit: u32, what: &str) -> Result<Self, DomainError> {
        let start = now.timestamp().div_euclid(WINDOW_SECS) * WINDOW_SECS;
        let count = if self.start == start { self.count } else { 0 };
        if limit > 0 && count >= limit {
            return Err(DomainError::RateLimited {
                message: format!(
                    "too many {what}: at most {limit} a minute; retry after the time in Retry-After"
                ),
                retry_after_secs: (start + WINDOW_SECS - now.timestamp()).max(1) as u64,
            });
        }
        Ok(Self {
            start,
            count: count + 1,
        })
    }
}

/// Counts one `action` of `tenant`, or refuses it when this minute's are
/// spent.
pub async fn take(svc: &Services, tenant: &TenantId, action: Action) -> Result<(), DomainError> {
    let limit = action.limit(&svc.settings.rate_limits);
    if limit == 0 {
        return Ok(());
    }
    let pk = keys::rate_pk(tenant);
    crate::retry::until_won!(
        crate::retry::BUSY,
        || DomainError::Unavailable("the rate count kept changing; try again".into()),
        async || -> Result<_, crate::retry::Retry> {
            let now = svc.clock.now();
            let start = now.timestamp().div_euclid(WINDOW_SECS) * WINDOW_SECS;
            let sk = format!("{}#{start}", action.name());
            let (current, version) = match svc.store.get(&pk, &sk).await? {
                Some(item) => (keys::decode::<Window>(&item)?, item.version),
                None => (Window::default(), 0),
            };
            let next = current.take(now, limit, action.what())?;
            let mut item = keys::item(pk.clone(), sk, version + 1, &next)?;
            item.expires_at = Some(start + 2 * WINDOW_SECS);
            let condition = if version == 0 {
                Condition::Absent
            } else {
                Condition::Version(version)
            };
            crate::work::put(svc, item, condition)
                .await
                .map_err(crate::retry::Retry::from_commit)?;
            Ok(())
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_fills_then_refuses_until_the_next_minute() {
        let t0 = DateTime::from_timestamp(1_799_999_940 + 10, 0).unwrap();
        let mut w = Window::default();
        for _ in 0..3 {
            w = w.take(t0, 3, "things").unwrap();
        }
        match w.take(t0, 3, "things") {
            Err(DomainError::RateLimited {
                retry_after_secs,
                message,
            }) => {
                assert_eq!(retry_after_secs, 50);
                assert!(message.contains("at most 3 a minute"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let next = t0 + chrono::Duration::seconds(50);
        assert_eq!(w.take(next, 3, "things").unwrap().count, 1);
        assert_eq!(
            Window::default().take(t0, 0, "x").unwrap().count,
            1,
            "0 is off"
        );
    }

    #[test]
    fn limits_parse_over_the_defaults_and_name_what_is_wrong() {
        let l = Limits::parse("dry_runs=5, pings=0").unwrap();
        assert_eq!((l.dry_runs, l.pings, l.silences), (5, 0, 30));
        assert!(Limits::parse("dryruns=5")
            .unwrap_err()
            .contains("unknown limit"));
        assert!(Limits::parse("silences=many")
            .unwrap_err()
            .contains("silences"));
    }
}
