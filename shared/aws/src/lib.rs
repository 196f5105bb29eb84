//! The AWS adapters: [`DynamoStore`] (the `Store` port on one DynamoDB table)
//! and [`S3Blobs`] (the `Blobs` port on one S3 bucket), and
//! [`services`] to build them once per cold start.
//!
//! SDK errors never leave this crate: they become the domain's
//! `StoreError`/`BlobError` here. Throttling and 5xx are retried by the SDK's
//! standard retry policy before they surface as `Unavailable`.

mod config;
mod dynamo;
mod s3;

pub use config::{sdk_config, services, AwsConfig};
pub use dynamo::{ensure_table, DynamoStore};
pub use s3::{ensure_bucket, S3Blobs};
