//! The `reminders` job: for every active incident of every tenant, runs the
//! steps of its escalation policy that have come due, and keeps a page in
//! step with the incident (acknowledged, resolved). It also ends the
//! flapping of incidents stable for their hold period
//! ([`crate::noise::flapping`]) and storms nobody joined for a window
//! ([`crate::noise::storms`]).
//!
//! What each incident has had is kept in one progress item per incident,
//! written in the same transaction as the timeline entries (and the outbox
//! records that send them) under its version: a retried or overlapping tick
//! sends nothing twice. A step that came due several times (a repeat during
//! a snooze, a tick missed) runs once and counts as caught up.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{Incident, IncidentId, IncidentState, TenantId, TimelineKind};
use serde::{Deserialize, Serialize};

use super::{Action, Policy, When};
use crate::change::Change;
use crate::due::{Budget, JobReport};
use crate::keys::escalation_progress_pk as progress_pk;
use crate::outbox::Effect;
use crate::ports::{Condition, Query};
use crate::{keys, DomainError, Services};

/// The job's name in the scheduler.
pub const JOB: &str = "reminders";
/// Active incidents looked at per tenant and state, per tick.
const MAX_ACTIVE: usize = 500;

/// What an incident has had from its policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub incident: Option<IncidentId>,
    /// Times each step (by index in the policy's effective steps) ran.
    #[serde(default)]
    pub fired: BTreeMap<usize, u32>,
    /// The page, once one was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Paged>,
}

/// A page and where PagerDuty was last told it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paged {
    pub policy: String,
    /// `triggered`, `acknowledged` or `resolved`.
    pub status: String,
}

/// The progress of one incident, with its version (0: none yet).
pub async fn progress(
    svc: &Services,
    tenant: &TenantId,
    id: &IncidentId,
) -> Result<(Progress, u64), DomainError> {
    Ok(
        match svc.store.get(&progress_pk(tenant), id.as_str()).await? {
            Some(i) => (keys::decode(&i)?, i.version),
            None => (Progress::default(), 0),
        },
    )
}

/// Runs the job over every known tenant while the budget lasts.
pub async fn run(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    crate::recording::scope("job:reminders", run_scoped(svc, budget)).await
}

async fn run_scoped(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    // Flapping incidents that have been stable for their hold period.
    let mut report = crate::noise::flapping::run_due(svc, budget).await?;
    for tenant in crate::auth::known_tenants(svc).await? {
        if budget.exhausted() {
            report.more = true;
            break;
        }
        // A storm nobody joined for a window is over.
        match crate::noise::storms::end_if_quiet(svc, &tenant).await {
            Ok(true) => report.alerts += 1,
            Ok(false) => {}
            Err(e) => {
                report.failed += 1;
                tracing::warn!(%tenant, error = %e, "ending a storm failed");
            }
        }
        if let Err(e) = check_tenant(svc, &tenant, budget, &mut report).await {
            report.failed += 1;
            tracing::warn!(%tenant, error = %e, "reminders failed for a tenant");
        }
    }
    Ok(report)
}

async fn check_tenant(
    svc: &Services,
    tenant: &TenantId,
    budget: &Budget,
    report: &mut JobReport,
) -> Result<(), DomainError> {
    let policies = super::all(svc, tenant).await?;
    let paged: Vec<(IncidentId, Progress, u64)> = svc
        .store
        .query(Query::all(progress_pk(tenant), 1000))
        .await?
        .items
        .iter()
        .filter_map(|i| {
            let p: Progress = keys::decode(i).ok()?;
            let open = p.page.as_ref().is_some_and(|pg| pg.status != "resolved");
            open.then(|| Some((IncidentId::parse(&i.sk).ok()?, p, i.version)))
                .flatten()
        })
        .collect();
    if policies.is_empty() && paged.is_empty() {
        return Ok(());
    }
    let routes = crate::routing::routes::list(svc, tenant).await?;
    let mut seen = HashSet::new();
    for state in [
        IncidentState::Open,
        IncidentState::Acknowledged,
        IncidentState::Mitigated,
    ] {
        let page = svc
            .store
            .query(Query::all(
                keys::incidents_by_state_pk(tenant, state),
                MAX_ACTIVE,
            ))
            .await?;
        for item in &page.items {
            if budget.exhausted() {
                report.more = true;
                return Ok(());
            }
            let Ok(id) = IncidentId::parse(&item.sk) else {
                continue;
            };
            seen.insert(id.clone());
            report.checked += 1;
            match check_incident(svc, tenant, &id, &routes, &policies).await {
                Ok(n) => report.alerts += n,
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(incident = %id, error = %e, "escalation step failed; due again next tick");
                }
            }
        }
    }
    // Pages of incidents no longer active: resolved in PagerDuty too.
    for (id, _, _) in paged.iter().filter(|(id, _, _)| !seen.contains(id)) {
        match check_incident(svc, tenant, id, &routes, &policies).await {
            Ok(n) => report.alerts += n,
            Err(DomainError::NotFound(_)) => {}
            Err(e) => {
                report.failed += 1;
                tracing::warn!(incident = %id, error = %e, "page resolve failed; due again next tick");
            }
        }
    }
    Ok(())
}

