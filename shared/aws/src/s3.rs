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

/// The definition files directly under `prefix` in `bucket` whose names
/// end with one of `exts`: key, size and ETag, sorted by key.
async fn list_definitions(
    client: &Client,
    bucket: &str,
    prefix: &str,
    exts: &[&str],
) -> Result<Vec<(String, usize, String)>, String> {
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    };
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "S3 list s3://{bucket}/{prefix}: {}",
                    DisplayErrorContext(&e)
                )
            })?;
        for o in page.contents() {
            if let Some(k) = o.key() {
                let rest = &k[prefix.len().min(k.len())..];
                let size = o.size().unwrap_or(0) as usize;
                if !rest.contains('/') && exts.iter().any(|x| rest.ends_with(x)) {
                    keys.push((k.to_owned(), size, o.e_tag().unwrap_or_default().to_owned()));
                }
            }
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    keys.sort();
    Ok(keys)
}

/// The definition files directly under `prefix` in `bucket` whose names
/// end with one of `exts`, sorted by key, each with its text or why it
/// could not be read (over `max_bytes`, a failed read). An error is
/// returned only when the bucket cannot be listed.
pub async fn definition_files(
    client: &Client,
    bucket: &str,
    prefix: &str,
    exts: &[&str],
    max_bytes: usize,
) -> Result<Vec<(String, Result<String, String>)>, String> {
    let keys = list_definitions(client, bucket, prefix, exts).await?;
    let mut out = Vec::with_capacity(keys.len());
    for (key, size, _) in keys {
        let name = format!("s3://{bucket}/{key}");
        let text = if size > max_bytes {
            Err(format!("the file is over {} KB", max_bytes / 1024))
        } else {
            match client.get_object().bucket(bucket).key(&key).send().await {
                Ok(o) => o
                    .body
                    .collect()
                    .await
                    .map(|b| String::from_utf8_lossy(&b.into_bytes()).into_owned())
                    .map_err(|e| format!("cannot read: {e}")),
                Err(e) => Err(format!("cannot read: {}", DisplayErrorContext(&e))),
            }
        };
        out.push((name, text));
    }
    Ok(out)
}

/// Playbook definitions under `prefix` in `bucket` (`*.yaml` / `*.yml`
/// directly under it), each parsed like a file: one that fails is reported
/// in the result and skipped. An error is returned only when the bucket
/// cannot be listed.
pub async fn playbooks_from_s3(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<firewatch_domain::playbooks::Loaded, String> {
    use firewatch_domain::playbooks::definition::MAX_FILE_BYTES;
    let files =
        definition_files(client, bucket, prefix, &[".yaml", ".yml"], MAX_FILE_BYTES).await?;
    let mut loaded = firewatch_domain::playbooks::Loaded::default();
    for (name, text) in files {
        match text {
            Ok(t) => loaded.add(&name, &t),
            Err(message) => loaded
                .errors
                .push(firewatch_domain::playbooks::DefinitionError {
                    file: name,
                    line: 1,
                    column: 1,
                    field: String::new(),
                    message,
                }),
        }
    }
    Ok(loaded)
}

/// The compiled playbook catalog's key, under the playbooks prefix: the
/// definitions parsed and checked, as JSON, for the functions that only
/// read them (the chat functions link neither the YAML parser nor the
/// template engine).
pub const COMPILED_PLAYBOOKS: &str = "compiled/catalog.json";
/// The object metadata that names the YAML files a compiled catalog was
/// made from (a digest of their keys, sizes and ETags).
const SOURCE_DIGEST: &str = "source-digest";

/// The largest compiled catalog read.
const MAX_COMPILED_BYTES: usize = 16 * 1024 * 1024;

/// The compiled catalog as stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct CompiledCatalog {
    source_digest: String,
    #[serde(flatten)]
    loaded: firewatch_domain::playbooks::Loaded,
}

fn with_slash(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    }
}

