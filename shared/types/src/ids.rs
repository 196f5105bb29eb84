//! Identifiers parsed once at the edge, so that code holding one never has to
//! check it again.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid identifier. It names the rule, never the
/// value: an error answer does not echo what was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be {rule}")]
pub struct IdError {
    pub what: &'static str,
    pub rule: &'static str,
}

/// A tenant: lowercase letters, digits, `-` and `_`, 1 to 64 characters.
/// Every stored key starts with it, so it may not contain the key separator.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError {
                what: "tenant",
                rule: "1-64 characters of a-z, 0-9, '-' or '_'",
            })
        }
    }

    /// The tenant every local install starts with.
    pub fn default_tenant() -> Self {
        Self("default".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TenantId> for String {
    fn from(t: TenantId) -> String {
        t.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An incident id: `inc_` followed by a 26-character ULID, so that ids sort by
/// creation time in every store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IncidentId(String);

impl IncidentId {
    pub const PREFIX: &'static str = "inc_";

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let body = s.strip_prefix(Self::PREFIX).unwrap_or("");
        if body.len() == 26 && body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError {
                what: "incident id",
                rule: "'inc_' followed by 26 letters or digits",
            })
        }
    }

    /// Builds an id from a freshly generated ULID string.
    pub fn from_ulid(ulid: &str) -> Self {
        Self(format!("{}{}", Self::PREFIX, ulid))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IncidentId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<IncidentId> for String {
    fn from(t: IncidentId) -> String {
        t.0
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_reject_separators_and_upper_case() {
        assert!(TenantId::parse("acme-prod_1").is_ok());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse("Acme").is_err());
        assert!(TenantId::parse("a#b").is_err());
        assert!(TenantId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn incident_ids_need_the_prefix_and_a_ulid() {
        assert!(IncidentId::parse("inc_01JD3Z8X9Q6W2T4V5R7S8P0M1N").is_ok());
        assert!(IncidentId::parse("01JD3Z8X9Q6W2T4V5R7S8P0M1N").is_err());
        assert!(IncidentId::parse("inc_short").is_err());
        assert!(IncidentId::parse("inc_01JD3Z8X9Q6W2T4V5R7S8P0M/N").is_err());
    }
}
