//! Authentication and authorisation: API keys, HMAC signatures, roles.
//!
//! API keys are stored by the sha256 of the token, never the token itself, so
//! a leaked table does not leak credentials. Signatures are compared in
//! constant time.

use chrono::{DateTime, Utc};
use firewatch_types::{Principal, Role, TenantId};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::keys;
use crate::keys::tenant_keys_pk as keys_pk;
use crate::ports::Condition;
use crate::settings::Secret;
use crate::work::Work;
use crate::{DomainError, Services};

/// How far a signed request's timestamp may be from now.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// What is stored for one API key, by the sha256 of its token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub tenant: TenantId,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// The key's id in its tenant's list (absent on keys made before keys
    /// could be listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The person the key belongs to (absent on keys made before keys
    /// belonged to a person: the key's name stands for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
}

/// An API key as its tenant's admins see it: never the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    /// `key_<ulid>`.
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// The first 8 hex digits of the token's sha256, to tell keys apart.
    pub token_hint: String,
    /// Whom the key is for: the person it acts as (so four eyes are two
    /// people, however many keys each has). Absent on older keys, whose
    /// name stands for the person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// Who made the key (absent on keys made outside the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// The whole hash, to find the key's authentication item.
    #[serde(skip_serializing, default)]
    token_sha256: String,
}

/// A key just made, with the token shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct NewApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub token: String,
}

/// The index item stores the full hash (not secret: tokens are 160-bit
/// random), which the listing hides.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    #[serde(flatten)]
    key: ApiKey,
    token_sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TenantRecord {
    created_at: DateTime<Utc>,
}

/// Hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A new random token: `fw_` and 40 hex characters.
pub fn generate_token() -> String {
    let mut raw = [0u8; 20];
    rand::rng().fill_bytes(&mut raw);
    format!("fw_{}", hex::encode(raw))
}

/// Records that a tenant exists (idempotent).
pub async fn ensure_tenant(svc: &Services, tenant: &TenantId) -> Result<(), DomainError> {
    let record = TenantRecord {
        created_at: svc.clock.now(),
    };
    let item = keys::item(keys::TENANTS_PK.into(), tenant.to_string(), 1, &record)?;
    crate::work::put_first(svc, item).await?;
    Ok(())
}

/// The known tenants (the first 1000), for jobs that look at every tenant.
pub async fn known_tenants(svc: &Services) -> Result<Vec<TenantId>, DomainError> {
    // Every page: a job that looks at "every tenant" must not stop at the
    // first thousand.
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = svc
            .store
            .query(crate::ports::Query {
                pk: keys::TENANTS_PK.into(),
                sk_prefix: String::new(),
                after: after.take(),
                limit: 1000,
                descending: false,
            })
            .await?;
        out.extend(
            page.items
                .iter()
                .filter_map(|t| TenantId::parse(&t.sk).ok()),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

/// Fails with 404-class `NotFound` when the tenant was never created.
pub async fn require_tenant(svc: &Services, tenant: &TenantId) -> Result<(), DomainError> {
    match svc.store.get(keys::TENANTS_PK, tenant.as_str()).await? {
        Some(_) => Ok(()),
        None => Err(DomainError::NotFound(format!("unknown tenant {tenant:?}"))),
    }
}

/// Stores `token` as a key of `tenant` with `role`, creating the tenant if
/// needed. Storing the same token again replaces its name and role.
pub async fn register_api_key(
    svc: &Services,
    tenant: &TenantId,
    name: &str,
    role: Role,
    token: &str,
) -> Result<ApiKey, DomainError> {
    ensure_tenant(svc, tenant).await?;
    let hash = sha256_hex(token.as_bytes());
    let existing = svc.store.get(keys::API_KEYS_PK, &hash).await?;
    let id = match &existing {
        Some(item) => keys::decode::<ApiKeyRecord>(item)?.id,
        None => None,
    }
    .unwrap_or_else(|| format!("key_{}", svc.ids.ulid().to_ascii_lowercase()));
    let key = ApiKey {
        id,
        name: name.to_owned(),
        role,
        created_at: svc.clock.now(),
        token_hint: hash[..8].to_owned(),
        person: None,
        created_by: None,
        token_sha256: hash,
    };
    let mut work = Work::new(svc);
    key_writes(&mut work, tenant, &key)?;
    work.commit().await?;
    Ok(key)
}

/// The two items of a key: its authentication item (by token hash) and its
/// entry in the tenant's list.
fn key_writes(work: &mut Work<'_>, tenant: &TenantId, key: &ApiKey) -> Result<(), DomainError> {
    let record = ApiKeyRecord {
        tenant: tenant.clone(),
        name: key.name.clone(),
        role: key.role,
        created_at: key.created_at,
        id: Some(key.id.clone()),
        person: key.person.clone(),
    };
    let stored = StoredKey {
        key: key.clone(),
        token_sha256: key.token_sha256.clone(),
    };
    work.put(
        keys::item(
            keys::API_KEYS_PK.into(),
            key.token_sha256.clone(),
            1,
            &record,
        )?,
        Condition::Always,
    );
    work.put(
        keys::item(keys_pk(tenant), key.id.clone(), 1, &stored)?,
        Condition::Always,
    );
    Ok(())
}

fn key_deletes(work: &mut Work<'_>, tenant: &TenantId, key: &ApiKey) {
    work.delete(
        keys::API_KEYS_PK,
        key.token_sha256.clone(),
        Condition::Always,
    );
    work.delete(keys_pk(tenant), key.id.clone(), Condition::Always);
}

/// Creates a new key and returns its token. The token is shown once: only its
/// hash is stored.
pub async fn create_api_key(
    svc: &Services,
    tenant: &TenantId,
    name: &str,
    role: Role,
) -> Result<String, DomainError> {
    let token = generate_token();
    register_api_key(svc, tenant, name, role, &token).await?;
    Ok(token)
}

const MAX_KEY_NAME: usize = 100;

fn check_key_name(name: &str) -> Result<&str, DomainError> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_KEY_NAME || name.chars().any(char::is_control) {
        return Err(DomainError::bad_input(
            "invalid_field",
            format!("name must be 1 to {MAX_KEY_NAME} printable characters"),
        ));
    }
    Ok(name)
}

/// The keys of the admin's tenant, oldest first.
pub async fn list_keys(svc: &Services, admin: &Principal) -> Result<Vec<ApiKey>, DomainError> {
    require_role(admin, Role::Admin, "list API keys")?;
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = svc
            .store
            .query(crate::ports::Query {
                pk: keys_pk(&admin.tenant),
                sk_prefix: String::new(),
                after,
                limit: 200,
                descending: false,
            })
            .await?;
        for item in &page.items {
            let stored: StoredKey = keys::decode(item)?;
            let mut key = stored.key;
            key.token_sha256 = stored.token_sha256;
            out.push(key);
        }
        match page.next {
            Some(n) if out.len() < 10_000 => after = Some(n),
            _ => return Ok(out),
        }
    }
}

