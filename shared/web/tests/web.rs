//! The shared layers: ids on every request and answer, JSON errors for
//! unknown routes and panics, `/health` and `/version`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn call(app: Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let res = app.oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn ops() -> Router {
    firewatch_web::ops::router(firewatch_local::services_in_memory())
}

#[tokio::test]
async fn health_and_version_answer_without_a_key() {
    let (s, _, body) = call(ops(), Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!((s, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, _, body) = call(ops(), Request::get("/version").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["git_sha"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(body["build_id"].as_str().is_some_and(|s| !s.is_empty()));
}

#[tokio::test]
async fn request_ids_are_generated_when_missing_and_echoed_when_given() {
    let (_, h, _) = call(ops(), Request::get("/health").body(Body::empty()).unwrap()).await;
    let rid = h["x-request-id"].to_str().unwrap();
    assert_eq!(rid.len(), 26, "a ULID");
    assert_eq!(
        h["x-correlation-id"].to_str().unwrap(),
        rid,
        "correlation defaults to the request id"
    );
    let tp = h["traceparent"].to_str().unwrap();
    assert!(tp.starts_with("00-") && tp.len() == 55, "{tp}");

    let given_tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let req = Request::get("/health")
        .header("x-request-id", "req-123")
        .header("x-correlation-id", "corr-9")
        .header("traceparent", given_tp)
        .body(Body::empty())
        .unwrap();
    let (_, h, _) = call(ops(), req).await;
    assert_eq!(h["x-request-id"], "req-123");
    assert_eq!(h["x-correlation-id"], "corr-9");
    assert_eq!(h["traceparent"], given_tp);

    let req = Request::get("/health")
        .header("traceparent", "garbage")
        .body(Body::empty())
        .unwrap();
    let (_, h, _) = call(ops(), req).await;
    assert_ne!(
        h["traceparent"], "garbage",
        "an invalid traceparent is replaced"
    );
}

#[tokio::test]
async fn a_panicking_handler_answers_an_opaque_json_500() {
    let svc = firewatch_local::services_in_memory();
    let r: Router<firewatch_domain::Services> = Router::new().route(
        "/boom",
        get(|| async { panic!("secret detail fw_abc") as &'static str }),
    );
    let app = firewatch_web::finish(r, svc);
    let (s, h, body) = call(app, Request::get("/boom").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], "internal");
    assert!(
        !body.to_string().contains("fw_abc"),
        "panic details stay in the log"
    );
    assert!(
        h.contains_key("x-request-id"),
        "even a 500 carries the request id"
    );
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let app = ops().fallback(firewatch_web::not_found);
    let (s, _, body) = call(app, Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[test]
fn configuration_errors_name_the_variable() {
    use firewatch_web::{Config, LogFormat};
    let err = Config::from_vars(
        |k| (k == "FIREWATCH_LOG_FORMAT").then(|| "xml".to_string()),
        LogFormat::Json,
    )
    .unwrap_err();
    assert!(err.contains("FIREWATCH_LOG_FORMAT"));
    let err = Config::from_vars(
        |k| (k == "FIREWATCH_MAX_BODY_BYTES").then(|| "-1".to_string()),
        LogFormat::Json,
    )
    .unwrap_err();
    assert!(err.contains("FIREWATCH_MAX_BODY_BYTES"));
}
