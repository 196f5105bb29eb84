//! Lambda entry point of the Discord interactions endpoint, on the AWS adapters.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    firewatch_web::init_tracing(&firewatch_web::Config::from_env(
        firewatch_web::LogFormat::Json,
    )?);
    // Built after the token and public key are read from Secrets Manager,
    // and again when they change.
    let fresh = firewatch_aws::Fresh::start(|| async {
        let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
        let discord = firewatch_discord::DiscordConfig::from_vars(|k| std::env::var(k).ok())?
            .ok_or(
                "DISCORD_BOT_TOKEN and DISCORD_PUBLIC_KEY must be set for the Discord function",
            )?;
        // Playbooks are listed from here; their dry-runs and steps are the
        // dispatcher's, so this function sends nothing out.
        let (services, playbooks) = firewatch_aws::chat_bootstrap(config.settings).await?;
        let inbound = firewatch_discord::DiscordInbound {
            public_key: discord.public_key,
        };
        Ok(firewatch_discord::router(services, inbound, playbooks))
    })
    .await?;
    lambda_http::run(firewatch_aws::serve_fresh(fresh)).await
}
