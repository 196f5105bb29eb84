//! Lambda entry point of the Telegram webhook, on the AWS adapters.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    firewatch_web::init_tracing(&firewatch_web::Config::from_env(
        firewatch_web::LogFormat::Json,
    )?);
    // Built after the token and webhook secret are read from Secrets
    // Manager, and again when they change.
    let fresh = firewatch_aws::Fresh::start(|| async {
        let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
        let tg = firewatch_telegram::TelegramConfig::from_vars(|k| std::env::var(k).ok())?.ok_or(
            "TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET must be set for the Telegram function",
        )?;
        // Playbooks are listed from here; their dry-runs and steps are the
        // dispatcher's, so this function sends nothing out.
        let (services, playbooks) = firewatch_aws::chat_bootstrap(config.settings).await?;
        let inbound = firewatch_telegram::TelegramInbound {
            webhook_secret: tg.webhook_secret.clone(),
            bot: Arc::new(firewatch_telegram::TelegramChat::new(tg)),
        };
        Ok(firewatch_telegram::router(services, inbound, playbooks))
    })
    .await?;
    lambda_http::run(firewatch_aws::serve_fresh(fresh)).await
}