async fn find_key(svc: &Services, tenant: &TenantId, id: &str) -> Result<ApiKey, DomainError> {
    let item = svc
        .store
        .get(&keys_pk(tenant), id)
        .await?
        .ok_or_else(|| DomainError::NotFound("no such API key".into()))?;
    let stored: StoredKey = keys::decode(&item)?;
    let mut key = stored.key;
    key.token_sha256 = stored.token_sha256;
    Ok(key)
}

fn key_json(k: &ApiKey) -> serde_json::Value {
    serde_json::json!({"id": k.id, "name": k.name, "role": k.role, "token_hint": k.token_hint})
}

/// Creates a key in the admin's tenant; audited.
/// Makes a key of the admin's tenant for `person`; when no person is
/// named, the key is the admin's own (a second key of theirs, which cannot
/// approve what they requested with the first).
pub async fn create_key(
    svc: &Services,
    admin: &Principal,
    name: &str,
    role: Role,
    person: Option<&str>,
) -> Result<NewApiKey, DomainError> {
    require_role(admin, Role::Admin, "create API keys")?;
    let name = check_key_name(name)?;
    let person = match person {
        Some(p) => check_key_name(p)
            .map_err(|_| {
                DomainError::bad_input(
                    "invalid_field",
                    format!("person must be 1 to {MAX_KEY_NAME} printable characters"),
                )
            })?
            .to_owned(),
        None => admin.name.clone(),
    };
    let token = generate_token();
    let hash = sha256_hex(token.as_bytes());
    let key = ApiKey {
        id: format!("key_{}", svc.ids.ulid().to_ascii_lowercase()),
        name: name.to_owned(),
        role,
        created_at: svc.clock.now(),
        token_hint: hash[..8].to_owned(),
        person: Some(person),
        created_by: Some(admin.name.clone()),
        token_sha256: hash,
    };
    let mut work = Work::new(svc);
    key_writes(&mut work, &admin.tenant, &key)?;
    work.audit(
        &admin.tenant,
        &admin.name,
        "key.create",
        &key.id,
        serde_json::Value::Null,
        key_json(&key),
    )?;
    work.commit().await?;
    Ok(NewApiKey { key, token })
}

/// Revokes a key of the admin's tenant at once; audited.
pub async fn revoke_key(
    svc: &Services,
    admin: &Principal,
    id: &str,
    reason: Option<String>,
) -> Result<ApiKey, DomainError> {
    require_role(admin, Role::Admin, "revoke API keys")?;
    let key = find_key(svc, &admin.tenant, id).await?;
    let mut work = Work::new(svc);
    key_deletes(&mut work, &admin.tenant, &key);
    let mut ev = crate::work::event(
        svc,
        &admin.tenant,
        &admin.name,
        "key.revoke",
        &key.id,
        key_json(&key),
        serde_json::Value::Null,
    );
    ev.reason = reason;
    work.audit_event(&ev)?;
    work.commit().await?;
    Ok(key)
}

