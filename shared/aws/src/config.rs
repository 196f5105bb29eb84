//! Building the SDK clients from the environment.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use firewatch_domain::{Services, Settings};
use std::sync::Arc;

use crate::{DynamoStore, S3Blobs};

/// Where firewatch's state lives in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// `FIREWATCH_TABLE`: the DynamoDB table.
    pub table: String,
    /// `FIREWATCH_BUCKET`: the S3 bucket.
    pub bucket: String,
    /// `AWS_REGION` (set by Lambda).
    pub region: Option<String>,
    /// `FIREWATCH_DYNAMODB_ENDPOINT`: another DynamoDB (DynamoDB Local).
    pub dynamodb_endpoint: Option<String>,
    /// `FIREWATCH_S3_ENDPOINT`: another S3 (a local S3 server); implies
    /// path-style addressing.
    pub s3_endpoint: Option<String>,
}

impl AwsConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Reads through `var`; names the variable that is missing.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let required = |name: &str| {
            var(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                format!(
                    "{name} is not set: it names the {}",
                    if name.ends_with("TABLE") {
                        "DynamoDB table"
                    } else {
                        "S3 bucket"
                    }
                )
            })
        };
        Ok(Self {
            table: required("FIREWATCH_TABLE")?,
            bucket: required("FIREWATCH_BUCKET")?,
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            dynamodb_endpoint: var("FIREWATCH_DYNAMODB_ENDPOINT").filter(|v| !v.is_empty()),
            s3_endpoint: var("FIREWATCH_S3_ENDPOINT").filter(|v| !v.is_empty()),
        })
    }
}

fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client())
}

/// SDK configuration with fixed credentials, for local servers (DynamoDB
/// Local, a local S3) in tests and benchmarks.
pub async fn static_sdk_config(region: &str, access_key: &str, secret: &str) -> SdkConfig {
    loader()
        .region(Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            access_key, secret, None, None, "static",
        ))
        .load()
        .await
}

/// The functions' SDK configuration, as Lambda gives it: the execution
/// role's credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_SESSION_TOKEN`, the region from `region` or `AWS_REGION`; a rustls
/// (ring) HTTPS client, standard retries, the SDK's default timeouts. It
/// reads only the environment (no profile, web-identity or instance-metadata
/// chain), which keeps those providers and the STS client out of every
/// function and its cold start. On a workstation use
/// [`sdk_config_from_profile`].
pub async fn sdk_config(region: Option<String>) -> SdkConfig {
    sdk_config_from(region, |k| std::env::var(k).ok())
}

/// [`sdk_config`], reading through `var` (tests).
pub fn sdk_config_from(region: Option<String>, var: impl Fn(&str) -> Option<String>) -> SdkConfig {
    use aws_credential_types::provider::SharedCredentialsProvider;
    let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
    let mut b = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client())
        .retry_config(aws_config::retry::RetryConfig::standard())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_millis(3100))
                .build(),
        )
        .time_source(aws_smithy_async::time::SharedTimeSource::default());
    if let Some(sleep) = aws_smithy_async::rt::sleep::default_async_sleep() {
        b = b.sleep_impl(sleep);
    }
    if let Some(r) = region
        .or_else(|| var("AWS_REGION"))
        .or_else(|| var("AWS_DEFAULT_REGION"))
    {
        b = b.region(Region::new(r));
    }
    if let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        b = b.credentials_provider(SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new(
                id,
                secret,
                var("AWS_SESSION_TOKEN"),
                None,
                "environment",
            ),
        ));
    }
    b.build()
}

/// The SDK configuration of the standard chain (environment, profiles, SSO,
/// web identity, instance metadata): for `firewatch dev` on a workstation.
pub async fn sdk_config_from_profile(region: Option<String>) -> SdkConfig {
    let mut loader = loader();
    if let Some(r) = region {
        loader = loader.region(Region::new(r));
    }
    loader.load().await
}

