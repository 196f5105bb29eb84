//! From a verified webhook to incidents: normalise, keep the redacted raw
//! envelope, then fold each alert into at most one open incident per group
//! key.
//!
//! Deduplication holds under any concurrency because the group-key item is
//! only ever changed by a conditional write in the same transaction as the
//! incident it points to: of many writers racing to open an incident for a
//! key, one wins and the others re-read and join it.

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{
    Alert, AlertSnapshot, AlertStatus, EnvelopeRef, Incident, IncidentId, IncidentState, Principal,
    Role, SourceKind, TenantId, TimelineKind,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod normalize;
pub mod seen;

use crate::auth::sha256_hex;
use crate::change::{load_group, Change, VersionedGroup};
use crate::incidents::get;
use crate::ingest::normalize::{is_sns_url, normalize, Envelope};
use crate::ports::Condition;
use crate::redact::{is_secret_key, redact_json, REDACTED};
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// Bytes of the answer remembered for a redelivery. Past it, a redelivery
/// is answered with fewer per-alert results (and then fewer incidents) and a
/// note saying so, however many alerts the webhook carried.
pub const MARKER_BUDGET: usize = 32 * 1024;

/// A webhook that passed authentication.
pub struct IngestRequest<'a> {
    pub principal: &'a Principal,
    pub source: SourceKind,
    pub body: &'a [u8],
    /// Request headers, kept (redacted) in the envelope.
    pub headers: Vec<(String, String)>,
}

/// What happened to one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It opened a new incident.
    Opened,
    /// It fired again for an open incident.
    Occurrence,
    /// Nothing new: the incident already knew this.
    Unchanged,
    /// The provider acknowledged it; the incident was acknowledged.
    Acknowledged,
    /// It resolved; other alerts of the incident still fire.
    AlertResolved,
    /// It resolved, and with it the incident.
    IncidentResolved,
    /// The group key reached its rate limit; kept on the last incident.
    Suppressed,
    /// A resolve or acknowledge for an alert with no open incident.
    NoOpenIncident,
    /// An active silence holds it: no incident opened, nobody notified (or,
    /// for an open incident, an occurrence noted without a message).
    Silenced,
    /// Its group is flapping: the change is on its incident's timeline,
    /// which stays open, without a message.
    Flapping,
}

/// One alert's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertResult {
    pub fingerprint: String,
    pub status: AlertStatus,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<IncidentId>,
}

/// The answer to a webhook (the body of the 202).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Alerts the webhook carried.
    pub accepted: usize,
    /// True when this exact body was already processed: nothing changed.
    pub duplicate: bool,
    pub envelope_sha256: String,
    /// Incidents the alerts touched, without repeats.
    pub incidents: Vec<IncidentId>,
    pub results: Vec<AlertResult>,
    /// Alerts an active silence held.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub silenced: usize,
    /// PagerDuty: the event's dedup key, given or generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize)]
struct EnvelopeRecord {
    received_at: DateTime<Utc>,
    report: IngestReport,
}

#[derive(Serialize)]
struct StoredEnvelope<'a> {
    source: SourceKind,
    tenant: &'a TenantId,
    received_at: DateTime<Utc>,
    sha256: &'a str,
    headers: Vec<(String, String)>,
    body: serde_json::Value,
}

