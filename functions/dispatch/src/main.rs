//! Lambda entry point of the dispatch family: the table's stream in, chat
//! effects out, partial batch failures reported.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
    firewatch_web::init_tracing(&config);
    let aws = firewatch_aws::AwsConfig::from_env()?;
    let chat = firewatch_dispatch::chat_from_env()?;
    let services = Arc::new(
        firewatch_aws::services(&aws, config.settings)
            .await
            .with_chat(Arc::new(chat)),
    );
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
