//! Silences (maintenance windows): label matchers with a start and an end.
//!
//! A firing alert that an active silence matches opens no incident and
//! notifies no one: it is recorded under the silence (counted, with its
//! last status) and on the source dossier. If it joins an incident that is
//! already open (a silence made from its card), the occurrence goes on the
//! timeline without a thread message. Resolves always pass. When a silence
//! ends, each alert it held that is still firing goes through the normal
//! incident flow then (unless another active silence holds it), so nothing a
//! silence hid is lost. A silence made for an incident posts in its thread
//! when made, ten minutes before it ends and when it ends.
//!
//! The `silences` scheduler job drives the ends through a due index; each
//! step commits under the silence's version with its thread message, so a
//! retried tick sends nothing twice. Alertmanager's API v2 shapes are in
//! [`alertmanager`]. See docs/SILENCES.md.

pub mod alertmanager;
pub mod matchers;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{
    Alert, AlertStatus, Incident, IncidentId, Principal, Role, TenantId, TimelineKind,
};
use serde::{Deserialize, Serialize};

use crate::auth::require_role;
use crate::change::Change;
pub(crate) use crate::keys::silence_held_pk as held_pk;
use crate::keys::silences_pk;
use crate::ports::{Condition, Query};
use crate::work::{CommitError, Work};
use crate::{keys, DomainError, Services};
use matchers::Compiled;
pub use matchers::Matcher;

/// The scheduler job that warns before and acts at each silence's end.
pub const JOB: &str = "silences";
/// How long before its end a silence made for an incident says so in the
/// thread.
pub const WARN_BEFORE: Duration = Duration::minutes(10);
/// How long an expired silence stays listed (Alertmanager's default
/// retention is 120 h).
pub const RETENTION: Duration = Duration::days(5);
/// Silences (of any state) one tenant may hold.
pub const MAX_SILENCES: usize = 1000;
/// Longest comment and `createdBy`, in bytes.
pub const MAX_COMMENT_BYTES: usize = 1024;
pub const MAX_CREATED_BY_BYTES: usize = 256;
/// Alerts one silence records (the first ones; later ones are silenced but
/// only counted as `overflow`).
pub const MAX_RECORDED_ALERTS: usize = 1000;

/// A silence's state at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Active,
    Expired,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Active, Self::Expired]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// A UUID, as Alertmanager's clients expect.
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    pub updated_at: DateTime<Utc>,
    /// The incident whose thread hears about this silence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentId>,
    /// The ten-minute warning was sent (or is not due: made shorter).
    #[serde(default)]
    pub warned: bool,
    /// Its end was handled: held alerts released, the thread told.
    #[serde(default)]
    pub closed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_sk: Option<String>,
    #[serde(skip)]
    pub version: u64,
}

impl Silence {
    pub fn state(&self, now: DateTime<Utc>) -> State {
        if now >= self.ends_at {
            State::Expired
        } else if now < self.starts_at {
            State::Pending
        } else {
            State::Active
        }
    }

    /// The matchers as one `{a="b", c=~"d"}` selector.
    pub fn selector(&self) -> String {
        let parts: Vec<String> = self.matchers.iter().map(ToString::to_string).collect();
        format!("{{{}}}", parts.join(", "))
    }

    fn next_due(&self) -> Option<DateTime<Utc>> {
        match (self.closed, self.warned) {
            (true, _) => None,
            (false, false) => Some(self.ends_at - WARN_BEFORE),
            (false, true) => Some(self.ends_at),
        }
    }
}

/// An alert a silence held: the latest the provider said of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub silence_id: String,
    pub alert: Alert,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Notifications of it while silenced.
    pub seen: u64,
    /// The incident it joined, when one was already open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentId>,
    /// Released through the incident flow when the silence ended.
    #[serde(default)]
    pub released: bool,
}

fn held_sk(silence: &str, fingerprint: &str) -> String {
    format!("{silence}#{fingerprint}")
}

