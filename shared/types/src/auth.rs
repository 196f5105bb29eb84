//! Who is calling: a principal of one tenant with one role.

use crate::TenantId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Roles are ordered: each one from `viewer` up can do everything the ones
/// before it can. `ingest` stands apart: it may post alerts, heartbeat
/// pings and pipeline run events, and nothing else (not even read); it is
/// the role to give alert senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Posts alerts, pings and run events; nothing else.
    Ingest,
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
            "ingest" => Some(Self::Ingest),
            "viewer" => Some(Self::Viewer),
            "responder" => Some(Self::Responder),
            "approver" => Some(Self::Approver),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
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
    /// True when this principal's role is at least `needed`. An `ingest`
    /// principal can do nothing that needs a role: it only sends data in
    /// ([`Principal::may_send_data`]).
    pub fn can(&self, needed: Role) -> bool {
        self.role != Role::Ingest && self.role >= needed
    }

    /// True when this principal may post alerts, pings and run events: the
    /// `ingest` role, or `responder` and above.
    pub fn may_send_data(&self) -> bool {
        self.role == Role::Ingest || self.can(Role::Responder)
    }
}
