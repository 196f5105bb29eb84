//! On-call schedules: rotations of participants handing off at a local time
//! of day in a time zone (daily or weekly), overrides on top, who is on call
//! at any moment, and the shifts as an iCalendar feed.
//!
//! Shifts are counted in local calendar days from the rotation's start
//! date, so a hand-off stays at 09:00 local across a daylight-saving change
//! (the shift around it is an hour shorter or longer). A hand-off time that
//! does not exist on a day (skipped by the clocks going forward) falls at the
//! first instant after the gap. See docs/ONCALL.md.

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{Principal, Role, TenantId};
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::auth::require_role;
use crate::config::{self, Config};
use crate::keys::oncall_schedules_pk as schedules_pk;
use crate::retry::Retry;
use crate::{DomainError, Services};

/// Schedules one tenant may have.
pub const MAX_SCHEDULES: usize = 100;
pub const MAX_ROTATIONS: usize = 8;
pub const MAX_PARTICIPANTS: usize = 100;
pub const MAX_OVERRIDES: usize = 200;
/// Longest span the calendar feed covers.
pub const MAX_CALENDAR_DAYS: i64 = 366;

/// How long one shift lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Length {
    Daily,
    Weekly,
}

impl Length {
    fn days(self) -> i64 {
        match self {
            Self::Daily => 1,
            Self::Weekly => 7,
        }
    }
}

/// One rotation: participants taking turns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    pub name: String,
    /// Chat identities (`slack:U0123`, `discord:8035…`, `telegram:1234`) or
    /// email addresses, in turn order.
    pub participants: Vec<String>,
    /// Local hand-off time, `HH:MM`.
    pub handoff: String,
    pub length: Length,
    /// The local date of the first shift's hand-off (the first participant's).
    pub start: String,
}

/// Someone on call instead, for a while.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub who: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The rotation it covers; every rotation when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<String>,
}

/// What an admin writes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    pub name: String,
    pub time_zone: String,
    pub rotations: Vec<Rotation>,
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: String,
    pub name: String,
    pub time_zone: String,
    pub rotations: Vec<Rotation>,
    pub overrides: Vec<Override>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    #[serde(default)]
    pub version: u64,
}

/// One shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shift {
    pub rotation: String,
    pub who: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// True when an override put `who` there.
    pub overridden: bool,
}

fn bad(m: impl Into<String>) -> DomainError {
    DomainError::bad_input("invalid_schedule", m.into())
}

fn check_slug(id: &str) -> Result<(), DomainError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "schedule id {:?} must be 1-64 of a-z 0-9 - _",
            crate::limits::truncate(id, 40)
        )))
    }
}

/// True for a participant firewatch can name: `slack:`/`discord:`/
/// `telegram:` and an id, or an email address.
pub fn is_participant(p: &str) -> bool {
    if p.len() > 200 || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    match p.split_once(':') {
        Some(("slack" | "discord" | "telegram", id)) => {
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }
        Some(("email", addr)) => is_email(addr),
        _ => is_email(p),
    }
}

/// An address of plain characters only: it is named in chat messages, so
/// nothing in it may read as markup (`<!channel>`, `*`, `|`).
fn is_email(s: &str) -> bool {
    let plain = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
    };
    matches!(s.split_once('@'), Some((u, d)) if plain(u) && plain(d) && d.contains('.'))
}

fn zone(tz: &str) -> Result<TimeZone, DomainError> {
    TimeZone::get(tz).map_err(|_| {
        bad(format!(
            "time_zone {:?} is not an IANA time zone such as Europe/Berlin or UTC",
            crate::limits::truncate(tz, 40)
        ))
    })
}

struct Parsed {
    start: Date,
    handoff: Time,
}

fn parse_rotation(r: &Rotation) -> Result<Parsed, DomainError> {
    let start: Date = r.start.parse().map_err(|_| {
        bad(format!(
            "rotation {}: start {:?} is not a date (YYYY-MM-DD)",
            r.name, r.start
        ))
    })?;
    let handoff = jiff::civil::Time::strptime("%H:%M", &r.handoff).map_err(|_| {
        bad(format!(
            "rotation {}: handoff {:?} is not a time of day (HH:MM)",
            r.name, r.handoff
        ))
    })?;
    Ok(Parsed { start, handoff })
}

