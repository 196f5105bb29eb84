//! Tenant-owned chat places. A chat channel becomes a tenant's destination,
//! and a chat workspace (Slack team, Discord guild, Telegram chat) the place
//! whose users the tenant may map, only after someone in that channel proves
//! it: an admin asks the API for a one-time code (`POST /v1/chat-links`) and
//! someone posts `link <code>` in the channel (`/fw link <code>` in Slack,
//! `/fw text: link <code>` in Discord, `/link <code>` in Telegram).
//!
//! Ownership is global and claimed with conditional writes, so of two tenants
//! racing for one channel exactly one wins, and a channel or workspace that
//! one tenant linked can never be routed to or mapped by another.

use chrono::{DateTime, Duration, Utc};
use firewatch_types::{Destination, Principal, Role, TenantId};
use serde::{Deserialize, Serialize};

use crate::auth::{require_role, sha256_hex};
use crate::keys::LINKED_CHANNELS_PK as CHANNELS_PK;
use crate::keys::LINKED_WORKSPACES_PK as WORKSPACES_PK;
use crate::keys::LINK_CODES_PK as CODES_PK;
use crate::ports::Condition;
use crate::work::Work;
use crate::{keys, DomainError, Services};

/// The chat platforms firewatch speaks.
pub const PLATFORMS: [&str; 3] = ["slack", "discord", "telegram"];

/// How long a link code can be redeemed.
pub const CODE_TTL_MINUTES: i64 = 15;

/// An unredeemed code (stored by its hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingLink {
    tenant: TenantId,
    platform: String,
    created_by: String,
    expires_at: DateTime<Utc>,
}

/// Who owns a channel or workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ownership {
    pub tenant: TenantId,
    pub linked_by: String,
    pub linked_at: DateTime<Utc>,
}

/// A code as the API returns it, shown once.
#[derive(Debug, Clone, Serialize)]
pub struct LinkCode {
    pub code: String,
    pub platform: String,
    pub expires_at: DateTime<Utc>,
    /// What to post in the channel.
    pub instructions: String,
}

fn check_platform(platform: &str) -> Result<(), DomainError> {
    if PLATFORMS.contains(&platform) {
        Ok(())
    } else {
        Err(DomainError::bad_input(
            "invalid_platform",
            "platform must be slack, discord or telegram",
        ))
    }
}

/// The key of a chat place: `{platform}:{id}`.
fn place(platform: &str, id: &str) -> String {
    format!("{platform}:{id}")
}

/// The channel a destination posts to, as linked (`None` for the console).
pub fn destination_place(dest: &Destination) -> Option<String> {
    match dest {
        Destination::Console => None,
        Destination::Slack { channel } => Some(place("slack", channel)),
        Destination::Discord { channel_id } => Some(place("discord", channel_id)),
        Destination::Telegram { chat_id, .. } => Some(place("telegram", chat_id)),
    }
}

/// A new one-time code for the admin's tenant.
pub async fn create_code(
    svc: &Services,
    admin: &Principal,
    platform: &str,
) -> Result<LinkCode, DomainError> {
    require_role(admin, Role::Admin, "link chat channels")?;
    check_platform(platform)?;
    let mut raw = [0u8; 10];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut raw);
    let code = format!("fwl-{}", hex::encode(raw));
    let expires_at = svc.clock.now() + Duration::minutes(CODE_TTL_MINUTES);
    let pending = PendingLink {
        tenant: admin.tenant.clone(),
        platform: platform.to_owned(),
        created_by: admin.name.clone(),
        expires_at,
    };
    let mut item = keys::item(CODES_PK.into(), sha256_hex(code.as_bytes()), 1, &pending)?;
    item.expires_at = Some(expires_at.timestamp());
    let mut work = Work::new(svc);
    work.put(item, Condition::Absent);
    work.audit(
        &admin.tenant,
        &admin.name,
        "chat.link_code",
        platform,
        serde_json::Value::Null,
        serde_json::json!({"platform": platform, "expires_at": expires_at}),
    )?;
    work.commit().await?;
    let instructions = match platform {
        "slack" => format!("/fw link {code}"),
        "discord" => format!("/fw text: link {code}"),
        _ => format!("/link {code}"),
    };
    Ok(LinkCode {
        code,
        platform: platform.to_owned(),
        expires_at,
        instructions,
    })
}

/// Where a `link` command was posted.
#[derive(Debug, Clone)]
pub struct Place<'a> {
    pub platform: &'a str,
    /// Slack team id, Discord guild id, Telegram chat id.
    pub workspace: &'a str,
    /// Slack channel id, Discord channel id, Telegram chat id.
    pub channel: &'a str,
    /// Who posted it, for the audit log.
    pub user: &'a str,
}

