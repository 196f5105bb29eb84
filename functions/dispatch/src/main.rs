//! Lambda entry point of the dispatch family: the table's stream in, chat
//! effects out, partial batch failures reported.

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
        move |ev: lambda_runtime::LambdaEvent<aws_lambda_events::event::dynamodb::Event>| {
            let fresh = fresh.clone();
            async move {
                let services = fresh.get().await;
                Ok::<_, lambda_runtime::Error>(
                    firewatch_dispatch::handle(&services, ev.payload).await,
                )
            }
        },
    ))
    .await
}