/// The labels matchers see for an alert: its labels, with `alertname` (its
/// title), `severity` and `source` added when the provider sent none.
pub fn visible_labels(
    labels: &BTreeMap<String, String>,
    title: &str,
    severity: firewatch_types::Severity,
    source: firewatch_types::SourceKind,
) -> BTreeMap<String, String> {
    let mut l = labels.clone();
    l.entry("alertname".into())
        .or_insert_with(|| title.to_owned());
    l.entry("severity".into())
        .or_insert_with(|| severity.to_string());
    l.entry("source".into())
        .or_insert_with(|| source.as_str().to_owned());
    l
}

fn alert_labels(a: &Alert) -> BTreeMap<String, String> {
    visible_labels(&a.labels, &a.title, a.severity, a.source)
}

/// A silence id in UUID form, from a fresh ULID (128 bits either way).
fn new_id(svc: &Services) -> String {
    let n = ulid::Ulid::from_string(&svc.ids.ulid())
        .map(u128::from)
        .unwrap_or_default();
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn check_id(id: &str) -> Result<(), DomainError> {
    let ok = id.len() == 36
        && id.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if ok {
        Ok(())
    } else {
        Err(DomainError::NotFound(format!(
            "no silence {:?}",
            crate::limits::truncate(id, 40)
        )))
    }
}

// Kept [`RETENTION`] past its end.
crate::work::record!(Silence, "silence", silences_pk, expires_at: |s: &Silence| {
    Some((s.ends_at + RETENTION).timestamp())
});

fn decode(item: &crate::ports::Item) -> Result<Silence, DomainError> {
    crate::work::decode(item)
}

/// One silence of `tenant`, with its version.
pub(crate) async fn load(
    svc: &Services,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<Silence>, DomainError> {
    check_id(id)?;
    crate::work::find(svc, tenant, id).await
}

/// The tenant's newest [`MAX_SILENCES`] silences (ids grow with time).
async fn all(svc: &Services, tenant: &TenantId) -> Result<Vec<Silence>, DomainError> {
    let page = svc
        .store
        .query(Query {
            pk: silences_pk(tenant),
            sk_prefix: String::new(),
            after: None,
            limit: MAX_SILENCES,
            descending: true,
        })
        .await?;
    page.items.iter().map(decode).collect()
}

/// The unit of work that stores `s` over the version it was read at (its
/// due entry moved); `s` then carries the version it is written at.
pub(crate) fn put_work<'a>(
    svc: &'a Services,
    s: &mut Silence,
    tenant: &TenantId,
) -> Result<Work<'a>, DomainError> {
    let mut work = Work::new(svc);
    let before = s.due_sk.take();
    s.due_sk = crate::due::move_due(
        JOB,
        tenant,
        &s.id,
        before.as_deref(),
        s.next_due(),
        &mut work,
    )?;
    work.save(tenant, s)?;
    Ok(work)
}

/// How long a process trusts the silences it read: a silence made or
/// expired in this process applies at once; one made in another process
/// (another Lambda) within this.
pub const CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Silences not yet expired, compiled.
type CompiledSet = Arc<Vec<(Silence, Compiled)>>;

/// Each tenant's live (pending or active) silences, compiled, as this
/// process last read them.
#[derive(Default)]
pub struct Cache(Mutex<HashMap<TenantId, (std::time::Instant, CompiledSet)>>);

impl Cache {
    fn fresh(&self, tenant: &TenantId) -> Option<CompiledSet> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(tenant)
            .filter(|(at, _)| at.elapsed() < CACHE_FOR)
            .map(|(_, set)| set.clone())
    }

    fn keep(&self, tenant: &TenantId, set: CompiledSet) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(tenant.clone(), (std::time::Instant::now(), set));
    }

    /// Forgets a tenant's silences after this process changed one.
    pub fn forget(&self, tenant: &TenantId) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
    }
}

