//! Escalation: policies of timed steps (remind the thread, mention the
//! on-call of a schedule, notify another destination, page through
//! PagerDuty Events v2), snooze, and the `reminders` job that runs them.
//!
//! A policy is chosen per incident by the first routing rule that matches it
//! and names one (`"escalation": "<policy>"`), else the tenant's policy
//! `default` if there is one. Each step waits `after_minutes` from the
//! incident's opening, counted while it is unacknowledged (`when:
//! unacknowledged`, the default) or unresolved (`when: unresolved`), and may
//! repeat every `repeat_every_minutes` until then. Acknowledging stops the
//! unacknowledged steps; resolving stops all; a snooze pauses every step until
//! it ends. See docs/ESCALATION.md.

pub mod page;
pub mod reminders;

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{Destination, Incident, IncidentId, Principal, Role, TenantId, TimelineKind};
use serde::{Deserialize, Serialize};

use crate::auth::require_role;
use crate::change::Change;
use crate::config::{self, Config};
use crate::keys::escalation_policies_pk as policies_pk;
use crate::{DomainError, Services};

/// Policies one tenant may have, and steps one policy may have.
pub const MAX_POLICIES: usize = 100;
pub const MAX_STEPS: usize = 20;
/// The policy used when no routing rule names one, if it exists.
pub const DEFAULT_POLICY: &str = "default";
/// Longest snooze.
pub const MAX_SNOOZE: Duration = Duration::days(7);

/// When a step's clock runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// While the incident is open (not yet acknowledged).
    #[default]
    Unacknowledged,
    /// While the incident is not resolved.
    Unresolved,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// A reminder in the incident's thread.
    Remind,
    /// A reminder that pings whoever is on call in `schedule` now.
    MentionOncall { schedule: String },
    /// The incident's card and the step posted at another destination.
    Notify { destination: Destination },
    /// A page through the policy's PagerDuty integration.
    Page,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Remind => "remind",
            Self::MentionOncall { .. } => "mention_oncall",
            Self::Notify { .. } => "notify",
            Self::Page => "page",
        }
    }
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub after_minutes: u32,
    #[serde(default)]
    pub when: When,
    #[serde(flatten)]
    pub action: Action,
    /// Repeat until acknowledged (or resolved) every this many minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_every_minutes: Option<u32>,
}

/// The policy's PagerDuty Events v2 integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDuty {
    /// The name of the tenant's secret (`PUT /v1/secrets/{name}`) holding
    /// the integration's routing key; the policy never holds the key.
    pub routing_key_secret: String,
    /// Page sev1 incidents as soon as they open, with or without a page
    /// step (default true: "SEV1 → PagerDuty").
    #[serde(default = "yes")]
    pub page_sev1: bool,
}

fn yes() -> bool {
    true
}

/// What an admin writes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    pub name: String,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub pagerduty: Option<PagerDuty>,
}

/// A stored policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub id: String,
    pub name: String,
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty: Option<PagerDuty>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    #[serde(default)]
    pub version: u64,
}

impl Policy {
    /// The steps with the implicit sev1 page first (when the policy pages
    /// sev1 by default and has no page step of its own at minute 0).
    pub fn effective_steps(&self, inc: &Incident) -> Vec<Step> {
        let mut steps = self.steps.clone();
        let implicit = self.pagerduty.as_ref().is_some_and(|p| p.page_sev1)
            && inc.severity == firewatch_types::Severity::Sev1
            && !steps
                .iter()
                .any(|s| s.action == Action::Page && s.after_minutes == 0);
        if implicit {
            steps.push(Step {
                after_minutes: 0,
                when: When::Unacknowledged,
                action: Action::Page,
                repeat_every_minutes: None,
            });
        }
        steps
    }
}

fn bad(m: impl Into<String>) -> DomainError {
    DomainError::bad_input("invalid_policy", m.into())
}

fn check_slug(id: &str, what: &str) -> Result<(), DomainError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(DomainError::bad_input(
            "invalid_id",
            format!("{what} id must be 1-64 of a-z 0-9 - _"),
        ))
    }
}

async fn check(svc: &Services, tenant: &TenantId, spec: &PolicySpec) -> Result<(), DomainError> {
    if spec.name.trim().is_empty() || spec.name.len() > 200 {
        return Err(bad("name is 1-200 bytes"));
    }
    if spec.steps.len() > MAX_STEPS {
        return Err(bad(format!("a policy has at most {MAX_STEPS} steps")));
    }
    if spec.steps.is_empty() && spec.pagerduty.is_none() {
        return Err(bad(
            "a policy needs a step (or a PagerDuty integration paging sev1)",
        ));
    }
    for (i, s) in spec.steps.iter().enumerate() {
        if s.after_minutes > 7 * 24 * 60 {
            return Err(bad(format!("step {i}: after_minutes is at most a week")));
        }
        if s.repeat_every_minutes
            .is_some_and(|m| !(5..=7 * 24 * 60).contains(&m))
        {
            return Err(bad(format!(
                "step {i}: repeat_every_minutes is 5 minutes to a week"
            )));
        }
        match &s.action {
            Action::Page if spec.pagerduty.is_none() => {
                return Err(bad(format!(
                    "step {i}: a page step needs the policy's pagerduty.routing_key_secret"
                )))
            }
            Action::MentionOncall { schedule }
                if crate::oncall::find(svc, tenant, schedule).await?.is_none() =>
            {
                return Err(bad(format!("step {i}: no on-call schedule {schedule:?}")));
            }
            Action::Notify { destination } => {
                crate::routing::links::require_destination(svc, tenant, destination).await?;
            }
            _ => {}
        }
    }
    if let Some(pd) = &spec.pagerduty {
        let name = &pd.routing_key_secret;
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(bad(
                "pagerduty.routing_key_secret names a secret (A-Z a-z 0-9 _ -), never the key itself",
            ));
        }
    }
    Ok(())
}

