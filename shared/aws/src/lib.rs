//! The AWS adapters: [`DynamoStore`] (the `Store` port on one DynamoDB table)
//! and [`S3Blobs`] (the `Blobs` port on one S3 bucket), and
//! [`services`] to build them once per cold start. With the `steps` feature,
//! the adapters of the functions that send playbook requests:
//! [`LambdaEgress`] (`lambda_invoke` steps) and [`SecretsManagerSecrets`].
//!
//! SDK errors never leave this crate: they become the domain's
//! `StoreError`/`BlobError` here. Throttling and 5xx are retried by the SDK's
//! standard retry policy before they surface as `Unavailable`.

#[cfg(feature = "assisted")]
mod assisted;
#[cfg(feature = "bedrock")]
mod bedrock;
mod config;
mod dynamo;
#[cfg(feature = "runtime-secrets")]
mod runtime_secrets;
mod s3;
#[cfg(feature = "steps")]
mod steps;
#[cfg(feature = "vault")]
mod vault;

#[cfg(feature = "assisted")]
pub use assisted::{assisted_model, assisted_model_from};
pub use aws_config::SdkConfig;
pub use aws_sdk_dynamodb::Client as DynamoClient;
pub use aws_sdk_s3::Client as S3Client;
#[cfg(feature = "bedrock")]
pub use bedrock::{bedrock_client, BedrockClient, BedrockLlm};
#[cfg(any(
    feature = "steps",
    feature = "assisted",
    feature = "runtime-secrets",
    feature = "vault"
))]
pub use config::secrets_client;
pub use config::{
    bootstrap, chat_bootstrap, dynamo_client, playbook_catalog, s3_client, sdk_config,
    sdk_config_from, sdk_config_from_profile, services_with, static_sdk_config, AwsConfig,
    Bootstrap,
};
pub use dynamo::{ensure_table, DynamoStore};
#[cfg(feature = "fresh-router")]
pub use runtime_secrets::serve_fresh;
#[cfg(feature = "runtime-secrets")]
pub use runtime_secrets::{secret_variables, Fresh};
pub use s3::{
    compiled_playbooks, definition_files, ensure_bucket, playbooks_from_s3, publish_playbooks,
    smoke_checks_from_s3, S3Blobs, COMPILED_PLAYBOOKS,
};
#[cfg(feature = "steps")]
pub use steps::{
    egress_from_env, lambda_client, secrets_from_env, LambdaClient, LambdaEgress,
    SecretsManagerClient, SecretsManagerSecrets,
};
#[cfg(feature = "vault")]
pub use vault::{vault_from, SecretsManagerVault};