/// Processes one authenticated webhook.
pub async fn ingest(svc: &Services, req: IngestRequest<'_>) -> Result<IngestReport, DomainError> {
    crate::auth::require_ingest(req.principal, "post alerts")?;
    let tenant = &req.principal.tenant;
    let sha = sha256_hex(req.body);
    // Redeliveries (a sender retrying) within the dedup window are answered
    // with the first answer. This is the fast path, not the guarantee: two
    // identical deliveries racing past this check still change nothing,
    // because each alert's snapshot remembers the envelope that last changed
    // it. After the window an identical body is a new event (PagerDuty: a
    // trigger after resolve opens a new incident). Alongside, anything
    // arriving from a provider marks its path to firewatch as working.
    let envelopes_pk = keys::envelopes_pk(tenant);
    let (_, seen, silences) = tokio::join!(
        seen::mark(svc, tenant, req.source, false),
        svc.store.get(&envelopes_pk, &sha),
        crate::silences::Active::load(svc, tenant)
    );
    if let Some(item) = seen? {
        let record: EnvelopeRecord = keys::decode(&item)?;
        // The store's TTL is lazy (DynamoDB deletes up to days late), so the
        // window is enforced here, on the domain's clock.
        if svc.clock.now() - record.received_at < Duration::seconds(svc.settings.dedup_window_secs)
        {
            let mut report = record.report;
            report.duplicate = true;
            // The redelivery is in the dossier too, flagged.
            let alerts = normalize(
                req.source,
                req.body,
                &Envelope {
                    sha256: &sha,
                    sentry_resource: None,
                },
            )
            .map(|n| n.alerts)
            .unwrap_or_default();
            crate::dossier::keep(
                svc,
                tenant,
                &crate::dossier::Received {
                    source: req.source,
                    body: req.body,
                    sha256: &sha,
                    alerts: &alerts,
                    dedup_key: report.dedup_key.as_deref(),
                    incidents: &report.incidents,
                    duplicate: true,
                    blob_key: None,
                    stage: None,
                    silenced: report.silenced,
                },
            )
            .await?;
            return Ok(report);
        }
    }

    let sentry_resource = header(&req.headers, "sentry-hook-resource");
    let normalized = normalize(
        req.source,
        req.body,
        &Envelope {
            sha256: &sha,
            sentry_resource: sentry_resource.as_deref(),
        },
    )?;

    let mut report = IngestReport {
        accepted: normalized.alerts.len(),
        duplicate: false,
        envelope_sha256: sha.clone(),
        incidents: Vec::new(),
        results: Vec::new(),
        silenced: 0,
        dedup_key: normalized.dedup_key.clone(),
        note: normalized.note.clone(),
    };

    if let Some(sub) = &normalized.sns_subscription {
        if !svc
            .settings
            .sns_topic_allowlist
            .iter()
            .any(|t| t == &sub.topic_arn)
        {
            return Err(DomainError::Forbidden(format!(
                "SNS topic {} is not in FIREWATCH_SNS_TOPICS",
                sub.topic_arn
            )));
        }
        if !is_sns_url(&sub.subscribe_url) {
            return Err(DomainError::bad_input(
                "invalid_subscribe_url",
                "SubscribeURL is not an https://sns.<region>.amazonaws.com/ URL",
            ));
        }
        svc.sns.confirm(&sub.subscribe_url).await.map_err(|e| {
            DomainError::Unavailable(format!("SNS subscription confirmation failed: {e}"))
        })?;
        report.note = Some(format!("subscription to {} confirmed", sub.topic_arn));
        crate::dossier::keep(
            svc,
            tenant,
            &crate::dossier::Received {
                source: req.source,
                body: req.body,
                sha256: &sha,
                alerts: &[],
                dedup_key: None,
                incidents: &[],
                duplicate: false,
                blob_key: None,
                stage: Some("subscription"),
                silenced: 0,
            },
        )
        .await?;
        return Ok(report);
    }

    let dossier = Dossier {
        reference: EnvelopeRef {
            sha256: sha.clone(),
            blob_key: format!("envelopes/{tenant}/{sha}.json"),
        },
        stored: tokio::sync::OnceCell::new(),
        source: req.source,
        body: req.body,
        headers: &req.headers,
    };
    let silences = silences?;
    for (alert, (outcome, incident_id)) in
        fold_all(svc, req.principal, &normalized.alerts, &dossier, &silences).await?
    {
        if let Some(id) = &incident_id {
            if !report.incidents.contains(id) {
                report.incidents.push(id.clone());
            }
        }
        if outcome == Outcome::Silenced {
            report.silenced += 1;
        }
        report.results.push(AlertResult {
            fingerprint: alert.fingerprint.clone(),
            status: alert.status,
            outcome,
            incident_id,
        });
    }

    // The dossier item goes with the redelivery marker, once every change
    // the webhook caused has committed.
    let ev = crate::dossier::record(
        svc,
        &crate::dossier::Received {
            source: req.source,
            body: req.body,
            sha256: &sha,
            alerts: &normalized.alerts,
            dedup_key: normalized.dedup_key.as_deref(),
            incidents: &report.incidents,
            duplicate: false,
            blob_key: dossier
                .stored
                .initialized()
                .then_some(dossier.reference.blob_key.as_str()),
            stage: None,
            silenced: report.silenced,
        },
    );
    let mut work = Work::new(svc);
    work.put(redelivery_marker(svc, tenant, &report)?, Condition::Always);
    crate::dossier::keep_in(&mut work, tenant, &ev)?;
    work.commit().await?;
    Ok(report)
}

