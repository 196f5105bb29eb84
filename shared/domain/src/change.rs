//! The write path of an incident: a typed account of what happened to it,
//! which alone turns into the [`Work`] (the unit of work) that records it.
//!
//! Ingest, people's actions, comments and triage all describe their change
//! here (the incident as it should now be, timeline
//! entries that people see or that are only noted, audit events, the group
//! key claimed or released) and [`Change::commit`] writes it:
//! - the incident's version is bumped once, conditional on the version read;
//! - the group-key item is claimed or released in the same transaction;
//! - every visible timeline entry gets its outbox record, so chat follows;
//! - the incident is held under [`INCIDENT_BUDGET`] (its oldest tracked
//!   alerts give way and are counted); [`Work`] enforces the item and
//!   transaction budgets.
//!
//! A writer that loses a race gets [`CommitError::is_lost_race`] and re-reads
//! through [`crate::retry`].

use chrono::{DateTime, Utc};
use firewatch_types::{
    AlertStatus, AuditEvent, Incident, IncidentId, IncidentState, SourceKind, TenantId,
    TimelineEntry, TimelineKind,
};
use serde::{Deserialize, Serialize};

use crate::outbox::{Effect, OutboxRecord};
use crate::ports::{Condition, Item};
use crate::work::{CommitError, Work};
use crate::{keys, DomainError, Services};
/// The incident item's budget. Labels and links are bounded on the way in
/// (see [`crate::limits`]); tracked alerts fill the rest, oldest dropped first.
pub const INCIDENT_BUDGET: usize = 128 * 1024;

/// The group-key item: which incident holds the key, and recent opens for
/// the rate limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupRecord {
    pub open_incident: Option<IncidentId>,
    pub last_incident: Option<IncidentId>,
    #[serde(default)]
    pub recent_opens: Vec<DateTime<Utc>>,
    #[serde(default)]
    pub suppressed: u64,
    /// Recent flips of the group's alerts (flap damping), newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flips: Vec<DateTime<Utc>>,
}

/// A group record with the version it was read at (`None`: not stored yet).
#[derive(Debug, Clone)]
pub struct VersionedGroup {
    pub source: SourceKind,
    pub key: String,
    pub record: GroupRecord,
    pub version: Option<u64>,
}

/// Reads the group-key item of `key`.
pub async fn load_group(
    svc: &Services,
    tenant: &TenantId,
    source: SourceKind,
    key: &str,
) -> Result<VersionedGroup, DomainError> {
    let item = svc
        .store
        .get(&keys::groups_pk(tenant), &keys::group_sk(source, key))
        .await?;
    Ok(VersionedGroup {
        source,
        key: key.to_owned(),
        record: match &item {
            Some(item) => keys::decode(item)?,
            None => GroupRecord::default(),
        },
        version: item.map(|i| i.version),
    })
}

/// Reads one incident with the version it was read at.
pub async fn load_incident(
    svc: &Services,
    tenant: &TenantId,
    id: &IncidentId,
) -> Result<Incident, DomainError> {
    let item = svc
        .store
        .get(&keys::incidents_pk(tenant), id.as_str())
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("no incident {id}")))?;
    keys::decode(&item)
}

/// What happened to one incident (or, for a suppressed alert, to its group).
pub struct Change<'a> {
    svc: &'a Services,
    tenant: TenantId,
    incident: Incident,
    /// The version the incident was read at; `None` when the change opens it.
    read_version: Option<u64>,
    /// The state it was read in (for the state index).
    read_state: IncidentState,
    /// Whether the incident item itself is written.
    touched: bool,
    group: Option<VersionedGroup>,
    entries: Vec<(TimelineEntry, bool)>,
    audits: Vec<AuditEvent>,
    extra: Work<'a>,
    /// Outbox records carrying an effect (a playbook step).
    effects: Vec<OutboxRecord>,
}

impl<'a> Change<'a> {
    /// A change to an incident read at its current version.
    pub fn to(svc: &'a Services, incident: Incident) -> Self {
        Self {
            svc,
            tenant: incident.tenant.clone(),
            read_version: Some(incident.version),
            read_state: incident.state,
            incident,
            touched: false,
            group: None,
            entries: Vec::new(),
            audits: Vec::new(),
            extra: Work::new(svc),
            effects: Vec::new(),
        }
    }

