//! The model the functions build from their environment: an
//! OpenAI-compatible key read from Secrets Manager (moto) and sent as the
//! bearer token, never shown; Bedrock's credentials checked without a model
//! call.

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use firewatch_aws::assisted_model_from;
use firewatch_domain::ports::LlmRequest;
use serde_json::{json, Value};

async fn sdk() -> aws_config::SdkConfig {
    firewatch_aws::static_sdk_config("us-east-1", "AKIAFIREWATCHTEST", "firewatchtestsecret").await
}

fn moto() -> String {
    std::env::var("FIREWATCH_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("FIREWATCH_TEST_S3_ENDPOINT is not set: run `bash tests/run.sh`, which starts the moto server")
    })
}

fn vars(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
}

fn request() -> LlmRequest {
    LlmRequest {
        system: "You triage.".into(),
        prompt: "Facts: F1".into(),
        tool_name: "triage_report",
        schema: json!({"type": "object"}),
        max_tokens: 100,
    }
}

#[tokio::test]
async fn the_openai_key_comes_from_secrets_manager_and_is_never_shown() {
    // A chat-completions server that records the Authorization header.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = seen.clone();
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |headers: HeaderMap, Json(_): Json<Value>| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(
                    headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned(),
                );
                Json(json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "{\"summary\": 1}"}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sdk = sdk().await;
    let mut b = aws_sdk_secretsmanager::config::Builder::from(&sdk);
    b = b.endpoint_url(moto());
    let client = aws_sdk_secretsmanager::Client::from_conf(b.build());
    let id = format!("firewatch/openai-{}", ulid::Ulid::new());
    client
        .create_secret()
        .name(&id)
        .secret_string("sk-firewatch-test-key\n")
        .send()
        .await
        .unwrap();

    let llm = assisted_model_from(
        &sdk,
        vars(vec![
            ("OPENAI_BASE_URL", base.clone()),
            ("OPENAI_MODEL", "gpt-4o-mini".into()),
            ("OPENAI_API_KEY_SECRET_ID", id.clone()),
            ("FIREWATCH_SECRETSMANAGER_ENDPOINT", moto()),
        ]),
    )
    .await
    .unwrap()
    .expect("a model is configured");
    assert_eq!(llm.provider(), "openai_compatible");
    llm.complete(&request()).await.unwrap();
    assert_eq!(seen.lock().unwrap()[0], "Bearer sk-firewatch-test-key");
    let c = llm.credentials().await.unwrap();
    assert!(!c.contains("sk-firewatch"), "{c}");

    // A secret that does not exist: the error names it, and nothing else.
    let e = assisted_model_from(
        &sdk,
        vars(vec![
            ("OPENAI_BASE_URL", base),
            ("OPENAI_MODEL", "gpt-4o-mini".into()),
            ("OPENAI_API_KEY_SECRET_ID", "firewatch/absent".into()),
            ("FIREWATCH_SECRETSMANAGER_ENDPOINT", moto()),
        ]),
    )
    .await
    .err()
    .expect("refused");
    assert!(e.contains("firewatch/absent"), "{e}");
}

