//! Triage reports: what is likely wrong with an incident and what to do next.

use crate::Link;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How sure a triage report is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// No rule matched: the report lists what is known.
    Low,
    /// A rule matched the alert.
    Medium,
    /// A rule matched and the alert group has happened before.
    High,
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        })
    }
}

/// The result of triaging an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriageReport {
    /// `deterministic`: rules over the incident and its history.
    pub mode: String,
    /// The rule that matched, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub likely_cause: String,
    pub impact: String,
    pub next_actions: Vec<String>,
    #[serde(default)]
    pub runbooks: Vec<Link>,
    pub confidence: Confidence,
    /// The facts the rules used, so a responder can check the reasoning.
    pub facts: Vec<String>,
}
