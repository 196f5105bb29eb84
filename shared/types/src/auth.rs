//! Who is calling: a principal of one tenant with one role.

use crate::TenantId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Roles are ordered: each one can do everything the ones before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads incidents and timelines.
    Viewer,
    /// Acknowledges, comments, resolves; may also post alerts.
    Responder,
    /// Approves playbook runs requested by someone else.
    Approver,
    /// Manages keys, sources and tenants.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "responder" => Some(Self::Responder),
            "approver" => Some(Self::Approver),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Responder => "responder",
            Self::Approver => "approver",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub tenant: TenantId,
    /// A human-readable name: an API key's name, `source:grafana`, a chat user.
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// True when this principal's role is at least `needed`.
    pub fn can(&self, needed: Role) -> bool {
        self.role >= needed
    }
}
