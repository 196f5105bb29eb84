//! The AWS side of playbook steps: `lambda_invoke` through aws-sdk-lambda
//! against a local stand-in for Lambda's documented Invoke API
//! (`POST /2015-03-31/functions/{name}/invocations`), and playbook secrets
//! read from Secrets Manager (the local moto server) when a request is sent.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use firewatch_aws::{lambda_client, secrets_client, LambdaEgress, SecretsManagerSecrets};
use firewatch_domain::ports::{Egress, NoEgress, OutboundError, SecretSource};
use serde_json::{json, Value};

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// Lambda's Invoke API as documented: the payload back with 200, a
/// function error as 200 with `X-Amz-Function-Error`, throttling as 429
/// `TooManyRequestsException`, an unknown function as 404
/// `ResourceNotFoundException`.
async fn invoke(
    State(seen): State<Seen>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.lock().unwrap().push((name.clone(), payload.clone()));
    // A synchronous invocation, signed like every AWS request.
    let kind = headers
        .get("x-amz-invocation-type")
        .map_or("RequestResponse", |v| v.to_str().unwrap());
    assert_eq!(kind, "RequestResponse");
    assert!(headers.get("authorization").is_some_and(|v| v
        .to_str()
        .unwrap()
        .starts_with("AWS4-HMAC-SHA256 Credential=AKIAFIREWATCHTEST/")));
    assert!(headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("/lambda/aws4_request"));
    let mut h = HeaderMap::new();
    h.insert("x-amz-executed-version", "$LATEST".parse().unwrap());
    match name.as_str() {
        "fix-it" => (
            StatusCode::OK,
            h,
            json!({"fixed": true, "incident": payload["incident"]}).to_string(),
        )
            .into_response(),
        "throws" => {
            h.insert("x-amz-function-error", "Unhandled".parse().unwrap());
            (
                StatusCode::OK,
                h,
                json!({"errorMessage": "boom", "errorType": "Error"}).to_string(),
            )
                .into_response()
        }
        "throttled" => {
            h.insert(
                "x-amzn-errortype",
                "TooManyRequestsException".parse().unwrap(),
            );
            (StatusCode::TOO_MANY_REQUESTS, h, json!({"message": "Rate exceeded", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User"}).to_string()).into_response()
        }
        _ => {
            h.insert(
                "x-amzn-errortype",
                "ResourceNotFoundException".parse().unwrap(),
            );
            (StatusCode::NOT_FOUND, h, json!({"Type": "User", "message": format!("Function not found: arn:aws:lambda:us-east-1:123456789012:function:{name}")}).to_string()).into_response()
        }
    }
}

async fn sdk() -> aws_config::SdkConfig {
    firewatch_aws::static_sdk_config("us-east-1", "AKIAFIREWATCHTEST", "firewatchtestsecret").await
}

#[tokio::test]
async fn lambda_invoke_returns_the_payload_and_classifies_failures() {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let egress = LambdaEgress::new(Arc::new(NoEgress), lambda_client(&sdk().await, Some(&url)));

    let ok = egress
        .invoke_lambda("fix-it", &json!({"incident": "inc_1"}))
        .await
        .unwrap();
    assert_eq!(
        (ok.status, ok.body.clone()),
        (200, json!({"fixed": true, "incident": "inc_1"}))
    );
    assert_eq!(
        seen.lock().unwrap()[0],
        ("fix-it".to_owned(), json!({"incident": "inc_1"}))
    );

    let threw = egress.invoke_lambda("throws", &json!({})).await.unwrap();
    assert_eq!(threw.status, 500, "a function error fails the step");
    assert_eq!(threw.body["errorMessage"], "boom");

    // Throttled: the function did not run, so the step may be sent again.
    assert!(matches!(
        egress.invoke_lambda("throttled", &json!({})).await,
        Err(OutboundError::Unreached(_))
    ));
    // No such function: final.
    assert!(matches!(
        egress.invoke_lambda("nope", &json!({})).await,
        Err(OutboundError::Unsupported(_))
    ));
}

#[tokio::test]
async fn playbook_secrets_are_read_from_secrets_manager_when_asked() {
    let endpoint = std::env::var("FIREWATCH_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("FIREWATCH_TEST_S3_ENDPOINT is not set: run `bash tests/run.sh`, which starts the moto server")
    });
    let client = secrets_client(&sdk().await, Some(&endpoint));
    let id = format!("firewatch/playbook-secrets-{}", ulid::Ulid::new());
    client
        .create_secret()
        .name(&id)
        .secret_string(r#"{"ADMIN_TOKEN": "s3cr3t-from-sm", "EMPTY": ""}"#)
        .send()
        .await
        .unwrap();
    let secrets = SecretsManagerSecrets::new(client.clone(), id.clone());
    assert_eq!(
        secrets.get("ADMIN_TOKEN").await.unwrap().as_deref(),
        Some("s3cr3t-from-sm")
    );
    assert_eq!(secrets.get("EMPTY").await.unwrap(), None);
    assert_eq!(secrets.get("MISSING").await.unwrap(), None);
    // Rotated: the next request sees the new value (nothing is cached).
    client
        .put_secret_value()
        .secret_id(&id)
        .secret_string(r#"{"ADMIN_TOKEN": "rotated"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        secrets.get("ADMIN_TOKEN").await.unwrap().as_deref(),
        Some("rotated")
    );
    // A missing secret is an error that names the id.
    let missing = SecretsManagerSecrets::new(client.clone(), "firewatch/nope");
    let e = missing.get("ADMIN_TOKEN").await.unwrap_err();
    assert!(e.contains("Secrets Manager firewatch/nope"), "{e}");
    // A value that is not a JSON object is refused without quoting it.
    client
        .put_secret_value()
        .secret_id(&id)
        .secret_string("plain-s3cr3t-text")
        .send()
        .await
        .unwrap();
    let e = secrets.get("ADMIN_TOKEN").await.unwrap_err();
    assert!(
        e.contains("not a JSON object") && !e.contains("s3cr3t"),
        "{e}"
    );
}