/// The item that answers a redelivery of this webhook within the dedup
/// window: the report, cut to [`MARKER_BUDGET`] bytes.
pub fn redelivery_marker(
    svc: &Services,
    tenant: &TenantId,
    report: &IngestReport,
) -> Result<crate::ports::Item, DomainError> {
    let mut remembered = report.clone();
    let size = |r: &IngestReport| serde_json::to_vec(r).map_or(usize::MAX, |v| v.len());
    if size(&remembered) > MARKER_BUDGET {
        let per_result = size(report) / report.results.len().max(1) + 1;
        remembered
            .results
            .truncate(MARKER_BUDGET / 2 / per_result.max(1));
        let per_incident = 32;
        remembered
            .incidents
            .truncate(MARKER_BUDGET / 2 / per_incident);
        remembered.note = Some(format!(
            "a redelivery repeats {} of {} per-alert results and {} of {} incidents",
            remembered.results.len(),
            report.results.len(),
            remembered.incidents.len(),
            report.incidents.len()
        ));
    }
    let now = svc.clock.now();
    let mut marker = keys::item(
        keys::envelopes_pk(tenant),
        report.envelope_sha256.clone(),
        1,
        &EnvelopeRecord {
            received_at: now,
            report: remembered,
        },
    )?;
    marker.expires_at = Some(now.timestamp() + svc.settings.dedup_window_secs);
    crate::work::check_item(&marker)?;
    Ok(marker)
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// The raw envelope of one webhook: kept, redacted, in the blob store (the
/// source dossier) the first time one of its alerts changes something, while
/// the change that links to it commits (the answer waits for both; a retry
/// stores it again if it was lost). A webhook that changes nothing (a
/// repeat notification) costs no blob write.
struct Dossier<'a> {
    reference: EnvelopeRef,
    stored: tokio::sync::OnceCell<()>,
    source: SourceKind,
    body: &'a [u8],
    headers: &'a [(String, String)],
}

impl Dossier<'_> {
    async fn ensure_stored(&self, svc: &Services, tenant: &TenantId) -> Result<(), DomainError> {
        self.stored
            .get_or_try_init(|| self.store(svc, tenant))
            .await
            .map(|_| ())
    }

    async fn store(&self, svc: &Services, tenant: &TenantId) -> Result<(), DomainError> {
        let mut json: serde_json::Value = serde_json::from_slice(self.body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(self.body).into_owned())
        });
        redact_json(&mut json);
        let headers = self
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_key(k) {
                    REDACTED.to_owned()
                } else {
                    v.clone()
                };
                (k.to_ascii_lowercase(), v)
            })
            .collect();
        let doc = StoredEnvelope {
            source: self.source,
            tenant,
            received_at: svc.clock.now(),
            sha256: &self.reference.sha256,
            headers,
            body: json,
        };
        let bytes = serde_json::to_vec(&doc).map_err(|e| DomainError::Internal(e.to_string()))?;
        svc.blobs
            .put(&self.reference.blob_key, bytes, "application/json")
            .await
            .map_err(|e| DomainError::Unavailable(e.to_string()))
    }
}