/// The silences of a tenant that may hold alerts, compiled: what ingest
/// checks each alert against (which are active is decided at each check).
#[derive(Default)]
pub struct Active {
    each: CompiledSet,
    now: DateTime<Utc>,
}

impl Active {
    /// The tenant's live silences: from this process's cache when it read
    /// them within [`CACHE_FOR`], else from the store.
    pub async fn load(svc: &Services, tenant: &TenantId) -> Result<Self, DomainError> {
        let now = svc.clock.now();
        if let Some(each) = svc.memos.get::<Cache>().fresh(tenant) {
            return Ok(Self { each, now });
        }
        let mut each = Vec::new();
        for s in all(svc, tenant).await? {
            if s.state(now) != State::Expired {
                match Compiled::new(&s.matchers) {
                    Ok(c) => each.push((s, c)),
                    Err(e) => {
                        tracing::warn!(silence = %s.id, error = %e, "silence does not compile")
                    }
                }
            }
        }
        let each = Arc::new(each);
        svc.memos.get::<Cache>().keep(tenant, each.clone());
        Ok(Self { each, now })
    }

    /// True when no silence is active now.
    pub fn is_empty(&self) -> bool {
        !self
            .each
            .iter()
            .any(|(s, _)| s.state(self.now) == State::Active)
    }

    /// The active silence that holds `alert`: of those matching it, the one
    /// that ends last.
    pub fn holding(&self, alert: &Alert) -> Option<&Silence> {
        if self.each.is_empty() {
            return None;
        }
        let labels = alert_labels(alert);
        self.each
            .iter()
            .filter(|(s, _)| s.state(self.now) == State::Active)
            .filter(|(_, c)| c.matches(&labels))
            .map(|(s, _)| s)
            .max_by_key(|s| (s.ends_at, s.id.clone()))
    }
}

/// Records with `work` that `alert` is held by `silence` (its latest status;
/// `incident` when it joined one).
pub async fn hold(
    svc: &Services,
    tenant: &TenantId,
    silence: &Silence,
    alert: &Alert,
    incident: Option<&IncidentId>,
    work: &mut Work<'_>,
) -> Result<(), DomainError> {
    let now = svc.clock.now();
    let sk = held_sk(&silence.id, &alert.fingerprint);
    let before: Option<Held> = match svc.store.get(&held_pk(tenant), &sk).await? {
        Some(i) => Some(keys::decode(&i)?),
        None => None,
    };
    if before.is_none() && alert.status != AlertStatus::Firing {
        // A resolve for an alert this silence never held: nothing to keep.
        return Ok(());
    }
    let held = Held {
        silence_id: silence.id.clone(),
        alert: alert.clone(),
        first_seen: before.as_ref().map_or(now, |b| b.first_seen),
        last_seen: now,
        seen: before.as_ref().map_or(0, |b| b.seen) + 1,
        incident: incident
            .cloned()
            .or_else(|| before.and_then(|b| b.incident)),
        released: false,
    };
    let mut item = keys::item(held_pk(tenant), sk, 1, &held)?;
    item.expires_at = Some((silence.ends_at + RETENTION).timestamp());
    work.put(item, Condition::Always);
    Ok(())
}

/// What a new silence says.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// Updates this silence instead (Alertmanager's `POST` with an `id`).
    #[serde(default)]
    pub id: Option<String>,
    /// Objects (`{"name", "value", "isRegex", "isEqual"}`) or expressions
    /// (`"env=~prod|stage"`).
    #[serde(deserialize_with = "matchers::objects_or_expressions")]
    pub matchers: Vec<Matcher>,
    /// Default: now.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: DateTime<Utc>,
    /// Default: the caller's name.
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub comment: String,
    /// The incident whose thread hears about it.
    #[serde(default)]
    pub incident: Option<IncidentId>,
}

