//! Lambda entry point of the playbooks family: builds the AWS services and
//! loads the playbook definitions once per cold start, then serves the
//! router. Definitions come from `FIREWATCH_PLAYBOOKS_PREFIX` in the
//! state bucket (refused files are logged and listed by `GET /v1/playbooks`).

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
    firewatch_web::init_tracing(&config);
    let egress_allow = config.settings.egress_allow.clone();
    let firewatch_aws::Bootstrap { aws, sdk, services } =
        firewatch_aws::bootstrap(config.settings).await?;
    // Dry-runs send read-only HTTP requests; their secrets are read when
    // they are sent.
    let services = services
        .with_egress(Arc::new(firewatch_egress::HttpEgress::new(egress_allow)))
        .with_secrets(firewatch_aws::secrets_from_env(&sdk));
    let prefix =
        std::env::var("FIREWATCH_PLAYBOOKS_PREFIX").unwrap_or_else(|_| "playbooks/".into());
    let s3 = firewatch_aws::s3_client(&sdk, aws.s3_endpoint.as_deref());
    let loaded = firewatch_aws::playbooks_from_s3(&s3, &aws.bucket, &prefix).await?;
    for e in &loaded.errors {
        tracing::warn!(error = %e, "playbook refused");
    }
    let catalog = Arc::new(firewatch_domain::playbooks::Catalog::new(loaded));
    lambda_http::run(firewatch_playbooks::router(services, catalog)).await
}