/// Folds each alert into incidents, in order: alerts of different group
/// keys are independent and fold concurrently; alerts of one key keep the
/// order the provider sent.
async fn fold_all<'a>(
    svc: &Services,
    principal: &Principal,
    alerts: &'a [Alert],
    dossier: &Dossier<'_>,
    silences: &crate::silences::Active,
) -> Result<Vec<(&'a Alert, (Outcome, Option<IncidentId>))>, DomainError> {
    let mut lanes: Vec<(String, Vec<(usize, &Alert)>)> = Vec::new();
    for (i, alert) in alerts.iter().enumerate() {
        let key = group_key(svc, alert);
        match lanes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, lane)) => lane.push((i, alert)),
            None => lanes.push((key, vec![(i, alert)])),
        }
    }
    let lanes = lanes.into_iter().map(|(_, lane)| async move {
        let mut done = Vec::with_capacity(lane.len());
        for (i, alert) in lane {
            done.push((
                i,
                alert,
                fold_alert(svc, principal, alert, dossier, silences).await?,
            ));
        }
        Ok::<_, DomainError>(done)
    });
    let mut folded: Vec<_> = Vec::with_capacity(alerts.len());
    for lane in futures_util::future::join_all(lanes).await {
        folded.extend(lane?);
    }
    folded.sort_by_key(|(i, _, _)| *i);
    Ok(folded.into_iter().map(|(_, a, r)| (a, r)).collect())
}

/// Releases an alert a silence held when the silence ended: it goes
/// through the incident flow as if it had just fired (another active
/// silence may hold it again). Its envelope is a fixed body naming the
/// silence and the alert, so releasing twice changes nothing twice.
pub async fn release(
    svc: &Services,
    tenant: &TenantId,
    silence_id: &str,
    alert: &Alert,
) -> Result<Outcome, DomainError> {
    let body = serde_json::to_vec(&serde_json::json!({
        "released_by_silence_end": silence_id,
        "alert": alert,
    }))?;
    let sha = sha256_hex(&body);
    let dossier = Dossier {
        reference: EnvelopeRef {
            sha256: sha.clone(),
            blob_key: format!("envelopes/{tenant}/{sha}.json"),
        },
        stored: tokio::sync::OnceCell::new(),
        source: alert.source,
        body: &body,
        headers: &[],
    };
    let principal = Principal {
        tenant: tenant.clone(),
        name: format!("silence:{silence_id}"),
        role: Role::Responder,
    };
    let silences = crate::silences::Active::load(svc, tenant).await?;
    let (outcome, _) = fold_alert(svc, &principal, alert, &dossier, &silences).await?;
    Ok(outcome)
}

/// Keeps a synthetic event (a provider heartbeat) as an envelope in the
/// blob store, the way a webhook is kept, and returns its blob key. It
/// opens no incident and reaches no chat.
pub async fn keep_synthetic_envelope(
    svc: &Services,
    p: &Principal,
    source: SourceKind,
    stage: &str,
) -> Result<String, DomainError> {
    let body = serde_json::to_vec(&serde_json::json!({
        "stage": stage,
        "provider": source.as_str(),
        "synthetic": true,
        "id": svc.ids.ulid(),
        "requested_by": p.name,
        "at": svc.clock.now(),
    }))?;
    let sha = sha256_hex(&body);
    let dossier = Dossier {
        reference: EnvelopeRef {
            sha256: sha.clone(),
            blob_key: format!("envelopes/{}/{sha}.json", p.tenant),
        },
        stored: tokio::sync::OnceCell::new(),
        source,
        body: &body,
        headers: &[],
    };
    dossier.ensure_stored(svc, &p.tenant).await?;
    crate::dossier::keep(
        svc,
        &p.tenant,
        &crate::dossier::Received {
            source,
            body: &body,
            sha256: &sha,
            alerts: &[],
            dedup_key: None,
            incidents: &[],
            duplicate: false,
            blob_key: Some(&dossier.reference.blob_key),
            stage: Some("heartbeat"),
            silenced: 0,
        },
    )
    .await?;
    Ok(dossier.reference.blob_key)
}

/// The group key of an alert: its fingerprint, or a hash of the labels the
/// source is configured to group by.
pub fn group_key(svc: &Services, alert: &Alert) -> String {
    match svc.settings.group_by.get(&alert.source) {
        None => alert.fingerprint.clone(),
        Some(labels) => {
            let mut h = Sha256::new();
            for l in labels {
                h.update(l);
                h.update(b"=");
                h.update(alert.labels.get(l).map(String::as_str).unwrap_or(""));
                h.update(b"\n");
            }
            format!("labels:{}", hex::encode(&h.finalize()[..12]))
        }
    }
}

