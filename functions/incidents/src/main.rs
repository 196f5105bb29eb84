//! Lambda entry point of the incidents family: builds the AWS services once
//! per cold start from the environment and serves the router.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // Tokens and signing secrets from Secrets Manager, before any is read.
    firewatch_aws::secrets_into_env().await?;
    let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
    firewatch_web::init_tracing(&config);
    let boot = firewatch_aws::bootstrap(config.settings).await?;
    let sdk = &boot.sdk;
    // The model assisted triage asks, if one is configured.
    let llm = firewatch_aws::assisted_model(sdk).await?;
    // Work item pre-flight checks and handoffs call the tracker.
    let tracker = firewatch_egress::tracker_from_env()?;
    let services = boot.services.with_llm(llm).with_tracker(tracker);
    lambda_http::run(firewatch_incidents::router(services)).await
}
