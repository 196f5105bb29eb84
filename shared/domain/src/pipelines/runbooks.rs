//! The runbook catalog: every pipeline with its runbook's status
//! (`configured`, `missing`, `invalid_format`), owner, SLA and tags, a
//! coverage summary, and a governance lifecycle per pipeline (`none`,
//! `open`, `in_progress`, `remediated`, `waived`) for closing the gaps,
//! every change audited.

use firewatch_types::{Principal, Role};
use serde::Serialize;

use super::{check_id, load, pipelines_pk, Criticality, Pipeline};
use crate::auth::require_role;
use crate::ports::Condition;
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// Pipelines one catalog read scans at most.
pub const CATALOG_SCAN: usize = 20_000;

pub use super::{Governance, GovernanceRecord};

/// A runbook's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunbookStatus {
    Configured,
    Missing,
    InvalidFormat,
}

/// The status of runbook URL `url`: an absolute http(s) URL with a host is
/// configured.
pub fn status_of(url: Option<&str>) -> RunbookStatus {
    let Some(u) = url.map(str::trim).filter(|u| !u.is_empty()) else {
        return RunbookStatus::Missing;
    };
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    match rest {
        Some(r)
            if !r.is_empty()
                && !r.starts_with('/')
                && !u.chars().any(char::is_whitespace)
                && r.split(['/', '?', '#'])
                    .next()
                    .is_some_and(|h| h.contains('.') || h.starts_with("localhost")) =>
        {
            RunbookStatus::Configured
        }
        _ => RunbookStatus::InvalidFormat,
    }
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub pipeline: String,
    pub owner: Option<String>,
    pub team: Option<String>,
    pub domain: Option<String>,
    pub criticality: Option<Criticality>,
    pub runbook_url: Option<String>,
    pub runbook_status: RunbookStatus,
    /// The SLA's longest expected duration (or interval), in minutes.
    pub sla_minutes: Option<u64>,
    pub tags: Vec<String>,
    pub governance: Governance,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub governance_detail: Option<GovernanceRecord>,
}

fn entry(p: &Pipeline) -> Entry {
    let minutes = |d: &Option<String>| {
        d.as_deref()
            .and_then(|d| crate::units::duration_secs(d).ok())
            .map(|s| s.div_ceil(60))
    };
    let mut tags: Vec<String> = [&p.job.integration, &p.job.processing_type, &p.job.job_type]
        .into_iter()
        .flatten()
        .map(|t| t.to_lowercase())
        .collect();
    if let Some(ns) = &p.namespace {
        tags.push(format!("namespace:{ns}"));
    }
    tags.dedup();
    Entry {
        pipeline: p.id.clone(),
        owner: p
            .config
            .owner
            .clone()
            .or_else(|| p.job.owners.first().cloned()),
        team: p.config.team.clone(),
        domain: p.config.domain.clone(),
        criticality: p.config.criticality,
        runbook_url: p.config.runbook_url.clone(),
        runbook_status: status_of(p.config.runbook_url.as_deref()),
        sla_minutes: p
            .config
            .sla
            .as_ref()
            .and_then(|s| minutes(&s.max_duration).or_else(|| minutes(&s.max_interval))),
        tags,
        governance: p.governance.as_ref().map_or(Governance::None, |g| g.status),
        governance_detail: p.governance.clone(),
    }
}

/// Filters of `GET /v1/runbooks`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// A case-insensitive substring of the pipeline id, owner or team.
    pub search: Option<String>,
    pub team: Option<String>,
    pub domain: Option<String>,
    pub criticality: Option<Criticality>,
    pub owner: Option<String>,
    /// Whether pipelines without a runbook are listed (default yes).
    pub include_missing: bool,
}

/// Coverage of the pipelines the filter selects.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    pub pipelines: usize,
    pub configured: usize,
    pub missing: usize,
    pub invalid_format: usize,
    /// configured / pipelines (1.0 with no pipelines).
    pub coverage_ratio: f64,
}

/// `GET /v1/runbooks`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Catalog {
    pub items: Vec<Entry>,
    pub coverage: Coverage,
    pub truncated: bool,
    pub warnings: Vec<String>,
}