fn snapshot(alert: &Alert, now: DateTime<Utc>, envelope: &EnvelopeRef) -> AlertSnapshot {
    AlertSnapshot {
        status: alert.status,
        severity: alert.severity,
        starts_at: alert.starts_at,
        last_seen: now,
        last_envelope: Some(envelope.sha256.clone()),
    }
}

/// Folds one alert into the incidents of its group key, retrying lost races.
async fn fold_alert(
    svc: &Services,
    principal: &Principal,
    alert: &Alert,
    dossier: &Dossier<'_>,
    silences: &crate::silences::Active,
) -> Result<(Outcome, Option<IncidentId>), DomainError> {
    let envelope = &dossier.reference;
    let tenant = &principal.tenant;
    let key = group_key(svc, alert);
    let actor = format!("source:{}", alert.source);
    let held_by = silences.holding(alert);
    let firing = alert.status == AlertStatus::Firing;
    crate::retry::until_won!(
        crate::retry::HOT,
        || DomainError::Unavailable("too much contention on this alert group; retry".into()),
        async || -> Result<_, crate::retry::Retry> {
            let group = load_group(svc, tenant, alert.source, &key).await?;
            let open = match &group.record.open_incident {
                Some(id) => Some(get(svc, tenant, id).await?),
                None => None,
            };
            let (outcome, incident, change) = match open {
                Some(inc) if last_changed_by(&inc, alert, envelope) => {
                    // A retry of this very webhook, whose change committed but
                    // whose answer was lost: nothing changes again, but its
                    // envelope, written beside that commit, is made sure of.
                    dossier.ensure_stored(svc, tenant).await?;
                    return Ok((Outcome::Unchanged, Some(inc.id)));
                }
                Some(inc) if inc.state.is_active() => {
                    let quiet = held_by.is_some() && firing;
                    let (outcome, id, mut change) =
                        join(svc, inc, group, alert, envelope, &actor, quiet).await?;
                    if let (Some(s), Some(c)) = (held_by, change.as_mut()) {
                        crate::silences::hold(svc, tenant, s, alert, id.as_ref(), c.also()).await?;
                    }
                    match outcome {
                        Outcome::Occurrence if quiet => (Outcome::Silenced, id, change),
                        o => (o, id, change),
                    }
                }
                _ if !firing => {
                    // A silenced alert resolving: its silence records it.
                    if let Some(s) = held_by {
                        let mut work = Work::new(svc);
                        crate::silences::hold(svc, tenant, s, alert, None, &mut work).await?;
                        work.commit().await?;
                    }
                    return Ok((Outcome::NoOpenIncident, None));
                }
                _ if held_by.is_some() => {
                    if let Some(s) = held_by {
                        let mut work = Work::new(svc);
                        crate::silences::hold(svc, tenant, s, alert, None, &mut work).await?;
                        work.commit().await?;
                    }
                    return Ok((Outcome::Silenced, None));
                }
                _ => {
                    // A group handed off as a work item: its ticket from the start.
                    let ticket =
                        crate::incidents::group_links::linked_ticket(svc, tenant, alert).await?;
                    match reopen_flapping(svc, tenant, &group, alert, envelope, &actor).await? {
                        Some(folded) => folded,
                        None => open_or_suppress(
                            svc, tenant, group, alert, envelope, &actor, principal, ticket,
                        )?,
                    }
                }
            };
            let Some(change) = change else {
                return Ok((outcome, incident));
            };
            // The envelope is written (and fsynced) while the change commits:
            // the sender's 202 waits for both, and a retry after a failure of
            // either stores the envelope again (above), so the timeline never
            // keeps a link to an envelope that is not there.
            let (stored, committed) =
                futures_util::future::join(dossier.ensure_stored(svc, tenant), change.commit())
                    .await;
            match committed {
                Ok(_) => {
                    stored?;
                    return Ok((outcome, incident));
                }
                Err(e) if e.is_lost_race() => Err(crate::retry::Retry::Lost),
                Err(e) => return Err(e.into()),
            }
        },
    )
    .await
}

