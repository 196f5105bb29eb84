//! Extractors whose rejections use our error format instead of axum's plain
//! text: JSON bodies, raw bodies (with the size cap), query strings and path
//! parameters.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::ApiError;

fn body_error(rej: BytesRejection) -> ApiError {
    if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is larger than the limit",
        )
    } else {
        ApiError::bad_request("unreadable_body", "request body could not be read")
    }
}

/// True when the request says its body is JSON.
pub fn is_json(headers: &HeaderMap) -> bool {
    content_type(headers).is_some_and(|ct| ct == "application/json" || ct.ends_with("+json"))
}

/// The media type of the request, lowercased, without parameters.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// The 415 for a body that is not JSON.
pub fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as application/json",
    )
}

/// The raw body, refused with 413 past the configured limit.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(body_error)
    }
}

/// A JSON body: 415 when the content type is not JSON, 413 when too large,
/// 400 `malformed_json` or `invalid_body` when it does not parse.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(not_json());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(Self)
    }
}

/// Parses a JSON body with our error codes.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            // A wrong value may be a secret put in the wrong field, and
            // errors are logged and shown: the message keeps its shape only.
            ApiError::bad_request(
                "invalid_body",
                firewatch_domain::redact::error_without_values(&e.to_string()),
            )
        }
        _ => ApiError::bad_request("malformed_json", format!("body is not valid JSON: {e}")),
    })
}

/// An optional JSON body: empty (or only whitespace) means `T::default()`;
/// otherwise it must be JSON, with the errors of [`parse_json`].
pub fn optional_json<T: Default + DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else if is_json(headers) {
        parse_json(body)
    } else {
        Err(not_json())
    }
}

/// A query string.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| {
                // serde's own words, without a value or an odd key it quotes.
                let text = e.body_text();
                let (head, detail) = text.split_once(": ").unwrap_or(("", text.as_str()));
                let detail = firewatch_domain::redact::error_without_values(detail);
                let message = if head.is_empty() {
                    detail
                } else {
                    format!("{head}: {detail}")
                };
                ApiError::bad_request("invalid_query", message)
            })
    }
}

/// Path parameters.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_never_quote_the_value() {
        for body in [
            br#"{"a": "ghp_s3cr3tvalue"}"#.as_slice(),
            br#"{"a": -4111111111111111}"#.as_slice(),
        ] {
            let e = parse_json::<std::collections::HashMap<String, u64>>(body).unwrap_err();
            let shown = format!("{e:?}");
            assert!(
                !shown.contains("s3cr3t") && !shown.contains("4111111111111111"),
                "{shown}"
            );
            assert!(shown.contains("expected u64"), "{shown}");
        }
    }
}
