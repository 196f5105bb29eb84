//! Lambda entry point of the ingest family: builds the AWS services once per
//! cold start from the environment and serves the router.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    firewatch_web::init_tracing(&firewatch_web::Config::from_env(
        firewatch_web::LogFormat::Json,
    )?);
    // Built after the webhook HMAC secrets are read from Secrets Manager,
    // and again when they change.
    let fresh = firewatch_aws::Fresh::start(|| async {
        let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
        let services = firewatch_aws::bootstrap(config.settings)
            .await?
            .services
            .with_sns(Arc::new(firewatch_ingest::HttpSnsConfirmer::new()));
        Ok(firewatch_ingest::router(services))
    })
    .await?;
    lambda_http::run(firewatch_aws::serve_fresh(fresh)).await
}
