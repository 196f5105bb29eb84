//! The ingest family: alert webhooks in, incidents out.
//!
//! - `POST /v1/alerts/{source}`: a provider's webhook (see docs/API.md).
//! - `POST /v2/enqueue`: PagerDuty Events API v2, answered as PagerDuty does.
//!
//! The credential is checked before the body is parsed: a bearer key, an
//! HMAC signature for the source, Sentry's own signature, or PagerDuty's
//! `routing_key` (a firewatch key).

mod sns;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use firewatch_domain::ingest::normalize::pagerduty_routing_key;
use firewatch_domain::ingest::{ingest, IngestReport, IngestRequest};
use firewatch_domain::settings::PAGERDUTY_MAX_BODY_BYTES;
use firewatch_domain::{auth, Services};
use firewatch_types::{Principal, Role, SourceKind, TenantId};
use firewatch_web::extract::{content_type, not_json};
use firewatch_web::{ApiBytes, ApiError, ApiPath, ApiResult};
use serde::Serialize;

pub use sns::HttpSnsConfirmer;

/// The ingest routes, finished with the shared layers.
pub fn router(services: Services) -> Router {
    let r = Router::new()
        .route("/v1/alerts/{source}", post(post_alerts))
        .route("/v2/enqueue", post(pagerduty_enqueue));
    firewatch_web::finish(r, services)
}

async fn post_alerts(
    axum::extract::State(svc): axum::extract::State<Services>,
    ApiPath(source): ApiPath<String>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<IngestReport>)> {
    let source = SourceKind::parse(&source)
        .filter(|s| !s.is_internal())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_source",
                format!("unknown alert source {source:?}; see docs/API.md for the list"),
            )
        })?;
    let report = accept(&svc, source, &headers, &body).await?;
    Ok((StatusCode::ACCEPTED, Json(report)))
}

/// PagerDuty's answer to an accepted event.
#[derive(Serialize)]
struct PagerDutyAccepted {
    status: &'static str,
    message: &'static str,
    dedup_key: String,
}

async fn pagerduty_enqueue(
    axum::extract::State(svc): axum::extract::State<Services>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> axum::response::Response {
    match accept(&svc, SourceKind::Pagerduty, &headers, &body).await {
        Ok(report) => {
            let accepted = PagerDutyAccepted {
                status: "success",
                message: "Event processed",
                dedup_key: report.dedup_key.unwrap_or_default(),
            };
            (StatusCode::ACCEPTED, Json(accepted)).into_response()
        }
        Err(e) => {
            let has_key = pagerduty_routing_key(&body).is_some_and(|k| !k.trim().is_empty());
            pagerduty_refusal(e, has_key).into_response()
        }
    }
}

/// PagerDuty's answer to an event it will not take.
#[derive(Serialize)]
struct PagerDutyInvalid {
    status: &'static str,
    message: &'static str,
    errors: Vec<String>,
}

/// A refusal as PagerDuty's Events API answers one, so its clients read it:
/// an event it cannot take (a body that does not parse or misses a field, a
/// routing key that is missing, is not a key of this deployment, or may not
/// post events) is `400 {"status": "invalid event", "message": "Event
/// object is invalid", "errors": [...]}`. Too large, too fast and server
/// errors keep their status and firewatch's body.
fn pagerduty_refusal(e: ApiError, has_routing_key: bool) -> axum::response::Response {
    let error = match e.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if has_routing_key => {
            "Invalid routing key".to_owned()
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            "'routing_key' is missing or blank".to_owned()
        }
        StatusCode::BAD_REQUEST
        | StatusCode::UNPROCESSABLE_ENTITY
        | StatusCode::UNSUPPORTED_MEDIA_TYPE => e.message,
        _ => return e.into_response(),
    };
    let invalid = PagerDutyInvalid {
        status: "invalid event",
        message: "Event object is invalid",
        errors: vec![error],
    };
    (StatusCode::BAD_REQUEST, Json(invalid)).into_response()
}

