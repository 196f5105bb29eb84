//! Recurrence work items: a recurring group (at least
//! `FIREWATCH_WORK_ITEM_MIN_INCIDENTS` incidents within
//! `FIREWATCH_WORK_ITEM_WINDOW`, grouped by fingerprint, alertname,
//! namespace or target as `GET /v1/incidents/recurrence` groups them) gets a
//! stable id, `wi_` and a hash of its dimension and key, so the same group
//! keeps its id as incidents come and go.
//!
//! - [`preview`] shows the proposed next step (open a ticket with the
//!   group's history, or link the ticket one of its incidents already has),
//!   the pre-flight checks, and the ticket it would open; it writes nothing.
//! - [`dry_run`] records the pre-flight result in the work item's history,
//!   touching no incident and creating nothing in the tracker (its one
//!   tracker call is a read).
//! - [`handoff`] opens the ticket (or records a manual handoff with its
//!   URL) and links it to the group: an incident the group opens later
//!   carries the ticket from its first moment, on its card and in the API.
//!
//! A handoff claims the work item (`handoff_pending`, under its version)
//! before calling the tracker, so concurrent handoffs open one ticket.
//! At most [`HANDOFFS_PER_HOUR`] handoffs per tenant per hour.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{Principal, Role, TenantId, TicketLink};
use serde::{Deserialize, Serialize};

use crate::auth::require_role;
use crate::incidents::group_links::{key_hash, link_sk, GroupLink};
pub use crate::incidents::group_links::{linked_ticket, links_pk};
use crate::incidents::RecurrenceBy;
pub use crate::keys::handoffs_pk;
pub use crate::keys::work_items_pk;
use crate::ports::{Condition, NewTicket, Query};
use crate::work::{CommitError, Work};
use crate::{keys, DomainError, Services};

/// Ticket handoffs per tenant per hour.
pub const HANDOFFS_PER_HOUR: usize = 10;
/// History entries kept per work item (the newest).
pub const MAX_HISTORY: usize = 50;
/// Incident ids a work item lists (the newest).
pub const LISTED_INCIDENTS: usize = 20;

/// The stable id of the group of `key` by `by`.
pub fn id_of(by: RecurrenceBy, key: &str) -> String {
    format!("wi_{}", &key_hash(by, key)[..20])
}

/// A recurring group as it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub id: String,
    pub by: RecurrenceBy,
    pub key: String,
    /// The newest incident's title: what recurs, in words.
    pub title: String,
    /// Incidents opened within the window.
    pub incidents: u64,
    pub occurrences: u64,
    pub active: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The newest incidents' ids.
    pub incident_ids: Vec<String>,
    /// Tickets its incidents have.
    pub tickets: Vec<TicketLink>,
    pub window_secs: i64,
}

/// The qualifying groups of the tenant's recent incidents, and whether the
/// scan stopped before the window's start.
async fn groups(svc: &Services, tenant: &TenantId) -> Result<(Vec<Group>, bool), DomainError> {
    let window = svc.settings.work_item_window_secs;
    let since = svc.clock.now() - Duration::seconds(window);
    let mut by_key: BTreeMap<(usize, String), Group> = BTreeMap::new();
    let mut reached_start = false;
    let more = crate::incidents::scan_recent(
        svc,
        tenant,
        crate::incidents::RECURRENCE_SCAN_LIMIT,
        None,
        |inc| {
            if inc.created_at < since {
                reached_start = true;
                return false;
            }
            for (n, by) in RecurrenceBy::ALL.into_iter().enumerate() {
                let Some(key) = by.key_of(&inc) else { continue };
                let g = by_key.entry((n, key.clone())).or_insert_with(|| Group {
                    id: id_of(by, &key),
                    by,
                    key,
                    title: inc.title.clone(),
                    incidents: 0,
                    occurrences: 0,
                    active: 0,
                    first_seen: inc.created_at,
                    last_seen: inc.updated_at,
                    incident_ids: Vec::new(),
                    tickets: Vec::new(),
                    window_secs: window,
                });
                g.incidents += 1;
                g.occurrences += inc.occurrences;
                g.active += u64::from(inc.state.is_active());
                g.first_seen = g.first_seen.min(inc.created_at);
                g.last_seen = g.last_seen.max(inc.updated_at);
                if g.incident_ids.len() < LISTED_INCIDENTS {
                    g.incident_ids.push(inc.id.to_string());
                }
                if let Some(t) = &inc.ticket {
                    if !g.tickets.iter().any(|x| x.url == t.url) {
                        g.tickets.push(t.clone());
                    }
                }
            }
            true
        },
    )
    .await?;
    let min = svc.settings.work_item_min_incidents;
    let mut out: Vec<Group> = by_key
        .into_values()
        .filter(|g| g.incidents >= min)
        .collect();
    out.sort_by(|a, b| {
        b.incidents
            .cmp(&a.incidents)
            .then(b.last_seen.cmp(&a.last_seen))
    });
    Ok((out, more.is_some() && !reached_start))
}

