//! The effect handlers: what delivering each kind of outbox record does
//! (a card and replies in chat, a playbook message, a dry-run or step,
//! a ticket, a triage, a page, a storm's end), each idempotent by its own
//! key. The policy that retries and dead-letters them is the parent's.

use firewatch_types::{Destination, Incident, ThreadRef, TimelineKind};

use crate::cards::{card, reply_text};
use crate::keys::effects_done_pk as effects_pk;
use crate::outbox::DeliveryError;
use crate::outbox::{Effect, OutboxRecord};
use crate::{incidents, keys, DomainError, Services};

/// Days an effect is remembered as done.
const EFFECT_TTL_DAYS: i64 = 14;

fn thread_sk(dest: &Destination) -> String {
    format!("CHAT#{}", dest.key())
}

/// The thread of an incident at a destination, if one was posted.
pub async fn thread(
    svc: &Services,
    inc: &Incident,
    dest: &Destination,
) -> Result<Option<ThreadRef>, DomainError> {
    match svc
        .store
        .get(&keys::incident_pk(&inc.tenant, &inc.id), &thread_sk(dest))
        .await?
    {
        Some(item) => Ok(Some(keys::decode(&item)?)),
        None => Ok(None),
    }
}

async fn done(svc: &Services, inc: &Incident, key: &str) -> Result<bool, DomainError> {
    Ok(svc
        .store
        .get(&effects_pk(&inc.tenant), key)
        .await?
        .is_some())
}

async fn mark_done(svc: &Services, inc: &Incident, key: &str) -> Result<(), DomainError> {
    let mut item = keys::item(effects_pk(&inc.tenant), key.to_owned(), 1, &svc.clock.now())?;
    item.expires_at = Some(svc.clock.now().timestamp() + EFFECT_TTL_DAYS * 86_400);
    crate::work::put_first(svc, item).await?;
    Ok(())
}

impl From<crate::playbooks::steps::StepError> for DeliveryError {
    fn from(e: crate::playbooks::steps::StepError) -> Self {
        Self {
            retryable: e.retryable,
            retry_after: None,
            message: e.message,
        }
    }
}

/// Performs the effects of one outbox record, each at most once: its own
/// effect first (a playbook step), then its entry in chat.
pub async fn deliver(svc: &Services, record: &OutboxRecord) -> Result<(), DeliveryError> {
    match &record.effect {
        Some(Effect::PlaybookStep {
            run_id,
            rollback,
            index,
        }) => {
            crate::playbooks::steps::perform(svc, &record.tenant, run_id, *rollback, *index).await?
        }
        Some(Effect::PlaybookDryRun { run_id }) => {
            crate::playbooks::runs::perform_dry_run(svc, &record.tenant, run_id).await?
        }
        Some(Effect::Triage {
            report_id,
            mode,
            actor,
            role,
            playbooks,
        }) => {
            let principal = firewatch_types::Principal {
                tenant: record.tenant.clone(),
                name: actor.clone(),
                role: *role,
            };
            let mode = crate::triage::Requested::parse(mode)
                .unwrap_or(crate::triage::Requested::Deterministic);
            crate::triage::perform(
                svc,
                &record.tenant,
                &record.entry.incident_id,
                report_id,
                mode,
                principal,
                playbooks.clone(),
            )
            .await?
        }
        Some(Effect::Ticket { key, actor }) => {
            crate::tickets::perform(svc, &record.tenant, &record.entry.incident_id, key, actor)
                .await?
        }
        Some(Effect::Page { policy, action }) => crate::escalation::page::perform(
            svc,
            &record.tenant,
            &record.entry.incident_id,
            policy,
            action,
        )
        .await
        .map_err(|e| DeliveryError {
            retryable: matches!(e, crate::ports::PagerError::Retryable(_)),
            retry_after: None,
            message: format!("PagerDuty: {e}"),
        })?,
        Some(Effect::Notify { destination }) => notify(svc, record, destination).await?,
        Some(Effect::StormEnd { storm }) => storm_end(svc, record, storm).await?,
        None => {}
    }
    if !record.chat {
        return Ok(());
    }
    let inc = match incidents::get(svc, &record.tenant, &record.entry.incident_id).await {
        Ok(inc) => inc,
        Err(DomainError::NotFound(m)) => {
            return Err(DeliveryError {
                retryable: false,
                retry_after: None,
                message: m,
            })
        }
        Err(e) => return Err(e.into()),
    };
    if matches!(
        record.entry.kind,
        firewatch_types::TimelineKind::Opened { .. }
    ) {
        // A route rule may ask for a ticket for every incident it matches.
        crate::tickets::for_route(svc, &inc).await?;
    }
    let card = card(
        &inc,
        svc.settings.tracker.is_some() || svc.tracker.is_some(),
    );
    // A playbook entry also shows its run's own message: read once here,
    // not per destination.
    let run_message = run_message(svc, &inc, &record.entry.kind).await?;
    let destinations = crate::routing::routes::destinations(svc, &inc).await?;
    // An incident with no thread yet may belong in its tenant's storm.
    let mut storm = None;
    for dest in &destinations {
        if thread(svc, &inc, dest).await?.is_none() {
            storm = crate::noise::storms::collapse(svc, &inc).await?;
            break;
        }
    }
    for dest in destinations {
        let key = format!("{}#{}", record.id, dest.key());
        if done(svc, &inc, &key).await? {
            continue;
        }
        match thread(svc, &inc, &dest).await? {
            None if storm.is_some() => {
                if let Some(s) = &storm {
                    crate::noise::storms::show(svc, &inc.tenant, s, &dest).await?;
                }
            }
            None => {
                let t = svc.chat.post_root(&dest, &card).await?;
                let item = keys::item(
                    keys::incident_pk(&inc.tenant, &inc.id),
                    thread_sk(&dest),
                    1,
                    &t,
                )?;
                // Another dispatcher may have posted a root at the same
                // moment; its thread is the one replies go to.
                crate::work::put_first(svc, item).await?;
                if !matches!(record.entry.kind, TimelineKind::Opened { .. }) {
                    // The root card shows the state; the change itself still
                    // belongs in the thread.
                    let t = thread(svc, &inc, &dest).await?.unwrap_or(t);
                    reply_once(svc, &inc, &t, &key, &record.entry).await?;
                    show_run(svc, &inc, &t, run_message.as_ref()).await?;
                }
            }
            Some(t) => {
                reply_once(svc, &inc, &t, &key, &record.entry).await?;
                // Editing to the current state is idempotent: safe to repeat.
                svc.chat.update_root(&t, &card).await?;
                show_run(svc, &inc, &t, run_message.as_ref()).await?;
            }
        }
        mark_done(svc, &inc, &key).await?;
    }
    Ok(())
}

