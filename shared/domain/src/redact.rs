//! Removes secrets from anything firewatch stores or shows: raw envelopes,
//! headers, labels and annotations.
//!
//! A value is a secret when its key names one (token, password, ...), when it
//! is a bearer/basic credential, or when it is the password part of a URL.

use serde_json::Value;
use std::collections::BTreeMap;

pub const REDACTED: &str = "[REDACTED]";

const SECRET_KEY_PARTS: &[&str] = &[
    "token",
    "password",
    "passwd",
    "secret",
    "authorization",
    "api_key",
    "apikey",
    "api-key",
    "routing_key",
    "integration_key",
    "signature",
    "cookie",
    "private_key",
    "credential",
    "session",
];

/// True when a field or header of this name holds a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|p| k.contains(p))
}

/// Redacts a JSON value in place.
pub fn redact_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if is_secret_key(k) && !child.is_null() {
                    *child = Value::String(REDACTED.into());
                } else {
                    redact_json(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::String(s) => {
            if let Some(clean) = redact_str(s) {
                *s = clean;
            }
        }
        _ => {}
    }
}

/// Redacts string values of a label/annotation map in place.
pub fn redact_map(map: &mut BTreeMap<String, String>) {
    for (k, v) in map.iter_mut() {
        if is_secret_key(k) {
            *v = REDACTED.into();
        } else if let Some(clean) = redact_str(v) {
            *v = clean;
        }
    }
}

/// Returns a cleaned copy when `s` carries a credential, else `None`.
pub fn redact_str(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("bearer ") || lower.starts_with("basic ") {
        return Some(REDACTED.into());
    }
    let mut out = s.to_owned();
    let mut changed = false;
    // URL userinfo: scheme://user:password@host
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let rest = &out[rest_start..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, REDACTED);
                changed = true;
            }
        }
    }
    // Query parameters named like secrets: ?token=abc&x=1
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let mut parts: Vec<String> = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some((k, _)) if is_secret_key(k) => {
                    parts.push(format!("{k}={REDACTED}"));
                    changed = true;
                }
                _ => parts.push(pair.to_owned()),
            }
        }
        out = format!("{head}{}", parts.join("&"));
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_fields_are_replaced_at_any_depth() {
        let mut v = json!({
            "routing_key": "R0UT1NG",
            "payload": {"custom_details": {"db_password": "hunter2", "ok": "fine"}},
            "list": [{"Authorization": "Bearer abc"}]
        });
        redact_json(&mut v);
        let s = v.to_string();
        for leaked in ["R0UT1NG", "hunter2", "Bearer abc"] {
            assert!(!s.contains(leaked), "{leaked} leaked in {s}");
        }
        assert!(s.contains("fine"));
    }

    #[test]
    fn url_passwords_and_secret_query_parameters_are_removed() {
        let clean = redact_str("https://bob:pa55@grafana.example/d/x?token=t0k&orgId=1").unwrap();
        assert!(!clean.contains("pa55") && !clean.contains("t0k"), "{clean}");
        assert!(clean.contains("bob") && clean.contains("orgId=1"));
        assert_eq!(redact_str("https://grafana.example/d/x?orgId=1"), None);
    }

    #[test]
    fn credential_strings_are_redacted_wherever_they_appear() {
        let mut m = BTreeMap::from([
            ("note".to_string(), "Bearer xyz".to_string()),
            ("api_key".to_string(), "k".to_string()),
            ("team".to_string(), "db".to_string()),
        ]);
        redact_map(&mut m);
        assert_eq!(m["note"], REDACTED);
        assert_eq!(m["api_key"], REDACTED);
        assert_eq!(m["team"], "db");
    }
}
