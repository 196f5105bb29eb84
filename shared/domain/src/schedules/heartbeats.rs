//! Heartbeats: dead-man's switches. A job pings its heartbeat's URL when it
//! runs; a heartbeat not pinged by its next expected time plus its grace, or
//! pinged with a failure, raises an alert (source `heartbeat`) through the
//! normal incident flow, and the next success ping resolves it.
//!
//! Pings follow Healthchecks.io's ping URLs (`/ping/{uuid}`, `/start`,
//! `/fail`, `/log`, `/{exit_status}`, `?rid=`), so cron wrappers written for
//! it work by changing the host. The UUID is the secret: the store indexes
//! it by its sha256 only.
//!
//! Every change is one transaction on the heartbeat's item (version
//! condition), its entry in the due index (what the `heartbeats` job reads,
//! ordered by time) and, for a ping, the ping's record. An alert to raise or
//! resolve is first recorded on the heartbeat (`pending`, due at once), then
//! ingested, then cleared: a crash in between leaves it for the next tick,
//! and ingesting the same event again is a redelivery that changes nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{Principal, Role, Severity, SourceKind, TenantId};
use serde::{Deserialize, Serialize};

use crate::auth::{require_role, sha256_hex};
use crate::cadence::{format_secs, span_secs, Schedule};
use crate::due::{Budget, DueRef, JobReport};
use crate::ports::Condition;
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// The due index the `heartbeats` job reads.
pub const JOB: &str = "heartbeats";
/// Bytes of a ping's body kept with it (redacted).
pub const MAX_PING_BODY: usize = 10 * 1024;
/// Days a ping's record is kept.
pub const PING_RETENTION_DAYS: i64 = 30;
/// Open `start` pings remembered for pairing with their finish.
const MAX_OPEN_STARTS: usize = 10;
/// A start older than this is not paired with a finish.
const MAX_RUN_HOURS: i64 = 24;
const MAX_NAME: usize = 200;
const MAX_LABELS: usize = 32;

/// A heartbeat as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub id: String,
    pub tenant: TenantId,
    pub name: String,
    pub schedule: Schedule,
    pub grace_secs: i64,
    pub severity: Severity,
    pub labels: BTreeMap<String, String>,
    /// The secret in the ping URL.
    pub ping_uuid: String,
    pub created_at: DateTime<Utc>,
    pub paused: bool,
    /// Expecting pings: set by the first ping after creation or resume.
    pub armed: bool,
    /// Failed or overdue and not yet recovered.
    pub down: bool,
    /// An alert is raised (firing) for the current outage.
    pub alerting: bool,
    pub last_raised_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_ping: Option<PingSummary>,
    /// `start` pings waiting for their finish.
    #[serde(default)]
    pub starts: Vec<OpenStart>,
    /// An alert change recorded but not yet ingested.
    pub pending: Option<PendingAlert>,
    /// The sort key of this heartbeat's entry in the due index.
    pub due_sk: Option<String>,
    /// Alert events raised so far; makes each event's body unique.
    pub events: u64,
    /// Pings counted in the current minute (the per-check rate limit).
    #[serde(default)]
    pub ping_window: crate::throttle::Window,
    /// The item version it was read at (not stored).
    #[serde(skip)]
    pub version: u64,
}

crate::work::record!(Heartbeat, "heartbeat", keys::heartbeats_pk);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenStart {
    pub rid: Option<String>,
    pub at: DateTime<Utc>,
}

/// The last ping, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingSummary {
    pub at: DateTime<Utc>,
    pub kind: PingKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

/// An alert event to ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAlert {
    pub firing: bool,
    pub at: DateTime<Utc>,
    pub reason: String,
    pub event: u64,
}

/// What a ping says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PingKind {
    Success,
    Start,
    Fail,
    Log,
}

/// A heartbeat's state, derived from what is stored and the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Created or resumed, not pinged since: nothing is expected yet.
    New,
    Up,
    /// Past its expected time, within the grace period.
    Late,
    Down,
    Paused,
}

/// One ping as kept (30 days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    pub id: String,
    pub at: DateTime<Utc>,
    pub kind: PingKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    pub method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The first 10 KB of the body, redacted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
}

impl Heartbeat {
    /// When the next ping is expected, if one is.
    pub fn expected_at(&self) -> Option<DateTime<Utc>> {
        if !self.armed || self.paused || self.down {
            return None;
        }
        self.schedule.next_after(self.last_success_at?)
    }

