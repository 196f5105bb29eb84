//! Wire and domain types shared by every firewatch crate.
//!
//! Everything here is plain data with serde derives: identifiers that are
//! parsed once at the edge, alerts as the normaliser produces them, incidents,
//! their timeline, principals and the error body every endpoint returns.
//! Nothing in this crate performs I/O.

pub mod alert;
pub mod auth;
pub mod chat;
pub mod error;
pub mod ids;
pub mod incident;
pub mod triage;

pub use alert::{Alert, AlertStatus, Link, Severity, SourceKind};
pub use auth::{Principal, Role};
pub use chat::{Button, ButtonAction, Card, ChatMessage, Destination, ThreadRef};
pub use error::{ErrorBody, ErrorDetail};
pub use ids::{IdError, IncidentId, TenantId};
pub use incident::{
    AlertSnapshot, AuditEvent, EnvelopeRef, Flapping, Incident, IncidentAction, IncidentState,
    TicketLink, TimelineEntry, TimelineKind,
};
pub use triage::{Confidence, FactUsed, TokenUsage, Traceability, TriageReport};
