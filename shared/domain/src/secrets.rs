//! Whose secret a definition may use, and a tenant's own secrets.
//!
//! A secret is the operator's or a tenant's. The operator's
//! (`FIREWATCH_SECRET_<NAME>`, `FIREWATCH_PLAYBOOK_SECRETS`, Secrets
//! Manager's `FIREWATCH_PLAYBOOK_SECRETS_ARN`: the [`SecretSource`] port) may
//! be used only by definitions the operator ships (playbook and smoke-check
//! files, built-in checks). Definitions made through the API (smoke checks,
//! escalation policies' PagerDuty routing keys) use their tenant's secrets
//! only, which the tenant's admins manage at `/v1/secrets`: names and times
//! readable, values write-only (never returned, never logged), every change
//! audited. Names and times are kept under the tenant's `#SECRET`
//! partition; values in the [`TenantVault`] when one is configured (on AWS,
//! Secrets Manager under a per-tenant path), else beside their names.
//!
//! [`TenantVault`]: crate::ports::TenantVault
//!
//! [`SecretSource`]: crate::ports::SecretSource

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use firewatch_types::{Principal, Role, TenantId};
use serde::{Deserialize, Serialize};

use crate::auth::require_role;
use crate::ports::{Condition, Query};
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// Longest secret value kept.
pub const MAX_VALUE_BYTES: usize = 8 * 1024;
/// Most secrets one tenant keeps.
pub const MAX_PER_TENANT: usize = 200;

/// Whose secrets a definition may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Shipped by the operator (a file, a bucket prefix, built in).
    Operator,
    /// Made through the API by this tenant.
    Tenant(TenantId),
}

/// A tenant secret as stored: the value never leaves through the API; with
/// a vault it is not in the table at all (empty here).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    value: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    updated_by: String,
}

/// What the API shows of a tenant secret: its name and times, never its
/// value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretInfo {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

impl From<&Stored> for SecretInfo {
    fn from(s: &Stored) -> Self {
        Self {
            name: s.name.clone(),
            created_at: s.created_at,
            updated_at: s.updated_at,
            updated_by: s.updated_by.clone(),
        }
    }
}

pub use crate::limits::is_identifier;

fn check_name(name: &str) -> Result<(), DomainError> {
    if is_identifier(name) {
        Ok(())
    } else {
        Err(DomainError::bad_input(
            "invalid_secret_name",
            "a secret's name is 1-64 letters, digits and '_', starting with a letter or '_'",
        ))
    }
}