/// Runs what is due for one incident; returns the steps (and page updates)
/// it sent.
pub async fn check_incident(
    svc: &Services,
    tenant: &TenantId,
    id: &IncidentId,
    routes: &[crate::routing::routes::Route],
    policies: &[Policy],
) -> Result<usize, DomainError> {
    let inc = crate::incidents::get(svc, tenant, id).await?;
    let (mut prog, version) = progress(svc, tenant, id).await?;
    prog.incident = Some(id.clone());
    let now = svc.clock.now();
    let mut change = Change::to(svc, inc.clone());
    let mut sent = 0;

    // The page follows the incident.
    if let Some(pg) = prog.page.as_mut() {
        let (want, action) = match inc.state {
            IncidentState::Open => ("triggered", None),
            IncidentState::Acknowledged | IncidentState::Mitigated => {
                ("acknowledged", Some("acknowledge"))
            }
            IncidentState::Resolved | IncidentState::Closed => ("resolved", Some("resolve")),
        };
        if let (Some(action), true) = (action, pg.status != want && pg.status != "resolved") {
            let e = change.entry(
                "firewatch",
                TimelineKind::Escalation {
                    policy: pg.policy.clone(),
                    step: 0,
                    action: "page".into(),
                    detail: format!("PagerDuty alert {want} with the incident"),
                    mentions: vec![],
                },
            );
            change.schedule_effect(
                e.clone(),
                Effect::Page {
                    policy: pg.policy.clone(),
                    action: action.into(),
                },
                now,
            );
            change.note(e);
            pg.status = want.into();
            sent += 1;
        }
    }

    let snoozed = inc.snoozed_until.is_some_and(|t| t > now);
    let policy = super::policy_for(&inc, routes, policies);
    if let (Some(policy), true, false) = (policy, inc.state.is_active(), snoozed) {
        for (i, step) in policy.effective_steps(&inc).iter().enumerate() {
            let applies = match step.when {
                When::Unacknowledged => inc.state == IncidentState::Open,
                When::Unresolved => inc.state.is_active(),
            };
            let due = inc.created_at + Duration::minutes(step.after_minutes.into());
            if !applies || now < due {
                continue;
            }
            let expected = match step.repeat_every_minutes {
                None => 1,
                Some(every) => 1 + ((now - due).num_minutes() / i64::from(every.max(1))) as u32,
            };
            let done = prog.fired.get(&i).copied().unwrap_or(0);
            if done >= expected {
                continue;
            }
            prog.fired.insert(i, expected);
            fire(svc, &mut change, &mut prog, policy, i, step, &inc, now).await?;
            sent += 1;
        }
    }
    if sent == 0 {
        return Ok(0);
    }
    let mut item = keys::item(progress_pk(tenant), id.to_string(), version + 1, &prog)?;
    item.expires_at = Some((now + Duration::days(30)).timestamp());
    change.also().put(
        item,
        match version {
            0 => Condition::Absent,
            v => Condition::Version(v),
        },
    );
    match change.commit().await {
        Ok(_) => Ok(sent),
        // Someone changed the incident (or another tick got there first):
        // whatever is still due is looked at again next tick.
        Err(e) if e.is_lost_race() => Ok(0),
        Err(e) => Err(e.into()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn fire(
    svc: &Services,
    change: &mut Change<'_>,
    prog: &mut Progress,
    policy: &Policy,
    index: usize,
    step: &super::Step,
    inc: &Incident,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let age = (now - inc.created_at).num_minutes();
    let waiting = match step.when {
        When::Unacknowledged => format!("unacknowledged for {age} min"),
        When::Unresolved => format!("unresolved for {age} min"),
    };
    let entry = |change: &Change<'_>, detail: String, mentions: Vec<String>| {
        change.entry(
            "firewatch",
            TimelineKind::Escalation {
                policy: policy.id.clone(),
                step: index,
                action: step.action.name().into(),
                detail,
                mentions,
            },
        )
    };
    match &step.action {
        Action::Remind => {
            let e = entry(change, format!("Reminder: {waiting}"), vec![]);
            change.show(e);
        }
        Action::MentionOncall { schedule } => {
            let (detail, who) = match crate::oncall::find(svc, &inc.tenant, schedule).await? {
                None => (
                    format!("{waiting}; on-call schedule {schedule:?} no longer exists"),
                    vec![],
                ),
                Some(s) => {
                    let mut who: Vec<String> = Vec::new();
                    for shift in s.on_call(now) {
                        if !who.contains(&shift.who) {
                            who.push(shift.who);
                        }
                    }
                    if who.is_empty() {
                        (
                            format!("{waiting}; nobody is on call in {} now", s.name),
                            who,
                        )
                    } else {
                        (format!("{waiting}; on call for {}:", s.name), who)
                    }
                }
            };
            let e = entry(change, detail, who);
            change.show(e);
        }
        Action::Notify { destination } => {
            let e = entry(
                change,
                format!("{waiting}; escalated to {destination}"),
                vec![],
            );
            change.show_with_effect(
                e,
                Effect::Notify {
                    destination: destination.clone(),
                },
            );
        }
        Action::Page => {
            let e = entry(
                change,
                format!("Paged through PagerDuty ({waiting})"),
                vec![],
            );
            change.show_with_effect(
                e,
                Effect::Page {
                    policy: policy.id.clone(),
                    action: "trigger".into(),
                },
            );
            prog.page = Some(Paged {
                policy: policy.id.clone(),
                status: "triggered".into(),
            });
        }
    }
    Ok(())
}