#[tokio::test]
async fn bedrock_credentials_are_checked_without_calling_the_model() {
    let sdk = sdk().await;
    let llm = assisted_model_from(
        &sdk,
        vars(vec![
            (
                "BEDROCK_MODEL_ID",
                "anthropic.claude-3-haiku-20240307-v1:0".into(),
            ),
            // Nothing listens here: a model call would fail.
            ("FIREWATCH_BEDROCK_ENDPOINT", "http://127.0.0.1:9".into()),
        ]),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(llm.provider(), "bedrock");
    let ok = llm.credentials().await.unwrap();
    assert!(!ok.contains("firewatchtestsecret"), "{ok}");

    // No credentials provider at all.
    let bare = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let llm = assisted_model_from(&bare, vars(vec![("BEDROCK_MODEL_ID", "m".into())]))
        .await
        .unwrap()
        .unwrap();
    assert!(llm.credentials().await.is_err());

    // Nothing configured: no model.
    assert!(assisted_model_from(&sdk, vars(vec![]))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_deployments_secrets_are_read_from_secrets_manager_field_by_field() {
    let sdk = sdk().await;
    let client = firewatch_aws::secrets_client(&sdk, Some(&moto()));
    let base = format!("firewatch/secrets-{}", ulid::Ulid::new());
    for (consumer, value) in [
        (
            "slack",
            json!({"slack_bot_token": "xoxb-runtime-1", "slack_signing_secret": "sign-1"}),
        ),
        ("telegram", json!({"telegram_bot_token": "123:tg"})),
        ("tracker", json!({"tracker_token": "ghp_runtime0000000000"})),
    ] {
        client
            .create_secret()
            .name(format!("{base}/{consumer}"))
            .secret_string(value.to_string())
            .send()
            .await
            .unwrap();
    }
    let got = firewatch_aws::secret_variables(
        &sdk,
        vars(vec![
            // The dispatcher's secrets; the Discord one does not exist (a
            // platform not in use), which gives nothing.
            (
                "FIREWATCH_SECRET_IDS",
                format!("{base}/slack,{base}/discord,{base}/tracker"),
            ),
            (
                "FIREWATCH_SECRET_FIELDS",
                "slack_bot_token,slack_signing_secret,discord_bot_token,tracker_token".into(),
            ),
            ("FIREWATCH_TRACKER", "github".into()),
            ("FIREWATCH_SECRETSMANAGER_ENDPOINT", moto()),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(
        got,
        [
            ("SLACK_BOT_TOKEN", "xoxb-runtime-1".to_string()),
            ("SLACK_SIGNING_SECRET", "sign-1".to_string()),
            ("GITHUB_TOKEN", "ghp_runtime0000000000".to_string()),
        ],
        "only the named secrets, only this function's fields"
    );
    // No secret named: nothing read.
    assert!(firewatch_aws::secret_variables(&sdk, vars(vec![]))
        .await
        .unwrap()
        .is_empty());
    // An error names the secret, never a value.
    let e = firewatch_aws::secret_variables(
        &sdk,
        vars(vec![
            ("FIREWATCH_SECRET_IDS", format!("{base}/slack")),
            ("FIREWATCH_SECRET_FIELDS", "slack_token".into()),
            ("FIREWATCH_SECRETSMANAGER_ENDPOINT", moto()),
        ]),
    )
    .await
    .unwrap_err();
    assert!(
        e.contains(&format!("{base}/slack")) && !e.contains("xoxb"),
        "{e}"
    );
}

#[tokio::test]
async fn tenant_secrets_live_in_secrets_manager_under_the_tenants_path() {
    use firewatch_types::TenantId;
    let sdk = sdk().await;
    let prefix = format!("firewatch-{}/tenants/", ulid::Ulid::new());
    let vault = firewatch_aws::vault_from(
        &sdk,
        vars(vec![
            ("FIREWATCH_TENANT_SECRETS_PREFIX", prefix.clone()),
            ("FIREWATCH_SECRETSMANAGER_ENDPOINT", moto()),
        ]),
    )
    .expect("a vault is configured");
    let (acme, beta) = (
        TenantId::parse("acme").unwrap(),
        TenantId::parse("beta").unwrap(),
    );
    assert_eq!(vault.get(&acme, "PD_KEY").await.unwrap(), None);
    vault.put(&acme, "PD_KEY", "r0uting-key-1").await.unwrap();
    vault.put(&acme, "PD_KEY", "r0uting-key-2").await.unwrap();
    assert_eq!(
        vault.get(&acme, "PD_KEY").await.unwrap().as_deref(),
        Some("r0uting-key-2")
    );
    assert_eq!(
        vault.get(&beta, "PD_KEY").await.unwrap(),
        None,
        "another tenant's path"
    );
    // Where it lives, as an operator finds it.
    let client = firewatch_aws::secrets_client(&sdk, Some(&moto()));
    let raw = client
        .get_secret_value()
        .secret_id(format!("{prefix}acme/PD_KEY"))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.secret_string(), Some("r0uting-key-2"));
    vault.delete(&acme, "PD_KEY").await.unwrap();
    assert_eq!(vault.get(&acme, "PD_KEY").await.unwrap(), None);
    vault.delete(&acme, "PD_KEY").await.unwrap();
    // Set again at once after a delete.
    vault.put(&acme, "PD_KEY", "r0uting-key-3").await.unwrap();
    assert_eq!(
        vault.get(&acme, "PD_KEY").await.unwrap().as_deref(),
        Some("r0uting-key-3")
    );
    assert!(
        firewatch_aws::vault_from(&sdk, vars(vec![])).is_none(),
        "none unless named"
    );
}

#[tokio::test]
async fn the_functions_sdk_configuration_signs_and_calls_with_the_environments_credentials() {
    // What a Lambda is given: credentials and region in its environment.
    let env = vars(vec![
        ("AWS_ACCESS_KEY_ID", "AKIAFIREWATCHLEAN".into()),
        ("AWS_SECRET_ACCESS_KEY", "firewatchleansecret".into()),
        ("AWS_SESSION_TOKEN", "session-token".into()),
        ("AWS_REGION", "eu-west-1".into()),
    ]);
    let sdk = firewatch_aws::sdk_config_from(None, env);
    assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
    let client = firewatch_aws::secrets_client(&sdk, Some(&moto()));
    let id = format!("firewatch/lean-{}", ulid::Ulid::new());
    client
        .create_secret()
        .name(&id)
        .secret_string("v")
        .send()
        .await
        .expect("a signed call with the environment's credentials");
    let got = client
        .get_secret_value()
        .secret_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("v"));
    // No credentials in the environment: none invented.
    let bare = firewatch_aws::sdk_config_from(Some("us-east-1".into()), |_| None);
    assert!(bare.credentials_provider().is_none());
}