/// Replaces a key by a new one with the same name and role, in one
/// transaction: the old token stops working as the new one starts. Audited.
pub async fn rotate_key(
    svc: &Services,
    admin: &Principal,
    id: &str,
) -> Result<NewApiKey, DomainError> {
    require_role(admin, Role::Admin, "rotate API keys")?;
    let old = find_key(svc, &admin.tenant, id).await?;
    let token = generate_token();
    let hash = sha256_hex(token.as_bytes());
    let key = ApiKey {
        id: format!("key_{}", svc.ids.ulid().to_ascii_lowercase()),
        name: old.name.clone(),
        role: old.role,
        created_at: svc.clock.now(),
        token_hint: hash[..8].to_owned(),
        person: old.person.clone(),
        created_by: Some(admin.name.clone()),
        token_sha256: hash,
    };
    let mut work = Work::new(svc);
    key_deletes(&mut work, &admin.tenant, &old);
    key_writes(&mut work, &admin.tenant, &key)?;
    work.audit(
        &admin.tenant,
        &admin.name,
        "key.rotate",
        &old.id,
        key_json(&old),
        key_json(&key),
    )?;
    work.commit().await?;
    Ok(NewApiKey { key, token })
}

/// Makes `token` the one key named `name` in `tenant`: registers it, and
/// revokes every other key of that name (an earlier `FIREWATCH_DEV_TOKEN`),
/// each revocation audited.
pub async fn replace_named_key(
    svc: &Services,
    tenant: &TenantId,
    name: &str,
    role: Role,
    token: &str,
) -> Result<usize, DomainError> {
    let current = register_api_key(svc, tenant, name, role, token).await?;
    let system = Principal {
        tenant: tenant.clone(),
        name: "firewatch".into(),
        role: Role::Admin,
    };
    let mut revoked = 0;
    for key in list_keys(svc, &system).await? {
        if key.name == name && key.id != current.id {
            revoke_key(
                svc,
                &system,
                &key.id,
                Some(format!("{name} was replaced by a new token")),
            )
            .await?;
            revoked += 1;
        }
    }
    Ok(revoked)
}

/// The principal a bearer token stands for.
pub async fn authenticate_token(svc: &Services, token: &str) -> Result<Principal, DomainError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(DomainError::Unauthorized("empty token".into()));
    }
    let item = svc
        .store
        .get(keys::API_KEYS_PK, &sha256_hex(token.as_bytes()))
        .await?
        .ok_or_else(|| DomainError::Unauthorized("unknown or revoked token".into()))?;
    let record: ApiKeyRecord = keys::decode(&item)?;
    // The principal is the person: two keys of one person are one pair of
    // eyes.
    Ok(Principal {
        tenant: record.tenant,
        name: record.person.unwrap_or(record.name),
        role: record.role,
    })
}

/// Fails with `Forbidden` unless `principal` has at least `role`.
/// Refuses a principal that may not send data in (alerts, pings, run
/// events): only `ingest` and `responder` and above may.
pub fn require_ingest(principal: &Principal, action: &str) -> Result<(), DomainError> {
    if principal.may_send_data() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(format!(
            "{action} needs the ingest or responder role; {} has {}",
            principal.name, principal.role
        )))
    }
}

pub fn require_role(principal: &Principal, role: Role, action: &str) -> Result<(), DomainError> {
    if principal.can(role) {
        Ok(())
    } else {
        Err(DomainError::Forbidden(format!(
            "{action} needs the {role} role; {} has {}",
            principal.name, principal.role
        )))
    }
}

/// Computes the firewatch signature: hex HMAC-SHA256 over `{timestamp}.{body}`.
pub fn sign(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let mut mac = new_mac(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Hex HMAC-SHA256 over the body alone, as Sentry's `Sentry-Hook-Signature`.
pub fn sign_body(secret: &Secret, body: &[u8]) -> String {
    let mut mac = new_mac(secret);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn new_mac(secret: &Secret) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("hmac takes any key length")
}

/// Checks `X-Firewatch-Signature: sha256=<hex>` with `X-Firewatch-Timestamp`.
/// Old or future timestamps are refused, so a captured request cannot be
/// replayed later.
pub fn verify_signature(
    secret: &Secret,
    timestamp: Option<&str>,
    signature: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let ts = fresh_timestamp("X-Firewatch-Timestamp", timestamp, now)?;
    let given = signature
        .trim()
        .strip_prefix("sha256=")
        .unwrap_or(signature.trim());
    constant_time_hex_eq(&sign(secret, ts, body), given)
}

/// Parses a request timestamp header (unix seconds) and refuses one outside
/// the 5-minute window, so a captured request cannot be replayed later.
pub fn fresh_timestamp(
    name: &str,
    value: Option<&str>,
    now: DateTime<Utc>,
) -> Result<i64, DomainError> {
    let ts: i64 = value
        .ok_or_else(|| DomainError::Unauthorized(format!("signed requests need {name}")))?
        .trim()
        .split('.')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| DomainError::Unauthorized(format!("{name} must be unix seconds")))?;
    if (now.timestamp() - ts).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(DomainError::Unauthorized(
            "signature timestamp is outside the 5 minute window (replayed or clock skew)".into(),
        ));
    }
    Ok(ts)
}

