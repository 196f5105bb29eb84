//! Lambda entry point of the incidents family: builds the AWS services once
//! per cold start from the environment and serves the router.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    firewatch_web::init_tracing(&firewatch_web::Config::from_env(
        firewatch_web::LogFormat::Json,
    )?);
    // Built after the tracker's token is read from Secrets Manager, and
    // again when it changes.
    let fresh = firewatch_aws::Fresh::start(|| async {
        let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
        let boot = firewatch_aws::bootstrap(config.settings).await?;
        // The model assisted triage asks, if one is configured.
        let llm = firewatch_aws::assisted_model(&boot.sdk).await?;
        // Work item pre-flight checks and handoffs call the tracker.
        let tracker = firewatch_egress::tracker_from_env()?;
        let services = boot.services.with_llm(llm).with_tracker(tracker);
        Ok(firewatch_incidents::router(services))
    })
    .await?;
    lambda_http::run(firewatch_aws::serve_fresh(fresh)).await
}
