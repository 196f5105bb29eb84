//! Tickets: an incident's tracker issue (GitHub, GitLab, Jira), opened
//! through the outbox so the caller is answered at once and the tracker is
//! called, retried and dead-lettered like a chat delivery.
//!
//! [`request`] marks the incident (`ticket_requested`, under its version)
//! and enqueues [`Effect::Ticket`](crate::outbox::Effect::Ticket) with a new
//! key; a second request while one is pending, or once a ticket is linked,
//! gets that one back unless it asks `again`. [`perform`] (the dispatcher)
//! renders the ticket from a template, creates it once per key and links
//! it: the incident keeps it (shown on its card), and the thread gets a
//! message with the link. A redelivered effect finds its key linked and
//! creates nothing. What is left: a crash between the tracker's answer and
//! the link being written makes the retry open a second ticket.

pub mod work_items;

use std::collections::BTreeMap;

use firewatch_types::{
    Incident, IncidentId, Principal, Role, Severity, TenantId, TicketLink, TimelineKind,
};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::auth::require_role;
use crate::change::Change;
use crate::ports::{NewTicket, TrackerError};
use crate::{incidents, DomainError, Services};

/// Longest ticket title and body.
pub const MAX_TITLE: usize = 250;
pub const MAX_BODY: usize = 60_000;
/// Timeline entries a ticket body lists (the newest).
pub const TIMELINE_ENTRIES: usize = 15;

/// The shipped title template of an incident ticket.
pub const INCIDENT_TITLE: &str = "[{{ incident.severity }}] {{ incident.title }}";
/// The shipped body template of an incident ticket (Markdown).
pub const INCIDENT_BODY: &str = include_str!("incident.md.j2");
/// The shipped templates of a recurring group's ticket.
pub const RECURRING_TITLE: &str =
    "Recurring: {{ group.title }} ({{ group.incidents }} incidents, {{ group.by }} {{ group.key }})";
pub const RECURRING_BODY: &str = include_str!("recurring.md.j2");

/// What a request for a ticket gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requested {
    /// The request's key (`tkt_<ULID>`).
    pub key: String,
    /// `requested` (the ticket follows), `pending` (an earlier request's
    /// ticket is on its way) or `linked` (the incident has one).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketLink>,
}

/// Asks for a ticket for incident `id` (responder). One per incident unless
/// `again`: a request while one is pending or linked answers with it.
pub async fn request(
    svc: &Services,
    p: &Principal,
    id: &IncidentId,
    again: bool,
) -> Result<Requested, DomainError> {
    require_role(p, Role::Responder, "open a ticket")?;
    let tracker = match (&svc.settings.tracker, &svc.tracker) {
        (Some(kind), _) => kind.clone(),
        (None, Some(t)) => t.kind().to_owned(),
        (None, None) => {
            return Err(DomainError::bad_input(
                "no_tracker",
                "no issue tracker is configured (FIREWATCH_TRACKER: github, gitlab or jira)",
            ))
        }
    };
    crate::retry::until_won!(
        crate::retry::HOT,
        || DomainError::conflict("busy", "the incident kept changing; ask again"),
        async || -> Result<_, crate::retry::Retry> {
            let inc = incidents::get(svc, &p.tenant, id).await?;
            if !again {
                if let Some(t) = &inc.ticket {
                    return Ok(Requested {
                        key: t.key.clone(),
                        status: "linked",
                        ticket: Some(t.clone()),
                    });
                }
                if let Some(k) = &inc.ticket_requested {
                    return Ok(Requested {
                        key: k.clone(),
                        status: "pending",
                        ticket: None,
                    });
                }
            }
            let key = format!("tkt_{}", svc.ids.ulid());
            let mut change = Change::to(svc, inc.clone());
            change.incident_mut().ticket_requested = Some(key.clone());
            let e = change.entry(&p.name, TimelineKind::TicketRequested { key: key.clone() });
            change.show_with_effect(
                e,
                crate::outbox::Effect::Ticket {
                    key: key.clone(),
                    actor: p.name.clone(),
                },
            );
            match change.commit().await {
                Ok(_) => {
                    tracing::info!(incident = %id, %tracker, "ticket requested");
                    return Ok(Requested {
                        key,
                        status: "requested",
                        ticket: None,
                    });
                }
                Err(e) if e.is_lost_race() => Err(crate::retry::Retry::Lost),
                Err(e) => return Err(e.into()),
            }
        },
    )
    .await
}