/// A DynamoDB client, optionally for another endpoint (DynamoDB Local).
pub fn dynamo_client(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_dynamodb::Client {
    let mut b = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(e) = endpoint {
        b = b.endpoint_url(e);
    }
    aws_sdk_dynamodb::Client::from_conf(b.build())
}

/// An S3 client, optionally for another endpoint (a local S3 server, which
/// needs path-style addressing).
pub fn s3_client(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_s3::Client {
    let mut b = aws_sdk_s3::config::Builder::from(sdk);
    if let Some(e) = endpoint {
        b = b.endpoint_url(e).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

/// What every Lambda main starts from: the deployment's configuration, one
/// SDK configuration (loaded once per cold start, for every client the
/// function makes) and the services over DynamoDB and S3. A main adds
/// what its function needs (egress, secrets, a model, a tracker, chat).
pub struct Bootstrap {
    pub aws: AwsConfig,
    pub sdk: SdkConfig,
    pub services: Services,
}

/// The [`Bootstrap`] of a Lambda function, from its environment.
pub async fn bootstrap(settings: Settings) -> Result<Bootstrap, String> {
    let aws = AwsConfig::from_env()?;
    let sdk = sdk_config(aws.region.clone()).await;
    let services = services_with(&sdk, &aws, settings);
    Ok(Bootstrap { aws, sdk, services })
}

/// What a chat function starts with, from one SDK configuration: its
/// services and the compiled playbook catalog it offers.
pub async fn chat_bootstrap(
    settings: Settings,
) -> Result<(Services, Arc<firewatch_domain::playbooks::Catalog>), String> {
    let boot = bootstrap(settings).await?;
    let playbooks = Arc::new(playbook_catalog(&boot.sdk, &boot.aws).await);
    Ok((boot.services, playbooks))
}

/// [`services`] on an SDK configuration the caller also uses for other
/// clients, so it is loaded once per cold start.
pub fn services_with(sdk: &SdkConfig, cfg: &AwsConfig, settings: Settings) -> Services {
    let store = DynamoStore::new(
        dynamo_client(sdk, cfg.dynamodb_endpoint.as_deref()),
        cfg.table.clone(),
    );
    let blobs = S3Blobs::new(
        s3_client(sdk, cfg.s3_endpoint.as_deref()),
        cfg.bucket.clone(),
    );
    let services = Services::new(Arc::new(store), Arc::new(blobs)).with_settings(settings);
    // Tenants' secret values in Secrets Manager, where the function uses
    // them (`FIREWATCH_TENANT_SECRETS_PREFIX`).
    #[cfg(feature = "vault")]
    let services = services.with_vault(crate::vault::vault_from(sdk, |k| std::env::var(k).ok()));
    services
}

/// The compiled playbook catalog under `FIREWATCH_PLAYBOOKS_PREFIX`
/// (default `playbooks/`) in the state bucket, read once per cold start:
/// what the chat functions offer. The checks function's `playbooks` job
/// compiles it from the YAML files within a minute of a change. None yet,
/// or one that cannot be read, is logged and gives no playbooks, so the
/// function still serves the rest.
pub async fn playbook_catalog(
    sdk: &SdkConfig,
    cfg: &AwsConfig,
) -> firewatch_domain::playbooks::Catalog {
    let prefix =
        std::env::var("FIREWATCH_PLAYBOOKS_PREFIX").unwrap_or_else(|_| "playbooks/".into());
    let s3 = s3_client(sdk, cfg.s3_endpoint.as_deref());
    match crate::s3::compiled_playbooks(&s3, &cfg.bucket, &prefix).await {
        Ok(Some(loaded)) => firewatch_domain::playbooks::Catalog::new(loaded),
        Ok(None) => {
            tracing::warn!(
                "no compiled playbook catalog yet (or it may not be read here): the checks function's playbooks job writes it"
            );
            firewatch_domain::playbooks::Catalog::default()
        }
        Err(e) => {
            tracing::error!(error = %e, "playbooks could not be read");
            firewatch_domain::playbooks::Catalog::default()
        }
    }
}

/// A Secrets Manager client; `endpoint` points it at another one (tests).
#[cfg(any(
    feature = "steps",
    feature = "assisted",
    feature = "runtime-secrets",
    feature = "vault"
))]
pub fn secrets_client(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_secretsmanager::Client {
    let mut b = aws_sdk_secretsmanager::config::Builder::from(sdk);
    if let Some(e) = endpoint {
        b = b.endpoint_url(e);
    }
    aws_sdk_secretsmanager::Client::from_conf(b.build())
}

/// The string value of secret `id`, or `None` when there is no such
/// secret; a secret that keeps no string is an error. An error names the
/// secret, never a value. Every Secrets Manager read in the adapters goes
/// through here.
#[cfg(any(
    feature = "steps",
    feature = "assisted",
    feature = "runtime-secrets",
    feature = "vault"
))]
pub async fn read_secret(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<Option<String>, String> {
    match client.get_secret_value().secret_id(id).send().await {
        Ok(out) => out
            .secret_string()
            .map(|v| Some(v.to_owned()))
            .ok_or_else(|| format!("Secrets Manager {id}: the secret has no string value")),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        // The SDK's error names the secret's id, never a value.
        Err(e) => Err(format!(
            "Secrets Manager {id}: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_table_or_bucket_is_named() {
        let e =
            AwsConfig::from_vars(|k| (k == "FIREWATCH_BUCKET").then(|| "b".into())).unwrap_err();
        assert!(e.contains("FIREWATCH_TABLE"), "{e}");
        let e = AwsConfig::from_vars(|k| (k == "FIREWATCH_TABLE").then(|| "t".into())).unwrap_err();
        assert!(e.contains("FIREWATCH_BUCKET"), "{e}");
    }
}
