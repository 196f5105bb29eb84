//! Routing: which chat destinations an incident's thread goes to.
//!
//! Each tenant has rules; a rule matches incidents by source, severity and
//! labels (every given condition must hold) and names destinations. An
//! incident goes to every destination of every matching rule; when no rule
//! matches, to the default destinations from the environment.

use firewatch_types::{Destination, Incident, Principal, Role, Severity, SourceKind, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::auth::require_role;
use crate::config::{self, Config};
use crate::keys::routes_pk;
use crate::{DomainError, Services};

/// What a rule matches; empty lists and maps match everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    #[serde(default)]
    pub sources: Vec<SourceKind>,
    #[serde(default)]
    pub severities: Vec<Severity>,
    /// Label values that must all be equal.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Match {
    pub fn matches(&self, inc: &Incident) -> bool {
        (self.sources.is_empty() || self.sources.contains(&inc.source))
            && (self.severities.is_empty() || self.severities.contains(&inc.severity))
            && self
                .labels
                .iter()
                .all(|(k, v)| inc.labels.get(k) == Some(v))
    }
}

/// A routing rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(default)]
    pub id: String,
    #[serde(default, rename = "match")]
    pub when: Match,
    pub destinations: Vec<Destination>,
    /// Open a tracker ticket for every incident the rule matches, when it
    /// opens (docs/TICKETS.md).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ticket: bool,
    /// The escalation policy of the incidents the rule matches
    /// (docs/ESCALATION.md); the first matching rule naming one wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
    /// Flap damping for the incidents the rule matches, instead of the
    /// defaults (docs/NOISE.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapping: Option<crate::settings::FlapRule>,
    /// The stored version: kept in the item, not in its data (a build that
    /// does not know the field still reads the rule), so it is neither
    /// written nor shown; ignored on the way in.
    #[serde(default, skip_serializing)]
    pub version: u64,
}

crate::work::record!(Route, "route", routes_pk);

impl Config for Route {
    const NOUN: &'static str = "route";
    const PLURAL: &'static str = "routes";
    const LIMIT: usize = MAX_ROUTES;
    const TOO_MANY: &'static str = "too_many_routes";
}

/// Routing rules one tenant may have.
pub const MAX_ROUTES: usize = 1000;

fn check_id(id: &str) -> Result<(), DomainError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(DomainError::bad_input(
            "invalid_route_id",
            "route ids are 1-64 letters, digits, '-' or '_'",
        ))
    }
}

/// Creates or replaces a rule of the admin's tenant.
pub async fn put(
    svc: &Services,
    admin: &Principal,
    id: &str,
    mut route: Route,
) -> Result<Route, DomainError> {
    require_role(admin, Role::Admin, "change routing")?;
    check_id(id)?;
    if route.destinations.is_empty() {
        return Err(DomainError::bad_input(
            "invalid_route",
            "a route needs at least one destination",
        ));
    }
    // Only channels someone in them linked to this tenant.
    for dest in &route.destinations {
        crate::routing::links::require_destination(svc, &admin.tenant, dest).await?;
    }
    route.id = id.to_owned();
    config::put(svc, admin, route).await
}

/// The rules of a tenant, by id.
pub async fn list(svc: &Services, tenant: &TenantId) -> Result<Vec<Route>, DomainError> {
    config::all(svc, tenant).await
}

/// Deletes a rule of the admin's tenant.
pub async fn delete(svc: &Services, admin: &Principal, id: &str) -> Result<(), DomainError> {
    require_role(admin, Role::Admin, "change routing")?;
    check_id(id)?;
    let route: Route = config::find(svc, &admin.tenant, id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("no route {id}")))?;
    config::delete(svc, admin, &route).await
}

/// Where an incident's threads go.
pub async fn destinations(svc: &Services, inc: &Incident) -> Result<Vec<Destination>, DomainError> {
    let mut out: Vec<Destination> = Vec::new();
    for route in list(svc, &inc.tenant).await? {
        if route.when.matches(inc) {
            for d in route.destinations {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
    }
    if out.is_empty() {
        // The operator's channels serve only the tenants the operator names.
        let serves = svc.settings.default_channel_tenants.contains(&inc.tenant);
        out = svc
            .settings
            .default_destinations
            .iter()
            .filter(|d| serves || **d == Destination::Console)
            .cloned()
            .collect();
    } else if svc
        .settings
        .default_destinations
        .contains(&Destination::Console)
        && !out.contains(&Destination::Console)
    {
        // The terminal of `firewatch dev` always shows every thread.
        out.push(Destination::Console);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rules_version_lives_in_its_item_not_its_data() {
        // A build that does not know `version` refuses unknown fields, so
        // the stored data must not carry it.
        let rule = Route {
            id: "ops".into(),
            when: Match::default(),
            destinations: vec![Destination::Console],
            ticket: false,
            escalation: None,
            flapping: None,
            version: 3,
        };
        let data = serde_json::to_value(&rule).unwrap();
        assert!(data.get("version").is_none(), "{data}");
        let item = crate::keys::item("t#ROUTE".into(), "ops".into(), 3, &rule).unwrap();
        let back: Route = crate::work::decode(&item).unwrap();
        assert_eq!(back.version, 3);
    }
}
