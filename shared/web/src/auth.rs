//! The [`Auth`] extractor: `Authorization: Bearer <key>` (or HTTP Basic with
//! the key as password, which is what SNS sends for credentials in the URL)
//! resolved to a [`Principal`]. Deny by default: no or an unknown key is 401.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine as _;
use firewatch_domain::{auth, Services};
use firewatch_types::Principal;

use crate::ApiError;

/// An authenticated principal.
pub struct Auth(pub Principal);

/// The API key a request presents, if any.
pub fn presented_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        return text
            .split_once(':')
            .map(|(_, password)| password.to_owned());
    }
    None
}

/// Resolves the request's key, or fails with 401.
pub async fn authenticate(services: &Services, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let token = presented_token(headers)
        .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <api key>"))?;
    Ok(auth::authenticate_token(services, &token).await?)
}

impl FromRequestParts<Services> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        services: &Services,
    ) -> Result<Self, Self::Rejection> {
        let principal = authenticate(services, &parts.headers).await?;
        tracing::Span::current().record("principal", principal.name.as_str());
        Ok(Self(principal))
    }
}
