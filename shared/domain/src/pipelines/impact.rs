//! What breaks downstream when a pipeline fails: from the pipeline's output
//! datasets to the pipelines that read them, to their outputs, and so on.
//! The walk visits each pipeline once (lineage may have cycles), stops at
//! [`MAX_DEPTH`] levels or [`MAX_NODES`] nodes, and says so (`degraded`,
//! `warnings`) when it stopped early or when lineage is missing.

use std::collections::{BTreeMap, BTreeSet};

use firewatch_types::{Principal, Role, TenantId};
use serde::Serialize;

use super::{check_id, dataset_pk, load, Criticality, State};
use crate::auth::require_role;
use crate::ports::Query;
use crate::{DomainError, Services};

pub const MAX_DEPTH: usize = 10;
pub const MAX_NODES: usize = 500;
/// Consumers read per dataset.
const MAX_CONSUMERS: usize = 200;

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub id: String,
    /// `pipeline` or `dataset`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub criticality: Option<Criticality>,
}

/// An edge: a pipeline writes a dataset, or a dataset is read by a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
}

/// A pipeline downstream of the one asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consumer {
    pub pipeline: String,
    /// Pipelines between (1: reads an output directly).
    pub depth: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub criticality: Option<Criticality>,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// `GET /v1/pipelines/{id}/impact`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Impact {
    pub pipeline: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Most critical first, then nearest.
    pub downstream_consumers: Vec<Consumer>,
    /// Datasets reached.
    pub downstream_datasets: Vec<String>,
    pub degraded: bool,
    pub warnings: Vec<String>,
    /// Set on the deprecated `/lineage` alias.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement_endpoint: Option<String>,
}