fn check(spec: &ScheduleSpec) -> Result<(), DomainError> {
    zone(&spec.time_zone)?;
    if spec.name.trim().is_empty() || spec.name.len() > 200 {
        return Err(bad("name is 1-200 bytes"));
    }
    if spec.rotations.is_empty() || spec.rotations.len() > MAX_ROTATIONS {
        return Err(bad(format!(
            "a schedule has 1 to {MAX_ROTATIONS} rotations"
        )));
    }
    for (i, r) in spec.rotations.iter().enumerate() {
        if r.name.trim().is_empty() || r.name.len() > 64 {
            return Err(bad(format!("rotation {i}: name is 1-64 bytes")));
        }
        if spec.rotations[..i].iter().any(|o| o.name == r.name) {
            return Err(bad(format!("rotation {} is named twice", r.name)));
        }
        if r.participants.is_empty() || r.participants.len() > MAX_PARTICIPANTS {
            return Err(bad(format!(
                "rotation {}: 1 to {MAX_PARTICIPANTS} participants",
                r.name
            )));
        }
        if let Some(p) = r.participants.iter().find(|p| !is_participant(p)) {
            return Err(bad(format!(
                "rotation {}: participant {:?} is neither slack:/discord:/telegram:<id> nor an email address",
                r.name,
                crate::limits::truncate(p, 60)
            )));
        }
        parse_rotation(r)?;
    }
    if spec.overrides.len() > MAX_OVERRIDES {
        return Err(bad(format!("at most {MAX_OVERRIDES} overrides")));
    }
    for o in &spec.overrides {
        check_override(spec, o)?;
    }
    Ok(())
}

fn check_override(spec: &ScheduleSpec, o: &Override) -> Result<(), DomainError> {
    if !is_participant(&o.who) {
        return Err(bad(format!(
            "override: {:?} is neither slack:/discord:/telegram:<id> nor an email address",
            crate::limits::truncate(&o.who, 60)
        )));
    }
    if o.until <= o.from {
        return Err(bad("override: from must be before until"));
    }
    if let Some(r) = &o.rotation {
        if !spec.rotations.iter().any(|x| &x.name == r) {
            return Err(bad(format!("override: no rotation {r:?}")));
        }
    }
    Ok(())
}

fn to_utc(ts: jiff::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(ts.as_second(), ts.subsec_nanosecond() as u32).unwrap_or_default()
}