/// `GET /v1/work-items`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkItems {
    pub items: Vec<Group>,
    pub min_incidents: u64,
    pub window_secs: i64,
    /// True when more incidents of the window were left unread.
    pub truncated: bool,
}

/// The tenant's work items, optionally of one dimension.
pub async fn list(
    svc: &Services,
    p: &Principal,
    by: Option<RecurrenceBy>,
) -> Result<WorkItems, DomainError> {
    require_role(p, Role::Viewer, "read work items")?;
    let (items, truncated) = groups(svc, &p.tenant).await?;
    Ok(WorkItems {
        items: items
            .into_iter()
            .filter(|g| by.is_none_or(|b| g.by == b))
            .collect(),
        min_incidents: svc.settings.work_item_min_incidents,
        window_secs: svc.settings.work_item_window_secs,
        truncated,
    })
}

async fn find(svc: &Services, tenant: &TenantId, id: &str) -> Result<Group, DomainError> {
    let not_found = || {
        DomainError::NotFound(format!(
            "no work item {} (a group needs {} incidents within its window)",
            crate::limits::truncate(id, 40),
            svc.settings.work_item_min_incidents
        ))
    };
    if !id.starts_with("wi_") || id.len() != 23 {
        return Err(not_found());
    }
    groups(svc, tenant)
        .await?
        .0
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(not_found)
}

/// One pre-flight check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `tracker_configured`, `tracker_reachable`, `no_open_ticket_linked`,
    /// `rate_limit_free`.
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

