//! Incidents: reading, listing, the state machine applied by people, comments,
//! the timeline, and the recurrence view.
//!
//! Every change goes through [`crate::change::Change`]: one store transaction
//! holding the new incident (guarded by its version), its timeline entry, an
//! outbox record and an audit event, so no reader ever sees one without the
//! others and concurrent writers never lose an update: a writer that loses
//! the race re-reads and re-decides.

use base64::Engine;
use chrono::{DateTime, Utc};
use firewatch_types::{
    Incident, IncidentAction, IncidentId, IncidentState, Principal, Role, Severity, SourceKind,
    TenantId, TimelineEntry, TimelineKind,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::auth::require_role;
use crate::change::Change;
use crate::keys;
use crate::ports::Query;
use crate::redact::redact_text;
use crate::{DomainError, Services};

/// How often a writer re-reads and retries after losing a race. Each lost
/// race means another writer succeeded, so this bounds work, not progress.
pub const MAX_ATTEMPTS: usize = 64;

/// Longest comment or reason accepted.
pub const MAX_TEXT_LEN: usize = 4000;

/// Reads one incident.
pub async fn get(
    svc: &Services,
    tenant: &TenantId,
    id: &IncidentId,
) -> Result<Incident, DomainError> {
    crate::change::load_incident(svc, tenant, id).await
}

fn check_text(what: &str, text: &str) -> Result<(), DomainError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(DomainError::bad_input(
            "text_too_long",
            format!("{what} is longer than {MAX_TEXT_LEN} bytes"),
        ));
    }
    Ok(())
}

/// Applies a person's action (ack, mitigate, resolve, close, reopen).
///
/// With `expected_version`, the change happens only if the incident is still
/// at that version (409 `stale_version` otherwise). Without it, a lost race is
/// retried against the fresh state, and an action that no longer applies is a
/// 409 `illegal_transition`.
pub async fn act(
    svc: &Services,
    principal: &Principal,
    id: &IncidentId,
    action: IncidentAction,
    reason: Option<String>,
    expected_version: Option<u64>,
) -> Result<Incident, DomainError> {
    require_role(principal, Role::Responder, &format!("{action} an incident"))?;
    if let Some(r) = &reason {
        check_text("reason", r)?;
    }
    for _ in 0..MAX_ATTEMPTS {
        let inc = get(svc, &principal.tenant, id).await?;
        if let Some(v) = expected_version {
            if v != inc.version {
                return Err(stale(v, inc.version));
            }
        }
        let to = action.apply(inc.state).ok_or_else(|| {
            DomainError::conflict(
                "illegal_transition",
                format!("cannot {action} an incident that is {}", inc.state),
            )
        })?;
        let mut change = Change::to(svc, inc);
        change
            .transition(to, &principal.name, reason.clone())
            .await?;
        match change.commit().await {
            Ok(inc) => return Ok(inc),
            Err(e) if e.is_lost_race() => match expected_version {
                Some(v) => return Err(stale(v, v + 1)),
                None => continue,
            },
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Unavailable(
        "too much contention on this incident; retry".into(),
    ))
}

fn stale(expected: u64, actual: u64) -> DomainError {
    DomainError::conflict(
        "stale_version",
        format!("incident is at version {actual}, not {expected}; reload and retry"),
    )
}

/// Adds a comment to the timeline (and the chat thread, through the outbox).
pub async fn comment(
    svc: &Services,
    principal: &Principal,
    id: &IncidentId,
    text: &str,
) -> Result<TimelineEntry, DomainError> {
    require_role(principal, Role::Responder, "comment on an incident")?;
    let text = text.trim();
    if text.is_empty() {
        return Err(DomainError::bad_input(
            "invalid_field",
            "comment text is empty",
        ));
    }
    check_text("comment", text)?;
    let inc = get(svc, &principal.tenant, id).await?;
    let mut change = Change::to(svc, inc);
    let e = change.entry(
        &principal.name,
        TimelineKind::Comment {
            text: redact_text(text),
        },
    );
    change.show(e.clone());
    change.audit(
        &principal.name,
        "incident.comment",
        serde_json::Value::Null,
        serde_json::json!({"timeline_entry": e.id}),
        None,
    );
    change.commit().await?;
    Ok(e)
}

/// Filters for [`list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub state: Option<IncidentState>,
    pub severity: Option<Severity>,
    pub source: Option<SourceKind>,
}

impl ListFilter {
    fn matches(&self, i: &Incident) -> bool {
        self.state.is_none_or(|s| s == i.state)
            && self.severity.is_none_or(|s| s == i.severity)
            && self.source.is_none_or(|s| s == i.source)
    }
}

/// A page of results with an opaque cursor for the next one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub const MAX_PAGE: usize = 200;

fn encode_cursor(sk: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk)
}

fn decode_cursor(c: &str) -> Result<String, DomainError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            DomainError::bad_input("invalid_cursor", "cursor is not one this API returned")
        })
}