    /// A change that opens `incident` (whose version is ignored) and claims
    /// its group key in `group`.
    pub fn open(svc: &'a Services, mut incident: Incident, mut group: VersionedGroup) -> Self {
        group.record.open_incident = Some(incident.id.clone());
        group.record.last_incident = Some(incident.id.clone());
        incident.version = 0;
        let mut c = Self::to(svc, incident);
        c.read_version = None;
        c.touched = true;
        c.group = Some(group);
        c
    }

    /// A change to an alert group alone (an alert over the rate limit): the
    /// group item is written, and entries go on the timeline of
    /// `incident_id` (the group's last incident) without writing it. Only
    /// [`Change::note`], [`Change::also`] and the group write apply.
    pub fn for_group(
        svc: &'a Services,
        tenant: &TenantId,
        group: VersionedGroup,
        incident_id: IncidentId,
    ) -> Self {
        let now = svc.clock.now();
        // Stands for the incident whose timeline gets the notes; never
        // written, since nothing can touch it.
        let stand_in = Incident {
            id: incident_id,
            tenant: tenant.clone(),
            state: IncidentState::Closed,
            severity: firewatch_types::Severity::Sev4,
            title: String::new(),
            source: group.source,
            group_key: group.key.clone(),
            fingerprint: String::new(),
            labels: Default::default(),
            annotations: Default::default(),
            links: Vec::new(),
            alerts: Default::default(),
            alerts_truncated: false,
            untracked_alerts: 0,
            ticket: None,
            ticket_requested: None,
            flapping: None,
            snoozed_until: None,
            occurrences: 0,
            created_at: now,
            updated_at: now,
            acknowledged_at: None,
            resolved_at: None,
            version: 0,
        };
        let mut c = Self::to(svc, stand_in);
        c.group = Some(group);
        c
    }

    /// The incident as the change leaves it.
    pub fn incident(&self) -> &Incident {
        &self.incident
    }

    /// The incident, to be changed; the change then writes it.
    pub fn incident_mut(&mut self) -> &mut Incident {
        self.touched = true;
        &mut self.incident
    }

    /// The version the incident will have once the change commits.
    pub fn next_version(&self) -> u64 {
        if self.touched {
            self.read_version.map_or(1, |v| v + 1)
        } else {
            self.incident.version
        }
    }

    /// A new timeline entry of this incident, not yet added.
    pub fn entry(&self, actor: &str, kind: TimelineKind) -> TimelineEntry {
        TimelineEntry {
            id: self.svc.ids.ulid(),
            incident_id: self.incident.id.clone(),
            at: self.svc.clock.now(),
            actor: actor.to_owned(),
            kind,
            reason: None,
            envelope: None,
        }
    }

    /// Adds an entry people should see: on the timeline and in chat.
    pub fn show(&mut self, e: TimelineEntry) {
        self.entries.push((e, true));
    }

    /// Adds an entry to the timeline only.
    pub fn note(&mut self, e: TimelineEntry) {
        self.entries.push((e, false));
    }

    /// Adds an entry people should see whose outbox record also carries an
    /// effect, performed by the dispatcher before the entry goes to chat.
    pub fn show_with_effect(&mut self, e: TimelineEntry, effect: Effect) {
        let mut record = OutboxRecord::new(self.svc.ids.ulid(), self.tenant.clone(), e.clone());
        record.effect = Some(effect);
        self.entries.push((e, false));
        self.effects.push(record);
    }

    /// Schedules an effect alone for `at` (a wait step polling again): no
    /// timeline entry, nothing in chat. `about` is the entry it continues.
    pub fn schedule_effect(&mut self, about: TimelineEntry, effect: Effect, at: DateTime<Utc>) {
        let mut record = OutboxRecord::new(self.svc.ids.ulid(), self.tenant.clone(), about);
        record.effect = Some(effect);
        record.chat = false;
        record.next_at = Some(at);
        self.effects.push(record);
    }

