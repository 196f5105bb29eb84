//! Chat identities: which firewatch principal a chat user is. A click or a
//! command from an unmapped user changes nothing.

use chrono::{DateTime, Utc};
use firewatch_types::{Principal, Role, TenantId};
use serde::{Deserialize, Serialize};

use crate::auth::require_role;
use crate::ports::{Condition, Query};
use crate::retry::Retry;
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// One mapped chat user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatIdentity {
    pub platform: String,
    /// Slack team id, Discord guild id, Telegram chat id: where the user acts.
    pub workspace: String,
    pub user_id: String,
    pub tenant: TenantId,
    pub role: Role,
    /// The person this chat user is, when the admin said (the name their
    /// API keys act as); else they act as `platform:user_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

use crate::keys::tenant_chat_ids_pk as tenant_ids_pk;
use crate::keys::CHAT_IDS_PK;
pub use crate::routing::links::PLATFORMS;

fn check_part(what: &str, v: &str) -> Result<(), DomainError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::bad_input(
            "invalid_field",
            format!("{what} must be 1-64 letters, digits, '_' or '-'"),
        ))
    }
}

fn check(platform: &str, workspace: &str, user_id: &str) -> Result<(), DomainError> {
    if !PLATFORMS.contains(&platform) {
        return Err(DomainError::bad_input(
            "invalid_platform",
            "platform must be slack, discord or telegram",
        ));
    }
    check_part("workspace", workspace)?;
    check_part("user_id", user_id)
}

fn sk(platform: &str, workspace: &str, user_id: &str) -> String {
    format!("{platform}:{workspace}:{user_id}")
}

/// Who a chat user is: the platform, the workspace they act in, their id.
#[derive(Debug, Clone, Copy)]
pub struct ChatUser<'a> {
    pub platform: &'a str,
    pub workspace: &'a str,
    pub user_id: &'a str,
}

/// Maps a chat user to a role in the admin's tenant (replacing an earlier
/// mapping of theirs). The workspace must be linked to the tenant
/// ([`crate::routing::links`]); the mapping is claimed with a conditional
/// write, so two tenants can never both hold one user.
pub async fn register(
    svc: &Services,
    admin: &Principal,
    user: ChatUser<'_>,
    role: Role,
    person: Option<&str>,
) -> Result<ChatIdentity, DomainError> {
    require_role(admin, Role::Admin, "map chat users")?;
    check(user.platform, user.workspace, user.user_id)?;
    if let Some(p) = person {
        if p.trim().is_empty() || p.len() > 100 || p.chars().any(char::is_control) {
            return Err(DomainError::bad_input(
                "invalid_field",
                "person must be 1 to 100 printable characters",
            ));
        }
    }
    crate::routing::links::require_workspace(svc, &admin.tenant, user.platform, user.workspace)
        .await?;
    let key = sk(user.platform, user.workspace, user.user_id);
    let id = ChatIdentity {
        platform: user.platform.to_owned(),
        workspace: user.workspace.to_owned(),
        user_id: user.user_id.to_owned(),
        tenant: admin.tenant.clone(),
        role,
        person: person.map(|p| p.trim().to_owned()),
        created_by: admin.name.clone(),
        created_at: svc.clock.now(),
    };
    crate::retry::until_won!(
        crate::retry::HOT,
        || DomainError::Unavailable("too much contention on this chat user; retry".into()),
        async || -> Result<_, Retry> {
            let existing = svc.store.get(CHAT_IDS_PK, &key).await?;
            let condition = match &existing {
                Some(item) => {
                    if keys::decode::<ChatIdentity>(item)?.tenant != admin.tenant {
                        return Err(DomainError::conflict(
                            "identity_taken",
                            "this chat user is mapped in another tenant",
                        )
                        .into());
                    }
                    Condition::Version(item.version)
                }
                None => Condition::Absent,
            };
            let version = existing.map_or(1, |i| i.version + 1);
            let mut work = Work::new(svc);
            work.put(
                keys::item(CHAT_IDS_PK.into(), key.clone(), version, &id)?,
                condition,
            );
            work.put(
                keys::item(tenant_ids_pk(&admin.tenant), key.clone(), 1, &id)?,
                Condition::Always,
            );
            work.audit(
                &admin.tenant,
                &admin.name,
                "chat.identity.map",
                &key,
                serde_json::Value::Null,
                serde_json::json!({"role": role}),
            )?;
            work.commit().await.map_err(Retry::from_commit)?;
            Ok(id.clone())
        },
    )
    .await
}

/// The mappings of the admin's tenant.
pub async fn list(svc: &Services, admin: &Principal) -> Result<Vec<ChatIdentity>, DomainError> {
    require_role(admin, Role::Admin, "list chat users")?;
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = svc
            .store
            .query(Query {
                pk: tenant_ids_pk(&admin.tenant),
                sk_prefix: String::new(),
                after,
                limit: 500,
                descending: false,
            })
            .await?;
        for item in &page.items {
            out.push(keys::decode(item)?);
        }
        match page.next {
            Some(n) if out.len() < 10_000 => after = Some(n),
            _ => return Ok(out),
        }
    }
}

/// Removes a mapping of the admin's tenant.
pub async fn delete(
    svc: &Services,
    admin: &Principal,
    user: ChatUser<'_>,
) -> Result<(), DomainError> {
    require_role(admin, Role::Admin, "unmap chat users")?;
    check(user.platform, user.workspace, user.user_id)?;
    let key = sk(user.platform, user.workspace, user.user_id);
    let not_mapped = || {
        DomainError::NotFound(format!(
            "{} user {} is not mapped",
            user.platform, user.user_id
        ))
    };
    let item = svc
        .store
        .get(CHAT_IDS_PK, &key)
        .await?
        .ok_or_else(not_mapped)?;
    let id: ChatIdentity = keys::decode(&item)?;
    if id.tenant != admin.tenant {
        return Err(not_mapped());
    }
    let mut work = Work::new(svc);
    work.delete(CHAT_IDS_PK, key.clone(), Condition::Version(item.version));
    work.delete(tenant_ids_pk(&admin.tenant), key.clone(), Condition::Always);
    work.audit(
        &admin.tenant,
        &admin.name,
        "chat.identity.unmap",
        &key,
        serde_json::json!({"role": id.role}),
        serde_json::Value::Null,
    )?;
    work.commit().await?;
    Ok(())
}

/// The principal a chat user acts as, or `None` when unmapped. Its name
/// (`slack:U024BE7LH`) is what timelines and audit events show.
pub async fn principal(
    svc: &Services,
    user: ChatUser<'_>,
) -> Result<Option<Principal>, DomainError> {
    if check(user.platform, user.workspace, user.user_id).is_err() {
        return Ok(None);
    }
    let key = sk(user.platform, user.workspace, user.user_id);
    Ok(match svc.store.get(CHAT_IDS_PK, &key).await? {
        Some(item) => {
            let id: ChatIdentity = keys::decode(&item)?;
            Some(Principal {
                name: id
                    .person
                    .unwrap_or_else(|| format!("{}:{}", user.platform, user.user_id)),
                tenant: id.tenant,
                role: id.role,
            })
        }
        None => None,
    })
}