/// True when this webhook is the one that last changed the alert on `inc`.
fn last_changed_by(inc: &Incident, alert: &Alert, envelope: &EnvelopeRef) -> bool {
    inc.alerts
        .get(&alert.fingerprint)
        .and_then(|k| k.last_envelope.as_deref())
        == Some(envelope.sha256.as_str())
}

/// What folding one alert decided: its outcome, its incident, and the change
/// to commit (none when nothing changes).
type Folded<'a> = (Outcome, Option<IncidentId>, Option<Change<'a>>);

/// An alert for an incident that holds its group key.
async fn join<'a>(
    svc: &'a Services,
    inc: Incident,
    group: VersionedGroup,
    alert: &Alert,
    envelope: &EnvelopeRef,
    actor: &str,
    quiet: bool,
) -> Result<Folded<'a>, DomainError> {
    let now = svc.clock.now();
    let id = inc.id.clone();
    let known = inc.alerts.get(&alert.fingerprint).cloned();
    // A flip (firing to resolved, or back) is counted on the group; past
    // the flap rule's limit the incident flaps and the change is quiet.
    let flips = match (alert.status, known.as_ref().map(|k| k.status)) {
        (AlertStatus::Resolved, Some(s)) if s != AlertStatus::Resolved => true,
        (AlertStatus::Firing, Some(AlertStatus::Resolved)) => true,
        _ => false,
    };
    let mut flap = if flips {
        let rule = crate::noise::flapping::rule_for(svc, &inc).await?;
        let mut group = group;
        let n = crate::noise::flapping::flip(&mut group.record, now, &rule);
        Some((rule, n, group))
    } else {
        None
    };
    let flapping = inc.flapping.is_some()
        || flap
            .as_ref()
            .is_some_and(|(rule, n, _)| *n > rule.max_flips);
    let unchanged = |outcome| Ok((outcome, Some(inc.id.clone()), None));
    let fingerprint = alert.fingerprint.clone();
    let mut change = Change::to(svc, inc.clone());
    let entry = |change: &Change<'_>, kind| {
        let mut e = change.entry(actor, kind);
        e.envelope = Some(envelope.clone());
        e
    };
    let mut flap_mark = |change: &mut Change<'_>| -> Result<(), DomainError> {
        if let Some((rule, n, group)) = flap.take() {
            change.with_group(group);
            if flapping {
                crate::noise::flapping::mark(change, n, &rule, now)?;
            }
        }
        Ok(())
    };
    let outcome = match alert.status {
        AlertStatus::Firing => {
            let same_firing = known.as_ref().is_some_and(|k| {
                k.status != AlertStatus::Resolved
                    && alert.starts_at.is_some()
                    && k.starts_at == alert.starts_at
            });
            if same_firing {
                // A repeat notification of the same firing (Alertmanager
                // repeat_interval): not a new occurrence.
                return unchanged(Outcome::Unchanged);
            }
            let inc = change.incident_mut();
            if known.is_none() && inc.alerts.len() >= Incident::MAX_TRACKED_ALERTS {
                inc.alerts_truncated = true;
                inc.untracked_alerts += 1;
            } else {
                inc.alerts
                    .insert(fingerprint.clone(), snapshot(alert, now, envelope));
            }
            inc.occurrences += 1;
            inc.severity = inc.severity.worst(alert.severity);
            let mut e = entry(&change, TimelineKind::Occurrence { fingerprint });
            flap_mark(&mut change)?;
            if quiet {
                // Held by a silence: on the timeline, not in the thread.
                e.reason = Some("silenced".into());
                change.note(e);
            } else if flapping {
                e.reason = Some("flapping".into());
                change.note(e);
                return Ok((Outcome::Flapping, Some(id), Some(change)));
            } else {
                change.show(e);
            }
            Outcome::Occurrence
        }
        AlertStatus::Resolved => {
            if known
                .as_ref()
                .is_none_or(|k| k.status == AlertStatus::Resolved)
            {
                return unchanged(Outcome::Unchanged);
            }
            change
                .incident_mut()
                .alerts
                .insert(fingerprint.clone(), snapshot(alert, now, envelope));
            let mut e = entry(&change, TimelineKind::AlertResolved { fingerprint });
            flap_mark(&mut change)?;
            if flapping {
                // Flapping: the incident stays open; the resolve is noted.
                e.reason = Some("flapping".into());
                change.note(e);
                return Ok((Outcome::Flapping, Some(id), Some(change)));
            }
            if svc.settings.auto_resolve && change.incident().all_alerts_resolved() {
                // The state change is what people see; the alert's own
                // resolve is noted on the timeline.
                change.note(e);
                change
                    .transition(
                        IncidentState::Resolved,
                        actor,
                        Some("all alerts resolved".into()),
                    )
                    .await?;
                Outcome::IncidentResolved
            } else {
                change.show(e);
                Outcome::AlertResolved
            }
        }
        AlertStatus::Acknowledged => {
            if known.is_none() || inc.state != IncidentState::Open {
                return unchanged(Outcome::Unchanged);
            }
            change
                .incident_mut()
                .alerts
                .insert(fingerprint.clone(), snapshot(alert, now, envelope));
            change
                .transition(
                    IncidentState::Acknowledged,
                    actor,
                    Some(format!("acknowledged in {}", alert.source)),
                )
                .await?;
            let e = entry(&change, TimelineKind::AlertAcknowledged { fingerprint });
            change.note(e);
            Outcome::Acknowledged
        }
    };
    Ok((outcome, Some(id), Some(change)))
}

