//! firewatch's logic and the ports it needs.
//!
//! This crate knows what an alert, an incident and a principal are and how
//! they change; it reaches storage, blobs, time, ids and chat only through the
//! traits in [`ports`]. No AWS SDK, axum or Lambda type appears here, so the
//! same logic runs in a Lambda, in `firewatch dev`, and in unit tests.
//!
//! The base layer ([`ports`], [`keys`], [`work`], [`config`], [`change`],
//! [`outbox`], [`limits`], [`cadence`], [`recording`], [`redact`], [`retry`], [`due`],
//! [`auth`], [`settings`], [`error`], [`egress`], [`secrets`], [`throttle`],
//! [`units`]) imports nothing from the capabilities built on it; no module
//! of the crate takes part in an import cycle, nor does any capability
//! folder with another. `tests/shape.rs` checks these on the source, and
//! that every write goes through [`work`] and every lost race is retried
//! through [`retry`]. Where a lower module must reach a higher one, the
//! lower offers a port (a trait, or a value kept in [`ports::Memos`]) and
//! the higher fills it. See `docs/ARCHITECTURE.md`.
//!
//! Each capability is a module folder or file:
//! - [`ingest`]: webhooks from providers to incidents (with `normalize`);
//! - [`incidents`]: reading, acting on, commenting, recurrence;
//! - [`silences`]: Alertmanager-style silences and the alerts they hold;
//!   [`silence_ends`]: their ends, which release held alerts into ingest;
//! - [`noise`]: flapping and alert storms;
//! - [`dossier`]: the raw events kept behind each incident;
//! - [`cards`]: what the domain says in chat (cards, replies);
//! - [`routing`]: routing rules and the chat channels linked to a tenant;
//! - [`chat`]: commands, buttons, the client hub and chat identities;
//! - [`dispatch`]: delivering outbox records, retries and dead letters;
//! - [`triage`]: the deterministic report, assisted triage and feedback;
//! - [`tickets`]: tickets in the tracker and recurring work items;
//! - [`template`]: the templates of playbook steps and smoke checks;
//! - [`playbooks`]: definitions, dry-runs, approvals, runs and rollbacks;
//! - [`schedules`]: heartbeats, smoke checks and freshness;
//! - [`oncall`] and [`escalation`]: schedules, policies, reminders, pages;
//! - [`pipelines`]: OpenLineage runs, SLAs, costs, lineage impact, runbooks.

// The base layer.
pub mod auth;
pub mod cadence;
pub mod change;
pub mod config;
pub mod due;
pub mod egress;
pub mod error;
pub mod keys;
pub mod limits;
pub mod outbox;
pub mod ports;
pub mod recording;
pub mod redact;
pub mod retry;
pub mod secrets;
pub mod settings;
pub mod throttle;
pub mod units;
pub mod work;

// Capabilities.
pub mod cards;
pub mod chat;
pub mod dispatch;
pub mod dossier;
pub mod escalation;
pub mod incidents;
pub mod ingest;
pub mod noise;
pub mod oncall;
pub mod pipelines;
pub mod playbooks;
pub mod routing;
pub mod schedules;
pub mod silence_ends;
pub mod silences;
pub mod template;
pub mod tickets;
pub mod triage;

#[cfg(feature = "contract")]
pub mod contract;

pub use error::DomainError;
pub use ports::Services;
pub use settings::Settings;
