//! Lambda entry point of the scheduler: EventBridge Scheduler's `retries`
//! job (the dispatch policy over due and stranded outbox records), with the
//! chat clients that deliver. The checking jobs run in `firewatch-checks`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Built after the chat tokens are read from Secrets Manager, and again
    // when they change.
    let fresh = firewatch_aws::Fresh::start(|| async {
        firewatch_dispatch::delivering_services_from_env()
            .await
            .map_err(|e| e.to_string())
    })
    .await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |ev: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let fresh = fresh.clone();
            async move {
                let services = fresh.get().await;
                let inv = firewatch_scheduler::Invocation::parse(&ev.payload)?;
                if inv.job != firewatch_scheduler::Job::Retries {
                    return Err(firewatch_scheduler::JobError::Elsewhere(
                        inv.job.name(),
                        "firewatch-checks",
                    )
                    .into());
                }
                Ok::<_, lambda_runtime::Error>(firewatch_scheduler::run_retries(&services).await?)
            }
        },
    ))
    .await
}
