//! Lambda entry point of the checks: EventBridge Scheduler's `heartbeats`,
//! `smoke`, `freshness` and `pipelines` jobs. Their alerts go through the normal incident
//! flow and the dispatcher delivers them, so no chat client is linked here;
//! smoke checks send their requests (with their secrets read when sent).

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
    firewatch_web::init_tracing(&config);
    let aws = firewatch_aws::AwsConfig::from_env()?;
    let egress_allow = config.settings.egress_allow.clone();
    let sdk = firewatch_aws::sdk_config(aws.region.clone()).await;
    let services = Arc::new(
        firewatch_aws::services_with(&sdk, &aws, config.settings)
            .with_egress(Arc::new(firewatch_egress::HttpEgress::new(egress_allow)))
            .with_secrets(firewatch_aws::secrets_from_env(&sdk)),
    );
    // Smoke checks defined in files are synced once, before the first
    // `smoke` job of this instance.
    let synced = Arc::new(tokio::sync::OnceCell::new());
    lambda_runtime::run(lambda_runtime::service_fn(
        move |ev: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let (services, synced) = (services.clone(), synced.clone());
            async move {
                let inv = firewatch_scheduler::Invocation::parse(&ev.payload)?;
                match inv.job {
                    firewatch_scheduler::Job::Retries => {
                        return Err(firewatch_scheduler::JobError::Elsewhere(
                            "retries",
                            "firewatch-scheduler",
                        )
                        .into())
                    }
                    firewatch_scheduler::Job::Smoke => {
                        synced
                            .get_or_init(|| async {
                                match firewatch_scheduler::sync_smoke_checks(&services).await {
                                    Ok(n) => tracing::info!(changed = n, "smoke checks synced"),
                                    Err(e) => tracing::warn!(error = %e, "smoke checks not synced"),
                                }
                            })
                            .await;
                    }
                    _ => {}
                }
                Ok::<_, lambda_runtime::Error>(
                    firewatch_scheduler::run_checks_tick(&services, inv).await?,
                )
            }
        },
    ))
    .await
}