    /// When it is overdue: the expected time plus the grace period.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.expected_at()
            .map(|t| t + Duration::seconds(self.grace_secs))
    }

    pub fn state(&self, now: DateTime<Utc>) -> State {
        if self.paused {
            return State::Paused;
        }
        if self.down {
            return State::Down;
        }
        match (self.expected_at(), self.deadline()) {
            (Some(_), Some(deadline)) if now >= deadline => State::Down,
            (Some(expected), _) if now >= expected => State::Late,
            (Some(_), _) => State::Up,
            _ => State::New,
        }
    }

    /// When the job must look at it next: a pending alert at once, a
    /// deferred alert (flapping) when it may be raised, else the deadline.
    fn due_at(&self) -> Option<DateTime<Utc>> {
        if let Some(p) = &self.pending {
            return Some(p.at);
        }
        if self.paused {
            return None;
        }
        if self.down {
            return (!self.alerting).then(|| self.may_raise_at());
        }
        self.deadline()
    }

    /// Flapping is re-alerted at most once per period.
    fn may_raise_at(&self) -> DateTime<Utc> {
        match self.last_raised_at {
            Some(t) => t + self.schedule.span_at(t),
            None => DateTime::<Utc>::MIN_UTC,
        }
    }

    /// Marks it down for `reason`, raising an alert unless one is raised or
    /// the last was raised less than a period ago (then the job raises it
    /// when that period ends, if it is still down).
    fn go_down(&mut self, now: DateTime<Utc>, reason: String) {
        self.down = true;
        self.armed = true;
        if self.alerting || now < self.may_raise_at() {
            return;
        }
        self.alerting = true;
        self.last_raised_at = Some(now);
        self.queue_alert(true, now, reason);
    }

    /// Records an alert event to ingest (see [`flush`]).
    fn queue_alert(&mut self, firing: bool, at: DateTime<Utc>, reason: String) {
        self.events += 1;
        self.pending = Some(PendingAlert {
            firing,
            at,
            reason,
            event: self.events,
        });
    }

    fn come_up(&mut self, now: DateTime<Utc>) {
        self.down = false;
        self.armed = true;
        self.last_success_at = Some(now);
        if self.alerting {
            self.alerting = false;
            self.queue_alert(false, now, "a success ping arrived".into());
        }
    }

    /// The alert event, in the plain JSON alert shape.
    fn alert_body(&self, p: &PendingAlert) -> serde_json::Value {
        let mut labels = self.labels.clone();
        labels.insert("heartbeat".into(), self.name.clone());
        let time_key = if p.firing { "starts_at" } else { "ends_at" };
        serde_json::json!({
            "title": format!("Heartbeat {} is down", self.name),
            "status": if p.firing { "firing" } else { "resolved" },
            "severity": self.severity.as_str(),
            "fingerprint": format!("heartbeat:{}", self.id),
            "labels": labels,
            "annotations": {
                "reason": p.reason,
                "heartbeat_id": self.id,
                "event": p.event.to_string(),
            },
            time_key: p.at,
        })
    }
}

/// A heartbeat as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    pub grace: String,
    pub severity: Severity,
    pub labels: BTreeMap<String, String>,
    pub state: State,
    /// The path to ping (`/ping/{uuid}`); the API adds its base URL. The
    /// UUID is the ping's only credential: shown to responders and above,
    /// absent for viewers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_path: Option<String>,
    pub last_ping: Option<PingSummary>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub next_expected_at: Option<DateTime<Utc>>,
    pub next_deadline: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl View {
    /// The view `viewer` may see: the ping path only for a responder or above.
    pub fn of(hb: &Heartbeat, now: DateTime<Utc>, viewer: &Principal) -> Self {
        let (period, cron, tz) = match &hb.schedule {
            Schedule::Period { secs } => (Some(format_secs(*secs)), None, None),
            Schedule::Cron { expr, tz } => (None, Some(expr.clone()), Some(tz.clone())),
        };
        Self {
            id: hb.id.clone(),
            name: hb.name.clone(),
            period,
            cron,
            tz,
            grace: format_secs(hb.grace_secs),
            severity: hb.severity,
            labels: hb.labels.clone(),
            state: hb.state(now),
            ping_path: viewer
                .can(Role::Responder)
                .then(|| format!("/ping/{}", hb.ping_uuid)),
            last_ping: hb.last_ping.clone(),
            last_success_at: hb.last_success_at,
            next_expected_at: hb.expected_at(),
            next_deadline: hb.deadline(),
            created_at: hb.created_at,
        }
    }
}

