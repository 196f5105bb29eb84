//! Lambda entry point of the Slack endpoints (slash commands and
//! interactivity), on the AWS adapters.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    firewatch_web::init_tracing(&firewatch_web::Config::from_env(
        firewatch_web::LogFormat::Json,
    )?);
    // Built after the token and signing secret are read from Secrets
    // Manager, and again when they change.
    let fresh = firewatch_aws::Fresh::start(|| async {
        let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
        let slack = firewatch_slack::SlackConfig::from_vars(|k| std::env::var(k).ok())?
            .ok_or("SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET must be set for the Slack function")?;
        // Playbooks are listed from here; their dry-runs and steps are the
        // dispatcher's, so this function sends nothing out.
        let (services, playbooks) = firewatch_aws::chat_bootstrap(config.settings).await?;
        let inbound = firewatch_slack::SlackInbound::new(slack.signing_secret.clone())
            .allowing_origin_of(&slack.api_url);
        Ok(firewatch_slack::router(services, inbound, playbooks))
    })
    .await?;
    lambda_http::run(firewatch_aws::serve_fresh(fresh)).await
}
