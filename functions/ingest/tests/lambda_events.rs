//! Real API Gateway HTTP API (v2) events, parsed by lambda_http exactly as
//! the Lambda runtime does, drive the same router.

use axum::body::Body;
use base64::Engine;
use firewatch_web::testing::{fixture, send, services_with_keys};

fn lambda_request(event: &str) -> axum::http::Request<Body> {
    let req = lambda_http::request::from_str(event).expect("a valid Lambda HTTP event");
    let (parts, body) = req.into_parts();
    axum::http::Request::from_parts(parts, Body::from(body.to_vec()))
}

#[tokio::test]
async fn an_http_api_event_with_a_base64_body_posts_an_alert() {
    let (svc, keys) = services_with_keys().await;
    let body = fixture("generic/firing.json");
    let event = String::from_utf8(fixture("lambda/apigw_v2_post_alert.json"))
        .unwrap()
        .replace("__TOKEN__", &keys.responder)
        .replace("__LENGTH__", &body.len().to_string())
        .replace(
            "__BODY_BASE64__",
            &base64::engine::general_purpose::STANDARD.encode(&body),
        );
    let a = send(&firewatch_ingest::router(svc), lambda_request(&event)).await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(a.json["results"][0]["fingerprint"], "backup-nightly-db");
    assert_eq!(a.headers["x-request-id"], "apigw-req-42");
}

#[tokio::test]
async fn a_forged_http_api_event_is_refused() {
    let (svc, _) = services_with_keys().await;
    let event = String::from_utf8(fixture("lambda/apigw_v2_post_alert.json"))
        .unwrap()
        .replace("__TOKEN__", "fw_forged")
        .replace("__LENGTH__", "2")
        .replace(
            "__BODY_BASE64__",
            &base64::engine::general_purpose::STANDARD.encode(b"{}"),
        );
    let a = send(&firewatch_ingest::router(svc), lambda_request(&event)).await;
    assert_eq!(a.status, 401);
}
