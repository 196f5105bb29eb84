//! Feedback on triage reports: was this report helpful? One vote per person
//! per report (voting again replaces the vote), from the 👍/👎 buttons under
//! every report in a thread or `POST
//! /v1/incidents/{id}/triage/{report}/feedback`, summarised by mode, rule,
//! provider and model.
//!
//! Each vote is its own item, so concurrent votes never lose one; the vote
//! and its audit event are one transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use firewatch_types::{IncidentId, Principal, Role, TenantId};
use serde::{Deserialize, Serialize};

use crate::auth::require_role;
pub use crate::keys::triage_reports_pk as reports_pk;
pub use crate::keys::triage_votes_pk as votes_pk;
use crate::ports::{Condition, Query};
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// Longest comment kept, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;
/// The most votes one summary reads.
pub const SUMMARY_VOTES: usize = 5000;

/// What is kept about every report, beside the report itself on the
/// incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRef {
    pub report_id: String,
    pub incident_id: IncidentId,
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `rules`, `bedrock` or `openai_compatible`.
    pub provider: String,
    #[serde(default)]
    pub model: String,
    pub generated_at: DateTime<Utc>,
}

/// One person's vote on one report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    pub report_id: String,
    pub incident_id: IncidentId,
    pub helpful: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub by: String,
    pub at: DateTime<Utc>,
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub provider: String,
    #[serde(default)]
    pub model: String,
}

/// Reads the report `report_id` of `tenant`.
pub async fn report_ref(
    svc: &Services,
    tenant: &TenantId,
    report_id: &str,
) -> Result<ReportRef, DomainError> {
    let ok = report_id.len() <= 40
        && report_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let item = if ok {
        svc.store.get(&reports_pk(tenant), report_id).await?
    } else {
        None
    };
    match item {
        Some(item) => keys::decode(&item),
        None => Err(DomainError::NotFound(format!(
            "no triage report {}",
            report_id.chars().take(40).collect::<String>()
        ))),
    }
}

/// Records `p`'s vote on report `report_id` (of `incident`, when the caller
/// names it: a report of another incident is then not found). A responder
/// or above votes; a second vote by the same person replaces the first.
pub async fn record(
    svc: &Services,
    p: &Principal,
    incident: Option<&IncidentId>,
    report_id: &str,
    helpful: bool,
    comment: Option<String>,
) -> Result<Vote, DomainError> {
    require_role(p, Role::Responder, "give triage feedback")?;
    let comment = comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if let Some(c) = &comment {
        if c.chars().count() > MAX_COMMENT_CHARS {
            return Err(DomainError::bad_input(
                "comment_too_long",
                format!("a feedback comment has at most {MAX_COMMENT_CHARS} characters"),
            ));
        }
    }
    let r = report_ref(svc, &p.tenant, report_id).await?;
    if incident.is_some_and(|i| i != &r.incident_id) {
        return Err(DomainError::NotFound(format!(
            "incident {} has no triage report {report_id}",
            incident.map(|i| i.to_string()).unwrap_or_default()
        )));
    }
    let vote = Vote {
        report_id: r.report_id.clone(),
        incident_id: r.incident_id.clone(),
        helpful,
        comment: comment.map(|c| crate::redact::redact_text(&c)),
        by: p.name.clone(),
        at: svc.clock.now(),
        mode: r.mode,
        rule: r.rule,
        provider: r.provider,
        model: r.model,
    };
    let sk = format!("{}#{}", vote.report_id, voter_key(&p.name));
    let mut work = Work::new(svc);
    work.put(
        keys::item(votes_pk(&p.tenant), sk, 1, &vote)?,
        Condition::Always,
    );
    work.audit(
        &p.tenant,
        &p.name,
        "triage.feedback",
        &vote.report_id,
        serde_json::Value::Null,
        serde_json::json!({"incident_id": vote.incident_id, "helpful": helpful, "has_comment": vote.comment.is_some()}),
    )?;
    work.commit().await?;
    Ok(vote)
}

/// A voter's name as a sort-key part (names may hold any character).
fn voter_key(name: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(name.as_bytes());
    h.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// Votes counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    pub helpful: u64,
    pub not_helpful: u64,
    pub total: u64,
    /// helpful / total, when there are votes.
    pub helpful_ratio: Option<f64>,
}

impl Tally {
    fn add(&mut self, helpful: bool) {
        if helpful {
            self.helpful += 1;
        } else {
            self.not_helpful += 1;
        }
        self.total += 1;
        self.helpful_ratio = Some(self.helpful as f64 / self.total as f64);
    }
}

/// `GET /v1/triage/feedback/summary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub overall: Tally,
    pub by_mode: BTreeMap<String, Tally>,
    /// Deterministic rule (`none` when no rule matched).
    pub by_rule: BTreeMap<String, Tally>,
    pub by_provider: BTreeMap<String, Tally>,
    pub by_model: BTreeMap<String, Tally>,
    /// True when there were more than [`SUMMARY_VOTES`] votes: the counts
    /// are of the newest reports' votes.
    pub truncated: bool,
    /// The newest comments (at most 10), with their vote.
    pub recent_comments: Vec<Vote>,
}

/// Sums the votes of the tenant's newest reports.
pub async fn summary(svc: &Services, p: &Principal) -> Result<Summary, DomainError> {
    require_role(p, Role::Viewer, "read triage feedback")?;
    let mut s = Summary::default();
    let mut after = None;
    let mut read = 0;
    loop {
        let page = svc
            .store
            .query(Query {
                pk: votes_pk(&p.tenant),
                sk_prefix: String::new(),
                after: after.take(),
                limit: (SUMMARY_VOTES - read).min(1000),
                descending: true,
            })
            .await?;
        for item in &page.items {
            let v: Vote = keys::decode(item)?;
            read += 1;
            s.overall.add(v.helpful);
            s.by_mode.entry(v.mode.clone()).or_default().add(v.helpful);
            s.by_rule
                .entry(v.rule.clone().unwrap_or_else(|| "none".into()))
                .or_default()
                .add(v.helpful);
            s.by_provider
                .entry(v.provider.clone())
                .or_default()
                .add(v.helpful);
            if !v.model.is_empty() {
                s.by_model
                    .entry(v.model.clone())
                    .or_default()
                    .add(v.helpful);
            }
            if v.comment.is_some() && s.recent_comments.len() < 10 {
                s.recent_comments.push(v);
            }
        }
        match page.next {
            Some(n) if read < SUMMARY_VOTES => after = Some(n),
            Some(_) => {
                s.truncated = true;
                break;
            }
            None => break,
        }
    }
    Ok(s)
}