fn to_jiff(t: DateTime<Utc>) -> jiff::Timestamp {
    jiff::Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

impl Schedule {
    /// The instant of hand-off `n` (0 is the start) of rotation `r`.
    fn handoff_at(tz: &TimeZone, p: &Parsed, length: Length, n: i64) -> Option<DateTime<Utc>> {
        let day = p
            .start
            .checked_add(jiff::Span::new().days(n * length.days()))
            .ok()?;
        // `compatible`: a time skipped by the clocks is taken after the gap.
        let zoned = day.to_datetime(p.handoff).to_zoned(tz.clone()).ok()?;
        Some(to_utc(zoned.timestamp()))
    }

    /// The rotation's shift holding `at` (before the start: none).
    fn rotation_shift(&self, r: &Rotation, at: DateTime<Utc>) -> Option<Shift> {
        let tz = zone(&self.time_zone).ok()?;
        let p = parse_rotation(r).ok()?;
        let local = to_jiff(at).to_zoned(tz.clone());
        let days = p.start.until(local.date()).ok()?.get_days() as i64;
        // A first guess from the local date, then corrected by the real
        // hand-off instants around it.
        let mut n = days.div_euclid(r.length.days());
        for _ in 0..3 {
            let from = Self::handoff_at(&tz, &p, r.length, n)?;
            if at < from {
                n -= 1;
                continue;
            }
            let until = Self::handoff_at(&tz, &p, r.length, n + 1)?;
            if at >= until {
                n += 1;
                continue;
            }
            if n < 0 {
                return None;
            }
            let who = r.participants[(n as usize) % r.participants.len()].clone();
            return Some(Shift {
                rotation: r.name.clone(),
                who,
                from,
                until,
                overridden: false,
            });
        }
        None
    }

    /// Who is on call at `at`, one shift per rotation, overrides applied (an
    /// override's window is the shift's while it lasts; the latest-added
    /// override wins).
    pub fn on_call(&self, at: DateTime<Utc>) -> Vec<Shift> {
        self.rotations
            .iter()
            .filter_map(|r| {
                let mut shift = self.rotation_shift(r, at)?;
                if let Some(o) = self.overrides.iter().rev().find(|o| {
                    o.from <= at && at < o.until && o.rotation.as_ref().is_none_or(|x| x == &r.name)
                }) {
                    shift.who = o.who.clone();
                    shift.from = o.from.max(shift.from);
                    shift.until = o.until.min(shift.until);
                    shift.overridden = true;
                }
                Some(shift)
            })
            .collect()
    }

    /// Every shift from `from` for `days` days, overrides applied (an
    /// override splits the shift it falls in).
    pub fn shifts(&self, from: DateTime<Utc>, days: i64) -> Vec<Shift> {
        let end = from + Duration::days(days.clamp(1, MAX_CALENDAR_DAYS));
        let mut out: Vec<Shift> = Vec::new();
        for r in &self.rotations {
            let mut at = from;
            let mut guard = 0;
            while at < end && guard < 10_000 {
                guard += 1;
                let Some(base) = self.rotation_shift(r, at) else {
                    // Before the rotation starts: jump to its first hand-off.
                    let first = zone(&self.time_zone)
                        .ok()
                        .zip(parse_rotation(r).ok())
                        .and_then(|(tz, p)| Self::handoff_at(&tz, &p, r.length, 0));
                    match first {
                        Some(f) if f > at => {
                            at = f;
                            continue;
                        }
                        _ => break,
                    }
                };
                // Split at override edges inside the shift.
                let mut cuts: Vec<DateTime<Utc>> = self
                    .overrides
                    .iter()
                    .filter(|o| o.rotation.as_ref().is_none_or(|x| x == &r.name))
                    .flat_map(|o| [o.from, o.until])
                    .filter(|t| *t > at && *t < base.until)
                    .collect();
                cuts.push(base.until);
                cuts.sort();
                let mut piece_from = at.max(base.from);
                for cut in cuts {
                    if let Some(mut s) = self
                        .on_call(piece_from)
                        .into_iter()
                        .find(|s| s.rotation == r.name)
                    {
                        s.from = piece_from;
                        s.until = cut;
                        match out.last_mut() {
                            Some(last)
                                if last.rotation == s.rotation
                                    && last.who == s.who
                                    && last.overridden == s.overridden
                                    && last.until == s.from =>
                            {
                                last.until = s.until;
                            }
                            _ => out.push(s),
                        }
                    }
                    piece_from = cut;
                }
                at = base.until;
            }
        }
        out.retain(|s| s.from < end);
        out
    }
}

/// The shifts of `s` as an iCalendar feed: one event per shift (UTC times,
/// stable UIDs), `days` days from `from`.
pub fn calendar(s: &Schedule, from: DateTime<Utc>, days: i64) -> String {
    use icalendar::{Calendar, Component, Event, EventLike};
    let mut cal = Calendar::new();
    cal.name(&format!("firewatch on call: {}", s.name));
    cal.timezone(s.time_zone.as_str());
    for shift in s.shifts(from, days) {
        let who = display_name(&shift.who);
        let summary = if shift.overridden {
            format!("On call ({}): {who} (override)", shift.rotation)
        } else {
            format!("On call ({}): {who}", shift.rotation)
        };
        cal.push(
            Event::new()
                .uid(&format!(
                    "{}-{}-{}@firewatch",
                    s.id,
                    shift.rotation,
                    shift.from.timestamp()
                ))
                .summary(&summary)
                .description(&format!("schedule {} ({})", s.name, s.id))
                .starts(shift.from)
                .ends(shift.until)
                .done(),
        );
    }
    cal.done().to_string()
}

/// A participant as people read it: the address, or the platform and id.
pub fn display_name(p: &str) -> String {
    p.strip_prefix("email:").unwrap_or(p).to_owned()
}

crate::work::record!(Schedule, "oncall-schedule", schedules_pk);

impl Config for Schedule {
    const NOUN: &'static str = "schedule";
    const PLURAL: &'static str = "on-call schedules";
    const LIMIT: usize = MAX_SCHEDULES;
    const TOO_MANY: &'static str = "too_many_schedules";
    fn summary(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("rotations".into(), self.rotations.len().into());
        m.insert("overrides".into(), self.overrides.len().into());
        m
    }
}

/// Creates or replaces schedule `id` (admins).
pub async fn put(
    svc: &Services,
    p: &Principal,
    id: &str,
    spec: ScheduleSpec,
) -> Result<Schedule, DomainError> {
    require_role(p, Role::Admin, "manage on-call schedules")?;
    check_slug(id)?;
    check(&spec)?;
    let s = Schedule {
        id: id.to_owned(),
        name: spec.name,
        time_zone: spec.time_zone,
        rotations: spec.rotations,
        overrides: spec.overrides,
        updated_at: svc.clock.now(),
        updated_by: p.name.clone(),
        version: 0,
    };
    config::put(svc, p, s).await
}

/// Adds an override (responders may swap shifts).
pub async fn add_override(
    svc: &Services,
    p: &Principal,
    id: &str,
    o: Override,
) -> Result<Schedule, DomainError> {
    require_role(p, Role::Responder, "add on-call overrides")?;
    crate::retry::until_won!(
        crate::retry::ATTEMPTS,
        || DomainError::Unavailable("the schedule kept changing; retry".into()),
        async || -> Result<_, Retry> {
            let mut s = get_internal(svc, &p.tenant, id).await?;
            let spec = ScheduleSpec {
                name: s.name.clone(),
                time_zone: s.time_zone.clone(),
                rotations: s.rotations.clone(),
                overrides: vec![],
            };
            check_override(&spec, &o)?;
            let now = svc.clock.now();
            // Overrides that have ended are dropped as new ones come.
            s.overrides.retain(|x| x.until > now);
            if s.overrides.len() >= MAX_OVERRIDES {
                return Err(bad(format!("at most {MAX_OVERRIDES} overrides")).into());
            }
            s.overrides.push(o.clone());
            s.updated_at = now;
            s.updated_by = p.name.clone();
            config::save(svc, p, &mut s, "oncall.override")
                .await
                .map_err(Retry::from_commit)?;
            Ok(s)
        },
    )
    .await
}

async fn get_internal(
    svc: &Services,
    tenant: &TenantId,
    id: &str,
) -> Result<Schedule, DomainError> {
    check_slug(id).map_err(|_| DomainError::NotFound(format!("no on-call schedule {id:?}")))?;
    config::find(svc, tenant, id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("no on-call schedule {id:?}")))
}