/// A step in a work item's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// `dry_run`, `handoff` or `manual_handoff`.
    pub kind: String,
    pub ok: bool,
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A manual handoff: someone tracks the fix elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manual {
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A work item as stored (once it has a history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub id: String,
    pub by: RecurrenceBy,
    pub key: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketLink>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<Manual>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_pending: Option<DateTime<Utc>>,
}

async fn load(
    svc: &Services,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<(Stored, u64)>, DomainError> {
    match svc.store.get(&work_items_pk(tenant), id).await? {
        Some(item) => Ok(Some((keys::decode(&item)?, item.version))),
        None => Ok(None),
    }
}

async fn handoffs_last_hour(svc: &Services, tenant: &TenantId) -> Result<usize, DomainError> {
    let from = (svc.clock.now() - Duration::hours(1)).to_rfc3339();
    let page = svc
        .store
        .query(Query {
            pk: handoffs_pk(tenant),
            sk_prefix: String::new(),
            after: Some(from),
            limit: HANDOFFS_PER_HOUR + 1,
            descending: false,
        })
        .await?;
    Ok(page.items.len())
}

async fn checks(
    svc: &Services,
    tenant: &TenantId,
    g: &Group,
    stored: Option<&Stored>,
) -> Result<Vec<Check>, DomainError> {
    let mut out = Vec::new();
    let check = |name: &str, ok: bool, detail: String| Check {
        check: name.into(),
        ok,
        detail,
    };
    match &svc.tracker {
        None => {
            out.push(check(
                "tracker_configured",
                false,
                "no tracker: set FIREWATCH_TRACKER (github, gitlab or jira)".into(),
            ));
            out.push(check(
                "tracker_reachable",
                false,
                "not checked: no tracker".into(),
            ));
        }
        Some(t) => {
            out.push(check(
                "tracker_configured",
                true,
                format!("{} {}", t.kind(), t.project()),
            ));
            out.push(match t.check().await {
                Ok(()) => check("tracker_reachable", true, format!("{} answered", t.kind())),
                Err(e) => check("tracker_reachable", false, e.to_string()),
            });
        }
    }
    let linked = stored
        .and_then(|s| s.ticket.clone())
        .or_else(|| g.tickets.first().cloned());
    out.push(match linked {
        Some(t) => check(
            "no_open_ticket_linked",
            false,
            format!("{} is already linked: {}", t.id, t.url),
        ),
        None => check("no_open_ticket_linked", true, "no ticket yet".into()),
    });
    let n = handoffs_last_hour(svc, tenant).await?;
    out.push(check(
        "rate_limit_free",
        n < HANDOFFS_PER_HOUR,
        format!("{n} of {HANDOFFS_PER_HOUR} handoffs in the last hour"),
    ));
    Ok(out)
}

/// The ticket a work item's handoff opens, from the `recurring` templates.
fn ticket_of(svc: &Services, g: &Group) -> Result<NewTicket, DomainError> {
    let ctx = serde_json::json!({
        "group": g,
        "window": crate::cadence::format_secs(g.window_secs),
        "base_url": svc.settings.public_url,
    });
    let (title, body) = super::render_kind("recurring", &ctx)?;
    Ok(NewTicket {
        title,
        body,
        severity: firewatch_types::Severity::Sev3,
        labels: vec!["recurring".into()],
    })
}

/// `GET /v1/work-items/{id}/preview`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    pub work_item: Group,
    /// `open_ticket`, `link_existing` or `none` (already handed off).
    pub proposed: &'static str,
    pub existing_ticket: Option<TicketLink>,
    pub checks: Vec<Check>,
    /// True when every check passes.
    pub ready: bool,
    /// The ticket a handoff would open.
    pub ticket: Option<NewTicket>,
    pub history: Vec<HistoryEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual: Option<Manual>,
    /// A preview writes nothing: not the work item, no incident, no tracker.
    pub no_write: bool,
}

async fn preview_of(
    svc: &Services,
    tenant: &TenantId,
    id: &str,
) -> Result<(Preview, Option<(Stored, u64)>), DomainError> {
    let g = find(svc, tenant, id).await?;
    let stored = load(svc, tenant, id).await?;
    let checks = checks(svc, tenant, &g, stored.as_ref().map(|(s, _)| s)).await?;
    let existing = stored
        .as_ref()
        .and_then(|(s, _)| s.ticket.clone())
        .or_else(|| g.tickets.first().cloned());
    let done = stored
        .as_ref()
        .is_some_and(|(s, _)| s.ticket.is_some() || s.manual.is_some());
    let proposed = match (done, &existing) {
        (true, _) => "none",
        (false, Some(_)) => "link_existing",
        (false, None) => "open_ticket",
    };
    let p = Preview {
        ticket: if proposed == "open_ticket" {
            Some(ticket_of(svc, &g)?)
        } else {
            None
        },
        work_item: g,
        proposed,
        existing_ticket: existing,
        ready: checks.iter().all(|c| c.ok),
        checks,
        history: stored
            .as_ref()
            .map(|(s, _)| s.history.clone())
            .unwrap_or_default(),
        manual: stored.as_ref().and_then(|(s, _)| s.manual.clone()),
        no_write: true,
    };
    Ok((p, stored))
}

/// What a handoff would do, with its checks; writes nothing.
pub async fn preview(svc: &Services, p: &Principal, id: &str) -> Result<Preview, DomainError> {
    require_role(p, Role::Viewer, "preview work items")?;
    Ok(preview_of(svc, &p.tenant, id).await?.0)
}

fn new_stored(g: &Group, now: DateTime<Utc>) -> Stored {
    Stored {
        id: g.id.clone(),
        by: g.by,
        key: g.key.clone(),
        created_at: now,
        history: Vec::new(),
        ticket: None,
        manual: None,
        handoff_pending: None,
    }
}

/// Saves work item `s` with `work` over `version` (`None`: new).
fn save(
    work: &mut Work<'_>,
    tenant: &TenantId,
    s: &Stored,
    version: Option<u64>,
) -> Result<(), DomainError> {
    work.put(
        keys::item(
            work_items_pk(tenant),
            s.id.clone(),
            version.map_or(1, |v| v + 1),
            s,
        )?,
        version.map_or(Condition::Absent, Condition::Version),
    );
    Ok(())
}

/// Saves work item `s` alone.
async fn save_alone(
    svc: &Services,
    tenant: &TenantId,
    s: &Stored,
    version: Option<u64>,
) -> Result<(), CommitError> {
    let mut work = Work::new(svc);
    save(&mut work, tenant, s, version).map_err(CommitError::Domain)?;
    work.commit().await
}

fn step(
    now: DateTime<Utc>,
    p: &Principal,
    kind: &str,
    ok: bool,
    checks: Vec<Check>,
    detail: Option<String>,
) -> HistoryEntry {
    HistoryEntry {
        at: now,
        actor: p.name.clone(),
        kind: kind.into(),
        ok,
        checks,
        detail,
    }
}

fn push_history(s: &mut Stored, e: HistoryEntry) {
    s.history.push(e);
    if s.history.len() > MAX_HISTORY {
        let extra = s.history.len() - MAX_HISTORY;
        s.history.drain(..extra);
    }
}

/// Records the pre-flight result in the work item's history; no incident
/// changes and nothing is created in the tracker.
pub async fn dry_run(svc: &Services, p: &Principal, id: &str) -> Result<Preview, DomainError> {
    require_role(p, Role::Responder, "dry-run a work item")?;
    crate::retry::until_won!(
        crate::retry::ATTEMPTS,
        || DomainError::conflict("busy", "the work item kept changing; try again"),
        async || -> Result<_, crate::retry::Retry> {
            let (mut preview, stored) = preview_of(svc, &p.tenant, id).await?;
            let now = svc.clock.now();
            let (mut s, version) = match stored {
                Some((s, v)) => (s, Some(v)),
                None => (new_stored(&preview.work_item, now), None),
            };
            push_history(
                &mut s,
                step(
                    now,
                    p,
                    "dry_run",
                    preview.ready,
                    preview.checks.clone(),
                    Some(format!("proposed: {}", preview.proposed)),
                ),
            );
            save_alone(svc, &p.tenant, &s, version)
                .await
                .map_err(crate::retry::Retry::from_commit)?;
            preview.history = s.history;
            Ok(preview)
        },
    )
    .await
}

/// How to hand a work item off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    /// `ticket` (the default: open one, or link the one its incidents
    /// have) or `manual` (tracked elsewhere: `url` and `note`).
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /v1/work-items/{id}/handoff`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HandedOff {
    pub work_item: String,
    /// `ticket_opened`, `ticket_linked` or `manual`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketLink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual: Option<Manual>,
}

/// Hands the work item off: opens its ticket (or links its incidents'
/// one), or records a manual handoff; links the result to its group.
pub async fn handoff(
    svc: &Services,
    p: &Principal,
    id: &str,
    h: Handoff,
) -> Result<HandedOff, DomainError> {
    require_role(p, Role::Responder, "hand off a work item")?;
    let manual = match h.mode.as_deref() {
        None | Some("ticket") => false,
        Some("manual") => true,
        Some(other) => {
            return Err(DomainError::bad_input(
                "invalid_mode",
                format!(
                    "mode must be ticket or manual, got {:?}",
                    crate::limits::truncate(other, 20)
                ),
            ))
        }
    };
    for (what, v, max) in [("url", &h.url, 2000), ("note", &h.note, 2000)] {
        if v.as_ref()
            .is_some_and(|v| v.len() > max || v.chars().any(char::is_control))
        {
            return Err(DomainError::bad_input(
                "invalid_handoff",
                format!("{what} must be at most {max} bytes without control characters"),
            ));
        }
    }
    if manual
        && h.url
            .as_ref()
            .is_some_and(|u| !(u.starts_with("https://") || u.starts_with("http://")))
    {
        return Err(DomainError::bad_input(
            "invalid_handoff",
            "url must be an http(s) URL",
        ));
    }
    let (preview, stored) = preview_of(svc, &p.tenant, id).await?;
    let g = preview.work_item.clone();
    let now = svc.clock.now();
    if let Some((s, _)) = &stored {
        if s.ticket.is_some() || s.manual.is_some() {
            return Ok(HandedOff {
                work_item: g.id,
                outcome: if s.ticket.is_some() {
                    "ticket_linked"
                } else {
                    "manual"
                },
                ticket: s.ticket.clone(),
                manual: s.manual.clone(),
            });
        }
        if s.handoff_pending
            .is_some_and(|at| now - at < Duration::minutes(5))
        {
            return Err(DomainError::conflict(
                "handoff_in_progress",
                "a handoff of this work item is under way",
            ));
        }
    }
    let (mut s, version) = match stored {
        Some((s, v)) => (s, Some(v)),
        None => (new_stored(&g, now), None),
    };
    if manual {
        s.manual = Some(Manual {
            by: p.name.clone(),
            at: now,
            url: h.url.clone(),
            note: h.note.clone().map(|n| crate::redact::redact_text(&n)),
        });
        push_history(
            &mut s,
            step(now, p, "manual_handoff", true, Vec::new(), h.url.clone()),
        );
        let link = GroupLink {
            work_item: g.id.clone(),
            ticket: None,
            manual_url: h.url.clone(),
        };
        commit(svc, &p.tenant, &g, &s, version, &link, false).await?;
        return Ok(HandedOff {
            work_item: g.id,
            outcome: "manual",
            ticket: None,
            manual: s.manual,
        });
    }
    // An incident of the group already has a ticket: link that one.
    if let Some(t) = preview.existing_ticket.clone() {
        s.ticket = Some(t.clone());
        push_history(
            &mut s,
            step(
                now,
                p,
                "handoff",
                true,
                preview.checks.clone(),
                Some(format!("linked {}", t.id)),
            ),
        );
        let link = GroupLink {
            work_item: g.id.clone(),
            ticket: Some(t.clone()),
            manual_url: None,
        };
        commit(svc, &p.tenant, &g, &s, version, &link, false).await?;
        return Ok(HandedOff {
            work_item: g.id,
            outcome: "ticket_linked",
            ticket: Some(t),
            manual: None,
        });
    }
    let failing: Vec<&Check> = preview.checks.iter().filter(|c| !c.ok).collect();
    if !failing.is_empty() {
        return Err(DomainError::conflict(
            "preflight_failed",
            failing
                .iter()
                .map(|c| format!("{}: {}", c.check, c.detail))
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    let tracker = svc
        .tracker
        .clone()
        .ok_or_else(|| DomainError::bad_input("no_tracker", "no issue tracker is configured"))?;
    // Claim the work item, so a concurrent handoff opens nothing.
    s.handoff_pending = Some(now);
    match save_alone(svc, &p.tenant, &s, version).await {
        Ok(()) => {}
        Err(e) if e.is_lost_race() => {
            return Err(DomainError::conflict(
                "handoff_in_progress",
                "a handoff of this work item is under way",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let claimed = version.map_or(1, |v| v + 1);
    let created = tracker.create(&ticket_of(svc, &g)?).await;
    let (mut s, v) = match load(svc, &p.tenant, id).await? {
        Some(x) => x,
        None => (s, claimed),
    };
    s.handoff_pending = None;
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            push_history(
                &mut s,
                step(
                    now,
                    p,
                    "handoff",
                    false,
                    preview.checks.clone(),
                    Some(e.to_string()),
                ),
            );
            save_alone(svc, &p.tenant, &s, Some(v)).await?;
            return Err(match e {
                crate::ports::TrackerError::Retryable(m) => DomainError::Unavailable(format!(
                    "{} did not create the ticket: {m}",
                    tracker.kind()
                )),
                crate::ports::TrackerError::Permanent(m) => DomainError::DependencyFailed {
                    code: "tracker_refused",
                    message: format!("{} refused the ticket: {m}", tracker.kind()),
                },
            });
        }
    };
    let t = TicketLink {
        key: g.id.clone(),
        tracker: tracker.kind().into(),
        id: created.id,
        url: created.url,
        created_at: svc.clock.now(),
    };
    s.ticket = Some(t.clone());
    push_history(
        &mut s,
        step(
            now,
            p,
            "handoff",
            true,
            preview.checks.clone(),
            Some(format!("opened {}", t.id)),
        ),
    );
    let link = GroupLink {
        work_item: g.id.clone(),
        ticket: Some(t.clone()),
        manual_url: None,
    };
    commit(svc, &p.tenant, &g, &s, Some(v), &link, true).await?;
    Ok(HandedOff {
        work_item: g.id,
        outcome: "ticket_opened",
        ticket: Some(t),
        manual: None,
    })
}

/// Writes the work item, its group link and (for an opened ticket) the
/// rate limit's handoff record in one transaction.
async fn commit(
    svc: &Services,
    tenant: &TenantId,
    g: &Group,
    s: &Stored,
    version: Option<u64>,
    link: &GroupLink,
    opened: bool,
) -> Result<(), DomainError> {
    let now = svc.clock.now();
    let mut work = Work::new(svc);
    save(&mut work, tenant, s, version)?;
    work.put(
        keys::item(links_pk(tenant), link_sk(g.by, &g.key), 1, link)?,
        Condition::Always,
    );
    if opened {
        let mut item = keys::item(
            handoffs_pk(tenant),
            format!("{}#{}", now.to_rfc3339(), g.id),
            1,
            &serde_json::json!({"work_item": g.id}),
        )?;
        item.expires_at = Some((now + Duration::hours(2)).timestamp());
        work.put(item, Condition::Always);
    }
    match work.commit().await {
        Ok(()) => Ok(()),
        Err(e) if e.is_lost_race() => Err(DomainError::conflict(
            "busy",
            "the work item changed meanwhile; look at it again",
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_dimension_and_key() {
        let a = id_of(RecurrenceBy::Fingerprint, "checkout-5xx");
        assert_eq!(a, id_of(RecurrenceBy::Fingerprint, "checkout-5xx"));
        assert_ne!(a, id_of(RecurrenceBy::Alertname, "checkout-5xx"));
        assert!(a.starts_with("wi_") && a.len() == 23, "{a}");
    }
}