crate::work::record!(Policy, "escalation-policy", policies_pk);

impl Config for Policy {
    const NOUN: &'static str = "policy";
    const PLURAL: &'static str = "escalation policies";
    const LIMIT: usize = MAX_POLICIES;
    const TOO_MANY: &'static str = "too_many_policies";
    fn summary(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("steps".into(), self.steps.len().into());
        m
    }
}

/// Creates or replaces policy `id` (admins).
pub async fn put(
    svc: &Services,
    p: &Principal,
    id: &str,
    spec: PolicySpec,
) -> Result<Policy, DomainError> {
    require_role(p, Role::Admin, "manage escalation policies")?;
    check_slug(id, "policy")?;
    check(svc, &p.tenant, &spec).await?;
    let policy = Policy {
        id: id.to_owned(),
        name: spec.name,
        steps: spec.steps,
        pagerduty: spec.pagerduty,
        updated_at: svc.clock.now(),
        updated_by: p.name.clone(),
        version: 0,
    };
    config::put(svc, p, policy).await
}

async fn all(svc: &Services, tenant: &TenantId) -> Result<Vec<Policy>, DomainError> {
    config::all(svc, tenant).await
}

/// Every policy of the caller's tenant (viewers).
pub async fn list(svc: &Services, p: &Principal) -> Result<Vec<Policy>, DomainError> {
    require_role(p, Role::Viewer, "read escalation policies")?;
    all(svc, &p.tenant).await
}

/// One policy (viewers).
pub async fn get(svc: &Services, p: &Principal, id: &str) -> Result<Policy, DomainError> {
    require_role(p, Role::Viewer, "read escalation policies")?;
    find(svc, &p.tenant, id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("no escalation policy {id:?}")))
}

/// A policy by id, for the domain's own use.
pub async fn find(
    svc: &Services,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<Policy>, DomainError> {
    if check_slug(id, "policy").is_err() {
        return Ok(None);
    }
    config::find(svc, tenant, id).await
}

/// Deletes a policy (admins); incidents that followed it stop escalating.
pub async fn delete(svc: &Services, p: &Principal, id: &str) -> Result<(), DomainError> {
    require_role(p, Role::Admin, "manage escalation policies")?;
    let policy = get(svc, p, id).await?;
    config::delete(svc, p, &policy).await
}

/// The policy an incident follows: the first matching routing rule's, else
/// `default` (given the tenant's rules and policies, read once per tick).
pub fn policy_for<'a>(
    inc: &Incident,
    routes: &[crate::routing::routes::Route],
    policies: &'a [Policy],
) -> Option<&'a Policy> {
    let named = routes
        .iter()
        .filter(|r| r.when.matches(inc))
        .find_map(|r| r.escalation.as_deref())
        .unwrap_or(DEFAULT_POLICY);
    policies.iter().find(|p| p.id == named)
}

/// Snoozes an incident until `until` (responders): its reminders and
/// escalation steps pause until then; the card shows it.
pub async fn snooze(
    svc: &Services,
    p: &Principal,
    id: &IncidentId,
    for_: Duration,
) -> Result<Incident, DomainError> {
    require_role(p, Role::Responder, "snooze an incident")?;
    if for_ <= Duration::zero() || for_ > MAX_SNOOZE {
        return Err(DomainError::bad_input(
            "invalid_snooze",
            "a snooze lasts from a minute to 7 days",
        ));
    }
    crate::retry::until_won!(
        crate::retry::HOT,
        || DomainError::Unavailable("too much contention on this incident; retry".into()),
        async || -> Result<_, crate::retry::Retry> {
            let inc = crate::incidents::get(svc, &p.tenant, id).await?;
            if !inc.state.is_active() {
                return Err(DomainError::conflict(
                    "illegal_transition",
                    format!("cannot snooze an incident that is {}", inc.state),
                )
                .into());
            }
            let until = svc.clock.now() + for_;
            let mut change = Change::to(svc, inc);
            change.incident_mut().snoozed_until = Some(until);
            let e = change.entry(&p.name, TimelineKind::Snoozed { until });
            change.show(e);
            change.audit(
                &p.name,
                "incident.snooze",
                serde_json::Value::Null,
                serde_json::json!({"snoozed_until": until}),
                None,
            );
            match change.commit().await {
                Ok(inc) => return Ok(inc),
                Err(e) if e.is_lost_race() => Err(crate::retry::Retry::Lost),
                Err(e) => return Err(e.into()),
            }
        },
    )
    .await
}
