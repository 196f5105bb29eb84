//! Lambda entry point of the scheduler: EventBridge Scheduler's JSON input
//! in, the job's report out.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let services = firewatch_dispatch::delivering_services_from_env().await?;
    // Smoke checks defined in files are synced once, before the first
    // `smoke` job of this instance.
    let synced = std::sync::Arc::new(tokio::sync::OnceCell::new());
    lambda_runtime::run(lambda_runtime::service_fn(
        move |ev: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let (services, synced) = (services.clone(), synced.clone());
            async move {
                if matches!(
                    firewatch_scheduler::Job::parse(&ev.payload),
                    Ok(firewatch_scheduler::Job::Smoke)
                ) {
                    synced
                        .get_or_init(|| async {
                            match firewatch_scheduler::sync_smoke_checks(&services).await {
                                Ok(n) => tracing::info!(changed = n, "smoke checks synced"),
                                Err(e) => tracing::warn!(error = %e, "smoke checks not synced"),
                            }
                        })
                        .await;
                }
                Ok::<_, lambda_runtime::Error>(
                    firewatch_scheduler::handle(&services, &ev.payload).await?,
                )
            }
        },
    ))
    .await
}
