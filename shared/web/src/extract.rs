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
            ApiError::bad_request("invalid_body", without_values(&e.to_string()))
        }
        _ => ApiError::bad_request("malformed_json", format!("body is not valid JSON: {e}")),
    })
}

/// A serde message without the value it quotes: a wrong value may be a
/// secret put in the wrong field, and errors are logged and shown.
/// `invalid type: string "hunter2", expected u64` becomes `invalid type:
/// string, expected u64`; `unknown variant `x`, expected one of `a`, `b``
/// keeps only what was expected.
pub fn without_values(msg: &str) -> String {
    let mut out = msg.to_owned();
    for marker in ["invalid type: ", "invalid value: ", "unknown variant "] {
        let Some(i) = out.find(marker) else { continue };
        let start = i + marker.len();
        let rest = &out[start..];
        // The value: a Debug-quoted string, or a backticked token.
        let (kind, len) = if let Some(q) = rest.find('"').filter(|q| !rest[..*q].contains(',')) {
            let mut end = None;
            let mut escaped = false;
            for (k, c) in rest[q + 1..].char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        end = Some(q + 1 + k + 1);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            (rest[..q].trim_end().to_owned(), end.unwrap_or(rest.len()))
        } else if let Some(b) = rest.find('`').filter(|b| !rest[..*b].contains(',')) {
            let end = rest[b + 1..]
                .find('`')
                .map_or(rest.len(), |e| b + 1 + e + 1);
            (rest[..b].trim_end().to_owned(), end)
        } else {
            continue;
        };
        let replacement = if marker == "unknown variant " {
            String::new()
        } else {
            kind
        };
        out.replace_range(start..start + len, &replacement);
        if marker == "unknown variant " {
            out = out.replacen("unknown variant , expected", "unknown variant, expected", 1);
        }
    }
    out
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
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
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
        for (msg, want) in [
            (
                r#"invalid type: string "hunter2", expected u64 at line 1 column 20"#,
                "invalid type: string, expected u64 at line 1 column 20",
            ),
            (
                r#"invalid type: string "a\"b, expected c", expected u64 at line 1 column 9"#,
                "invalid type: string, expected u64 at line 1 column 9",
            ),
            (
                "invalid type: integer `4111111111111111`, expected a string at line 1 column 30",
                "invalid type: integer, expected a string at line 1 column 30",
            ),
            (
                "invalid value: string \"s3cr3t\", expected a duration at line 1 column 9",
                "invalid value: string, expected a duration at line 1 column 9",
            ),
            (
                "unknown variant `ghp_s3cr3t`, expected one of `low`, `high` at line 1 column 9",
                "unknown variant, expected one of `low`, `high` at line 1 column 9",
            ),
            (
                "unknown field `x`, expected `reason` at line 1 column 4",
                "unknown field `x`, expected `reason` at line 1 column 4",
            ),
        ] {
            assert_eq!(without_values(msg), want, "{msg}");
        }
        let e =
            parse_json::<std::collections::HashMap<String, u64>>(br#"{"a": "ghp_s3cr3tvalue"}"#)
                .unwrap_err();
        assert!(!format!("{e:?}").contains("ghp_s3cr3tvalue"), "{e:?}");
    }
}
