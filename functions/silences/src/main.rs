//! Lambda entry point of the silences family: builds the AWS services once
//! per cold start from the environment and serves the router.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
    firewatch_web::init_tracing(&config);
    let services = firewatch_aws::bootstrap(config.settings).await?.services;
    lambda_http::run(firewatch_silences::router(services)).await
}