/// The catalog for a viewer.
pub async fn catalog(svc: &Services, p: &Principal, f: &Filter) -> Result<Catalog, DomainError> {
    require_role(p, Role::Viewer, "read the runbook catalog")?;
    let search = f.search.as_ref().map(|s| s.to_lowercase());
    let mut out = Catalog {
        items: Vec::new(),
        coverage: Coverage::default(),
        truncated: false,
        warnings: Vec::new(),
    };
    let truncated = super::each(svc, &p.tenant, CATALOG_SCAN, |pl| {
        let e = entry(&pl);
        let keep = f.team.as_ref().is_none_or(|t| e.team.as_ref() == Some(t))
            && f.domain
                .as_ref()
                .is_none_or(|d| e.domain.as_ref() == Some(d))
            && f.criticality.is_none_or(|c| e.criticality == Some(c))
            && f.owner.as_ref().is_none_or(|o| e.owner.as_ref() == Some(o))
            && search.as_ref().is_none_or(|s| {
                [Some(&e.pipeline), e.owner.as_ref(), e.team.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|v| v.to_lowercase().contains(s))
            });
        if !keep {
            return;
        }
        out.coverage.pipelines += 1;
        match e.runbook_status {
            RunbookStatus::Configured => out.coverage.configured += 1,
            RunbookStatus::Missing => out.coverage.missing += 1,
            RunbookStatus::InvalidFormat => out.coverage.invalid_format += 1,
        }
        if f.include_missing || e.runbook_status != RunbookStatus::Missing {
            out.items.push(e);
        }
    })
    .await?;
    if truncated {
        out.truncated = true;
        out.warnings.push(format!(
            "more than {CATALOG_SCAN} pipelines: the catalog covers the first {CATALOG_SCAN}"
        ));
    }
    out.coverage.coverage_ratio = if out.coverage.pipelines == 0 {
        1.0
    } else {
        out.coverage.configured as f64 / out.coverage.pipelines as f64
    };
    Ok(out)
}

/// Sets pipeline `id`'s governance status (responder or above; `None`
/// clears it), audited with the status before and after.
pub async fn set_governance(
    svc: &Services,
    p: &Principal,
    id: &str,
    status: Governance,
    note: Option<String>,
) -> Result<Entry, DomainError> {
    require_role(p, Role::Responder, "change runbook governance")?;
    check_id("pipeline", id)?;
    let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 1000) {
        return Err(DomainError::bad_input(
            "invalid_governance",
            "a note has at most 1000 characters",
        ));
    }
    crate::retry::until_won!(crate::retry::BUSY, || DomainError::conflict(
        "busy",
        "the pipeline kept changing; try again",
    ), async || -> Result<_, crate::retry::Retry> {
        let (mut pl, version) = load(svc, &p.tenant, id).await?.ok_or_else(|| {
            DomainError::NotFound(format!("no pipeline {}", crate::limits::truncate(id, 80)))
        })?;
        let before = pl
            .governance
            .as_ref()
            .map_or(Governance::None, |g| g.status);
        pl.governance = (status != Governance::None).then(|| GovernanceRecord {
            status,
            note: note.as_deref().map(crate::redact::redact_text),
            by: p.name.clone(),
            at: svc.clock.now(),
        });
        pl.updated_at = svc.clock.now();
        let mut work = Work::new(svc);
        work.put(
            keys::item(pipelines_pk(&p.tenant), id.to_owned(), version + 1, &pl)?,
            Condition::Version(version),
        );
        work.audit(
            &p.tenant,
            &p.name,
            "runbook.governance",
            id,
            serde_json::json!({"status": before}),
            serde_json::json!({"status": status, "note": pl.governance.as_ref().and_then(|g| g.note.clone())}),
        )?;
        work.commit().await.map_err(crate::retry::Retry::from_commit)?;
        Ok(entry(&pl))
        })
    .await
}

/// The pipeline's runbook as an alert link, when it is a valid URL.
pub fn runbook_link(pl: &Pipeline) -> Option<serde_json::Value> {
    pl.config
        .runbook_url
        .as_deref()
        .filter(|u| status_of(Some(u)) == RunbookStatus::Configured)
        .map(|u| serde_json::json!({"href": u, "text": "runbook"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runbook_urls_are_classified() {
        assert_eq!(status_of(None), RunbookStatus::Missing);
        assert_eq!(status_of(Some("  ")), RunbookStatus::Missing);
        assert_eq!(
            status_of(Some("https://runbooks.example/etl-orders")),
            RunbookStatus::Configured
        );
        for bad in [
            "see wiki",
            "ftp://x.example/a",
            "https:///nohost",
            "https://a b.example/",
        ] {
            assert_eq!(status_of(Some(bad)), RunbookStatus::InvalidFormat, "{bad}");
        }
    }
}
