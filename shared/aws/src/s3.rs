//! [`S3Blobs`]: the `Blobs` port on one S3 bucket.

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use firewatch_domain::ports::{check_blob_key, BlobError, Blobs};

/// The blob store.
#[derive(Clone)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
}

impl S3Blobs {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        check_blob_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| BlobError::Unavailable(format!("S3 put: {}", DisplayErrorContext(&e))))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        check_blob_key(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(SdkError::ServiceError(e)) if matches!(e.err(), GetObjectError::NoSuchKey(_)) => {
                return Ok(None)
            }
            Err(e) => {
                return Err(BlobError::Unavailable(format!(
                    "S3 get: {}",
                    DisplayErrorContext(&e)
                )))
            }
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| BlobError::Unavailable(format!("S3 read: {e}")))?;
        Ok(Some(body.into_bytes().to_vec()))
    }
}

/// Creates the bucket when missing; for local servers and tests.
pub async fn ensure_bucket(client: &Client, bucket: &str) -> Result<(), String> {
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    client
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot create bucket {bucket}: {}", DisplayErrorContext(&e)))
}
