//! Incidents: reading, listing, the state machine applied by people, comments,
//! the timeline, and the recurrence view.
//!
//! Every change goes through [`crate::change::Change`]: one store transaction
//! holding the new incident (guarded by its version), its timeline entry, an
//! outbox record and an audit event, so no reader ever sees one without the
//! others and concurrent writers never lose an update: a writer that loses
//! the race re-reads and re-decides.

pub mod group_links;

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
    crate::retry::until_won!(
        crate::retry::HOT,
        || DomainError::Unavailable("too much contention on this incident; retry".into()),
        async || -> Result<_, crate::retry::Retry> {
            let inc = get(svc, &principal.tenant, id).await?;
            if let Some(v) = expected_version {
                if v != inc.version {
                    return Err(stale(v, inc.version).into());
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
                    Some(v) => return Err(stale(v, v + 1).into()),
                    None => Err(crate::retry::Retry::Lost),
                },
                Err(e) => return Err(e.into()),
            }
        },
    )
    .await
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

/// Items one list request reads at most. A filter that matches rarely stops
/// there and answers the matches found so far with a cursor to go on from,
/// so no request reads a whole tenant.
pub const SCAN_BUDGET: usize = 1000;

/// Incidents of a tenant, newest first, filtered, in pages. A `state` filter
/// reads the state's index; other filters are applied to what is read, within
/// [`SCAN_BUDGET`] items.
pub async fn list(
    svc: &Services,
    tenant: &TenantId,
    filter: &ListFilter,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Paged<Incident>, DomainError> {
    let limit = check_limit(limit)?;
    let mut after = cursor.map(decode_cursor).transpose()?;
    let pk = match filter.state {
        Some(state) => keys::incidents_by_state_pk(tenant, state),
        None => keys::incidents_pk(tenant),
    };
    let mut items = Vec::new();
    let mut scanned = 0;
    loop {
        let page = svc
            .store
            .query(Query {
                pk: pk.clone(),
                sk_prefix: String::new(),
                after: after.clone(),
                limit: limit.max(50).min(SCAN_BUDGET - scanned),
                descending: true,
            })
            .await?;
        scanned += page.items.len();
        let read = match filter.state {
            // The index holds ids: read the incidents it names, at once.
            Some(_) => {
                let gets = page.items.iter().map(|i| async move {
                    let id = IncidentId::parse(&i.sk)
                        .map_err(|e| DomainError::Internal(e.to_string()))?;
                    match get(svc, tenant, &id).await {
                        Ok(inc) => Ok(Some(inc)),
                        // Deleted between the index read and this one.
                        Err(DomainError::NotFound(_)) => Ok(None),
                        Err(e) => Err(e),
                    }
                });
                futures_util::future::join_all(gets)
                    .await
                    .into_iter()
                    .collect::<Result<Vec<_>, DomainError>>()?
            }
            None => page
                .items
                .iter()
                .map(|i| keys::decode(i).map(Some))
                .collect::<Result<Vec<_>, DomainError>>()?,
        };
        for (i, inc) in read.into_iter().enumerate() {
            let Some(inc) = inc.filter(|inc| filter.matches(inc)) else {
                continue;
            };
            items.push(inc);
            if items.len() == limit {
                // A cursor only when more may follow.
                let more = i + 1 < page.items.len() || page.next.is_some();
                return Ok(Paged {
                    items,
                    next_cursor: more.then(|| encode_cursor(&page.items[i].sk)),
                });
            }
        }
        match page.next {
            Some(n) if scanned >= SCAN_BUDGET => {
                // Out of budget: what was found, and where to go on from.
                return Ok(Paged {
                    items,
                    next_cursor: Some(encode_cursor(&n)),
                });
            }
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

    pub const ALL: [RecurrenceBy; 4] = [
        Self::Fingerprint,
        Self::Alertname,
        Self::Namespace,
        Self::Target,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fingerprint => "fingerprint",
            Self::Alertname => "alertname",
            Self::Namespace => "namespace",
            Self::Target => "target",
        }
    }

    pub fn key_of(self, i: &Incident) -> Option<String> {
        self.key_of_parts(&i.fingerprint, &i.title, &i.labels)
    }

    /// The key of an alert or incident with these fingerprint, title and
    /// labels.
    pub fn key_of_parts(
        self,
        fingerprint: &str,
        title: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<String> {
        let label = |names: &[&str]| names.iter().find_map(|n| labels.get(*n).cloned());
        match self {
            Self::Fingerprint => Some(fingerprint.to_owned()),
            Self::Alertname => label(&["alertname"]).or_else(|| Some(title.to_owned())),
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

/// How many incidents one recurrence request reads; a `next_cursor` goes on
/// with older ones.
pub const RECURRENCE_SCAN_LIMIT: usize = 2_000;

/// Hands the tenant's incidents to `visit`, newest first, from after the
/// sort key `after`, until it returns false or `limit` of them were read.
/// Returns where a further scan would go on from, when it stopped early.
pub(crate) async fn scan_recent(
    svc: &Services,
    tenant: &TenantId,
    limit: usize,
    after: Option<String>,
    mut visit: impl FnMut(Incident) -> bool,
) -> Result<Option<String>, DomainError> {
    let mut after = after;
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
                return Ok(None);
            }
        }
        match page.next {
            Some(n) if seen < limit => after = Some(n),
            next => return Ok(next),
        }
    }
}

/// One page of the recurrence view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recurrence {
    pub groups: Vec<RecurrenceGroup>,
    /// Incidents this page read.
    pub scanned: usize,
    /// Set when older incidents were not read: the same request with this
    /// cursor groups the next [`RECURRENCE_SCAN_LIMIT`].
    pub next_cursor: Option<String>,
}

/// Groups the tenant's most recent incidents (at most
/// [`RECURRENCE_SCAN_LIMIT`] from `cursor` on) by `by`, most recurrent first.
pub async fn recurrence(
    svc: &Services,
    tenant: &TenantId,
    by: RecurrenceBy,
    cursor: Option<&str>,
) -> Result<Recurrence, DomainError> {
    let mut groups: BTreeMap<String, RecurrenceGroup> = BTreeMap::new();
    let mut scanned = 0;
    let after = cursor.map(decode_cursor).transpose()?;
    let next = scan_recent(svc, tenant, RECURRENCE_SCAN_LIMIT, after, |inc| {
        scanned += 1;
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
    Ok(Recurrence {
        groups: out,
        scanned,
        next_cursor: next.as_deref().map(encode_cursor),
    })
}