/// `POST /v1/heartbeats` and `PATCH` (every field optional there).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    pub name: Option<String>,
    pub period: Option<String>,
    pub cron: Option<String>,
    pub tz: Option<String>,
    pub grace: Option<String>,
    pub severity: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
}

fn check_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(DomainError::bad_input(
            "invalid_name",
            format!("name must be 1 to {MAX_NAME} printable characters"),
        ));
    }
    Ok(name.to_owned())
}

fn check_labels(labels: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, DomainError> {
    if labels.len() > MAX_LABELS {
        return Err(DomainError::bad_input(
            "invalid_labels",
            format!("at most {MAX_LABELS} labels"),
        ));
    }
    let mut labels = labels;
    crate::limits::bound_map(&mut labels, crate::limits::MAX_LABEL_VALUE_BYTES);
    crate::redact::redact_map(&mut labels);
    Ok(labels)
}

fn check_severity(s: &str) -> Result<Severity, DomainError> {
    Severity::parse(s).ok_or_else(|| {
        DomainError::bad_input(
            "invalid_severity",
            "severity must be sev1, sev2, sev3 or sev4",
        )
    })
}

/// Saves `hb` with `work` over the version it was read at, its due entry
/// moved from `before` to where it needs it (setting `hb.due_sk`).
fn save(work: &mut Work<'_>, hb: &mut Heartbeat, before: Option<&str>) -> Result<(), DomainError> {
    hb.due_sk = crate::due::move_due(JOB, &hb.tenant, &hb.id, before, hb.due_at(), work)?;
    let tenant = hb.tenant.clone();
    work.save(&tenant, hb)
}

/// Creates a heartbeat (admin).
pub async fn create(svc: &Services, p: &Principal, f: Fields) -> Result<Heartbeat, DomainError> {
    require_role(p, Role::Admin, "create heartbeats")?;
    let name = check_name(f.name.as_deref().unwrap_or_default())?;
    let schedule = Schedule::from_fields(f.period.as_deref(), f.cron.as_deref(), f.tz.as_deref())?;
    let grace_secs = match &f.grace {
        Some(g) => span_secs("grace", g)?,
        None => 60,
    };
    let severity = check_severity(f.severity.as_deref().unwrap_or("sev2"))?;
    let labels = check_labels(f.labels.unwrap_or_default())?;
    let now = svc.clock.now();
    let mut hb = Heartbeat {
        id: format!("hb_{}", svc.ids.ulid().to_ascii_lowercase()),
        tenant: p.tenant.clone(),
        name,
        schedule,
        grace_secs,
        severity,
        labels,
        ping_uuid: uuid::Uuid::new_v4().to_string(),
        created_at: now,
        paused: false,
        armed: false,
        down: false,
        alerting: false,
        last_raised_at: None,
        last_success_at: None,
        last_ping: None,
        starts: Vec::new(),
        pending: None,
        due_sk: None,
        events: 0,
        ping_window: Default::default(),
        version: 0,
    };
    let index = PingIndex {
        tenant: hb.tenant.clone(),
        id: hb.id.clone(),
    };
    let mut work = Work::new(svc);
    work.save(&p.tenant, &mut hb)?;
    work.put(
        keys::item(
            keys::PING_INDEX_PK.into(),
            sha256_hex(hb.ping_uuid.as_bytes()),
            1,
            &index,
        )?,
        Condition::Absent,
    );
    work.audit(
        &p.tenant,
        &p.name,
        "heartbeat.create",
        &hb.id,
        serde_json::Value::Null,
        serde_json::json!({"name": hb.name}),
    )?;
    work.commit().await?;
    Ok(hb)
}

#[derive(Serialize, Deserialize)]
struct PingIndex {
    tenant: TenantId,
    id: String,
}

fn not_found(_id: &str) -> DomainError {
    DomainError::NotFound("no heartbeat has this id".into())
}

/// One heartbeat (viewer) with its most recent pings, newest first.
pub async fn get(
    svc: &Services,
    p: &Principal,
    id: &str,
    pings: usize,
) -> Result<(Heartbeat, Vec<Ping>), DomainError> {
    require_role(p, Role::Viewer, "read heartbeats")?;
    let hb = crate::work::find::<Heartbeat>(svc, &p.tenant, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let (pings, _) = crate::due::page_of(
        svc,
        keys::heartbeat_pk(&p.tenant, &hb.id),
        keys::PING_PREFIX,
        None,
        pings.clamp(1, 100),
        true,
    )
    .await?;
    Ok((hb, pings))
}

/// A page of the tenant's heartbeats (viewer), in creation order.
pub async fn list(
    svc: &Services,
    p: &Principal,
    after: Option<String>,
    limit: usize,
) -> Result<(Vec<Heartbeat>, Option<String>), DomainError> {
    require_role(p, Role::Viewer, "list heartbeats")?;
    crate::due::page_of(
        svc,
        keys::heartbeats_pk(&p.tenant),
        "hb_",
        after,
        limit.clamp(1, 200),
        false,
    )
    .await
}

/// What an admin does to a heartbeat.
pub enum Edit {
    Update(Fields),
    Pause,
    Resume,
}

/// Changes a heartbeat (admin): fields, pause, resume. Pausing resolves an
/// alert it raised; resuming waits for the next ping like a new heartbeat.
pub async fn edit(
    svc: &Services,
    p: &Principal,
    id: &str,
    edit: Edit,
) -> Result<Heartbeat, DomainError> {
    require_role(p, Role::Admin, "change heartbeats")?;
    crate::retry::until_won!(
        crate::retry::BUSY,
        || DomainError::Unavailable("the heartbeat kept changing; try again".into()),
        async || -> Result<_, crate::retry::Retry> {
            let mut hb = crate::work::find::<Heartbeat>(svc, &p.tenant, id)
                .await?
                .ok_or_else(|| not_found(id))?;
            let before_due = hb.due_sk.clone();
            let now = svc.clock.now();
            let action = match &edit {
                Edit::Update(f) => {
                    if let Some(n) = &f.name {
                        hb.name = check_name(n)?;
                    }
                    if f.period.is_some() || f.cron.is_some() {
                        hb.schedule = Schedule::from_fields(
                            f.period.as_deref(),
                            f.cron.as_deref(),
                            f.tz.as_deref(),
                        )?;
                    } else if let (Some(tz), Schedule::Cron { expr, .. }) = (&f.tz, &hb.schedule) {
                        hb.schedule = Schedule::from_fields(None, Some(expr), Some(tz))?;
                    } else if f.tz.is_some() {
                        return Err(DomainError::bad_input(
                            "invalid_schedule",
                            "tz applies to cron schedules only",
                        )
                        .into());
                    }
                    if let Some(g) = &f.grace {
                        hb.grace_secs = span_secs("grace", g)?;
                    }
                    if let Some(s) = &f.severity {
                        hb.severity = check_severity(s)?;
                    }
                    if let Some(l) = &f.labels {
                        hb.labels = check_labels(l.clone())?;
                    }
                    "heartbeat.update"
                }
                Edit::Pause => {
                    hb.paused = true;
                    if hb.alerting {
                        hb.alerting = false;
                        hb.queue_alert(false, now, "the heartbeat was paused".into());
                    }
                    hb.down = false;
                    "heartbeat.pause"
                }
                Edit::Resume => {
                    hb.paused = false;
                    hb.armed = false;
                    hb.down = false;
                    "heartbeat.resume"
                }
            };
            let mut work = Work::new(svc);
            save(&mut work, &mut hb, before_due.as_deref())?;
            work.audit(
                &p.tenant,
                &p.name,
                action,
                &hb.id,
                serde_json::Value::Null,
                serde_json::json!({"name": hb.name, "paused": hb.paused}),
            )?;
            work.commit()
                .await
                .map_err(crate::retry::Retry::from_commit)?;
            Ok(flush(svc, hb).await)
        },
    )
    .await
}

/// Deletes a heartbeat (admin): its ping URL stops working at once. An
/// alert it raised stays open until someone resolves it.
pub async fn delete(svc: &Services, p: &Principal, id: &str) -> Result<(), DomainError> {
    require_role(p, Role::Admin, "delete heartbeats")?;
    let hb = crate::work::find::<Heartbeat>(svc, &p.tenant, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let mut work = Work::new(svc);
    work.delete(
        keys::heartbeats_pk(&p.tenant),
        hb.id.clone(),
        Condition::Version(hb.version),
    );
    work.delete(
        keys::PING_INDEX_PK,
        sha256_hex(hb.ping_uuid.as_bytes()),
        Condition::Always,
    );
    work.audit(
        &p.tenant,
        &p.name,
        "heartbeat.delete",
        &hb.id,
        serde_json::json!({"name": hb.name}),
        serde_json::Value::Null,
    )?;
    if let Some(sk) = &hb.due_sk {
        work.delete(keys::due_pk(JOB), sk.clone(), Condition::Always);
    }
    match work.commit().await {
        Ok(()) => Ok(()),
        Err(e) if e.is_lost_race() => Err(DomainError::conflict(
            "changed",
            "the heartbeat changed while being deleted; try again",
        )),
        Err(e) => Err(e.into()),
    }
}

/// A ping as received.
pub struct Received<'a> {
    pub uuid: &'a str,
    /// `None`: the kind comes from `exit_status`.
    pub kind: PingKind,
    pub exit_status: Option<u8>,
    pub rid: Option<&'a str>,
    pub method: &'a str,
    pub user_agent: Option<&'a str>,
    pub body: &'a [u8],
}

/// Records a ping. `Ok(false)`: no heartbeat has this UUID (after the same
/// reads as for one that has).
pub async fn ping(svc: &Services, r: Received<'_>) -> Result<bool, DomainError> {
    if let Some(rid) = r.rid {
        if uuid::Uuid::parse_str(rid).is_err() {
            return Err(DomainError::bad_input("invalid_rid", "rid must be a UUID"));
        }
    }
    let key = sha256_hex(r.uuid.as_bytes());
    let index = svc.store.get(keys::PING_INDEX_PK, &key).await?;
    let Some(index) = index else {
        // The same second read a known UUID costs, so an unknown one is not
        // told apart by its answer time.
        svc.store
            .get(&keys::heartbeats_pk(&TenantId::default_tenant()), "hb_")
            .await?;
        return Ok(false);
    };
    let index: PingIndex = keys::decode(&index)?;
    let mut body = String::from_utf8_lossy(&r.body[..r.body.len().min(MAX_PING_BODY)]).into_owned();
    crate::redact::redact_in_place(&mut body);
    crate::retry::until_won!(
        crate::retry::BUSY,
        || DomainError::Unavailable("the heartbeat kept changing; try again".into()),
        async || -> Result<_, crate::retry::Retry> {
            let Some(mut hb) =
                crate::work::find::<Heartbeat>(svc, &index.tenant, &index.id).await?
            else {
                return Ok(false);
            };
            if hb.ping_uuid != r.uuid {
                return Ok(false);
            }
            let now = svc.clock.now();
            // A flood of pings to one check is refused before it writes.
            hb.ping_window =
                hb.ping_window
                    .take(now, svc.settings.rate_limits.pings, "pings of this check")?;
            let before_due = hb.due_sk.clone();
            // Pairing a finish with its start: by rid, else the latest start
            // sent without one.
            hb.starts
                .retain(|s| now - s.at < Duration::hours(MAX_RUN_HOURS));
            let mut duration_ms = None;
            if matches!(r.kind, PingKind::Success | PingKind::Fail) {
                let rid = r.rid.map(str::to_owned);
                if let Some(i) = hb.starts.iter().rposition(|s| s.rid == rid) {
                    duration_ms = Some((now - hb.starts.remove(i).at).num_milliseconds());
                }
            }
            match r.kind {
                PingKind::Start => {
                    hb.starts.push(OpenStart {
                        rid: r.rid.map(str::to_owned),
                        at: now,
                    });
                    if hb.starts.len() > MAX_OPEN_STARTS {
                        hb.starts.remove(0);
                    }
                }
                PingKind::Success => {
                    hb.paused = false;
                    hb.come_up(now);
                }
                PingKind::Fail => {
                    hb.paused = false;
                    let reason = match r.exit_status {
                        Some(code) => format!("the job exited with status {code}"),
                        None => "the job reported a failure".into(),
                    };
                    hb.go_down(now, reason);
                }
                PingKind::Log => {}
            }
            let summary = PingSummary {
                at: now,
                kind: r.kind,
                exit_status: r.exit_status,
                duration_ms,
            };
            if r.kind != PingKind::Log {
                hb.last_ping = Some(summary);
            }
            let record = Ping {
                id: svc.ids.ulid(),
                at: now,
                kind: r.kind,
                exit_status: r.exit_status,
                rid: r.rid.map(str::to_owned),
                duration_ms,
                method: r.method.to_owned(),
                user_agent: r.user_agent.map(|u| crate::limits::truncate(u, 256)),
                body: body.clone(),
            };
            let mut ping_item = keys::item(
                keys::heartbeat_pk(&hb.tenant, &hb.id),
                format!("{}{}", keys::PING_PREFIX, record.id),
                1,
                &record,
            )?;
            ping_item.expires_at = Some((now + Duration::days(PING_RETENTION_DAYS)).timestamp());
            let mut work = Work::new(svc);
            work.put(ping_item, Condition::Absent);
            save(&mut work, &mut hb, before_due.as_deref())?;
            work.commit()
                .await
                .map_err(crate::retry::Retry::from_commit)?;
            flush(svc, hb).await;
            Ok(true)
        },
    )
    .await
}

/// Ingests a pending alert event and clears it. A failure leaves it
/// pending (and due) for the next tick; it is logged, not returned, because
/// what asked for it (a ping, an edit) has been recorded.
async fn flush(svc: &Services, mut hb: Heartbeat) -> Heartbeat {
    let Some(pending) = hb.pending.clone() else {
        return hb;
    };
    let ingested = crate::ingest::ingest_alert(
        svc,
        &hb.tenant,
        SourceKind::Heartbeat,
        format!("heartbeat:{}", hb.name),
        &hb.alert_body(&pending),
    )
    .await;
    if let Err(e) = ingested {
        tracing::warn!(heartbeat = %hb.id, error = %e, "heartbeat alert not ingested; the next tick retries");
        return hb;
    }
    let mut tries = crate::retry::Tries::new(crate::retry::BUSY);
    while tries.next().await {
        if hb.pending.as_ref().map(|p| p.event) != Some(pending.event) {
            return hb;
        }
        let before_due = hb.due_sk.clone();
        hb.pending = None;
        let mut work = Work::new(svc);
        if save(&mut work, &mut hb, before_due.as_deref()).is_err() {
            return hb;
        }
        match work.commit().await {
            Ok(()) => return hb,
            Err(e) if e.is_lost_race() => {
                match crate::work::find::<Heartbeat>(svc, &hb.tenant, &hb.id).await {
                    Ok(Some(fresh)) => hb = fresh,
                    _ => return hb,
                }
            }
            Err(e) => {
                tracing::warn!(heartbeat = %hb.id, error = %e, "heartbeat not updated; the next tick retries");
                return hb;
            }
        }
    }
    hb
}

/// The `heartbeats` job: every heartbeat whose due time has come, oldest
/// first, until the budget runs out (the rest stay due for the next tick).
pub async fn run_due(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    crate::recording::scope("job:heartbeats", run_due_scoped(svc, budget)).await
}

async fn run_due_scoped(svc: &Services, budget: &Budget) -> Result<JobReport, DomainError> {
    crate::due::run_due_index(svc, JOB, budget, |due, sk| {
        let svc = svc.clone();
        async move { check_one(&svc, &due, &sk).await }
    })
    .await
}

/// Looks at one due heartbeat: ingests a pending event, raises an overdue
/// or deferred alert. Returns whether an alert event was ingested.
async fn check_one(svc: &Services, due: &DueRef, sk: &str) -> Result<bool, DomainError> {
    crate::retry::until_won!(
        crate::retry::BUSY,
        || DomainError::Unavailable("the heartbeat kept changing".into()),
        async || -> Result<_, crate::retry::Retry> {
            // An entry left behind by a write that did not finish, or by a
            // heartbeat since deleted, is dropped.
            let loaded = crate::work::find::<Heartbeat>(svc, &due.tenant, &due.id).await?;
            let Some(mut hb) =
                crate::due::current(svc, JOB, sk, loaded, |hb| hb.due_sk.as_deref()).await?
            else {
                return Ok(false);
            };
            let now = svc.clock.now();
            if hb.pending.is_some() {
                let before = hb.pending.clone();
                let after = flush(svc, hb).await;
                return Ok(after.pending != before);
            }
            let before_due = hb.due_sk.clone();
            if !hb.down {
                match hb.deadline() {
                    Some(deadline) if now >= deadline => {
                        let late =
                            format_secs((now - deadline).num_seconds().max(0) + hb.grace_secs);
                        hb.go_down(now, format!("no ping for {late} past its expected time"));
                    }
                    _ => {}
                }
            } else if !hb.alerting && now >= hb.may_raise_at() {
                hb.go_down(now, "still down after a period without a new alert".into());
            }
            let mut work = Work::new(svc);
            save(&mut work, &mut hb, before_due.as_deref())?;
            work.commit()
                .await
                .map_err(crate::retry::Retry::from_commit)?;
            let raised = hb.pending.is_some();
            let after = flush(svc, hb).await;
            Ok(raised && after.pending.is_none())
        },
    )
    .await
}