    /// Adds an audit event about this incident.
    pub fn audit(
        &mut self,
        actor: &str,
        action: impl Into<String>,
        before: serde_json::Value,
        after: serde_json::Value,
        reason: Option<String>,
    ) {
        let target = self.incident.id.to_string();
        self.audit_target(actor, action, target, before, after, reason);
    }

    /// Adds an audit event about something other than the incident.
    pub fn audit_target(
        &mut self,
        actor: &str,
        action: impl Into<String>,
        target: String,
        before: serde_json::Value,
        after: serde_json::Value,
        reason: Option<String>,
    ) {
        self.audits.push(AuditEvent {
            id: self.svc.ids.ulid(),
            tenant: self.tenant.clone(),
            at: self.svc.clock.now(),
            actor: actor.to_owned(),
            action: action.into(),
            target,
            before,
            after,
            reason,
        });
    }

    /// Writes the incident's group item too, at the version it was read
    /// (its flips counted).
    pub fn with_group(&mut self, group: VersionedGroup) {
        self.group = Some(group);
    }

    /// The unit of work the change's other writes go into, committed in the
    /// same transaction (an item the change creates beside the incident,
    /// such as a suppressed alert's record).
    pub fn also(&mut self) -> &mut Work<'a> {
        &mut self.extra
    }

    /// Moves the incident to state `to`: timestamps, the group key claimed
    /// back or released, a visible state-change entry and an audit event.
    pub async fn transition(
        &mut self,
        to: IncidentState,
        actor: &str,
        reason: Option<String>,
    ) -> Result<(), DomainError> {
        let now = self.svc.clock.now();
        let from = self.incident.state;
        let before_version = self.read_version.unwrap_or(0);
        {
            let inc = self.incident_mut();
            inc.state = to;
            match to {
                IncidentState::Acknowledged => inc.acknowledged_at = Some(now),
                IncidentState::Resolved => inc.resolved_at = Some(now),
                IncidentState::Open => inc.resolved_at = None,
                _ => {}
            }
        }
        // The group key follows the incident: released when it stops being
        // active, claimed back when it becomes active again.
        if from.is_active() != to.is_active() {
            let inc = &self.incident;
            let mut group = match self.group.take() {
                Some(g) => g,
                None => load_group(self.svc, &self.tenant, inc.source, &inc.group_key).await?,
            };
            if to.is_active() {
                match &group.record.open_incident {
                    Some(other) if other != &inc.id => {
                        return Err(DomainError::conflict(
                            "group_key_taken",
                            format!("incident {other} is already open for this alert group; reopen is refused"),
                        ))
                    }
                    _ => group.record.open_incident = Some(inc.id.clone()),
                }
                self.group = Some(group);
            } else if group.record.open_incident.as_ref() == Some(&inc.id) {
                group.record.open_incident = None;
                self.group = Some(group);
            }
        }
        let mut e = self.entry(actor, TimelineKind::StateChanged { from, to });
        e.reason = reason.clone();
        self.show(e);
        let after_version = self.next_version();
        self.audit(
            actor,
            format!("incident.{}", to.as_str()),
            serde_json::json!({"state": from, "version": before_version}),
            serde_json::json!({"state": to, "version": after_version}),
            reason,
        );
        Ok(())
    }

    /// True when the change writes nothing.
    pub fn is_empty(&self) -> bool {
        !self.touched
            && self.group.is_none()
            && self.entries.is_empty()
            && self.audits.is_empty()
            && self.extra.is_empty()
            && self.effects.is_empty()
    }

    /// The unit of work that records the change, the incident exactly as it
    /// stores it.
    fn finish(mut self) -> Result<(Work<'a>, Incident), DomainError> {
        let mut work = Work::new(self.svc);
        if let Some(g) = &self.group {
            let item = keys::item(
                keys::groups_pk(&self.tenant),
                keys::group_sk(g.source, &g.key),
                g.version.map_or(1, |v| v + 1),
                &g.record,
            )?;
            work.put(
                item,
                g.version.map_or(Condition::Absent, Condition::Version),
            );
        }
        if self.touched {
            self.index_writes(&mut work)?;
            let now = self.svc.clock.now();
            self.incident.version = self.next_version();
            self.incident.updated_at = now;
            // Serialised once; only an incident over its budget is fitted
            // and serialised again.
            let mut data = serde_json::to_string(&self.incident)?;
            if data.len() > INCIDENT_BUDGET {
                fit_incident(&mut self.incident, INCIDENT_BUDGET)?;
                data = serde_json::to_string(&self.incident)?;
            }
            let item = Item {
                pk: keys::incidents_pk(&self.tenant),
                sk: self.incident.id.to_string(),
                version: self.incident.version,
                expires_at: None,
                data,
                kind: None,
            };
            work.put(
                item,
                self.read_version
                    .map_or(Condition::Absent, Condition::Version),
            );
        }
        for (e, visible) in &self.entries {
            let item = keys::item(
                keys::incident_pk(&self.tenant, &e.incident_id),
                format!("{}{}", keys::TIMELINE_PREFIX, e.id),
                1,
                e,
            )?;
            work.put(item, Condition::Absent);
            if *visible {
                work.enqueue(&OutboxRecord::new(
                    self.svc.ids.ulid(),
                    self.tenant.clone(),
                    e.clone(),
                ))?;
            }
        }
        for a in &self.audits {
            work.audit_event(a)?;
        }
        for r in &self.effects {
            work.enqueue(r)?;
        }
        work.append(std::mem::replace(&mut self.extra, Work::new(self.svc)));
        Ok((work, self.incident))
    }

    /// Keeps the indexes in step with the incident: its entry in the index of
    /// its state (moved when the state changes), and, when it opens, its
    /// entry in its alert group's history.
    fn index_writes(&self, work: &mut Work<'_>) -> Result<(), DomainError> {
        let inc = &self.incident;
        let entry = |pk: String| keys::item(pk, inc.id.to_string(), 1, &inc.created_at);
        let opening = self.read_version.is_none();
        if opening {
            work.put(
                entry(keys::group_incidents_pk(
                    &self.tenant,
                    inc.source,
                    &inc.group_key,
                ))?,
                Condition::Always,
            );
        }
        if opening || self.read_state != inc.state {
            if !opening {
                work.delete(
                    keys::incidents_by_state_pk(&self.tenant, self.read_state),
                    inc.id.to_string(),
                    Condition::Always,
                );
            }
            work.put(
                entry(keys::incidents_by_state_pk(&self.tenant, inc.state))?,
                Condition::Always,
            );
        }
        Ok(())
    }

    /// Commits the change as one transaction and, when it enqueued outbox
    /// records, wakes the local dispatcher so chat follows within
    /// milliseconds instead of a poll.
    pub async fn commit(self) -> Result<Incident, CommitError> {
        let (work, incident) = self.finish().map_err(CommitError::Domain)?;
        work.commit().await?;
        Ok(incident)
    }
}