impl Impact {
    /// One line for an alert or a triage fact.
    pub fn summary(&self) -> String {
        if self.downstream_consumers.is_empty() {
            return if self.degraded {
                "downstream impact unknown: no lineage".into()
            } else {
                "no downstream consumers".into()
            };
        }
        let names: Vec<String> = self
            .downstream_consumers
            .iter()
            .take(5)
            .map(|c| match c.criticality {
                Some(k) => format!(
                    "{} ({})",
                    c.pipeline,
                    serde_json::to_value(k)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
                None => c.pipeline.clone(),
            })
            .collect();
        let more = self.downstream_consumers.len().saturating_sub(5);
        format!(
            "{} downstream consumer{} through {} dataset{}: {}{}",
            self.downstream_consumers.len(),
            if self.downstream_consumers.len() == 1 {
                ""
            } else {
                "s"
            },
            self.downstream_datasets.len(),
            if self.downstream_datasets.len() == 1 {
                ""
            } else {
                "s"
            },
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )
    }
}

/// The pipelines that read `dataset`.
async fn consumers(
    svc: &Services,
    t: &TenantId,
    dataset: &str,
) -> Result<Vec<String>, DomainError> {
    let page = svc
        .store
        .query(Query {
            pk: dataset_pk(t, dataset),
            sk_prefix: "C#".into(),
            after: None,
            limit: MAX_CONSUMERS,
            descending: false,
        })
        .await?;
    Ok(page
        .items
        .iter()
        .filter_map(|i| i.sk.strip_prefix("C#").map(str::to_owned))
        .collect())
}

/// The downstream graph of pipeline `id` of `tenant`.
pub async fn downstream(svc: &Services, t: &TenantId, id: &str) -> Result<Impact, DomainError> {
    let (start, _) = load(svc, t, id).await?.ok_or_else(|| {
        DomainError::NotFound(format!("no pipeline {}", crate::limits::truncate(id, 80)))
    })?;
    downstream_from(svc, t, &start).await
}

/// The downstream graph of `start` as given (a pipeline being written).
pub async fn downstream_from(
    svc: &Services,
    t: &TenantId,
    start: &super::Pipeline,
) -> Result<Impact, DomainError> {
    let id = start.id.as_str();
    let mut out = Impact {
        pipeline: id.to_owned(),
        nodes: vec![Node {
            id: id.to_owned(),
            kind: "pipeline",
            state: Some(start.state),
            criticality: start.config.criticality,
        }],
        edges: Vec::new(),
        downstream_consumers: Vec::new(),
        downstream_datasets: Vec::new(),
        degraded: false,
        warnings: Vec::new(),
        deprecated: None,
        replacement_endpoint: None,
    };
    if start.outputs.is_empty() {
        out.degraded = true;
        out.warnings.push(format!(
            "no lineage for {}: no run has reported output datasets, so what it feeds is unknown",
            crate::limits::truncate(id, 80)
        ));
        return Ok(out);
    }
    let mut seen_pipelines: BTreeSet<String> = BTreeSet::from([id.to_owned()]);
    let mut seen_datasets: BTreeSet<String> = BTreeSet::new();
    let mut edges: BTreeSet<Edge> = BTreeSet::new();
    let mut frontier: Vec<(String, Vec<String>)> = vec![(id.to_owned(), start.outputs.clone())];
    let mut depth = 0;
    let mut consumers_found: BTreeMap<String, Consumer> = BTreeMap::new();
    let mut missing_lineage = 0;
    while !frontier.is_empty() {
        depth += 1;
        if depth > MAX_DEPTH {
            out.degraded = true;
            out.warnings.push(format!(
                "the graph goes deeper than {MAX_DEPTH} levels; deeper consumers are not shown"
            ));
            break;
        }
        let mut next_ids: Vec<String> = Vec::new();
        for (from, outputs) in &frontier {
            for d in outputs {
                edges.insert(Edge {
                    from: from.clone(),
                    to: d.clone(),
                });
                if !seen_datasets.insert(d.clone()) {
                    continue;
                }
                for c in consumers(svc, t, d).await? {
                    edges.insert(Edge {
                        from: d.clone(),
                        to: c.clone(),
                    });
                    if seen_pipelines.insert(c.clone()) {
                        next_ids.push(c);
                    }
                }
            }
        }
        if seen_pipelines.len() + seen_datasets.len() > MAX_NODES {
            out.degraded = true;
            out.warnings.push(format!(
                "the graph has more than {MAX_NODES} nodes; it stops here"
            ));
            break;
        }
        let loaded = futures_util::future::join_all(next_ids.iter().map(|c| load(svc, t, c))).await;
        let mut next = Vec::new();
        for (c, pl) in next_ids.into_iter().zip(loaded) {
            let pl = pl?;
            let (state, criticality, team, outputs) = match pl {
                Some((p, _)) => (p.state, p.config.criticality, p.config.team, p.outputs),
                None => (State::Unknown, None, None, Vec::new()),
            };
            if outputs.is_empty() {
                missing_lineage += 1;
            }
            consumers_found.insert(
                c.clone(),
                Consumer {
                    pipeline: c.clone(),
                    depth,
                    criticality,
                    state,
                    team,
                },
            );
            if !outputs.is_empty() {
                next.push((c, outputs));
            }
        }
        frontier = next;
    }
    if missing_lineage > 0 {
        // Consumers without outputs may feed more; say so without failing.
        out.warnings.push(format!(
            "{missing_lineage} downstream pipeline{} reported no outputs: the graph may go further",
            if missing_lineage == 1 { "" } else { "s" }
        ));
    }
    for d in &seen_datasets {
        out.nodes.push(Node {
            id: d.clone(),
            kind: "dataset",
            state: None,
            criticality: None,
        });
    }
    let mut list: Vec<Consumer> = consumers_found.into_values().collect();
    list.sort_by(|a, b| {
        b.criticality
            .cmp(&a.criticality)
            .then(a.depth.cmp(&b.depth))
            .then(a.pipeline.cmp(&b.pipeline))
    });
    for c in &list {
        out.nodes.push(Node {
            id: c.pipeline.clone(),
            kind: "pipeline",
            state: Some(c.state),
            criticality: c.criticality,
        });
    }
    out.downstream_consumers = list;
    out.downstream_datasets = seen_datasets.into_iter().collect();
    out.edges = edges.into_iter().collect();
    Ok(out)
}

/// [`downstream`] for a viewer.
pub async fn impact(svc: &Services, p: &Principal, id: &str) -> Result<Impact, DomainError> {
    require_role(p, Role::Viewer, "read pipeline impact")?;
    check_id("the pipeline id", id)?;
    downstream(svc, &p.tenant, id).await
}
