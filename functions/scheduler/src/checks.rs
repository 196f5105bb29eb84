//! Lambda entry point of the checks: EventBridge Scheduler's `heartbeats`,
//! `smoke`, `freshness`, `pipelines`, `silences`, `reminders` and
//! `playbooks` jobs. Their alerts go through the normal incident
//! flow and the dispatcher delivers them, so no chat client is linked here;
//! smoke checks send their requests (with their secrets read when sent).

// The handler's future is deep (smoke checks, the playbook catalog, every
// job's state machine).
#![recursion_limit = "256"]

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
    firewatch_web::init_tracing(&config);
    let egress_allow = config.settings.egress_allow.clone();
    let firewatch_aws::Bootstrap { aws, sdk, services } =
        firewatch_aws::bootstrap(config.settings).await?;
    let services = Arc::new(
        services
            .with_egress(Arc::new(firewatch_egress::HttpEgress::new(egress_allow)))
            .with_secrets(firewatch_aws::secrets_from_env(&sdk)),
    );
    let s3 = firewatch_aws::s3_client(&sdk, aws.s3_endpoint.as_deref());
    let bucket = aws.bucket.clone();
    // Smoke checks defined in files are synced once, before the first
    // `smoke` job of this instance.
    let synced = Arc::new(tokio::sync::OnceCell::new());
    lambda_runtime::run(lambda_runtime::service_fn(
        move |ev: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let (services, synced) = (services.clone(), synced.clone());
            let (s3, bucket) = (s3.clone(), bucket.clone());
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
                                match firewatch_scheduler::sync_smoke_checks(
                                    &services, &s3, &bucket,
                                )
                                .await
                                {
                                    Ok(n) => tracing::info!(changed = n, "smoke checks synced"),
                                    Err(e) => tracing::warn!(error = %e, "smoke checks not synced"),
                                }
                            })
                            .await;
                    }
                    firewatch_scheduler::Job::Playbooks => {
                        let report = firewatch_scheduler::publish_playbooks(&s3, &bucket).await?;
                        return Ok(serde_json::to_value(report)?);
                    }
                    _ => {}
                }
                Ok::<_, lambda_runtime::Error>(serde_json::to_value(
                    firewatch_scheduler::run_checks_tick(&services, inv).await?,
                )?)
            }
        },
    ))
    .await
}