/// A firing alert whose group's last incident resolved: a flip. When the
/// group is flapping and that incident resolved within the flap window, it
/// is reopened (marked flapping) instead of a new incident opening. `None`:
/// not flapping, open as usual (the flip is counted there).
async fn reopen_flapping<'a>(
    svc: &'a Services,
    tenant: &TenantId,
    group: &VersionedGroup,
    alert: &Alert,
    envelope: &EnvelopeRef,
    actor: &str,
) -> Result<Option<Folded<'a>>, DomainError> {
    let Some(last) = &group.record.last_incident else {
        return Ok(None);
    };
    // Only a group that has flipped lately is worth reading the incident of.
    let now = svc.clock.now();
    if group.record.flips.is_empty() {
        return Ok(None);
    }
    let inc = match get(svc, tenant, last).await {
        Ok(i) => i,
        Err(DomainError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let rule = crate::noise::flapping::rule_for(svc, &inc).await?;
    let mut group = group.clone();
    let n = crate::noise::flapping::flip(&mut group.record, now, &rule);
    let recent = inc
        .resolved_at
        .is_some_and(|t| now - t < Duration::seconds(rule.window_secs));
    if n <= rule.max_flips || inc.state != IncidentState::Resolved || !recent {
        return Ok(None);
    }
    let id = inc.id.clone();
    let mut change = Change::to(svc, inc);
    change.with_group(group);
    {
        let inc = change.incident_mut();
        inc.alerts
            .insert(alert.fingerprint.clone(), snapshot(alert, now, envelope));
        inc.occurrences += 1;
        inc.severity = inc.severity.worst(alert.severity);
    }
    change
        .transition(
            IncidentState::Open,
            actor,
            Some("its alerts are flapping".into()),
        )
        .await?;
    crate::noise::flapping::mark(&mut change, n, &rule, now)?;
    let mut e = change.entry(
        actor,
        TimelineKind::Occurrence {
            fingerprint: alert.fingerprint.clone(),
        },
    );
    e.envelope = Some(envelope.clone());
    e.reason = Some("flapping".into());
    change.note(e);
    Ok(Some((Outcome::Flapping, Some(id), Some(change))))
}

/// A firing alert whose group key has no active incident: open one, unless
/// the key reached its rate limit.
#[allow(clippy::too_many_arguments)]
fn open_or_suppress<'a>(
    svc: &'a Services,
    tenant: &TenantId,
    mut group: VersionedGroup,
    alert: &Alert,
    envelope: &EnvelopeRef,
    actor: &str,
    principal: &Principal,
    ticket: Option<firewatch_types::TicketLink>,
) -> Result<Folded<'a>, DomainError> {
    let now = svc.clock.now();
    let hour_ago = now - Duration::hours(1);
    group.record.recent_opens.retain(|t| *t > hour_ago);

    if group.record.recent_opens.len() >= svc.settings.rate_limit_per_hour {
        return suppress(svc, tenant, group, alert, envelope, actor);
    }

    let id = IncidentId::from_ulid(&svc.ids.ulid());
    let key = group.key.clone();
    group.record.recent_opens.push(now);
    if group.record.last_incident.is_some() {
        // Resolved, then firing again: a flip (the default rule: a routing
        // rule's own is read when the group already flaps).
        crate::noise::flapping::flip(&mut group.record, now, &svc.settings.flap);
    }
    let inc = Incident {
        id: id.clone(),
        tenant: tenant.clone(),
        state: IncidentState::Open,
        severity: alert.severity,
        title: alert.title.clone(),
        source: alert.source,
        group_key: key.clone(),
        fingerprint: alert.fingerprint.clone(),
        labels: alert.labels.clone(),
        annotations: alert.annotations.clone(),
        links: alert.links.clone(),
        alerts: [(alert.fingerprint.clone(), snapshot(alert, now, envelope))].into(),
        occurrences: 1,
        created_at: now,
        updated_at: now,
        alerts_truncated: false,
        untracked_alerts: 0,
        ticket,
        ticket_requested: None,
        flapping: None,
        snoozed_until: None,
        acknowledged_at: None,
        resolved_at: None,
        version: 1,
    };
    let severity = inc.severity;
    let mut change = Change::open(svc, inc, group);
    let mut e = change.entry(
        actor,
        TimelineKind::Opened {
            fingerprint: alert.fingerprint.clone(),
        },
    );
    e.envelope = Some(envelope.clone());
    change.show(e);
    change.audit(
        &principal.name,
        "incident.open",
        serde_json::Value::Null,
        serde_json::json!({"state": "open", "group_key": key, "severity": severity}),
        Some(format!("alert {} from {}", alert.fingerprint, alert.source)),
    );
    Ok((Outcome::Opened, Some(id), Some(change)))
}

