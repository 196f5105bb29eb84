//! Request context: `x-request-id`, `x-correlation-id` and `traceparent` are
//! taken from the request or generated, echoed on the response, and carried
//! by the tracing span of the request so every log line has them.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// A header value we accept as an id: short, visible ASCII.
fn usable(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
}

fn random_hex(bytes: usize) -> String {
    let mut s = ulid::Ulid::new().0.to_be_bytes().to_vec();
    s.extend(ulid::Ulid::new().0.to_be_bytes());
    s.truncate(bytes);
    s.iter().map(|b| format!("{b:02x}")).collect()
}

/// A W3C traceparent is `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
fn valid_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    parts.len() == 4
        && [2, 32, 16, 2]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The path as logged: a heartbeat's ping URL carries its secret UUID,
/// which is masked (`/ping/***/fail`).
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/ping/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, tail)) => format!("/ping/***/{tail}").into(),
            None => "/ping/***".into(),
        },
        None => path.into(),
    }
}

/// The middleware.
pub async fn request_context(mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let request_id = usable(headers, &REQUEST_ID).unwrap_or_else(|| ulid::Ulid::new().to_string());
    let correlation_id = usable(headers, &CORRELATION_ID).unwrap_or_else(|| request_id.clone());
    let traceparent = usable(headers, &TRACEPARENT)
        .filter(|t| valid_traceparent(t))
        .unwrap_or_else(|| format!("00-{}-{}-01", random_hex(16), random_hex(8)));

    for (name, value) in [
        (&REQUEST_ID, &request_id),
        (&CORRELATION_ID, &correlation_id),
        (&TRACEPARENT, &traceparent),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            req.headers_mut().insert(name.clone(), v);
        }
    }

    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %loggable_path(req.uri().path()),
        request_id = %request_id,
        correlation_id = %correlation_id,
        traceparent = %traceparent,
        principal = tracing::field::Empty,
    );
    let mut res = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = res.status().as_u16(), "answered"));
    for (name, value) in [
        (REQUEST_ID, request_id),
        (CORRELATION_ID, correlation_id),
        (TRACEPARENT, traceparent),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(name, v);
        }
    }
    res
}