/// Holds `inc` under `budget` bytes of JSON: the tracked alerts that were
/// seen longest ago give way first (resolved ones before firing ones) and are
/// counted in `untracked_alerts`. Labels and links are bounded on the way in,
/// so dropping alerts always suffices.
pub fn fit_incident(inc: &mut Incident, budget: usize) -> Result<(), DomainError> {
    let mut size = serde_json::to_vec(inc)?.len();
    if size <= budget {
        return Ok(());
    }
    let mut order: Vec<(bool, DateTime<Utc>, String, usize)> = inc
        .alerts
        .iter()
        .map(|(fp, a)| {
            let bytes = fp.len() + serde_json::to_vec(a).map_or(256, |v| v.len()) + 4;
            (
                a.status != AlertStatus::Resolved,
                a.last_seen,
                fp.clone(),
                bytes,
            )
        })
        .collect();
    order.sort();
    let mut order = order.into_iter();
    loop {
        // Drop by estimate, then measure: the estimate can be off by a few
        // bytes per alert.
        for (_, _, fp, bytes) in order.by_ref() {
            inc.alerts.remove(&fp);
            inc.untracked_alerts += 1;
            inc.alerts_truncated = true;
            size = size.saturating_sub(bytes);
            if size <= budget {
                break;
            }
        }
        size = serde_json::to_vec(inc)?.len();
        if size <= budget {
            return Ok(());
        }
        if inc.alerts.is_empty() {
            return Err(DomainError::Internal(format!(
                "incident {} does not fit its {budget}-byte budget",
                inc.id
            )));
        }
    }
}
