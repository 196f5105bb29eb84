//! Flap damping. Every flip of an alert group (an alert going from firing
//! to resolved, or back) is counted on the group's item, within a window.
//! Past the rule's `max_flips`, the group is flapping: its incident stays
//! open instead of resolving (or, when it has just resolved, is reopened
//! instead of a new one opening), its thread hears once ("flapping: 5
//! flips in 10 min"), and further flips go on the timeline only. Once no
//! flip came for the hold period, the incident is stable again: resolved if
//! its alerts are, said once in the thread. The `flapping` due index drives
//! that end (run by the `reminders` job).

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{Flapping, Incident, IncidentState, TimelineKind};

use crate::change::{Change, GroupRecord};
use crate::due::{Budget, DueRef, JobReport};
use crate::ports::Condition;
use crate::settings::FlapRule;
use crate::{keys, DomainError, Services};

/// The due index of flapping incidents' ends.
pub const JOB: &str = "flapping";
/// Flips kept on a group item.
const MAX_FLIPS_KEPT: usize = 64;

/// Counts a flip at `now` on the group and returns the flips within the
/// window (this one included).
pub fn flip(group: &mut GroupRecord, now: DateTime<Utc>, rule: &FlapRule) -> u32 {
    let since = now - Duration::seconds(rule.window_secs);
    group.flips.retain(|t| *t > since);
    group.flips.push(now);
    if group.flips.len() > MAX_FLIPS_KEPT {
        let cut = group.flips.len() - MAX_FLIPS_KEPT;
        group.flips.drain(..cut);
    }
    group.flips.len() as u32
}

/// The flap rule for `inc`: the first matching routing rule's, else the
/// settings'. Read only when a flip happens.
pub async fn rule_for(svc: &Services, inc: &Incident) -> Result<FlapRule, DomainError> {
    Ok(crate::routing::routes::list(svc, &inc.tenant)
        .await?
        .into_iter()
        .filter(|r| r.when.matches(inc))
        .find_map(|r| r.flapping)
        .unwrap_or(svc.settings.flap))
}

/// Marks the change's incident flapping after a flip (`flips` within the
/// window): the first time with one entry in the thread, after that
/// quietly; its stable check moves to the hold period after this flip.
pub fn mark(
    change: &mut Change<'_>,
    flips: u32,
    rule: &FlapRule,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let inc = change.incident();
    let (tenant, id) = (inc.tenant.clone(), inc.id.to_string());
    let before = inc.flapping.clone();
    let first = before.is_none();
    let due_sk = crate::due::move_due(
        JOB,
        &tenant,
        &id,
        before.as_ref().and_then(|f| f.due_sk.as_deref()),
        Some(now + Duration::seconds(rule.hold_secs)),
        change.also(),
    )?;
    change.incident_mut().flapping = Some(match before {
        Some(f) => Flapping {
            flips: f.flips + 1,
            last_flip: now,
            hold_secs: rule.hold_secs,
            due_sk,
            ..f
        },
        None => Flapping {
            since: now,
            flips,
            last_flip: now,
            hold_secs: rule.hold_secs,
            due_sk,
        },
    });
    if first {
        let e = change.entry(
            "firewatch",
            TimelineKind::Flapping {
                state: "started".into(),
                flips,
                window_secs: rule.window_secs,
            },
        );
        change.show(e);
    }
    Ok(())
}

/// Ends the flapping of incidents stable for their hold period.
pub async fn run_due(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    // Run by the reminders job.
    crate::recording::scope("job:reminders", run_due_scoped(svc, budget)).await
}

async fn run_due_scoped(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    crate::due::run_due_index(svc, JOB, budget, |due, sk| {
        let svc = svc.clone();
        async move { check_one(&svc, &due, &sk).await }
    })
    .await
}

async fn check_one(svc: &Services, due: &DueRef, sk: &str) -> Result<bool, DomainError> {
    let Ok(id) = firewatch_types::IncidentId::parse(&due.id) else {
        crate::due::drop_due(svc, JOB, sk).await?;
        return Ok(false);
    };
    crate::retry::until_won!(
        crate::retry::HOT,
        || DomainError::Unavailable("the incident kept changing; retry".into()),
        async || -> Result<_, crate::retry::Retry> {
            let inc = match crate::incidents::get(svc, &due.tenant, &id).await {
                Ok(i) => i,
                Err(DomainError::NotFound(_)) => {
                    crate::due::drop_due(svc, JOB, sk).await?;
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            };
            let flapping = inc.flapping.clone();
            let Some(f) =
                crate::due::current(svc, JOB, sk, flapping, |f| f.due_sk.as_deref()).await?
            else {
                return Ok(false);
            };
            let now = svc.clock.now();
            if now < f.last_flip + Duration::seconds(f.hold_secs) {
                return Ok(false);
            }
            let mut change = Change::to(svc, inc.clone());
            change.incident_mut().flapping = None;
            change
                .also()
                .delete(keys::due_pk(JOB), sk.to_owned(), Condition::Always);
            let e = change.entry(
                "firewatch",
                TimelineKind::Flapping {
                    state: "stable".into(),
                    flips: f.flips,
                    window_secs: f.hold_secs,
                },
            );
            change.show(e);
            if svc.settings.auto_resolve
                && inc.state.is_active()
                && change.incident().all_alerts_resolved()
            {
                change
                    .transition(
                        IncidentState::Resolved,
                        "firewatch",
                        Some("all alerts resolved and stable after flapping".into()),
                    )
                    .await?;
            }
            match change.commit().await {
                Ok(_) => return Ok(true),
                Err(e) if e.is_lost_race() => Err(crate::retry::Retry::Lost),
                Err(e) => return Err(e.into()),
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_are_counted_within_the_window() {
        let rule = FlapRule::default();
        let mut g = GroupRecord::default();
        let t0: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
        assert_eq!(flip(&mut g, t0, &rule), 1);
        assert_eq!(flip(&mut g, t0 + Duration::minutes(4), &rule), 2);
        assert_eq!(flip(&mut g, t0 + Duration::minutes(9), &rule), 3);
        // The first has left the 10-minute window.
        assert_eq!(flip(&mut g, t0 + Duration::minutes(11), &rule), 3);
        for i in 0..100 {
            flip(
                &mut g,
                t0 + Duration::minutes(12) + Duration::seconds(i),
                &rule,
            );
        }
        assert_eq!(g.flips.len(), MAX_FLIPS_KEPT);
    }
}
