//! Playbooks: declarative remediation (YAML definitions, templated with
//! minijinja), offered on the incidents they match, dry-run with their
//! read-only steps as preflight, approved by a second person when the
//! playbook says so, run step by step through the outbox and rolled back.
//! See docs/PLAYBOOKS.md.
//!
//! - [`definition`]: the file format, parsed and validated at load;
//! - [`template`]: rendering with strict variables and masked secrets;
//! - [`runs`]: the run and its lifecycle (dry-run, approve, reject, execute,
//!   roll back), each transition one change of the incident;
//! - [`steps`]: performing one step, the dispatcher's effect.

pub mod chat;
pub mod definition;
pub mod render;
pub mod run;
pub mod runs;
pub mod send;
pub mod steps;

use std::collections::BTreeMap;

use firewatch_types::Incident;
use serde::Serialize;

pub use definition::{DefinitionError, Loaded, Playbook};

use crate::DomainError;

/// The playbooks a process serves, loaded once at start.
#[derive(Debug, Default)]
pub struct Catalog {
    loaded: Loaded,
}

impl Catalog {
    pub fn new(loaded: Loaded) -> Self {
        Self { loaded }
    }

    pub fn playbooks(&self) -> &[Playbook] {
        &self.loaded.playbooks
    }

    /// The files that were refused, with why.
    pub fn errors(&self) -> &[DefinitionError] {
        &self.loaded.errors
    }

    pub fn get(&self, name: &str) -> Option<&Playbook> {
        self.loaded.playbooks.iter().find(|p| p.name() == name)
    }

    /// The playbooks offered for `inc`, in name order.
    pub fn matching<'a>(&'a self, inc: &'a Incident) -> impl Iterator<Item = &'a Playbook> + 'a {
        self.loaded
            .playbooks
            .iter()
            .filter(move |p| matches(p, inc))
    }
}

/// A catalog loaded the first time it is needed, so a function that needs
/// it only now and then (the incidents function, for assisted triage) keeps
/// its cold start short.
pub struct LazyCatalog {
    cell: tokio::sync::OnceCell<std::sync::Arc<Catalog>>,
    load: Box<dyn Fn() -> futures_util::future::BoxFuture<'static, Catalog> + Send + Sync>,
}

impl LazyCatalog {
    /// A catalog already loaded.
    pub fn ready(catalog: std::sync::Arc<Catalog>) -> Self {
        Self {
            cell: tokio::sync::OnceCell::new_with(Some(catalog)),
            load: Box::new(|| Box::pin(async { Catalog::default() })),
        }
    }

    /// A catalog `load` reads on first use.
    pub fn new<F, Fut>(load: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Catalog> + Send + 'static,
    {
        Self {
            cell: tokio::sync::OnceCell::new(),
            load: Box::new(move || Box::pin(load())),
        }
    }

    pub async fn get(&self) -> std::sync::Arc<Catalog> {
        self.cell
            .get_or_init(|| async { std::sync::Arc::new((self.load)().await) })
            .await
            .clone()
    }
}

/// The names of the playbooks offered for `inc`, in catalog order.
pub fn offered_names(catalog: &Catalog, inc: &Incident) -> Vec<String> {
    catalog.matching(inc).map(|p| p.name().to_owned()).collect()
}

/// True when the incident meets every condition of the playbook's `match`.
pub fn matches(pb: &Playbook, inc: &Incident) -> bool {
    let m = &pb.matcher;
    if !m.severity.is_empty() && !m.severity.contains(&inc.severity) {
        return false;
    }
    m.labels.iter().all(|(k, want)| {
        let Some(have) = inc.labels.get(k) else {
            return false;
        };
        let w = want.value.as_str();
        if w == "*" {
            true
        } else if w.len() >= 2 && w.starts_with('/') && w.ends_with('/') {
            // Checked at load; a pattern that fails now matches nothing.
            regex_lite::Regex::new(&w[1..w.len() - 1]).is_ok_and(|r| r.is_match(have))
        } else {
            have == w
        }
    })
}

/// What templates see of an incident.
pub fn incident_value(inc: &Incident) -> serde_json::Value {
    serde_json::json!({
        "id": inc.id,
        "title": inc.title,
        "severity": inc.severity,
        "state": inc.state,
        "source": inc.source,
        "fingerprint": inc.fingerprint,
        "labels": inc.labels,
        "annotations": inc.annotations,
    })
}

/// The parameters of a run: each override checked against the playbook,
/// every other parameter from its default (rendered over the incident).
pub fn resolve_params(
    pb: &Playbook,
    inc: &Incident,
    overrides: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, DomainError> {
    if let Some(unknown) = overrides.keys().find(|k| !pb.params.contains_key(*k)) {
        return Err(DomainError::bad_input(
            "unknown_param",
            format!(
                "playbook {} has no parameter `{}`",
                pb.name(),
                crate::limits::shown_name(unknown)
            ),
        ));
    }
    let scope = crate::template::Scope::masked(incident_value(inc), BTreeMap::new(), &[]);
    let mut out = BTreeMap::new();
    for (name, spec) in &pb.params {
        let value = match (overrides.get(name), &spec.default) {
            (Some(v), _) => v.clone(),
            (None, Some(d)) => scope.render(&d.value).map_err(|e| {
                DomainError::bad_input(
                    "param_default_failed",
                    format!("parameter `{name}` has no value for this incident ({e}); give it"),
                )
            })?,
            (None, None) => {
                return Err(DomainError::bad_input(
                    "missing_param",
                    format!("parameter `{name}` is required"),
                ))
            }
        };
        if value.len() > 1024 {
            return Err(DomainError::bad_input(
                "param_too_long",
                format!("parameter `{name}` is over 1024 characters"),
            ));
        }
        if let Some(allowed) = &spec.allowed {
            if !allowed.contains(&value) {
                return Err(DomainError::bad_input(
                    "param_not_allowed",
                    format!("parameter `{name}` must be one of: {}", allowed.join(", ")),
                ));
            }
        }
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// A playbook as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub name: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub risk: definition::Risk,
    pub steps: Vec<String>,
    pub rollback: Vec<String>,
    /// Parameters with their values for an incident (when listed for one),
    /// else their defaults as written.
    pub params: BTreeMap<String, serde_json::Value>,
    /// `never`, `always`, or the rule.
    pub approval: String,
}

impl Summary {
    pub fn of(pb: &Playbook, params: Option<BTreeMap<String, String>>) -> Self {
        let names =
            |steps: &[definition::Step]| steps.iter().map(|s| s.name.value.clone()).collect();
        let params = match params {
            Some(p) => p
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
            None => pb
                .params
                .iter()
                .map(|(k, spec)| {
                    (
                        k.clone(),
                        serde_json::json!({
                            "default": spec.default.as_ref().map(|d| d.value.clone()),
                            "allowed": spec.allowed,
                        }),
                    )
                })
                .collect(),
        };
        Self {
            name: pb.name().to_owned(),
            title: pb.title.clone(),
            description: pb.description.clone(),
            risk: pb.risk,
            steps: names(&pb.steps),
            rollback: names(&pb.rollback),
            params,
            approval: match pb.approval.as_ref().map(|a| &a.value) {
                Some(definition::Approval::Always(definition::ApprovalWord::Never)) => {
                    "never".into()
                }
                None | Some(definition::Approval::Always(definition::ApprovalWord::Always)) => {
                    "always".into()
                }
                Some(definition::Approval::When { when }) => format!("when {when}"),
            },
        }
    }
}
