//! Lambda entry point of the scheduler: EventBridge Scheduler's JSON input
//! in, the job's report out.

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
        move |ev: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let services = services.clone();
            async move {
                let job = firewatch_scheduler::Job::parse(&ev.payload)?;
                Ok::<_, lambda_runtime::Error>(firewatch_scheduler::run(&services, job).await?)
            }
        },
    ))
    .await
}
