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
use crate::ports::{Condition, StoreError};
use crate::settings::Secret;
use crate::{DomainError, Services};

/// How far a signed request's timestamp may be from now.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// What is stored for one API key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub tenant: TenantId,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
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
    match svc.store.put(item, Condition::Absent).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e.into()),
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
) -> Result<(), DomainError> {
    ensure_tenant(svc, tenant).await?;
    let record = ApiKeyRecord {
        tenant: tenant.clone(),
        name: name.to_owned(),
        role,
        created_at: svc.clock.now(),
    };
    let item = keys::item(
        keys::API_KEYS_PK.into(),
        sha256_hex(token.as_bytes()),
        1,
        &record,
    )?;
    svc.store.put(item, Condition::Always).await?;
    Ok(())
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
    Ok(Principal {
        tenant: record.tenant,
        name: record.name,
        role: record.role,
    })
}

/// Fails with `Forbidden` unless `principal` has at least `role`.
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
    let ts: i64 = timestamp
        .ok_or_else(|| {
            DomainError::Unauthorized("signed requests need X-Firewatch-Timestamp".into())
        })?
        .trim()
        .parse()
        .map_err(|_| {
            DomainError::Unauthorized("X-Firewatch-Timestamp must be unix seconds".into())
        })?;
    if (now.timestamp() - ts).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(DomainError::Unauthorized(
            "signature timestamp is outside the 5 minute window (replayed or clock skew)".into(),
        ));
    }
    let given = signature
        .trim()
        .strip_prefix("sha256=")
        .unwrap_or(signature.trim());
    constant_time_hex_eq(&sign(secret, ts, body), given)
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