/// Asks for the ticket a route rule wants (`"ticket": true`) for incident
/// `inc`, which just opened: once, as `route:{id}`. Nothing without a
/// tracker, or when the incident has or awaits one.
pub async fn for_route(svc: &Services, inc: &Incident) -> Result<(), DomainError> {
    if inc.ticket.is_some()
        || inc.ticket_requested.is_some()
        || (svc.settings.tracker.is_none() && svc.tracker.is_none())
    {
        return Ok(());
    }
    let routes = crate::routing::routes::list(svc, &inc.tenant).await?;
    let Some(route) = routes.iter().find(|r| r.ticket && r.when.matches(inc)) else {
        return Ok(());
    };
    let p = Principal {
        tenant: inc.tenant.clone(),
        name: format!("route:{}", route.id),
        role: Role::Responder,
    };
    request(svc, &p, &inc.id, false).await.map(|_| ())
}

/// The variables of a ticket template.
#[derive(Serialize)]
struct Context<'a> {
    incident: &'a Incident,
    timeline: Vec<BTreeMap<&'static str, String>>,
    triage: Option<String>,
    url: Option<String>,
    key: &'a str,
}

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(100_000));
    env
}

/// The templates of `kind` (`incident`, `recurring`) in use:
/// `FIREWATCH_TICKET_TEMPLATES/{kind}.title.j2` and `…/{kind}.md.j2` when
/// present, else the shipped ones.
fn templates(kind: &str) -> (String, String) {
    let dir = std::env::var("FIREWATCH_TICKET_TEMPLATES").ok();
    let read = |name: String, default: &str| {
        dir.as_ref()
            .and_then(|d| std::fs::read_to_string(std::path::Path::new(d).join(name)).ok())
            .unwrap_or_else(|| default.to_owned())
    };
    let (title, body) = match kind {
        "recurring" => (RECURRING_TITLE, RECURRING_BODY),
        _ => (INCIDENT_TITLE, INCIDENT_BODY),
    };
    (
        read(format!("{kind}.title.j2"), title),
        read(format!("{kind}.md.j2"), body),
    )
}

/// Renders the ticket templates of `kind` with `ctx`, redacted and bounded.
pub(crate) fn render_kind(
    kind: &str,
    ctx: &impl Serialize,
) -> Result<(String, String), DomainError> {
    let (title_t, body_t) = templates(kind);
    let env = env();
    let ctx = minijinja::Value::from(minijinja::value::Serde(ctx));
    let render = |t: &str| {
        env.render_str(t, &ctx)
            .map_err(|e| DomainError::DependencyFailed {
                code: "ticket_template",
                message: format!(
                    "the {kind} ticket template does not render: {}",
                    e.detail().unwrap_or("error")
                ),
            })
    };
    let title = crate::redact::redact_text(render(&title_t)?.trim());
    let body = crate::redact::redact_text(&render(&body_t)?);
    Ok((
        crate::limits::truncate(&title, MAX_TITLE),
        crate::limits::truncate(&body, MAX_BODY),
    ))
}

/// Checks a template's syntax (for tests and operators' overrides).
pub fn check_template(text: &str) -> Result<(), String> {
    env()
        .template_from_str(text)
        .map(|_| ())
        .map_err(|e| format!("template error: {}", e.detail().unwrap_or("syntax error")))
}