/// How long a body signed without its timestamp (Sentry's) is remembered:
/// a repeat of it in that time, past the dedup window, is a replay.
pub const BODY_SIGNATURE_MEMORY_DAYS: i64 = 30;

#[derive(Serialize, Deserialize)]
struct SignedBody {
    received_at: DateTime<Utc>,
}

/// Accepts a body whose signature does not cover its timestamp (Sentry's)
/// once. Sentry signs the body only, so its `Sentry-Hook-Timestamp` can be
/// refreshed by anyone who captured a delivery: the body itself is what is
/// remembered. A repeat within the dedup window is a sender's retry and goes
/// on (the redelivery answers the first answer); a later one is refused.
pub async fn accept_body_signature_once(
    svc: &Services,
    tenant: &TenantId,
    body: &[u8],
) -> Result<(), DomainError> {
    let sha = hex::encode(Sha256::digest(body));
    let now = svc.clock.now();
    let mut item = keys::item(
        keys::signed_bodies_pk(tenant),
        sha.clone(),
        1,
        &SignedBody { received_at: now },
    )?;
    item.expires_at = Some(now.timestamp() + BODY_SIGNATURE_MEMORY_DAYS * 86_400);
    let mut work = Work::new(svc);
    work.put(item, Condition::Absent);
    match work.commit().await {
        Ok(()) => Ok(()),
        Err(e) if e.is_lost_race() => {
            let first = match svc.store.get(&keys::signed_bodies_pk(tenant), &sha).await? {
                Some(item) => keys::decode::<SignedBody>(&item)?.received_at,
                // Expired between the two calls: remembered no longer.
                None => return Ok(()),
            };
            if now - first < chrono::Duration::seconds(svc.settings.dedup_window_secs) {
                Ok(())
            } else {
                Err(DomainError::Unauthorized(
                    "this signed delivery was already accepted; the signature covers the body only, so a repeat is a replay".into(),
                ))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks a body-only signature (Sentry).
pub fn verify_body_signature(
    secret: &Secret,
    signature: &str,
    body: &[u8],
) -> Result<(), DomainError> {
    constant_time_hex_eq(&sign_body(secret, body), signature.trim())
}

fn constant_time_hex_eq(expected: &str, given: &str) -> Result<(), DomainError> {
    if expected.len() == given.len()
        && bool::from(
            expected
                .as_bytes()
                .ct_eq(given.to_ascii_lowercase().as_bytes()),
        )
    {
        Ok(())
    } else {
        Err(DomainError::Unauthorized("signature does not match".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_correct_signature_is_accepted() {
        let s = Secret::new("k");
        let now = Utc::now();
        let sig = sign(&s, now.timestamp(), b"{}");
        verify_signature(
            &s,
            Some(&now.timestamp().to_string()),
            &format!("sha256={sig}"),
            b"{}",
            now,
        )
        .unwrap();
    }

    #[test]
    fn a_tampered_body_or_wrong_secret_is_refused() {
        let now = Utc::now();
        let ts = now.timestamp().to_string();
        let sig = sign(&Secret::new("k"), now.timestamp(), b"{}");
        assert!(verify_signature(&Secret::new("k"), Some(&ts), &sig, b"{ }", now).is_err());
        assert!(verify_signature(&Secret::new("other"), Some(&ts), &sig, b"{}", now).is_err());
    }

    #[test]
    fn a_replayed_signature_older_than_five_minutes_is_refused() {
        let s = Secret::new("k");
        let then = Utc::now() - chrono::Duration::minutes(6);
        let sig = sign(&s, then.timestamp(), b"{}");
        let err = verify_signature(
            &s,
            Some(&then.timestamp().to_string()),
            &sig,
            b"{}",
            Utc::now(),
        );
        assert!(matches!(err, Err(DomainError::Unauthorized(m)) if m.contains("replayed")));
    }

    #[test]
    fn tokens_are_random_and_prefixed() {
        let a = generate_token();
        assert!(a.starts_with("fw_") && a.len() == 43);
        assert_ne!(a, generate_token());
    }
}
