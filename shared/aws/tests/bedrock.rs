//! The Bedrock adapter through aws-sdk-bedrockruntime (real request
//! serialisation and SigV4 signing) against a local stand-in for the
//! Converse API (`POST /model/{modelId}/converse`) shaped as it documents.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use firewatch_aws::{bedrock_client, BedrockLlm};
use firewatch_domain::ports::{Llm, LlmError, LlmRequest};
use serde_json::{json, Value};

type Seen = Arc<Mutex<Vec<(String, HeaderMap, Value)>>>;

async fn converse(
    State((seen, script)): State<(Seen, Arc<Mutex<Vec<&'static str>>>)>,
    Path(model): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    seen.lock().unwrap().push((model, headers, body));
    match script.lock().unwrap().remove(0) {
        "throttle" => (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-amzn-errortype", "ThrottlingException")],
            Json(json!({"message": "Too many requests, please wait before trying again."})),
        )
            .into_response(),
        "text" => Json(json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "{\"summary\": {\"text\": \"t\", \"fact_ids\": [\"F1\"]}}"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 50, "outputTokens": 10, "totalTokens": 60},
            "metrics": {"latencyMs": 80}
        }))
        .into_response(),
        _ => Json(json!({
            "output": {"message": {"role": "assistant", "content": [{"toolUse": {
                "toolUseId": "tooluse_1", "name": "triage_report",
                "input": {"summary": {"text": "Checkout fails.", "fact_ids": ["F1", "F3"]}, "confidence": "medium"}}}]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 812, "outputTokens": 96, "totalTokens": 908},
            "metrics": {"latencyMs": 1234}
        }))
        .into_response(),
    }
}

#[tokio::test]
async fn converse_with_a_tool_a_text_answer_and_throttling() {
    let seen: Seen = Arc::default();
    let script = Arc::new(Mutex::new(vec!["tool", "text", "throttle"]));
    let app = Router::new()
        .route("/model/{model}/converse", post(converse))
        .with_state((seen.clone(), script));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sdk =
        firewatch_aws::static_sdk_config("us-east-1", "AKIAFIREWATCHTEST", "firewatchtestsecret")
            .await;
    let model = "anthropic.claude-3-5-sonnet-20240620-v1:0";
    let llm = BedrockLlm::new(
        bedrock_client(&sdk, Some("eu-central-1"), Some(&url)),
        model,
    );
    let req = LlmRequest {
        system: "You triage.".into(),
        prompt: "Facts: F1 [incident] incident.status: <untrusted>sev2</untrusted>".into(),
        tool_name: "triage_report",
        schema: json!({"type": "object", "properties": {"summary": {"type": "object"}}, "required": ["summary"]}),
        max_tokens: 700,
    };
    let a = llm.complete(&req).await.unwrap();
    assert_eq!(
        a.json.as_ref().unwrap()["summary"]["text"],
        "Checkout fails."
    );
    assert_eq!((a.usage.input_tokens, a.usage.output_tokens), (812, 96));

    let (path_model, headers, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(path_model, model);
    let auth = headers["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIAFIREWATCHTEST/"),
        "{auth}"
    );
    assert!(
        auth.contains("/eu-central-1/bedrock/aws4_request"),
        "{auth}"
    );
    assert_eq!(body["system"][0]["text"], "You triage.");
    assert_eq!(body["messages"][0]["role"], "user");
    assert_eq!(
        body["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "triage_report"
    );
    assert_eq!(
        body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"][0],
        "summary"
    );
    assert_eq!(
        body["toolConfig"]["toolChoice"]["tool"]["name"],
        "triage_report"
    );
    assert_eq!(body["inferenceConfig"]["maxTokens"], 700);

    let a = llm.complete(&req).await.unwrap();
    assert!(a.json.is_none());
    assert!(a.text.unwrap().contains("\"summary\""));

    // Throttled once: reported as such, not retried by the SDK.
    assert!(matches!(
        llm.complete(&req).await,
        Err(LlmError::Throttled(_))
    ));
    assert_eq!(seen.lock().unwrap().len(), 3);
}