/// Over the rate limit: the alert is recorded on the key's last incident
/// (which stays as it is) and counted on the group, never dropped.
fn suppress<'a>(
    svc: &'a Services,
    tenant: &TenantId,
    mut group: VersionedGroup,
    alert: &Alert,
    envelope: &EnvelopeRef,
    actor: &str,
) -> Result<Folded<'a>, DomainError> {
    group.record.suppressed += 1;
    let last = group.record.last_incident.clone();
    // The change is about the group; the last incident (if any) only gets a
    // note, its item stays untouched.
    let note_on = last
        .clone()
        .unwrap_or_else(|| IncidentId::from_ulid(&svc.ids.ulid()));
    let mut change = Change::for_group(svc, tenant, group, note_on);
    if last.is_some() {
        let mut e = change.entry(
            actor,
            TimelineKind::Suppressed {
                fingerprint: alert.fingerprint.clone(),
            },
        );
        e.reason = Some(format!(
            "rate limit of {} new incidents per hour reached for this alert group",
            svc.settings.rate_limit_per_hour
        ));
        e.envelope = Some(envelope.clone());
        change.note(e);
    } else {
        // A rate limit of zero: keep the alert on its own record.
        let item = keys::item(
            keys::suppressed_pk(tenant),
            format!("{}#{}", alert.source, svc.ids.ulid()),
            1,
            alert,
        )?;
        change.also().put(item, Condition::Absent);
    }
    Ok((Outcome::Suppressed, last, Some(change)))
}

/// Raises or resolves a check's alert (a heartbeat's, a smoke check's, a
/// pipeline's) through the normal incident flow:
/// `alert` is in the plain JSON alert shape, posted as `source` by
/// `actor` of `tenant`.
pub(crate) async fn ingest_alert(
    svc: &Services,
    tenant: &TenantId,
    source: firewatch_types::SourceKind,
    actor: String,
    alert: &serde_json::Value,
) -> Result<IngestReport, DomainError> {
    let principal = firewatch_types::Principal {
        tenant: tenant.clone(),
        name: actor,
        role: firewatch_types::Role::Responder,
    };
    let body = serde_json::to_vec(alert)?;
    ingest(
        svc,
        IngestRequest {
            principal: &principal,
            source,
            body: &body,
            headers: Vec::new(),
        },
    )
    .await
}