/// A silence as the API shows it: with its state and what it held, and
/// without the job's bookkeeping (its due entry, whether its warning went
/// out and its end was handled).
#[derive(Debug, Clone)]
pub struct View {
    pub silence: Silence,
    pub state: State,
    /// Distinct alerts it held (recorded, up to [`MAX_RECORDED_ALERTS`]).
    pub matched_alerts: usize,
    /// Of those, still firing at the last word from their provider.
    pub firing_alerts: usize,
    /// Notifications it kept quiet.
    pub silenced_notifications: u64,
    /// True for a silence that matched nothing in its lifetime, or one still
    /// active whose alerts have all resolved.
    pub stale: bool,
}

impl Serialize for View {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            id: &'a str,
            matchers: &'a [Matcher],
            starts_at: DateTime<Utc>,
            ends_at: DateTime<Utc>,
            created_by: &'a str,
            comment: &'a str,
            updated_at: DateTime<Utc>,
            #[serde(skip_serializing_if = "Option::is_none")]
            incident: Option<&'a IncidentId>,
            state: State,
            matched_alerts: usize,
            firing_alerts: usize,
            silenced_notifications: u64,
            stale: bool,
        }
        let x = &self.silence;
        Shown {
            id: &x.id,
            matchers: &x.matchers,
            starts_at: x.starts_at,
            ends_at: x.ends_at,
            created_by: &x.created_by,
            comment: &x.comment,
            updated_at: x.updated_at,
            incident: x.incident.as_ref(),
            state: self.state,
            matched_alerts: self.matched_alerts,
            firing_alerts: self.firing_alerts,
            silenced_notifications: self.silenced_notifications,
            stale: self.stale,
        }
        .serialize(s)
    }
}

fn check_new(n: &NewSilence, now: DateTime<Utc>) -> Result<(), DomainError> {
    let bad = |m: &str| DomainError::bad_input("invalid_silence", m.to_owned());
    matchers::check_list(&n.matchers)?;
    let starts = n.starts_at.unwrap_or(now);
    if n.ends_at <= starts {
        return Err(bad("start time must be before end time"));
    }
    if n.ends_at <= now {
        return Err(bad("end time can't be in the past"));
    }
    if n.ends_at - now > Duration::days(366) {
        return Err(bad("a silence ends within a year"));
    }
    if n.comment.len() > MAX_COMMENT_BYTES {
        return Err(bad("comment is over 1024 bytes"));
    }
    if n.created_by
        .as_ref()
        .is_some_and(|c| c.len() > MAX_CREATED_BY_BYTES)
    {
        return Err(bad("createdBy is over 256 bytes"));
    }
    Ok(())
}

/// Creates a silence (or updates one: `id`), for responders. Alertmanager's
/// rules: a start before the end, an end in the future; updating an expired
/// silence creates a new one.
pub async fn create(svc: &Services, p: &Principal, n: NewSilence) -> Result<Silence, DomainError> {
    require_role(p, Role::Responder, "create silences")?;
    let now = svc.clock.now();
    check_new(&n, now)?;
    let tenant = &p.tenant;
    let existing = match &n.id {
        Some(id) => Some(
            load(svc, tenant, id)
                .await?
                .ok_or_else(|| DomainError::NotFound(format!("no silence {id}")))?,
        ),
        None => None,
    };
    if let Some(inc) = &n.incident {
        crate::incidents::get(svc, tenant, inc).await?;
    }
    crate::throttle::take(svc, tenant, crate::throttle::Action::Silence).await?;
    let mut s = match existing {
        Some(old) if old.state(now) != State::Expired => Silence {
            matchers: n.matchers,
            starts_at: n
                .starts_at
                .unwrap_or(old.starts_at)
                .max(old.starts_at.min(now)),
            ends_at: n.ends_at,
            created_by: n.created_by.unwrap_or_else(|| p.name.clone()),
            comment: n.comment,
            updated_at: now,
            incident: n.incident.or(old.incident.clone()),
            warned: false,
            closed: false,
            ..old
        },
        _ => {
            let live = all(svc, tenant)
                .await?
                .iter()
                .filter(|s| s.state(now) != State::Expired)
                .count();
            if live >= MAX_SILENCES / 2 {
                return Err(DomainError::Conflict {
                    code: "too_many_silences",
                    message: format!(
                        "this tenant has {live} active or pending silences; expire some first"
                    ),
                });
            }
            Silence {
                id: new_id(svc),
                matchers: n.matchers,
                starts_at: n.starts_at.unwrap_or(now),
                ends_at: n.ends_at,
                created_by: n.created_by.unwrap_or_else(|| p.name.clone()),
                comment: n.comment,
                updated_at: now,
                incident: n.incident,
                warned: false,
                closed: false,
                due_sk: None,
                version: 0,
            }
        }
    };
    // Too short to warn ten minutes ahead: it only says when it ends.
    s.warned = s.ends_at - WARN_BEFORE <= now.max(s.starts_at);
    let action = if s.version == 0 {
        "silence.create"
    } else {
        "silence.update"
    };
    let work = put_work(svc, &mut s, tenant)?;
    let done = commit_with_thread(svc, tenant, &s, work, &p.name, "created", Some(action)).await;
    svc.memos.get::<Cache>().forget(tenant);
    done?;
    Ok(s)
}

