//! Lambda entry point of the incidents family: builds the AWS services once
//! per cold start from the environment and serves the router.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
    firewatch_web::init_tracing(&config);
    let aws = firewatch_aws::AwsConfig::from_env()?;
    let sdk = firewatch_aws::sdk_config(aws.region.clone()).await;
    // The model assisted triage asks, if one is configured.
    use firewatch_domain::triage::assisted::ModelConfig;
    let llm: Option<std::sync::Arc<dyn firewatch_domain::ports::Llm>> =
        match ModelConfig::from_vars(|k| std::env::var(k).ok())? {
            ModelConfig::None => None,
            ModelConfig::Bedrock {
                model_id,
                region,
                endpoint,
            } => Some(std::sync::Arc::new(firewatch_aws::BedrockLlm::new(
                firewatch_aws::bedrock_client(&sdk, region.as_deref(), endpoint.as_deref()),
                model_id,
            ))),
            ModelConfig::OpenAi {
                base_url,
                api_key,
                model,
            } => Some(std::sync::Arc::new(
                firewatch_egress::OpenAiCompatibleLlm::new(&base_url, api_key, &model),
            )),
        };
    let services = firewatch_aws::services_with(&sdk, &aws, config.settings).with_llm(llm);
    lambda_http::run(firewatch_incidents::router(services)).await
}