/// One schedule (viewers).
pub async fn get(svc: &Services, p: &Principal, id: &str) -> Result<Schedule, DomainError> {
    require_role(p, Role::Viewer, "read on-call schedules")?;
    get_internal(svc, &p.tenant, id).await
}

/// A schedule for the domain's own use (escalation), without a principal.
pub async fn find(
    svc: &Services,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<Schedule>, DomainError> {
    match get_internal(svc, tenant, id).await {
        Ok(s) => Ok(Some(s)),
        Err(DomainError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every schedule of the caller's tenant (viewers).
pub async fn list(svc: &Services, p: &Principal) -> Result<Vec<Schedule>, DomainError> {
    require_role(p, Role::Viewer, "read on-call schedules")?;
    config::all(svc, &p.tenant).await
}

/// Deletes a schedule (admins).
pub async fn delete(svc: &Services, p: &Principal, id: &str) -> Result<(), DomainError> {
    require_role(p, Role::Admin, "manage on-call schedules")?;
    let s = get_internal(svc, &p.tenant, id).await?;
    config::delete(svc, p, &s).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn berlin_weekly() -> Schedule {
        Schedule {
            id: "primary".into(),
            name: "Primary".into(),
            time_zone: "Europe/Berlin".into(),
            rotations: vec![Rotation {
                name: "primary".into(),
                participants: vec!["alice@example.com".into(), "slack:U0BOB".into()],
                handoff: "09:00".into(),
                length: Length::Weekly,
                // A Monday; Berlin leaves summer time on Sunday 2026-10-25.
                start: "2026-10-19".into(),
            }],
            overrides: vec![],
            updated_at: at("2026-10-01T00:00:00Z"),
            updated_by: "admin".into(),
            version: 1,
        }
    }

    #[test]
    fn the_hand_off_stays_at_nine_local_across_the_dst_change() {
        let s = berlin_weekly();
        // Summer time (UTC+2): alice from 07:00 UTC on the 19th.
        let first = &s.on_call(at("2026-10-19T07:00:00Z"))[0];
        assert_eq!(first.who, "alice@example.com");
        assert_eq!(first.from, at("2026-10-19T07:00:00Z"));
        // The next hand-off is 09:00 winter time (UTC+1): 08:00 UTC, so the
        // shift across the change is an hour longer.
        assert_eq!(first.until, at("2026-10-26T08:00:00Z"));
        assert_eq!(
            s.on_call(at("2026-10-26T07:59:59Z"))[0].who,
            "alice@example.com"
        );
        let second = &s.on_call(at("2026-10-26T08:00:00Z"))[0];
        assert_eq!(second.who, "slack:U0BOB");
        assert_eq!(second.until - second.from, Duration::days(7));
        // Back to alice, then before the start nobody.
        assert_eq!(
            s.on_call(at("2026-11-02T08:00:00Z"))[0].who,
            "alice@example.com"
        );
        assert!(s.on_call(at("2026-10-19T06:59:59Z")).is_empty());
    }

    #[test]
    fn a_daily_hand_off_in_spring_skips_no_shift() {
        let mut s = berlin_weekly();
        s.rotations[0].length = Length::Daily;
        s.rotations[0].start = "2027-03-27".into();
        s.rotations[0].handoff = "02:30".into();
        // 2027-03-28 02:30 does not exist in Berlin: the hand-off is at
        // 03:30 summer time (01:30 UTC), right after the gap.
        let sat = &s.on_call(at("2027-03-27T12:00:00Z"))[0];
        assert_eq!(sat.until, at("2027-03-28T01:30:00Z"));
        assert_eq!(s.on_call(at("2027-03-28T01:30:00Z"))[0].who, "slack:U0BOB");
        assert_eq!(
            s.on_call(at("2027-03-29T00:30:00Z"))[0].who,
            "alice@example.com"
        );
    }

    #[test]
    fn an_override_takes_its_window_and_splits_the_shift_in_the_calendar() {
        let mut s = berlin_weekly();
        s.overrides.push(Override {
            who: "carol@example.com".into(),
            from: at("2026-10-20T12:00:00Z"),
            until: at("2026-10-21T12:00:00Z"),
            rotation: None,
        });
        let now = &s.on_call(at("2026-10-20T13:00:00Z"))[0];
        assert_eq!(
            (now.who.as_str(), now.overridden),
            ("carol@example.com", true)
        );
        assert_eq!(
            (now.from, now.until),
            (at("2026-10-20T12:00:00Z"), at("2026-10-21T12:00:00Z"))
        );
        assert_eq!(
            s.on_call(at("2026-10-21T12:00:00Z"))[0].who,
            "alice@example.com"
        );

        let shifts = s.shifts(at("2026-10-19T07:00:00Z"), 14);
        let who: Vec<(&str, DateTime<Utc>)> =
            shifts.iter().map(|x| (x.who.as_str(), x.from)).collect();
        assert_eq!(
            who,
            [
                ("alice@example.com", at("2026-10-19T07:00:00Z")),
                ("carol@example.com", at("2026-10-20T12:00:00Z")),
                ("alice@example.com", at("2026-10-21T12:00:00Z")),
                ("slack:U0BOB", at("2026-10-26T08:00:00Z")),
            ]
        );
        let ics = calendar(&s, at("2026-10-19T07:00:00Z"), 14);
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"), "{ics}");
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 4, "{ics}");
        assert!(ics.contains("DTSTART:20261026T080000Z"), "{ics}");
        assert!(
            ics.contains("SUMMARY:On call (primary): carol@example.com (override)"),
            "{ics}"
        );
    }

    #[test]
    fn participants_are_chat_identities_or_emails() {
        for ok in [
            "slack:U0123",
            "discord:80351110224678912",
            "telegram:1234",
            "a@b.io",
            "email:a@b.io",
        ] {
            assert!(is_participant(ok), "{ok}");
        }
        for bad in [
            "bob",
            "slack:",
            "irc:bob",
            "a b@c.d",
            "x@y",
            "<!channel>@x.io",
            "a@b.io>",
        ] {
            assert!(!is_participant(bad), "{bad}");
        }
    }
}
