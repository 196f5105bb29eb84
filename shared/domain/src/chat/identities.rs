//! Chat identities: which firewatch principal a chat user is. A click or a
//! command from an unmapped user changes nothing.

use chrono::{DateTime, Utc};
use firewatch_types::{Principal, Role, TenantId};
use serde::{Deserialize, Serialize};

use crate::auth::require_role;
use crate::ports::{Condition, Query};
use crate::{keys, DomainError, Services};

/// Global: a chat user id decides the tenant.
const CHAT_IDS_PK: &str = "_#CHATID";

/// One mapped chat user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatIdentity {
    pub platform: String,
    pub user_id: String,
    pub tenant: TenantId,
    pub role: Role,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

pub const PLATFORMS: [&str; 3] = ["slack", "discord", "telegram"];

fn check(platform: &str, user_id: &str) -> Result<(), DomainError> {
    if !PLATFORMS.contains(&platform) {
        return Err(DomainError::bad_input(
            "invalid_platform",
            format!("platform must be slack, discord or telegram, not {platform:?}"),
        ));
    }
    let ok = !user_id.is_empty()
        && user_id.len() <= 64
        && user_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(DomainError::bad_input(
            "invalid_user_id",
            "user_id must be 1-64 letters, digits, '_' or '-'",
        ));
    }
    Ok(())
}

fn sk(platform: &str, user_id: &str) -> String {
    format!("{platform}:{user_id}")
}

/// Maps a chat user to a role in the admin's tenant (replacing an earlier mapping of theirs).
pub async fn register(
    svc: &Services,
    admin: &Principal,
    platform: &str,
    user_id: &str,
    role: Role,
) -> Result<ChatIdentity, DomainError> {
    require_role(admin, Role::Admin, "map chat users")?;
    check(platform, user_id)?;
    if let Some(existing) = svc.store.get(CHAT_IDS_PK, &sk(platform, user_id)).await? {
        let existing: ChatIdentity = keys::decode(&existing)?;
        if existing.tenant != admin.tenant {
            return Err(DomainError::conflict(
                "identity_taken",
                "this chat user is mapped in another tenant",
            ));
        }
    }
    let id = ChatIdentity {
        platform: platform.to_owned(),
        user_id: user_id.to_owned(),
        tenant: admin.tenant.clone(),
        role,
        created_by: admin.name.clone(),
        created_at: svc.clock.now(),
    };
    svc.store
        .put(
            keys::item(CHAT_IDS_PK.into(), sk(platform, user_id), 1, &id)?,
            Condition::Always,
        )
        .await?;
    Ok(id)
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
                pk: CHAT_IDS_PK.into(),
                sk_prefix: String::new(),
                after,
                limit: 500,
                descending: false,
            })
            .await?;
        for item in &page.items {
            let id: ChatIdentity = keys::decode(item)?;
            if id.tenant == admin.tenant {
                out.push(id);
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Removes a mapping of the admin's tenant.
pub async fn delete(
    svc: &Services,
    admin: &Principal,
    platform: &str,
    user_id: &str,
) -> Result<(), DomainError> {
    require_role(admin, Role::Admin, "unmap chat users")?;
    check(platform, user_id)?;
    let item = svc
        .store
        .get(CHAT_IDS_PK, &sk(platform, user_id))
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("{platform} user {user_id} is not mapped")))?;
    let id: ChatIdentity = keys::decode(&item)?;
    if id.tenant != admin.tenant {
        return Err(DomainError::NotFound(format!(
            "{platform} user {user_id} is not mapped"
        )));
    }
    svc.store
        .delete(
            CHAT_IDS_PK,
            &sk(platform, user_id),
            Condition::Version(item.version),
        )
        .await?;
    Ok(())
}

/// The principal a chat user acts as, or `None` when unmapped. Its name
/// (`slack:U024BE7LH`) is what timelines and audit events show.
pub async fn principal(
    svc: &Services,
    platform: &str,
    user_id: &str,
) -> Result<Option<Principal>, DomainError> {
    if check(platform, user_id).is_err() {
        return Ok(None);
    }
    Ok(
        match svc.store.get(CHAT_IDS_PK, &sk(platform, user_id)).await? {
            Some(item) => {
                let id: ChatIdentity = keys::decode(&item)?;
                Some(Principal {
                    tenant: id.tenant,
                    name: format!("{platform}:{user_id}"),
                    role: id.role,
                })
            }
            None => None,
        },
    )
}
