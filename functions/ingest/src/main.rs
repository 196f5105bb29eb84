//! Lambda entry point of the ingest family: builds the AWS services once per
//! cold start from the environment and serves the router.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // Tokens and signing secrets from Secrets Manager, before any is read.
    firewatch_aws::secrets_into_env().await?;
    let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
    firewatch_web::init_tracing(&config);
    let services = firewatch_aws::bootstrap(config.settings)
        .await?
        .services
        .with_sns(Arc::new(firewatch_ingest::HttpSnsConfirmer::new()));
    lambda_http::run(firewatch_ingest::router(services)).await
}
