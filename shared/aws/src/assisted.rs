//! The model assisted triage asks, built once per cold start from the
//! environment (feature `assisted`): Bedrock through [`BedrockLlm`], or an
//! OpenAI-compatible server through `firewatch_egress::OpenAiCompatibleLlm`,
//! whose API key comes from `OPENAI_API_KEY` or, on AWS, from the Secrets
//! Manager secret named by `OPENAI_API_KEY_SECRET_ID` (a plain string), so
//! the key is never in the template or the function's configuration.

use std::sync::Arc;

use aws_config::SdkConfig;
use firewatch_domain::ports::Llm;
use firewatch_domain::triage::assisted::ModelConfig;

use crate::{bedrock_client, BedrockLlm};

/// The model the environment configures, if any; an error names what is
/// wrong.
pub async fn assisted_model(sdk: &SdkConfig) -> Result<Option<Arc<dyn Llm>>, String> {
    assisted_model_from(sdk, |k| std::env::var(k).ok()).await
}

/// [`assisted_model`] from the variables `var` gives.
pub async fn assisted_model_from(
    sdk: &SdkConfig,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<Arc<dyn Llm>>, String> {
    let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
    Ok(match ModelConfig::from_vars(var)? {
        ModelConfig::None => None,
        ModelConfig::Bedrock {
            model_id,
            region,
            endpoint,
        } => Some(Arc::new(
            BedrockLlm::new(
                bedrock_client(sdk, region.as_deref(), endpoint.as_deref()),
                model_id,
            )
            .with_credentials(sdk.credentials_provider()),
        )),
        ModelConfig::OpenAi {
            base_url,
            api_key,
            model,
        } => {
            let api_key = match (api_key, var("OPENAI_API_KEY_SECRET_ID")) {
                (Some(k), _) => Some(k),
                (None, Some(id)) => Some(
                    secret_string(
                        sdk,
                        &id,
                        var("FIREWATCH_SECRETSMANAGER_ENDPOINT").as_deref(),
                    )
                    .await?,
                ),
                (None, None) => None,
            };
            Some(Arc::new(firewatch_egress::OpenAiCompatibleLlm::new(
                &base_url, api_key, &model,
            )))
        }
    })
}

/// The plain-string value of secret `id`; errors name the secret, never
/// a value.
async fn secret_string(
    sdk: &SdkConfig,
    id: &str,
    endpoint: Option<&str>,
) -> Result<String, String> {
    let value = crate::config::read_secret(&crate::config::secrets_client(sdk, endpoint), id)
        .await
        .map_err(|e| format!("OPENAI_API_KEY_SECRET_ID: {e}"))?;
    value
        .map(|v| v.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("OPENAI_API_KEY_SECRET_ID {id}: the secret has no string value"))
}
