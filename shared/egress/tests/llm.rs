//! The OpenAI-compatible model adapter against a local chat completions
//! server shaped as the API documents it.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use firewatch_domain::ports::{Llm, LlmError, LlmRequest};
use firewatch_egress::OpenAiCompatibleLlm;
use serde_json::{json, Value};

type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;
/// What the server answers, in order.
type Script = Arc<Mutex<Vec<(StatusCode, Value)>>>;

async fn serve(answers: Vec<(StatusCode, Value)>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let answers = Arc::new(Mutex::new(answers));
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(
                |State((seen, answers)): State<(Seen, Script)>,
                 headers: HeaderMap,
                 Json(body): Json<Value>| async move {
                    seen.lock().unwrap().push((headers, body));
                    let (status, v) = answers.lock().unwrap().remove(0);
                    (status, Json(v))
                },
            ),
        )
        .with_state((seen.clone(), answers));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn request() -> LlmRequest {
    LlmRequest {
        system: "You triage.".into(),
        prompt: "Facts: F1 ...".into(),
        tool_name: "triage_report",
        schema: json!({"type": "object"}),
        max_tokens: 500,
    }
}

#[tokio::test]
async fn a_tool_call_a_text_answer_and_errors_are_read_as_the_api_documents_them() {
    let report = json!({"summary": {"text": "s", "fact_ids": ["F1"]}});
    let (url, seen) = serve(vec![
        (
            StatusCode::OK,
            json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "triage_report", "arguments": report.to_string()}}]}}],
                "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}}),
        ),
        (
            StatusCode::OK,
            json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "{\"summary\": 1}"}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5}}),
        ),
        (StatusCode::TOO_MANY_REQUESTS, json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})),
        (StatusCode::SERVICE_UNAVAILABLE, json!({"error": {"message": "overloaded"}})),
        (StatusCode::UNAUTHORIZED, json!({"error": {"message": "Incorrect API key provided"}})),
    ])
    .await;
    let llm = OpenAiCompatibleLlm::new(&url, Some("sk-test-key".into()), "gpt-4o-mini");
    let a = llm.complete(&request()).await.unwrap();
    assert_eq!(a.json, Some(report));
    assert_eq!((a.usage.input_tokens, a.usage.output_tokens), (120, 30));
    let (headers, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(headers["authorization"], "Bearer sk-test-key");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["tools"][0]["function"]["name"], "triage_report");
    assert_eq!(body["tool_choice"]["function"]["name"], "triage_report");

    let a = llm.complete(&request()).await.unwrap();
    assert_eq!(a.text.as_deref(), Some("{\"summary\": 1}"));
    assert!(matches!(
        llm.complete(&request()).await,
        Err(LlmError::Throttled(_))
    ));
    assert!(matches!(
        llm.complete(&request()).await,
        Err(LlmError::Server(_))
    ));
    let refused = llm.complete(&request()).await.unwrap_err();
    assert!(matches!(refused, LlmError::Refused(_)));
    assert!(!refused.to_string().contains("sk-test-key"));
}