/// Commits a silence's writes, with an entry in its incident's thread when
/// it has one (one transaction: the message is sent once or not at all).
pub(crate) async fn commit_with_thread(
    svc: &Services,
    tenant: &TenantId,
    s: &Silence,
    work: Work<'_>,
    actor: &str,
    what: &str,
    audit: Option<&str>,
) -> Result<(), DomainError> {
    let entry_for = |change: &Change<'_>| {
        let mut e = change.entry(
            actor,
            TimelineKind::Silence {
                silence_id: s.id.clone(),
                state: what.into(),
                until: s.ends_at,
                matchers: s.selector(),
            },
        );
        e.reason = (!s.comment.is_empty()).then(|| crate::limits::truncate(&s.comment, 200));
        e
    };
    let Some(inc_id) = &s.incident else {
        let mut work = work;
        if let Some(action) = audit {
            work.audit(
                tenant,
                actor,
                action,
                &format!("silence/{}", s.id),
                serde_json::Value::Null,
                serde_json::json!({"matchers": s.selector(), "ends_at": s.ends_at}),
            )?;
        }
        return map_commit(work.commit().await);
    };
    crate::retry::until_won!(
        crate::retry::ATTEMPTS,
        || DomainError::Unavailable("the incident kept changing; retry".into()),
        async || -> Result<_, crate::retry::Retry> {
            let inc: Incident = crate::incidents::get(svc, tenant, inc_id).await?;
            let mut change = Change::to(svc, inc);
            let e = entry_for(&change);
            change.show(e);
            if let Some(action) = audit {
                change.audit_target(
                    actor,
                    action,
                    format!("silence/{}", s.id),
                    serde_json::Value::Null,
                    serde_json::json!({"matchers": s.selector(), "ends_at": s.ends_at}),
                    None,
                );
            }
            change.also().append(work.clone());
            match change.commit().await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_lost_race() && !silence_write_failed(svc, tenant, s).await? => {
                    Err(crate::retry::Retry::Lost)
                }
                Err(e) if e.is_lost_race() => {
                    return Err(DomainError::conflict(
                        "silence_changed",
                        "the silence changed meanwhile; read it again",
                    )
                    .into())
                }
                Err(e) => return Err(e.into()),
            }
        },
    )
    .await
}

/// After a lost race: true when the silence itself is what changed (its
/// stored version is not the one `s`, as saved, was read at).
async fn silence_write_failed(
    svc: &Services,
    tenant: &TenantId,
    s: &Silence,
) -> Result<bool, DomainError> {
    let now = svc.store.get(&silences_pk(tenant), &s.id).await?;
    let read = s.version.saturating_sub(1);
    Ok(now.map(|i| i.version) != (read > 0).then_some(read))
}