/// Renders the ticket of incident `inc` from its newest timeline entries
/// and triage report. Everything is redacted after rendering: no secret
/// reaches a tracker, whatever a template prints.
pub async fn render(svc: &Services, inc: &Incident, key: &str) -> Result<NewTicket, DomainError> {
    let entries = svc
        .store
        .query(crate::ports::Query {
            pk: crate::keys::incident_pk(&inc.tenant, &inc.id),
            sk_prefix: crate::keys::TIMELINE_PREFIX.into(),
            after: None,
            limit: TIMELINE_ENTRIES,
            descending: true,
        })
        .await?;
    let mut timeline = Vec::new();
    for item in entries.items.iter().rev() {
        let e: firewatch_types::TimelineEntry = crate::keys::decode(item)?;
        timeline.push(BTreeMap::from([
            (
                "at",
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            ("actor", e.actor.clone()),
            ("text", crate::cards::reply_text(&e)),
        ]));
    }
    let principal = Principal {
        tenant: inc.tenant.clone(),
        name: "firewatch".into(),
        role: Role::Viewer,
    };
    let triage = match crate::triage::latest(svc, &principal, &inc.id).await {
        Ok((inc, r)) => Some(crate::triage::markdown::render(&inc, &r)),
        Err(DomainError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let ctx = Context {
        incident: inc,
        timeline,
        triage,
        url: svc
            .settings
            .public_url
            .as_ref()
            .map(|b| format!("{b}/v1/incidents/{}", inc.id)),
        key,
    };
    let (title, body) = render_kind("incident", &ctx)?;
    Ok(NewTicket {
        title,
        body,
        severity: inc.severity,
        labels: vec![format!("source:{}", inc.source)],
    })
}

/// Creates and links the ticket of request `key` (the dispatcher's effect).
/// Idempotent: a key already linked, or superseded by a later request,
/// creates nothing.
pub async fn perform(
    svc: &Services,
    tenant: &TenantId,
    id: &IncidentId,
    key: &str,
    actor: &str,
) -> Result<(), DomainError> {
    let inc = incidents::get(svc, tenant, id).await?;
    if inc.ticket.as_ref().is_some_and(|t| t.key == key)
        || inc.ticket_requested.as_deref() != Some(key)
    {
        return Ok(());
    }
    let Some(tracker) = &svc.tracker else {
        return Err(DomainError::DependencyFailed {
            code: "no_tracker",
            message: "no issue tracker is configured".into(),
        });
    };
    let link = match claim(svc, &inc, key).await? {
        Claim::Ours => {
            let ticket = render(svc, &inc, key).await?;
            let created = tracker.create(&ticket).await;
            if created.is_err() {
                // The tracker answered that nothing was created: a retry may try.
                release(svc, &inc, key).await?;
            }
            let created = created.map_err(|e| match e {
                TrackerError::Retryable(m) => DomainError::Unavailable(format!(
                    "{} did not create the ticket: {m}",
                    tracker.kind()
                )),
                TrackerError::Permanent(m) => DomainError::DependencyFailed {
                    code: "tracker_refused",
                    message: format!("{} refused the ticket: {m}", tracker.kind()),
                },
            })?;
            let link = TicketLink {
                key: key.to_owned(),
                tracker: tracker.kind().into(),
                id: created.id,
                url: created.url,
                created_at: svc.clock.now(),
            };
            // What was created is kept with the claim first: a retry links it.
            put_claim(svc, &inc, key, Some(&link), crate::ports::Condition::Always).await?;
            link
        }
        Claim::Created(link) => link,
        Claim::Recent => {
            return Err(DomainError::Unavailable(
                "the ticket of this request is being created; its link follows".into(),
            ))
        }
        Claim::Interrupted => return interrupted(svc, inc, key, tracker.kind()).await,
    };
    // The ticket exists now: link it, however often the incident changes.
    let mut inc = inc;
    crate::retry::until_won!(
        crate::retry::HOT * 4,
        || {
            DomainError::conflict(
                "busy",
                format!(
                    "ticket {} was created but the incident kept changing: it is not linked yet",
                    link.id
                ),
            )
        },
        async || -> Result<_, crate::retry::Retry> {
            let mut change = Change::to(svc, inc.clone());
            {
                let i = change.incident_mut();
                i.ticket = Some(link.clone());
                i.ticket_requested = None;
            }
            let e = change.entry(
                actor,
                TimelineKind::TicketLinked {
                    tracker: link.tracker.clone(),
                    ticket: link.id.clone(),
                    url: link.url.clone(),
                },
            );
            change.show(e);
            match change.commit().await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_lost_race() => {
                    inc = incidents::get(svc, tenant, id).await?;
                    if inc.ticket.as_ref().is_some_and(|t| t.key == key) {
                        return Ok(());
                    }
                    Err(crate::retry::Retry::Lost)
                }
                Err(e) => return Err(e.into()),
            }
        },
    )
    .await
}

/// How long a claim may be held by a creation under way; an older one was
/// left by an attempt that stopped.
const CLAIM_HELD_SECS: i64 = 120;

enum Claim {
    /// This attempt holds it: call the tracker.
    Ours,
    /// An earlier attempt created this ticket and stopped before linking it.
    Created(TicketLink),
    /// Another attempt is creating the ticket now.
    Recent,
    /// An attempt claimed it and stopped before linking: the tracker may
    /// hold the ticket, so no second one is opened.
    Interrupted,
}

/// The claim item: when it was claimed, and the ticket once created.
#[derive(Serialize, serde::Deserialize)]
struct ClaimRecord {
    at: chrono::DateTime<chrono::Utc>,
    created: Option<TicketLink>,
}

async fn put_claim(
    svc: &Services,
    inc: &Incident,
    key: &str,
    created: Option<&TicketLink>,
    condition: crate::ports::Condition,
) -> Result<(), crate::work::CommitError> {
    let now = svc.clock.now();
    let record = ClaimRecord {
        at: now,
        created: created.cloned(),
    };
    let mut item = crate::keys::item(
        crate::keys::incident_pk(&inc.tenant, &inc.id),
        crate::keys::ticket_claim_sk(key),
        1,
        &record,
    )
    .map_err(crate::work::CommitError::Domain)?;
    item.expires_at = Some(now.timestamp() + 30 * 86_400);
    crate::work::put(svc, item, condition).await
}

async fn claim(svc: &Services, inc: &Incident, key: &str) -> Result<Claim, DomainError> {
    match put_claim(svc, inc, key, None, crate::ports::Condition::Absent).await {
        Ok(()) => Ok(Claim::Ours),
        Err(e) if e.is_lost_race() => {
            let held = svc
                .store
                .get(
                    &crate::keys::incident_pk(&inc.tenant, &inc.id),
                    &crate::keys::ticket_claim_sk(key),
                )
                .await?;
            let Some(held) = held else {
                // Released between the two reads: try again later.
                return Ok(Claim::Recent);
            };
            let held: ClaimRecord = crate::keys::decode(&held)?;
            Ok(match held.created {
                Some(link) => Claim::Created(link),
                None if svc.clock.now() - held.at < chrono::Duration::seconds(CLAIM_HELD_SECS) => {
                    Claim::Recent
                }
                None => Claim::Interrupted,
            })
        }
        Err(e) => Err(e.into()),
    }
}

async fn release(svc: &Services, inc: &Incident, key: &str) -> Result<(), DomainError> {
    crate::work::delete(
        svc,
        &crate::keys::incident_pk(&inc.tenant, &inc.id),
        &crate::keys::ticket_claim_sk(key),
        crate::ports::Condition::Always,
    )
    .await?;
    Ok(())
}

/// Ends a request whose creation stopped before its link: says so in the
/// thread and clears the request, so a responder can look in the tracker
/// or ask again, and nothing opens a second ticket on its own.
async fn interrupted(
    svc: &Services,
    mut inc: Incident,
    key: &str,
    tracker: &str,
) -> Result<(), DomainError> {
    let (tenant, id) = (inc.tenant.clone(), inc.id.clone());
    crate::retry::until_won!(crate::retry::HOT, || DomainError::conflict(
        "busy",
        "the incident kept changing; the dispatcher tries again",
    ), async || -> Result<_, crate::retry::Retry> {
        if inc.ticket_requested.as_deref() != Some(key) {
            return Ok(());
        }
        let mut change = Change::to(svc, inc.clone());
        change.incident_mut().ticket_requested = None;
        let e = change.entry(
            "firewatch",
            TimelineKind::Comment {
                text: format!(
                    "The ticket request {key} stopped after it was sent to {tracker} and before its answer was linked: {tracker} may hold the ticket. Look there, or ask for a ticket again; none is opened twice on its own."
                ),
            },
        );
        change.show(e);
        match change.commit().await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_lost_race() => {
                inc = incidents::get(svc, &tenant, &id).await?;
                Err(crate::retry::Retry::Lost)
            }
            Err(e) => return Err(e.into()),
        }
        })
    .await
}

/// Jira's priority name of a severity.
pub fn jira_priority(s: Severity) -> &'static str {
    match s {
        Severity::Sev1 => "Highest",
        Severity::Sev2 => "High",
        Severity::Sev3 => "Medium",
        Severity::Sev4 => "Low",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_templates_parse() {
        check_template(INCIDENT_TITLE).unwrap();
        check_template(INCIDENT_BODY).unwrap();
        check_template(RECURRING_TITLE).unwrap();
        check_template(RECURRING_BODY).unwrap();
        assert!(check_template("{% for %}").is_err());
    }
}
