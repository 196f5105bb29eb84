//! Lambda entry point of the dispatch family: the table's stream in, chat
//! effects out, partial batch failures reported.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
    firewatch_web::init_tracing(&config);
    let aws = firewatch_aws::AwsConfig::from_env()?;
    let slack = firewatch_slack::SlackConfig::from_vars(|k| std::env::var(k).ok())?;
    let telegram = firewatch_telegram::TelegramConfig::from_vars(|k| std::env::var(k).ok())?;
    let discord = firewatch_discord::DiscordConfig::from_vars(|k| std::env::var(k).ok())?;
    let chat = firewatch_domain::chat::ChatHub {
        discord: discord.map(|c| {
            Arc::new(firewatch_discord::DiscordChat::new(c))
                as Arc<dyn firewatch_domain::chat::ChatClient>
        }),
        telegram: telegram.map(|c| {
            Arc::new(firewatch_telegram::TelegramChat::new(c))
                as Arc<dyn firewatch_domain::chat::ChatClient>
        }),
        slack: slack.map(|c| {
            Arc::new(firewatch_slack::SlackChat::new(c))
                as Arc<dyn firewatch_domain::chat::ChatClient>
        }),
        ..Default::default()
    };
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