/// Size cap, authentication, content type, then the domain.
async fn accept(
    svc: &Services,
    source: SourceKind,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<IngestReport> {
    if source == SourceKind::Pagerduty && body.len() > PAGERDUTY_MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "PagerDuty events are limited to 512 KB",
        ));
    }
    let principal = authenticate(svc, source, headers, body).await?;
    tracing::Span::current().record("principal", principal.name.as_str());
    check_content_type(source, headers)?;
    let headers = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let report = ingest(
        svc,
        IngestRequest {
            principal: &principal,
            source,
            body,
            headers,
        },
    )
    .await?;
    tracing::info!(
        source = %source,
        alerts = report.accepted,
        incidents = report.incidents.len(),
        duplicate = report.duplicate,
        "webhook accepted"
    );
    for r in &report.results {
        if let Some(id) = &r.incident_id {
            tracing::info!(fingerprint = %r.fingerprint, outcome = ?r.outcome, incident = %id, "alert folded");
        }
    }
    Ok(report)
}

fn check_content_type(source: SourceKind, headers: &HeaderMap) -> ApiResult<()> {
    let ct = content_type(headers).unwrap_or_default();
    let json = ct == "application/json" || ct.ends_with("+json");
    // SNS posts its JSON envelope as text/plain.
    let sns_text = source == SourceKind::Cloudwatch && ct == "text/plain";
    if json || sns_text {
        Ok(())
    } else {
        Err(not_json())
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Who is posting. Deny by default.
async fn authenticate(
    svc: &Services,
    source: SourceKind,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Principal> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        return firewatch_web::auth::authenticate(svc, headers).await;
    }
    let signed_by_us = header(headers, "x-firewatch-signature");
    let signed_by_sentry = (source == SourceKind::Sentry)
        .then(|| header(headers, "sentry-hook-signature"))
        .flatten();
    if signed_by_us.is_some() || signed_by_sentry.is_some() {
        let tenant_name = header(headers, "x-firewatch-tenant").unwrap_or("default");
        let tenant = TenantId::parse(tenant_name)
            .map_err(|e| ApiError::bad_request("invalid_tenant", e.to_string()))?;
        let secret = svc
            .settings
            .hmac_secrets
            .get(&(tenant.clone(), source))
            .ok_or_else(|| {
                ApiError::unauthorized(format!(
                    "no signing secret is configured for {source} on tenant {tenant}"
                ))
            })?;
        match (signed_by_us, signed_by_sentry) {
            (Some(sig), _) => auth::verify_signature(
                secret,
                header(headers, "x-firewatch-timestamp"),
                sig,
                body,
                svc.clock.now(),
            )?,
            (None, Some(sig)) => {
                // Sentry signs the body only; its timestamp header still
                // bounds how late a captured delivery is accepted.
                auth::fresh_timestamp(
                    "Sentry-Hook-Timestamp",
                    header(headers, "sentry-hook-timestamp"),
                    svc.clock.now(),
                )?;
                auth::verify_body_signature(secret, sig, body)?
            }
            (None, None) => unreachable!("checked above"),
        }
        auth::require_tenant(svc, &tenant).await?;
        if signed_by_us.is_none() {
            auth::accept_body_signature_once(svc, &tenant, body).await?;
        }
        return Ok(Principal {
            tenant,
            name: format!("source:{source}"),
            role: Role::Ingest,
        });
    }
    if source == SourceKind::Pagerduty {
        if let Some(key) = pagerduty_routing_key(body).filter(|k| !k.trim().is_empty()) {
            // A key the store cannot check now is a 503 to retry, not a
            // refusal a sender would drop the event for.
            return auth::authenticate_token(svc, &key)
                .await
                .map_err(|e| match e {
                    firewatch_domain::DomainError::Unauthorized(_)
                    | firewatch_domain::DomainError::Forbidden(_) => {
                        ApiError::unauthorized("routing_key is not a valid firewatch key")
                    }
                    other => other.into(),
                });
        }
    }
    Err(ApiError::unauthorized(
        "send Authorization: Bearer <api key>, or sign the body (X-Firewatch-Signature)",
    ))
}
