//! When each provider was last heard from: ingest marks a provider's
//! webhook at most once a minute per process ([`Marks`]), so the hot path
//! pays one small write a minute, not one per webhook. The freshness job
//! (`schedules::freshness`) reads the marks.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use firewatch_types::{SourceKind, TenantId};
use serde::{Deserialize, Serialize};

use crate::ports::Condition;
use crate::{keys, Services};

/// A provider's last-seen mark is written at most this often per process.
pub const MARK_EVERY_SECS: i64 = 60;

/// When each provider was last marked by this process.
#[derive(Default)]
pub struct Marks(Mutex<HashMap<(TenantId, SourceKind), i64>>);

impl Marks {
    /// True when `source` of `tenant` should be marked again at `now`.
    fn due(&self, tenant: &TenantId, source: SourceKind, now: i64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(&(tenant.clone(), source)) {
            Some(at) if now - at < MARK_EVERY_SECS => false,
            _ => {
                seen.insert((tenant.clone(), source), now);
                true
            }
        }
    }

    fn forget(&self, tenant: &TenantId, source: SourceKind) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.remove(&(tenant.clone(), source));
    }
}

/// A provider's last webhook, as marked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSeen {
    pub at: DateTime<Utc>,
    /// True when the last mark was a synthetic provider heartbeat.
    #[serde(default)]
    pub synthetic: bool,
}

/// Marks a webhook from `source` (not more than once a minute per process).
/// A failure is logged, never fails the webhook.
pub async fn mark(svc: &Services, tenant: &TenantId, source: SourceKind, synthetic: bool) {
    if source.is_internal() {
        return;
    }
    let now = svc.clock.now();
    if !synthetic
        && !svc
            .memos
            .get::<Marks>()
            .due(tenant, source, now.timestamp())
    {
        return;
    }
    let last = LastSeen { at: now, synthetic };
    let item = match keys::item(
        keys::freshness_pk(tenant),
        format!("LAST#{source}"),
        1,
        &last,
    ) {
        Ok(i) => i,
        Err(_) => return,
    };
    if let Err(e) = crate::work::put(svc, item, Condition::Always).await {
        svc.memos.get::<Marks>().forget(tenant, source);
        tracing::warn!(%source, error = %e, "provider freshness mark not written");
    }
}
