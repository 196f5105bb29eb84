//! Lambda entry point of the incidents family.
//!
//! Until the AWS adapters land, it runs on the embedded store under
//! `FIREWATCH_DATA_DIR` (default `/tmp/firewatch`), which on Lambda lasts
//! only as long as the execution environment.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = firewatch_web::Config::from_env(firewatch_web::LogFormat::Json)?;
    firewatch_web::init_tracing(&config);
    let dir = std::env::var("FIREWATCH_DATA_DIR").unwrap_or_else(|_| "/tmp/firewatch".into());
    let services =
        firewatch_local::services(std::path::Path::new(&dir))?.with_settings(config.settings);
    lambda_http::run(firewatch_incidents::router(services)).await
}