fn check_limit(limit: usize) -> Result<usize, DomainError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(DomainError::bad_input(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(limit)
}

/// Incidents of a tenant, newest first, filtered, in pages.
pub async fn list(
    svc: &Services,
    tenant: &TenantId,
    filter: &ListFilter,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Paged<Incident>, DomainError> {
    let limit = check_limit(limit)?;
    let mut after = cursor.map(decode_cursor).transpose()?;
    let mut items = Vec::new();
    loop {
        let page = svc
            .store
            .query(Query {
                pk: keys::incidents_pk(tenant),
                sk_prefix: String::new(),
                after: after.clone(),
                limit: limit.max(50),
                descending: true,
            })
            .await?;
        for (i, item) in page.items.iter().enumerate() {
            let inc: Incident = keys::decode(item)?;
            if filter.matches(&inc) {
                items.push(inc);
                if items.len() == limit {
                    // Offer a cursor only when more may follow: a match later
                    // in this page, or more pages.
                    let more_here = page.items[i + 1..]
                        .iter()
                        .map(keys::decode::<Incident>)
                        .any(|r| r.map(|inc| filter.matches(&inc)).unwrap_or(true));
                    let more = more_here || page.next.is_some();
                    return Ok(Paged {
                        items,
                        next_cursor: more.then(|| encode_cursor(&item.sk)),
                    });
                }
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => {
                return Ok(Paged {
                    items,
                    next_cursor: None,
                })
            }
        }
    }
}

/// An incident's timeline, oldest first, in pages.
pub async fn timeline(
    svc: &Services,
    tenant: &TenantId,
    id: &IncidentId,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Paged<TimelineEntry>, DomainError> {
    let limit = check_limit(limit)?;
    // 404 for an unknown incident rather than an empty timeline.
    get(svc, tenant, id).await?;
    let page = svc
        .store
        .query(Query {
            pk: keys::incident_pk(tenant, id),
            sk_prefix: keys::TIMELINE_PREFIX.into(),
            after: cursor.map(decode_cursor).transpose()?,
            limit,
            descending: false,
        })
        .await?;
    let items = page
        .items
        .iter()
        .map(keys::decode)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Paged {
        items,
        next_cursor: page.next.as_deref().map(encode_cursor),
    })
}

/// What the recurrence view groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecurrenceBy {
    Fingerprint,
    Alertname,
    Namespace,
    Target,
}

impl RecurrenceBy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fingerprint" => Some(Self::Fingerprint),
            "alertname" => Some(Self::Alertname),
            "namespace" => Some(Self::Namespace),
            "target" => Some(Self::Target),
            _ => None,
        }
    }

    fn key_of(self, i: &Incident) -> Option<String> {
        let label = |names: &[&str]| names.iter().find_map(|n| i.labels.get(*n).cloned());
        match self {
            Self::Fingerprint => Some(i.fingerprint.clone()),
            Self::Alertname => label(&["alertname"]).or_else(|| Some(i.title.clone())),
            Self::Namespace => label(&["namespace", "kubernetes_namespace"]),
            Self::Target => label(&["instance", "target", "service", "job", "host", "source"]),
        }
    }
}

/// One recurring group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecurrenceGroup {
    pub key: String,
    /// Incidents opened for this key.
    pub incidents: u64,
    /// Alert occurrences across those incidents.
    pub occurrences: u64,
    /// Incidents still open, acknowledged or mitigated.
    pub active: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub last_incident: IncidentId,
}

/// How many incidents to scan for the recurrence view.
pub const RECURRENCE_SCAN_LIMIT: usize = 10_000;

/// Hands the tenant's incidents to `visit`, newest first, until it returns
/// false or `limit` of them were read.
pub(crate) async fn scan_recent(
    svc: &Services,
    tenant: &TenantId,
    limit: usize,
    mut visit: impl FnMut(Incident) -> bool,
) -> Result<(), DomainError> {
    let mut after = None;
    let mut seen = 0;
    loop {
        let page = svc
            .store
            .query(Query {
                pk: keys::incidents_pk(tenant),
                sk_prefix: String::new(),
                after,
                limit: 500.min(limit - seen),
                descending: true,
            })
            .await?;
        for item in &page.items {
            seen += 1;
            if !visit(keys::decode(item)?) {
                return Ok(());
            }
        }
        match page.next {
            Some(n) if seen < limit => after = Some(n),
            _ => return Ok(()),
        }
    }
}

/// Groups the tenant's most recent incidents by `by`, most recurrent first.
pub async fn recurrence(
    svc: &Services,
    tenant: &TenantId,
    by: RecurrenceBy,
) -> Result<Vec<RecurrenceGroup>, DomainError> {
    let mut groups: BTreeMap<String, RecurrenceGroup> = BTreeMap::new();
    scan_recent(svc, tenant, RECURRENCE_SCAN_LIMIT, |inc| {
        let Some(key) = by.key_of(&inc) else {
            return true;
        };
        let g = groups
            .entry(key.clone())
            .or_insert_with(|| RecurrenceGroup {
                key,
                incidents: 0,
                occurrences: 0,
                active: 0,
                first_seen: inc.created_at,
                last_seen: inc.updated_at,
                last_incident: inc.id.clone(),
            });
        g.incidents += 1;
        g.occurrences += inc.occurrences;
        g.active += u64::from(inc.state.is_active());
        g.first_seen = g.first_seen.min(inc.created_at);
        if inc.updated_at >= g.last_seen {
            g.last_seen = inc.updated_at;
        }
        true
    })
    .await?;
    let mut out: Vec<_> = groups.into_values().collect();
    out.sort_by(|a, b| {
        b.incidents
            .cmp(&a.incidents)
            .then(b.last_seen.cmp(&a.last_seen))
    });
    Ok(out)
}