async fn load(
    svc: &Services,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<(Stored, u64)>, DomainError> {
    let Some(item) = svc.store.get(&keys::secrets_pk(tenant), name).await? else {
        return Ok(None);
    };
    let s: Stored = serde_json::from_str(&item.data)
        .map_err(|_| DomainError::Internal(format!("secret {name} is not readable")))?;
    Ok(Some((s, item.version)))
}

/// Sets (creates or replaces) a tenant secret. Admins only; audited with
/// the name, never the value.
pub async fn put(
    svc: &Services,
    p: &Principal,
    name: &str,
    value: &str,
) -> Result<SecretInfo, DomainError> {
    require_role(p, Role::Admin, "manage secrets")?;
    check_name(name)?;
    if value.is_empty() || value.len() > MAX_VALUE_BYTES {
        return Err(DomainError::bad_input(
            "invalid_secret_value",
            format!("a secret's value is 1 to {} KB", MAX_VALUE_BYTES / 1024),
        ));
    }
    let now = svc.clock.now();
    let existing = load(svc, &p.tenant, name).await?;
    if existing.is_none() && list(svc, p).await?.len() >= MAX_PER_TENANT {
        return Err(DomainError::bad_input(
            "too_many_secrets",
            format!("a tenant keeps at most {MAX_PER_TENANT} secrets"),
        ));
    }
    let (created_at, condition, version, action) = match &existing {
        Some((s, v)) => (s.created_at, Condition::Version(*v), v + 1, "secret.update"),
        None => (now, Condition::Absent, 1, "secret.create"),
    };
    // With a vault, the value goes there first: the table then names a
    // secret whose value exists.
    if let Some(vault) = &svc.vault {
        vault
            .put(&p.tenant, name, value)
            .await
            .map_err(DomainError::Unavailable)?;
    }
    let stored = Stored {
        name: name.to_owned(),
        value: if svc.vault.is_some() {
            String::new()
        } else {
            value.to_owned()
        },
        created_at,
        updated_at: now,
        updated_by: p.name.clone(),
    };
    let info = SecretInfo::from(&stored);
    let mut work = Work::new(svc);
    work.put(
        keys::item(
            keys::secrets_pk(&p.tenant),
            name.to_owned(),
            version,
            &stored,
        )?,
        condition,
    );
    work.audit(
        &p.tenant,
        &p.name,
        action,
        &format!("secret:{name}"),
        serde_json::Value::Null,
        serde_json::json!({"name": name}),
    )?;
    work.commit().await.map_err(|e| {
        if e.is_lost_race() {
            DomainError::Conflict {
                code: "version_conflict",
                message: format!("secret {name} changed meanwhile; try again"),
            }
        } else {
            e.into()
        }
    })?;
    Ok(info)
}

/// Deletes a tenant secret. Admins only; audited.
pub async fn delete(svc: &Services, p: &Principal, name: &str) -> Result<(), DomainError> {
    require_role(p, Role::Admin, "manage secrets")?;
    check_name(name)?;
    let Some((_, version)) = load(svc, &p.tenant, name).await? else {
        return Err(DomainError::NotFound(format!("no secret named {name}")));
    };
    let mut work = Work::new(svc);
    work.delete(
        keys::secrets_pk(&p.tenant),
        name,
        Condition::Version(version),
    );
    work.audit(
        &p.tenant,
        &p.name,
        "secret.delete",
        &format!("secret:{name}"),
        serde_json::json!({"name": name}),
        serde_json::Value::Null,
    )?;
    work.commit().await?;
    // Unlisted and unresolvable from here on; the value follows.
    if let Some(vault) = &svc.vault {
        if let Err(e) = vault.delete(&p.tenant, name).await {
            tracing::warn!(error = %e, "a deleted secret's value was not removed from the vault");
        }
    }
    Ok(())
}

/// Moves the tenant's secret values kept in the table (set before a vault
/// was configured) into the vault, each then blanked in the table in a
/// write audited as `secret.move` (by name, never the value). Admins only;
/// `400 no_vault` when no vault is configured. Answers the names moved
/// (and any changed while they moved); running it again moves nothing. Until a value is moved, it is read from
/// the table, so nothing breaks in between.
pub async fn move_to_vault(svc: &Services, p: &Principal) -> Result<Moved, DomainError> {
    require_role(p, Role::Admin, "manage secrets")?;
    let Some(vault) = &svc.vault else {
        return Err(DomainError::bad_input(
            "no_vault",
            "no tenant secrets vault is configured (FIREWATCH_TENANT_SECRETS_PREFIX): values stay beside their names",
        ));
    };
    let (mut moved, mut changed) = (Vec::new(), Vec::new());
    for info in list(svc, p).await? {
        let Some((mut stored, version)) = load(svc, &p.tenant, &info.name).await? else {
            continue;
        };
        if stored.value.is_empty() {
            continue;
        }
        vault
            .put(&p.tenant, &stored.name, &stored.value)
            .await
            .map_err(DomainError::Unavailable)?;
        stored.value = String::new();
        let mut work = Work::new(svc);
        work.put(
            keys::item(
                keys::secrets_pk(&p.tenant),
                stored.name.clone(),
                version + 1,
                &stored,
            )?,
            Condition::Version(version),
        );
        work.audit(
            &p.tenant,
            &p.name,
            "secret.move",
            &format!("secret:{}", stored.name),
            serde_json::Value::Null,
            serde_json::json!({"name": stored.name, "to": "vault"}),
        )?;
        match work.commit().await {
            Ok(()) => moved.push(stored.name),
            Err(e) if e.is_lost_race() => {
                // Changed or deleted meanwhile. Deleted: the value this
                // move put in the vault goes too. Changed: its new value
                // went to the vault by its own put, which this move's may
                // have overtaken, so the admin is told to set it again.
                match load(svc, &p.tenant, &stored.name).await? {
                    None => {
                        if let Err(e) = vault.delete(&p.tenant, &stored.name).await {
                            tracing::warn!(error = %e, "a secret deleted while it moved was not removed from the vault");
                        }
                    }
                    Some(_) => changed.push(stored.name),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Moved { moved, changed })
}

/// What [`move_to_vault`] did: the names moved, and those changed while
/// they moved (set them again to be sure the vault holds the newest value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    pub moved: Vec<String>,
    pub changed: Vec<String>,
}

/// The tenant's secrets, by name, without their values. Admins only.
pub async fn list(svc: &Services, p: &Principal) -> Result<Vec<SecretInfo>, DomainError> {
    require_role(p, Role::Admin, "read secrets")?;
    let page = svc
        .store
        .query(Query::all(keys::secrets_pk(&p.tenant), MAX_PER_TENANT + 1))
        .await?;
    page.items
        .iter()
        .map(|i| {
            serde_json::from_str::<Stored>(&i.data)
                .map(|s| SecretInfo::from(&s))
                .map_err(|_| DomainError::Internal("a secret is not readable".into()))
        })
        .collect()
}

/// The values of `names`, read now from `owner`'s secrets. A name the owner
/// does not have is an error naming it (never another owner's secret of
/// the same name).
pub async fn resolve(
    svc: &Services,
    owner: &Owner,
    names: &[String],
) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for n in names {
        let value = match owner {
            Owner::Operator => svc
                .secrets
                .get(n)
                .await
                .map_err(|e| format!("secret {n} could not be read: {e}"))?,
            Owner::Tenant(t) => {
                let named = load(svc, t, n)
                    .await
                    .map_err(|e| format!("secret {n} could not be read: {e}"))?;
                match (named, &svc.vault) {
                    (None, _) => None,
                    // Kept beside its name before the vault was configured
                    // (and not yet moved: `move_to_vault`): read where it is.
                    (Some((s, _)), Some(_)) if !s.value.is_empty() => Some(s.value),
                    (Some(_), Some(vault)) => vault
                        .get(t, n)
                        .await
                        .map_err(|e| format!("secret {n} could not be read: {e}"))?,
                    // Without a vault, a value kept in one is not here:
                    // unreadable, never an empty secret.
                    (Some((s, _)), None) if s.value.is_empty() => {
                        return Err(format!(
                            "secret {n} could not be read: its value is kept in the tenant secrets vault, which this process has not configured"
                        ))
                    }
                    (Some((s, _)), None) => Some(s.value),
                }
            }
        };
        match value {
            Some(v) => {
                out.insert(n.clone(), v);
            }
            None => {
                return Err(match owner {
                    Owner::Operator => format!("secret {n} is not configured"),
                    Owner::Tenant(_) => {
                        format!(
                            "secret {n} is not one of this tenant's secrets (PUT /v1/secrets/{n})"
                        )
                    }
                })
            }
        }
    }
    Ok(out)
}
