//! Lambda entry point of the scheduler: EventBridge Scheduler's JSON input
//! in, the job's report out.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let services = firewatch_dispatch::delivering_services_from_env().await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |ev: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let services = services.clone();
            async move {
                Ok::<_, lambda_runtime::Error>(
                    firewatch_scheduler::handle(&services, &ev.payload).await?,
                )
            }
        },
    ))
    .await
}
