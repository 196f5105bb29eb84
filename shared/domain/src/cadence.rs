//! When a heartbeat is expected: every `period`, or at the times of a cron
//! expression read in an IANA time zone (`0 3 * * *` in `Europe/Berlin` is
//! 03:00 Berlin time in winter and in summer). Cron expressions are parsed
//! and evaluated by `croner`, time zones come from `jiff` (with its bundled
//! copy of the time zone database); across a
//! DST change a time that does not exist (spring forward) runs at the first
//! valid minute after the gap, and a time that happens twice (fall back)
//! runs once.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use croner::Cron;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::DomainError;

pub use crate::units::MAX_SPAN_SECS;

/// How often a heartbeat is expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// A ping every this many seconds.
    Period { secs: i64 },
    /// A ping at each time of the expression, in the time zone.
    Cron { expr: String, tz: String },
}

fn bad(message: impl Into<String>) -> DomainError {
    DomainError::bad_input("invalid_schedule", message)
}

pub use crate::units::{format_secs, span_secs};

impl Schedule {
    /// A schedule from the API's fields: exactly one of `period` and `cron`;
    /// `tz` (default `UTC`) only with `cron`.
    pub fn from_fields(
        period: Option<&str>,
        cron: Option<&str>,
        tz: Option<&str>,
    ) -> Result<Self, DomainError> {
        match (period, cron) {
            (Some(p), None) => {
                if tz.is_some() {
                    return Err(bad("tz applies to cron schedules only"));
                }
                Ok(Self::Period {
                    secs: span_secs("period", p)?,
                })
            }
            (None, Some(expr)) => {
                let tz = tz.unwrap_or("UTC");
                let s = Self::Cron {
                    expr: expr.trim().to_owned(),
                    tz: tz.to_owned(),
                };
                s.check()?;
                Ok(s)
            }
            (Some(_), Some(_)) => Err(bad("give either period or cron, not both")),
            (None, None) => Err(bad(
                "a heartbeat needs a period (\"5m\") or a cron expression",
            )),
        }
    }

    pub fn check(&self) -> Result<(), DomainError> {
        if let Self::Cron { expr, tz } = self {
            zone(tz)?;
            let cron = parse_cron(expr)?;
            // An expression that never fires (30 February) is refused.
            cron.find_next_occurrence(&jiff::Zoned::now().with_time_zone(TimeZone::UTC), false)
                .map_err(|e| bad(format!("cron `{expr}` has no next time: {e}")))?;
        }
        Ok(())
    }

    /// The first time a ping is expected strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Period { secs } => Some(after + Duration::seconds(*secs)),
            Self::Cron { expr, tz } => {
                let tz = zone(tz).ok()?;
                let cron = parse_cron(expr).ok()?;
                let at =
                    jiff::Timestamp::new(after.timestamp(), after.timestamp_subsec_nanos() as i32)
                        .ok()?
                        .to_zoned(tz);
                let next = cron.find_next_occurrence(&at, false).ok()?.timestamp();
                DateTime::from_timestamp(next.as_second(), next.subsec_nanosecond().max(0) as u32)
            }
        }
    }

    /// About how long one period lasts at `at`: the period, or the gap
    /// between the next two cron times. Flapping is re-alerted at most once
    /// per this span.
    pub fn span_at(&self, at: DateTime<Utc>) -> Duration {
        match self {
            Self::Period { secs } => Duration::seconds(*secs),
            Self::Cron { .. } => {
                let first = self.next_after(at);
                let second = first.and_then(|f| self.next_after(f));
                match (first, second) {
                    (Some(a), Some(b)) => b - a,
                    _ => Duration::hours(24),
                }
            }
        }
    }
}

fn zone(tz: &str) -> Result<TimeZone, DomainError> {
    TimeZone::get(tz).map_err(|_| {
        bad(format!(
            "tz `{tz}` is not an IANA time zone such as Europe/Berlin or UTC"
        ))
    })
}

fn parse_cron(expr: &str) -> Result<Cron, DomainError> {
    if expr.split_whitespace().count() != 5 {
        return Err(bad(format!(
            "cron `{expr}` must have five fields: minute hour day-of-month month day-of-week"
        )));
    }
    Cron::from_str(expr).map_err(|e| bad(format!("cron `{expr}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn periods_and_crons_are_parsed_and_bad_ones_named() {
        assert_eq!(
            Schedule::from_fields(Some("5m"), None, None).unwrap(),
            Schedule::Period { secs: 300 }
        );
        let e = Schedule::from_fields(Some("soon"), None, None).unwrap_err();
        assert!(e.to_string().contains("period"), "{e}");
        let e = Schedule::from_fields(None, Some("0 3 * *"), None).unwrap_err();
        assert!(e.to_string().contains("five fields"), "{e}");
        let e = Schedule::from_fields(None, Some("0 3 * * *"), Some("Mars/Olympus")).unwrap_err();
        assert!(e.to_string().contains("Mars/Olympus"), "{e}");
        let e = Schedule::from_fields(Some("5m"), Some("0 3 * * *"), None).unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        let e = Schedule::from_fields(None, Some("0 0 30 2 *"), None).unwrap_err();
        assert!(e.to_string().contains("no next time"), "{e}");
        let e = Schedule::from_fields(Some("0s"), None, None).unwrap_err();
        assert!(e.to_string().contains("between"), "{e}");
    }

    #[test]
    fn a_cron_in_a_time_zone_keeps_its_wall_clock_time_across_dst() {
        let s = Schedule::from_fields(None, Some("0 3 * * *"), Some("Europe/Berlin")).unwrap();
        // Winter (UTC+1): 03:00 Berlin is 02:00 UTC.
        assert_eq!(
            s.next_after(at("2026-03-27T12:00:00Z")),
            Some(at("2026-03-28T02:00:00Z"))
        );
        // The night of 29 March 2026 the clocks go from 02:00 to 03:00:
        // 03:00 Berlin exists and is now 01:00 UTC.
        assert_eq!(
            s.next_after(at("2026-03-28T12:00:00Z")),
            Some(at("2026-03-29T01:00:00Z"))
        );
        assert_eq!(s.span_at(at("2026-03-28T12:00:00Z")), Duration::hours(24));
        // Back to winter time on 25 October 2026.
        assert_eq!(
            s.next_after(at("2026-10-24T12:00:00Z")),
            Some(at("2026-10-25T02:00:00Z"))
        );
    }

    #[test]
    fn a_time_the_spring_forward_skips_runs_after_the_gap_and_one_that_repeats_runs_once() {
        // 02:30 does not exist in Berlin on 29 March 2026.
        let s = Schedule::from_fields(None, Some("30 2 * * *"), Some("Europe/Berlin")).unwrap();
        let next = s.next_after(at("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(
            next,
            at("2026-03-29T01:00:00Z"),
            "03:00 CEST, just after the gap"
        );
        // 02:30 happens twice in Berlin on 25 October 2026: once.
        let first = s.next_after(at("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(first, at("2026-10-25T00:30:00Z"), "02:30 CEST");
        let second = s.next_after(first).unwrap();
        assert_eq!(
            second,
            at("2026-10-26T01:30:00Z"),
            "the next day, 02:30 CET"
        );
    }

    #[test]
    fn periods_are_added_in_absolute_time() {
        let s = Schedule::Period { secs: 3600 };
        assert_eq!(
            s.next_after(at("2026-10-25T00:30:00Z")),
            Some(at("2026-10-25T01:30:00Z"))
        );
    }
}