/// Compiles the playbook definitions under `prefix` into
/// [`COMPILED_PLAYBOOKS`] when they changed since it was last written:
/// `Some(playbooks)` when it wrote the catalog, `None` when it was current.
/// Refused files are kept in the catalog with their errors.
pub async fn publish_playbooks(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<Option<usize>, String> {
    let prefix = with_slash(prefix);
    let listed = list_definitions(client, bucket, &prefix, &[".yaml", ".yml"]).await?;
    let source: String = listed
        .iter()
        .map(|(key, size, etag)| format!("{key}\n{size}\n{etag}\n"))
        .collect();
    let digest = firewatch_domain::auth::sha256_hex(source.as_bytes());
    let key = format!("{prefix}{COMPILED_PLAYBOOKS}");
    let current = match client.head_object().bucket(bucket).key(&key).send().await {
        Ok(o) => o.metadata().and_then(|m| m.get(SOURCE_DIGEST)).cloned(),
        // None yet. (Without a listing of that key S3 answers 403, not
        // 404; a write that is refused says so below.)
        Err(SdkError::ServiceError(e)) if matches!(e.raw().status().as_u16(), 403 | 404) => None,
        Err(e) => {
            return Err(format!(
                "S3 head s3://{bucket}/{key}: {}",
                DisplayErrorContext(&e)
            ))
        }
    };
    if current.as_deref() == Some(digest.as_str()) {
        return Ok(None);
    }
    let loaded = playbooks_from_s3(client, bucket, &prefix).await?;
    let count = loaded.playbooks.len();
    let body = serde_json::to_vec(&CompiledCatalog {
        source_digest: digest.clone(),
        loaded,
    })
    .map_err(|e| format!("the compiled catalog does not encode: {e}"))?;
    client
        .put_object()
        .bucket(bucket)
        .key(&key)
        .content_type("application/json")
        .metadata(SOURCE_DIGEST, digest)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| format!("S3 put s3://{bucket}/{key}: {}", DisplayErrorContext(&e)))?;
    Ok(Some(count))
}

/// The compiled playbook catalog under `prefix`, or `None` when none has
/// been published yet. Reads JSON only.
pub async fn compiled_playbooks(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<Option<firewatch_domain::playbooks::Loaded>, String> {
    let key = format!("{}{COMPILED_PLAYBOOKS}", with_slash(prefix));
    let out = match client.get_object().bucket(bucket).key(&key).send().await {
        Ok(o) => o,
        // None yet. (A function that may not list the prefix, as the chat
        // functions may not, gets 403 for a missing key.)
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), GetObjectError::NoSuchKey(_))
                || e.raw().status().as_u16() == 403 =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(format!(
                "S3 get s3://{bucket}/{key}: {}",
                DisplayErrorContext(&e)
            ))
        }
    };
    if out.content_length().unwrap_or(0) > MAX_COMPILED_BYTES as i64 {
        return Err(format!(
            "s3://{bucket}/{key} is over {} MB",
            MAX_COMPILED_BYTES / 1024 / 1024
        ));
    }
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| format!("S3 get s3://{bucket}/{key}: {e}"))?
        .into_bytes();
    let compiled: CompiledCatalog = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "s3://{bucket}/{key} is not a compiled catalog: {}",
            firewatch_domain::redact::error_without_values(&e.to_string())
        )
    })?;
    Ok(Some(compiled.loaded))
}

/// Smoke check definitions under `prefix` in `bucket` (`*.yaml`, `*.yml`,
/// `*.json`), each with its stable id; refused files as `file: why`.
pub async fn smoke_checks_from_s3(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<firewatch_domain::schedules::smoke::Files, String> {
    use firewatch_domain::schedules::smoke::{defined_id, parse_file, Origin};
    let files = definition_files(
        client,
        bucket,
        prefix,
        &[".yaml", ".yml", ".json"],
        64 * 1024,
    )
    .await?;
    let mut out = firewatch_domain::schedules::smoke::Files::default();
    for (name, text) in files {
        match text.and_then(|t| parse_file(&t)) {
            Ok(d) => out.defs.push((defined_id(Origin::File, &d.name), d)),
            Err(e) => out.errors.push(format!("{name}: {e}")),
        }
    }
    Ok(out)
}
