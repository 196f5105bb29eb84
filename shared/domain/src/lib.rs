//! firewatch's logic and the ports it needs.
//!
//! This crate knows what an alert, an incident and a principal are and how
//! they change; it reaches storage, blobs, time and ids only through the
//! traits in [`ports`]. No AWS SDK, axum or Lambda type appears here, so the
//! same logic runs in a Lambda, in `firewatch dev`, and in unit tests.

pub mod auth;
pub mod chat;
pub mod dispatch;
pub mod error;
pub mod identities;
pub mod incidents;
pub mod ingest;
pub mod keys;
pub mod normalize;
pub mod outbox;
pub mod ports;
pub mod redact;
pub mod routes;
pub mod settings;
pub mod triage;

#[cfg(feature = "contract")]
pub mod contract;

pub use error::DomainError;
pub use ports::Services;
pub use settings::Settings;
