//! Alert storms. When a tenant opened more than `storm_incidents` incidents
//! within `storm_window_secs` (counted in the window ending at each new
//! incident's opening), the dispatcher stops posting one card per incident:
//! the incident joins the tenant's storm, whose one thread (per destination)
//! carries a card listing the storm's newest incidents and its count,
//! edited at most every [`CARD_EVERY_SECS`]. The incidents exist and are
//! actionable as ever (API, CLI, `/fw ack <id>`); each one's own card is
//! posted when it next changes after the storm ended. A storm ends once no
//! incident joined it for a window; the `reminders` job notices, and the
//! dispatcher edits the storm card one last time and says so in its thread.
//!
//! Nothing of this is on the ingest path: the dispatcher counts recent
//! incidents by the open-state index (ids sort by time).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{
    Card, Destination, Incident, IncidentId, IncidentState, Severity, ThreadRef, TimelineKind,
};
use serde::{Deserialize, Serialize};

use crate::change::Change;
use crate::keys::storm_members_pk as member_pk;
use crate::keys::storm_pk;
use crate::outbox::Effect;
use crate::ports::{Condition, Query};
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// The storm card is edited at most this often while incidents join.
pub const CARD_EVERY_SECS: i64 = 10;
/// Incidents listed on the storm card.
const LISTED: usize = 10;
const CURRENT: &str = "current";

/// A tenant's storm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Storm {
    pub id: String,
    pub started_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub count: u64,
    /// The incident that started it: the storm's own timeline entries and
    /// effects are written on it.
    pub first: IncidentId,
    pub severity: Severity,
    /// The newest members: id, severity, title.
    pub recent: Vec<(IncidentId, Severity, String)>,
    /// The storm's thread at each destination.
    #[serde(default)]
    pub threads: BTreeMap<String, ThreadRef>,
    /// When its card was last edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ended: bool,
    #[serde(skip)]
    pub version: u64,
}

// A tenant has one current storm, kept a week past its last member.
crate::work::record!(Storm, "storm", storm_pk, key: CURRENT, expires_at: |s: &Storm| {
    Some((s.last_at + Duration::days(7)).timestamp())
});

async fn current(
    svc: &Services,
    tenant: &firewatch_types::TenantId,
) -> Result<Option<Storm>, DomainError> {
    crate::work::find(svc, tenant, CURRENT).await
}

/// The lowest incident id opened at `at` (ULIDs sort by time).
fn id_floor(at: DateTime<Utc>) -> String {
    let ms = at.timestamp_millis().max(0) as u64;
    format!("inc_{}", ulid::Ulid::from_parts(ms, 0))
}

/// More than the storm threshold of the tenant's incidents opened in the
/// window ending at `inc`'s opening (and still open)?
async fn storming(svc: &Services, inc: &Incident) -> Result<bool, DomainError> {
    let n = svc.settings.storm_incidents;
    if n == 0 {
        return Ok(false);
    }
    let from = inc.created_at - Duration::seconds(svc.settings.storm_window_secs);
    let page = svc
        .store
        .query(Query {
            pk: keys::incidents_by_state_pk(&inc.tenant, IncidentState::Open),
            sk_prefix: "inc_".into(),
            after: Some(id_floor(from)),
            limit: n + 1,
            descending: false,
        })
        .await?;
    let upto = inc.id.as_str();
    Ok(page.items.iter().filter(|i| i.sk.as_str() <= upto).count() > n)
}

/// Whether `inc`'s card belongs in its tenant's storm thread: it is a member
/// of the current storm, or it joins (or starts) one now. Idempotent: a
/// redelivery finds the membership.
pub async fn collapse(svc: &Services, inc: &Incident) -> Result<Option<Storm>, DomainError> {
    let tenant = &inc.tenant;
    if let Some(m) = svc.store.get(&member_pk(tenant), inc.id.as_str()).await? {
        let storm_id: String = keys::decode(&m)?;
        return Ok(current(svc, tenant)
            .await?
            .filter(|s| s.id == storm_id && !s.ended));
    }
    // Only incidents of the last hour (a dispatcher behind a storm is still
    // within it); an old incident's first card is its own.
    if svc.clock.now() - inc.created_at > Duration::hours(1) || !storming(svc, inc).await? {
        return Ok(None);
    }
    let window = Duration::seconds(svc.settings.storm_window_secs);
    crate::retry::until_won!(
        crate::retry::HOT,
        || DomainError::Unavailable("the storm kept changing".into()),
        async || -> Result<_, crate::retry::Retry> {
            let mut s = match current(svc, tenant).await? {
                Some(s) if !s.ended && inc.created_at - s.last_at < window => s,
                old => Storm {
                    id: format!("storm_{}", svc.ids.ulid()),
                    started_at: inc.created_at,
                    last_at: inc.created_at,
                    count: 0,
                    first: inc.id.clone(),
                    severity: inc.severity,
                    recent: Vec::new(),
                    threads: BTreeMap::new(),
                    card_at: None,
                    ended: false,
                    version: old.map_or(0, |o| o.version),
                },
            };
            s.count += 1;
            s.last_at = s.last_at.max(inc.created_at);
            s.severity = s.severity.worst(inc.severity);
            s.recent.push((
                inc.id.clone(),
                inc.severity,
                crate::limits::truncate(&inc.title, 120),
            ));
            if s.recent.len() > LISTED {
                s.recent.remove(0);
            }
            let mut member = keys::item(member_pk(tenant), inc.id.to_string(), 1, &s.id)?;
            member.expires_at = Some((svc.clock.now() + Duration::days(7)).timestamp());
            let mut work = Work::new(svc);
            work.save(tenant, &mut s)?;
            work.put(member, Condition::Absent);
            work.commit()
                .await
                .map_err(crate::retry::Retry::from_commit)?;
            Ok(Some(s))
        },
    )
    .await
}