/// Redeems a code posted in a channel: the channel (and its workspace)
/// become the code's tenant's, and the code is spent. The answer is worded
/// for the channel.
pub async fn redeem(svc: &Services, at: &Place<'_>, code: &str) -> Result<String, DomainError> {
    let refused = || {
        "That link code is unknown, spent or expired; ask an admin for a new one (POST /v1/chat-links).".to_owned()
    };
    let code_sk = sha256_hex(code.trim().as_bytes());
    let Some(item) = svc.store.get(CODES_PK, &code_sk).await? else {
        return Ok(refused());
    };
    let pending: PendingLink = keys::decode(&item)?;
    if pending.platform != at.platform || pending.expires_at < svc.clock.now() {
        return Ok(refused());
    }
    let tenant = pending.tenant.clone();
    let own = Ownership {
        tenant: tenant.clone(),
        linked_by: format!("{}:{}", at.platform, at.user),
        linked_at: svc.clock.now(),
    };
    let channel = place(at.platform, at.channel);
    let workspace = place(at.platform, at.workspace);
    for (pk, sk) in [(CHANNELS_PK, &channel), (WORKSPACES_PK, &workspace)] {
        if let Some(existing) = svc.store.get(pk, sk).await? {
            let existing: Ownership = keys::decode(&existing)?;
            if existing.tenant != tenant {
                return Ok("This channel or workspace is already linked to another firewatch tenant; nothing was changed.".into());
            }
        }
    }
    let mut work = Work::new(svc);
    work.delete(CODES_PK, code_sk, Condition::Version(item.version));
    let channel_known = svc.store.get(CHANNELS_PK, &channel).await?.is_some();
    let workspace_known = svc.store.get(WORKSPACES_PK, &workspace).await?.is_some();
    if !channel_known {
        work.put(
            keys::item(CHANNELS_PK.into(), channel.clone(), 1, &own)?,
            Condition::Absent,
        );
    }
    if !workspace_known {
        work.put(
            keys::item(WORKSPACES_PK.into(), workspace.clone(), 1, &own)?,
            Condition::Absent,
        );
    }
    work.audit(
        &tenant,
        &own.linked_by,
        "chat.link",
        &channel,
        serde_json::Value::Null,
        serde_json::json!({"channel": channel, "workspace": workspace, "code_created_by": pending.created_by}),
    )?;
    match work.commit().await {
        Ok(()) => Ok(format!(
            "Linked: this channel now belongs to firewatch tenant {tenant}. Routes may send incidents here, and admins may map this workspace's users."
        )),
        // The code was spent, or another tenant claimed the place, at the
        // same moment: nothing changed.
        Err(e) if e.is_lost_race() => Ok("Someone else just used that code or linked this channel; nothing was changed.".into()),
        Err(e) => Err(e.into()),
    }
}

async fn owner(svc: &Services, pk: &str, sk: &str) -> Result<Option<TenantId>, DomainError> {
    Ok(match svc.store.get(pk, sk).await? {
        Some(item) => Some(keys::decode::<Ownership>(&item)?.tenant),
        None => None,
    })
}

/// Refuses a destination whose channel is not linked to `tenant`.
pub async fn require_destination(
    svc: &Services,
    tenant: &TenantId,
    dest: &Destination,
) -> Result<(), DomainError> {
    let Some(channel) = destination_place(dest) else {
        return Ok(());
    };
    match owner(svc, CHANNELS_PK, &channel).await? {
        Some(t) if &t == tenant => Ok(()),
        _ => Err(DomainError::Forbidden(format!(
            "{dest} is not linked to this tenant: create a code with POST /v1/chat-links and post `link <code>` in that channel first"
        ))),
    }
}

/// Refuses a workspace that is not linked to `tenant`.
pub async fn require_workspace(
    svc: &Services,
    tenant: &TenantId,
    platform: &str,
    workspace: &str,
) -> Result<(), DomainError> {
    match owner(svc, WORKSPACES_PK, &place(platform, workspace)).await? {
        Some(t) if &t == tenant => Ok(()),
        _ => Err(DomainError::Forbidden(format!(
            "{platform} workspace {workspace} is not linked to this tenant: link one of its channels first (POST /v1/chat-links)"
        ))),
    }
}

async fn claim(svc: &Services, tenant: &TenantId, pk: &str, sk: String) -> Result<(), DomainError> {
    let own = Ownership {
        tenant: tenant.clone(),
        linked_by: "operator".into(),
        linked_at: svc.clock.now(),
    };
    let mut work = Work::new(svc);
    work.put(
        keys::item(pk.into(), sk.clone(), 1, &own)?,
        Condition::Absent,
    );
    match work.commit().await {
        Ok(()) => Ok(()),
        Err(e) if e.is_lost_race() => {
            if owner(svc, pk, &sk).await?.as_ref() == Some(tenant) {
                Ok(())
            } else {
                Err(DomainError::conflict(
                    "place_taken",
                    format!("{sk} is linked to another tenant"),
                ))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Links a destination's channel to `tenant` without a code: for the
/// operator's own configuration (`firewatch dev --routes FILE`) and tests.
/// Refuses a channel another tenant owns.
pub async fn link_destination_directly(
    svc: &Services,
    tenant: &TenantId,
    dest: &Destination,
) -> Result<(), DomainError> {
    match destination_place(dest) {
        Some(channel) => claim(svc, tenant, CHANNELS_PK, channel).await,
        None => Ok(()),
    }
}

/// Links a workspace to `tenant` without a code (operator configuration and
/// tests). Refuses a workspace another tenant owns.
pub async fn link_workspace_directly(
    svc: &Services,
    tenant: &TenantId,
    platform: &str,
    workspace: &str,
) -> Result<(), DomainError> {
    check_platform(platform)?;
    claim(svc, tenant, WORKSPACES_PK, place(platform, workspace)).await
}
