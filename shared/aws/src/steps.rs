//! The AWS side of playbook steps (feature `steps`): [`LambdaEgress`] invokes
//! functions for `lambda_invoke` steps with aws-sdk-lambda's `Invoke`, and
//! [`SecretsManagerSecrets`] reads playbook secrets from Secrets Manager at
//! the moment a request is sent. [`step_adapters_from_env`] builds both for
//! the functions that send.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_lambda::error::{DisplayErrorContext, SdkError};
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use firewatch_domain::ports::{
    Egress, EnvSecrets, OutboundError, OutboundRequest, OutboundResponse, SecretSource,
};

pub use aws_sdk_lambda::Client as LambdaClient;
pub use aws_sdk_secretsmanager::Client as SecretsManagerClient;

/// HTTP requests through `http`; Lambda invocations through the Lambda API.
/// Which functions may be invoked is the caller's IAM policy's business:
/// the SAM template grants `lambda:InvokeFunction` only on the ARNs in
/// its `PlaybookLambdaArns` parameter.
pub struct LambdaEgress {
    http: Arc<dyn Egress>,
    lambda: LambdaClient,
}

impl LambdaEgress {
    pub fn new(http: Arc<dyn Egress>, lambda: LambdaClient) -> Self {
        Self { http, lambda }
    }
}

/// How an invocation that got no payload back is reported. Throttling (the
/// function did not run) and a request that never left may be sent again; a
/// refusal (no such function, no permission, a bad payload) is final; a
/// request that left and got no answer is never repeated.
fn classify(e: SdkError<InvokeError>) -> OutboundError {
    let text = DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::ConstructionFailure(_) => OutboundError::Unsupported(text),
        SdkError::DispatchFailure(d) if d.is_io() || d.is_other() => OutboundError::Unreached(text),
        SdkError::ServiceError(s) => match s.err() {
            InvokeError::TooManyRequestsException(_)
            | InvokeError::ResourceNotReadyException(_)
            | InvokeError::ResourceConflictException(_) => OutboundError::Unreached(text),
            _ => OutboundError::Unsupported(text),
        },
        _ => OutboundError::NoAnswer(text),
    }
}

#[async_trait]
impl Egress for LambdaEgress {
    async fn send(&self, req: &OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        self.http.send(req).await
    }

    async fn invoke_lambda(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<OutboundResponse, OutboundError> {
        let bytes = serde_json::to_vec(payload)
            .map_err(|e| OutboundError::Unsupported(format!("payload: {e}")))?;
        let out = self
            .lambda
            .invoke()
            .function_name(function)
            .payload(Blob::new(bytes))
            .send()
            .await
            .map_err(classify)?;
        let body = out
            .payload()
            .map(|b| {
                serde_json::from_slice(b.as_ref()).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(b.as_ref()).into_owned())
                })
            })
            .unwrap_or(serde_json::Value::Null);
        // A function that threw is answered 200 with `X-Amz-Function-Error`
        // and the error as payload: the step sees status 500 and that body.
        let status = match out.function_error() {
            Some(_) => 500,
            None => u16::try_from(out.status_code()).unwrap_or(500),
        };
        Ok(OutboundResponse { status, body })
    }
}

/// Playbook secrets from one Secrets Manager secret whose value is a JSON
/// object of strings (`{"ADMIN_TOKEN": "…"}`), read each time a request is
/// sent, so a rotated value is used at once and no value outlives the send.
pub struct SecretsManagerSecrets {
    client: SecretsManagerClient,
    secret_id: String,
}

impl SecretsManagerSecrets {
    pub fn new(client: SecretsManagerClient, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSecrets {
    async fn get(&self, name: &str) -> Result<Option<String>, String> {
        let text = crate::config::read_secret(&self.client, &self.secret_id)
            .await?
            .ok_or_else(|| format!("Secrets Manager {}: no such secret", self.secret_id))?;
        let map: HashMap<String, String> = serde_json::from_str(&text).map_err(|_| {
            format!(
                "Secrets Manager {}: the value is not a JSON object of strings",
                self.secret_id
            )
        })?;
        Ok(map.get(name).filter(|v| !v.is_empty()).cloned())
    }
}

/// A Lambda client; `endpoint` points it at another Lambda API (tests).
pub fn lambda_client(sdk: &SdkConfig, endpoint: Option<&str>) -> LambdaClient {
    let mut b = aws_sdk_lambda::config::Builder::from(sdk);
    if let Some(e) = endpoint {
        b = b.endpoint_url(e);
    }
    LambdaClient::from_conf(b.build())
}

/// The secrets of a function that sends playbook requests: Secrets Manager
/// when `FIREWATCH_PLAYBOOK_SECRET_ID` names a secret (the SAM template sets
/// it from `PlaybookSecretName`), else the environment ([`EnvSecrets`]).
/// `FIREWATCH_SECRETSMANAGER_ENDPOINT` points the client elsewhere (tests).
pub fn secrets_from_env(sdk: &SdkConfig) -> Arc<dyn SecretSource> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    match var("FIREWATCH_PLAYBOOK_SECRET_ID") {
        Some(id) => Arc::new(SecretsManagerSecrets::new(
            crate::config::secrets_client(sdk, var("FIREWATCH_SECRETSMANAGER_ENDPOINT").as_deref()),
            id,
        )),
        None => Arc::new(EnvSecrets),
    }
}

/// The egress of a function that performs steps: `http` for requests and
/// the Lambda API (`FIREWATCH_LAMBDA_ENDPOINT` points it elsewhere) for
/// `lambda_invoke`.
pub fn egress_from_env(sdk: &SdkConfig, http: Arc<dyn Egress>) -> Arc<dyn Egress> {
    let endpoint = std::env::var("FIREWATCH_LAMBDA_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty());
    Arc::new(LambdaEgress::new(
        http,
        lambda_client(sdk, endpoint.as_deref()),
    ))
}