/// The storm's card: its count, since when, and its newest incidents.
pub fn card(s: &Storm) -> Card {
    let mut notices: Vec<String> = s
        .recent
        .iter()
        .rev()
        .map(|(id, sev, title)| format!("{id} [{sev}] {title}"))
        .collect();
    if s.count as usize > s.recent.len() {
        notices.push(format!(
            "…and {} more: GET /v1/incidents?state=open",
            s.count as usize - s.recent.len()
        ));
    }
    if s.ended {
        notices.push(format!(
            "Storm over at {}: each incident's own card follows when it next changes",
            s.last_at.format("%H:%M UTC")
        ));
    }
    Card {
        incident_id: s.first.clone(),
        title: format!("Alert storm: {} new incidents", s.count),
        severity: s.severity,
        state: if s.ended {
            IncidentState::Resolved
        } else {
            IncidentState::Open
        },
        source: firewatch_types::SourceKind::Generic,
        key_labels: vec![("storm".into(), s.id.clone())],
        summary: None,
        links: Vec::new(),
        occurrences: s.count,
        opened_at: s.started_at,
        buttons: Vec::new(),
        notices,
    }
}

/// Shows the storm at `dest` for a member's delivery: its thread posted
/// there once, its card edited at most every [`CARD_EVERY_SECS`].
pub async fn show(
    svc: &Services,
    tenant: &firewatch_types::TenantId,
    storm: &Storm,
    dest: &Destination,
) -> Result<(), DeliveryFailure> {
    // Every attempt lost: another delivery showed it meanwhile.
    let mut tries = crate::retry::Tries::new(crate::retry::HOT);
    while tries.next().await {
        let Some(mut s) = current(svc, tenant).await? else {
            return Ok(());
        };
        if s.id != storm.id {
            return Ok(());
        }
        let now = svc.clock.now();
        match s.threads.get(&dest.key()) {
            None => {
                let t = svc.chat.post_root(dest, &card(&s)).await?;
                s.threads.insert(dest.key(), t);
                s.card_at = Some(now);
            }
            Some(t) => {
                if s.card_at
                    .is_some_and(|at| now - at < Duration::seconds(CARD_EVERY_SECS))
                {
                    return Ok(());
                }
                svc.chat.update_root(t, &card(&s)).await?;
                s.card_at = Some(now);
            }
        }
        let mut work = Work::new(svc);
        work.save(tenant, &mut s)?;
        match work.commit().await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_lost_race() => continue,
            Err(e) => return Err(DomainError::from(e).into()),
        }
    }
    Ok(())
}

/// A delivery failure of the storm's chat calls.
pub type DeliveryFailure = crate::outbox::DeliveryError;

/// Ends the tenant's storm when no incident joined it for a window: the
/// storm's end is written on its first incident with an effect the
/// dispatcher performs (the card edited one last time, a reply). Returns
/// whether one ended.
pub async fn end_if_quiet(
    svc: &Services,
    tenant: &firewatch_types::TenantId,
) -> Result<bool, DomainError> {
    let Some(mut s) = current(svc, tenant).await? else {
        return Ok(false);
    };
    let now = svc.clock.now();
    if s.ended || now - s.last_at < Duration::seconds(svc.settings.storm_window_secs) {
        return Ok(false);
    }
    s.ended = true;
    let inc = crate::incidents::get(svc, tenant, &s.first).await?;
    let mut change = Change::to(svc, inc);
    let e = change.entry(
        "firewatch",
        TimelineKind::Comment {
            text: format!(
                "Alert storm {} over: {} incidents from {} to {}",
                s.id,
                s.count,
                s.started_at.format("%H:%M:%S UTC"),
                s.last_at.format("%H:%M:%S UTC")
            ),
        },
    );
    change.schedule_effect(
        e.clone(),
        Effect::StormEnd {
            storm: s.id.clone(),
        },
        now,
    );
    change.note(e);
    change.also().save(tenant, &mut s)?;
    match change.commit().await {
        Ok(_) => Ok(true),
        Err(e) if e.is_lost_race() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The storm `storm_id` of `tenant`, if it is the current one.
pub async fn find(
    svc: &Services,
    tenant: &firewatch_types::TenantId,
    storm_id: &str,
) -> Result<Option<Storm>, DomainError> {
    Ok(current(svc, tenant).await?.filter(|s| s.id == storm_id))
}

/// The reply in a storm's threads when it ends.
pub fn ended_text(s: &Storm) -> String {
    format!(
        "🌩️ Storm over: {} incidents from {} to {}; each incident's own card follows when it next changes",
        s.count,
        s.started_at.format("%H:%M:%S UTC"),
        s.last_at.format("%H:%M:%S UTC")
    )
}
