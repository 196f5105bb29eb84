//! Spans of time as they are written in definitions and settings (`90s`,
//! `5m`, `1h 30m`): parsed into whole seconds and written back.

use crate::error::DomainError;

/// The longest period or grace accepted (a year).
pub const MAX_SPAN_SECS: i64 = 366 * 24 * 3600;

/// Parses a duration such as `90s`, `5m`, `1h 30m` into whole seconds
/// within `1..=MAX_SPAN_SECS`; `field` names it in the error.
pub fn span_secs(field: &str, text: &str) -> Result<i64, DomainError> {
    let d = humantime::parse_duration(text.trim()).map_err(|_| {
        DomainError::bad_input(
            "invalid_duration",
            format!("{field}: not a duration such as 30s, 5m or 1h"),
        )
    })?;
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    if !(1..=MAX_SPAN_SECS).contains(&secs) {
        return Err(DomainError::bad_input(
            "invalid_duration",
            format!("{field} must be between 1s and 366 days"),
        ));
    }
    Ok(secs)
}

/// Formats seconds the way they are written (`5m`, `1h 30m`).
pub fn format_secs(secs: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs.max(0).unsigned_abs()))
        .to_string()
}

/// Parses a duration such as `30s`, `5m`, `1h 30m` into seconds.
pub fn duration_secs(s: &str) -> Result<u64, String> {
    humantime::parse_duration(s.trim())
        .map(|d| d.as_secs())
        .map_err(|e| format!("`{s}` is not a duration such as 30s, 5m or 1h: {e}"))
}
