//! Triage reports: what is likely wrong with an incident and what to do next.

use crate::Link;
use chrono::{DateTime, Utc};
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

/// One fact a report rests on, with the id its claims cite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactUsed {
    /// `F1`, `F2`, ...
    pub id: String,
    /// What it is about (`incident.severity`, `labels.service`, `history`).
    pub field: String,
    pub value: String,
    /// Where it comes from: `incident`, `labels`, `alerts`, `rules`,
    /// `history`, `runbook`, `playbook`.
    pub source: String,
}

/// Which facts back which part of a report, by fact id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traceability {
    #[serde(default)]
    pub telemetry_facts: Vec<String>,
    #[serde(default)]
    pub runbook_facts: Vec<String>,
    #[serde(default)]
    pub impact_facts: Vec<String>,
    #[serde(default)]
    pub cost_facts: Vec<String>,
    #[serde(default)]
    pub evidence_links: Vec<String>,
}

/// Tokens a model call used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The result of triaging an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriageReport {
    /// The report's id (`trg_<ULID>`): feedback names it. Reports stored
    /// before ids existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `deterministic_rules_v1` (rules over the incident and its history),
    /// `assisted_bedrock_v1` or `assisted_openai_v1` (a model enriched it).
    pub mode: String,
    /// The mode asked for: `deterministic` or `assisted`.
    #[serde(default)]
    pub requested_mode: String,
    /// One sentence: what is happening.
    #[serde(default)]
    pub summary: String,
    /// The rule that matched, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub likely_cause: String,
    pub impact: String,
    #[serde(default)]
    pub impact_summary: String,
    /// Who or what downstream is affected, as far as the facts say.
    #[serde(default)]
    pub impacted_consumers: Vec<String>,
    pub next_actions: Vec<String>,
    #[serde(default)]
    pub runbooks: Vec<Link>,
    /// The runbook URLs, as cited.
    #[serde(default)]
    pub runbook_references: Vec<String>,
    pub confidence: Confidence,
    #[serde(default)]
    pub confidence_reason: String,
    /// The facts the rules used, so a responder can check the reasoning.
    pub facts: Vec<String>,
    /// The same facts, numbered, with their source.
    #[serde(default)]
    pub facts_used: Vec<FactUsed>,
    #[serde(default)]
    pub traceability: Traceability,
    /// True when assisted triage was asked for and this is the
    /// deterministic report instead.
    #[serde(default)]
    pub degraded: bool,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// How the report came to be (`evidence.assisted`: provider, model,
    /// `fallback_used`, `error_class`, cited fact ids).
    #[serde(default)]
    pub evidence: serde_json::Value,
    #[serde(default)]
    pub generated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}
