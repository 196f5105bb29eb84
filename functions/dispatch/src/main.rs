//! Lambda entry point of the dispatch family: the table's stream in, chat
//! effects out, partial batch failures reported.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Tokens and signing secrets from Secrets Manager, before any is read.
    firewatch_aws::secrets_into_env().await?;
    let services = firewatch_dispatch::delivering_services_from_env().await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |ev: lambda_runtime::LambdaEvent<aws_lambda_events::event::dynamodb::Event>| {
            let services = services.clone();
            async move {
                Ok::<_, lambda_runtime::Error>(
                    firewatch_dispatch::handle(&services, ev.payload).await,
                )
            }
        },
    ))
    .await
}
