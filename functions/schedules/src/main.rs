//! Lambda entry point of the schedules family: builds the AWS services once
//! per cold start from the environment and serves the router.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
    firewatch_web::init_tracing(&config);
    let egress_allow = config.settings.egress_allow.clone();
    let boot = firewatch_aws::bootstrap(config.settings).await?;
    // `POST /v1/smoke-checks/{id}/run` sends the check's requests, with
    // their secrets read when sent.
    let services = boot
        .services
        .with_egress(std::sync::Arc::new(firewatch_egress::HttpEgress::new(
            egress_allow,
        )))
        .with_secrets(firewatch_aws::secrets_from_env(&boot.sdk));
    lambda_http::run(firewatch_schedules::router(services)).await
}
