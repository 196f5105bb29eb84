//! Scheduled checks: heartbeats (dead-man's switches), smoke contracts and
//! provider freshness, run as jobs by the scheduler (EventBridge Scheduler on AWS,
//! every second in `firewatch dev`).
//!
//! A job works through the due index ([`crate::due`]). Alerts go through [`crate::ingest`] with the check's own
//! source, so dedup, threads, buttons and triage apply as for any alert.

pub mod freshness;
pub mod heartbeats;
pub mod smoke;

pub use crate::due::{claim_tick, due_sk, Budget, DueRef, JobReport};