/// The run an entry reports and the message that shows it now, when the
/// entry is a playbook run's.
async fn run_message(
    svc: &Services,
    inc: &Incident,
    kind: &TimelineKind,
) -> Result<Option<(String, firewatch_types::ChatMessage)>, DeliveryError> {
    let TimelineKind::Playbook { run_id, .. } = kind else {
        return Ok(None);
    };
    match crate::playbooks::runs::load_run(svc, &inc.tenant, run_id).await {
        Ok(run) => Ok(Some((
            run_id.clone(),
            crate::playbooks::chat::run_message(&run),
        ))),
        Err(DomainError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A playbook run's own message in the thread: posted with the run's first
/// entry, then edited to the run's current state with every later one
/// (editing to the current state is idempotent, so a redelivery is safe).
async fn show_run(
    svc: &Services,
    inc: &Incident,
    t: &ThreadRef,
    run: Option<&(String, firewatch_types::ChatMessage)>,
) -> Result<(), DeliveryError> {
    let Some((run_id, message)) = run else {
        return Ok(());
    };
    let pk = keys::incident_pk(&inc.tenant, &inc.id);
    let sk = format!("PBMSG#{run_id}#{}", t.destination.key());
    match svc.store.get(&pk, &sk).await? {
        Some(item) => {
            let id: String = keys::decode(&item)?;
            if !id.is_empty() {
                svc.chat.edit_message(t, &id, message).await?;
            }
        }
        None => {
            let id = svc.chat.post_message(t, message).await?;
            crate::work::put_first(svc, keys::item(pk, sk, 1, &id)?).await?;
        }
    }
    Ok(())
}

/// An escalation step's `notify`: the incident's thread at another
/// destination (its card posted there once) with the step's entry in it.
async fn notify(
    svc: &Services,
    record: &OutboxRecord,
    dest: &Destination,
) -> Result<(), DeliveryError> {
    let inc = incidents::get(svc, &record.tenant, &record.entry.incident_id).await?;
    let key = format!("{}#notify#{}", record.id, dest.key());
    if done(svc, &inc, &key).await? {
        return Ok(());
    }
    let t = match thread(svc, &inc, dest).await? {
        Some(t) => t,
        None => {
            let card = card(
                &inc,
                svc.settings.tracker.is_some() || svc.tracker.is_some(),
            );
            let t = svc.chat.post_root(dest, &card).await?;
            let item = keys::item(
                keys::incident_pk(&inc.tenant, &inc.id),
                thread_sk(dest),
                1,
                &t,
            )?;
            crate::work::put_first(svc, item).await?;
            thread(svc, &inc, dest).await?.unwrap_or(t)
        }
    };
    reply_once(svc, &inc, &t, &key, &record.entry).await?;
    mark_done(svc, &inc, &key).await?;
    Ok(())
}

/// A storm's end: its card edited a last time and one reply in each of its
/// threads.
async fn storm_end(
    svc: &Services,
    record: &OutboxRecord,
    storm_id: &str,
) -> Result<(), DeliveryError> {
    let Some(s) = crate::noise::storms::find(svc, &record.tenant, storm_id).await? else {
        return Ok(());
    };
    let inc = incidents::get(svc, &record.tenant, &record.entry.incident_id).await?;
    for (dest, t) in &s.threads {
        let key = format!("{}#storm#{dest}", record.id);
        if done(svc, &inc, &key).await? {
            continue;
        }
        svc.chat
            .update_root(t, &crate::noise::storms::card(&s))
            .await?;
        svc.chat
            .reply(t, &crate::noise::storms::ended_text(&s))
            .await?;
        mark_done(svc, &inc, &key).await?;
    }
    Ok(())
}

/// The thread reply for `entry`, sent once: a triage report goes with its
/// feedback buttons, everything else as text.
async fn reply_once(
    svc: &Services,
    inc: &Incident,
    t: &ThreadRef,
    key: &str,
    entry: &firewatch_types::TimelineEntry,
) -> Result<(), DeliveryError> {
    let reply_key = format!("{key}#reply");
    if !done(svc, inc, &reply_key).await? {
        match &entry.kind {
            TimelineKind::Triage { report } if report.id.is_some() => {
                let message = crate::cards::triage_message(report, &entry.actor);
                svc.chat.post_message(t, &message).await?;
            }
            TimelineKind::Escalation { mentions, .. } if !mentions.is_empty() => {
                svc.chat
                    .reply_mentioning(t, &reply_text(entry), mentions)
                    .await?
            }
            _ => svc.chat.reply(t, &reply_text(entry)).await?,
        }
        mark_done(svc, inc, &reply_key).await?;
    }
    Ok(())
}