fn map_commit(r: Result<(), CommitError>) -> Result<(), DomainError> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.is_lost_race() => Err(DomainError::conflict(
            "silence_changed",
            "the silence changed meanwhile; read it again",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Silences one incident for `for_`, with equality matchers on its labels
/// (or its title, when it has none): the card's button and `/fw silence
/// <id>`.
pub async fn silence_incident(
    svc: &Services,
    p: &Principal,
    id: &IncidentId,
    for_: Duration,
    comment: Option<String>,
) -> Result<Silence, DomainError> {
    require_role(p, Role::Responder, "create silences")?;
    let inc = crate::incidents::get(svc, &p.tenant, id).await?;
    let mut ms: Vec<Matcher> = inc
        .labels
        .iter()
        .filter(|(k, v)| !v.is_empty() && matchers::is_label_name(k))
        .take(matchers::MAX_MATCHERS)
        .map(|(k, v)| Matcher {
            name: k.clone(),
            value: crate::limits::truncate(v, matchers::MAX_MATCHER_BYTES),
            is_regex: false,
            is_equal: true,
        })
        .collect();
    if ms.is_empty() {
        ms.push(Matcher {
            name: "alertname".into(),
            value: crate::limits::truncate(&inc.title, matchers::MAX_MATCHER_BYTES),
            is_regex: false,
            is_equal: true,
        });
    }
    let now = svc.clock.now();
    create(
        svc,
        p,
        NewSilence {
            matchers: ms,
            ends_at: now + for_,
            comment: comment.unwrap_or_else(|| format!("silenced from incident {id}")),
            incident: Some(id.clone()),
            ..Default::default()
        },
    )
    .await
}

/// Which silences to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these states (all when empty).
    pub states: Vec<State>,
    /// Only silences having an equivalent matcher for each of these
    /// (Alertmanager's `filter`).
    pub having: Vec<Matcher>,
    /// Only stale silences.
    pub stale: bool,
}

/// The silences of the caller's tenant (viewers), Alertmanager's order:
/// active (ending first), pending (starting first), expired (newest end
/// first).
pub async fn list(svc: &Services, p: &Principal, f: &Filter) -> Result<Vec<View>, DomainError> {
    require_role(p, Role::Viewer, "read silences")?;
    let now = svc.clock.now();
    let silences = all(svc, &p.tenant).await?;
    let held = held_by_silence(svc, &p.tenant).await?;
    let mut out: Vec<View> = silences
        .into_iter()
        .filter(|s| f.states.is_empty() || f.states.contains(&s.state(now)))
        .filter(|s| {
            f.having.iter().all(|h| {
                s.matchers.iter().any(|m| {
                    m.name == h.name
                        && m.value == h.value
                        && m.is_regex == h.is_regex
                        && m.is_equal == h.is_equal
                })
            })
        })
        .map(|s| view(s, now, &held))
        .filter(|v| !f.stale || v.stale)
        .collect();
    out.sort_by(|a, b| {
        let rank = |s: State| match s {
            State::Active => 0,
            State::Pending => 1,
            State::Expired => 2,
        };
        rank(a.state).cmp(&rank(b.state)).then(match a.state {
            State::Active => a.silence.ends_at.cmp(&b.silence.ends_at),
            State::Pending => a.silence.starts_at.cmp(&b.silence.starts_at),
            State::Expired => b.silence.ends_at.cmp(&a.silence.ends_at),
        })
    });
    Ok(out)
}

/// Tally of what one silence held.
#[derive(Default, Clone, Copy)]
struct Tally {
    alerts: usize,
    firing: usize,
    seen: u64,
}

async fn held_by_silence(
    svc: &Services,
    tenant: &TenantId,
) -> Result<BTreeMap<String, Tally>, DomainError> {
    let mut out: BTreeMap<String, Tally> = BTreeMap::new();
    let mut after = None;
    for _ in 0..20 {
        let page = svc
            .store
            .query(Query {
                pk: held_pk(tenant),
                sk_prefix: String::new(),
                after,
                limit: 500,
                descending: false,
            })
            .await?;
        for item in &page.items {
            let h: Held = keys::decode(item)?;
            let t = out.entry(h.silence_id.clone()).or_default();
            t.alerts += 1;
            t.seen += h.seen;
            if h.alert.status == AlertStatus::Firing {
                t.firing += 1;
            }
        }
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    Ok(out)
}

fn view(s: Silence, now: DateTime<Utc>, held: &BTreeMap<String, Tally>) -> View {
    let t = held.get(&s.id).copied().unwrap_or_default();
    let state = s.state(now);
    let stale = match state {
        State::Pending => false,
        State::Active => t.alerts == 0 || t.firing == 0,
        State::Expired => t.alerts == 0,
    };
    View {
        silence: s,
        state,
        matched_alerts: t.alerts,
        firing_alerts: t.firing,
        silenced_notifications: t.seen,
        stale,
    }
}

/// One silence (viewers).
pub async fn get(svc: &Services, p: &Principal, id: &str) -> Result<View, DomainError> {
    require_role(p, Role::Viewer, "read silences")?;
    let s = load(svc, &p.tenant, id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("no silence {id}")))?;
    let held = held_by_silence(svc, &p.tenant).await?;
    Ok(view(s, svc.clock.now(), &held))
}

/// Parses a duration as chat users type it: `30m`, `1h`, `2h30m`, `1d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    if !s.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let d = humantime::parse_duration(s).ok()?;
    Duration::from_std(d).ok().filter(|d| *d > Duration::zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn silence(starts: &str, ends: &str) -> Silence {
        Silence {
            id: "0191d3a2-0000-0000-0000-000000000000".into(),
            matchers: matchers::parse_all(["alertname=Foo"]).unwrap(),
            starts_at: at(starts),
            ends_at: at(ends),
            created_by: "alice".into(),
            comment: String::new(),
            updated_at: at(starts),
            incident: None,
            warned: false,
            closed: false,
            due_sk: None,
            version: 1,
        }
    }

    #[test]
    fn state_follows_the_clock() {
        let s = silence("2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z");
        assert_eq!(s.state(at("2026-12-01T09:59:59Z")), State::Pending);
        assert_eq!(s.state(at("2026-12-01T10:00:00Z")), State::Active);
        assert_eq!(s.state(at("2026-12-01T11:00:00Z")), State::Expired);
        assert_eq!(s.selector(), "{alertname=\"Foo\"}");
    }

    #[test]
    fn the_due_time_is_the_warning_then_the_end() {
        let mut s = silence("2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z");
        assert_eq!(s.next_due(), Some(at("2026-12-01T10:50:00Z")));
        s.warned = true;
        assert_eq!(s.next_due(), Some(at("2026-12-01T11:00:00Z")));
        s.closed = true;
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn durations_parse_as_typed() {
        assert_eq!(parse_duration("30m"), Some(Duration::minutes(30)));
        assert_eq!(parse_duration("2h30m"), Some(Duration::minutes(150)));
        assert_eq!(parse_duration("1d"), Some(Duration::days(1)));
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("0m"), None);
    }

    #[test]
    fn staleness_is_matching_nothing_or_outliving_every_alert() {
        let now = at("2026-12-01T10:30:00Z");
        let s = silence("2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z");
        let mut held = BTreeMap::new();
        assert!(view(s.clone(), now, &held).stale, "matched nothing");
        held.insert(
            s.id.clone(),
            Tally {
                alerts: 2,
                firing: 1,
                seen: 3,
            },
        );
        assert!(
            !view(s.clone(), now, &held).stale,
            "still holds a firing alert"
        );
        held.insert(
            s.id.clone(),
            Tally {
                alerts: 2,
                firing: 0,
                seen: 3,
            },
        );
        assert!(view(s, now, &held).stale, "outlived its alerts");
    }
}
