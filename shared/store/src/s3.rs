//! The Amazon S3 backend (or any S3 emulator reached through an endpoint override).
//!
//! Every upload carries a CRC32 checksum that the SDK computes while streaming (sent as an
//! aws-chunked trailer), so S3 refuses bytes damaged on the way. A streamed object goes up as one
//! PutObject whose body is the stream itself, or, above [`MultipartOptions::threshold`], as a
//! multipart upload whose parts are cut from the stream one after the other; either way memory
//! stays at a few chunks whatever the object's size.

use std::collections::HashMap;
use std::fmt;
use std::io;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::body::SizedChunks;
use crate::{
    DeleteFailure, Key, ListedObject, ObjectChunks, ObjectMeta, ObjectReader, ObjectStore, Prefix,
    PutOptions, StoreError,
};

const MIB: u64 = 1024 * 1024;

/// S3's smallest part (except the last).
pub const MIN_PART_SIZE: u64 = 5 * MIB;

/// S3's largest number of parts in one upload.
pub const MAX_PARTS: u64 = 10_000;

/// S3's ceiling for one DeleteObjects request.
const DELETE_BATCH: usize = 1000;

/// Error codes S3 returns with a 4xx status for conditions that pass with time.
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalError",
    "ServiceUnavailable",
];

/// When [`S3Store::put_stream`] uses a multipart upload, and with what parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MultipartOptions {
    /// Objects larger than this many bytes are uploaded in parts; smaller ones in one PutObject.
    pub threshold: u64,
    /// Bytes per part. Raised to [`MIN_PART_SIZE`] if smaller, and further when the object would
    /// need more than [`MAX_PARTS`] parts.
    pub part_size: u64,
}

impl Default for MultipartOptions {
    /// 256 MiB threshold, 32 MiB parts. S3 takes up to 5 GiB in one PutObject, and callers such
    /// as the exporter already upload several objects at once, so parts pay only for objects big
    /// enough to dominate an upload; below that, one request per object is the cheapest (each
    /// part costs a request, and completing an upload costs the server a copy).
    fn default() -> Self {
        Self {
            threshold: 256 * MIB,
            part_size: 32 * MIB,
        }
    }
}

impl MultipartOptions {
    /// The part size for an object of `size` bytes, within S3's limits.
    fn part_size_for(&self, size: u64) -> u64 {
        let fitting = size.div_ceil(MAX_PARTS).next_multiple_of(MIB);
        self.part_size.max(MIN_PART_SIZE).max(fitting)
    }
}

/// An S3 client for `config`, with path-style addressing whenever an endpoint override is
/// configured (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, or in code): emulators such as moto
/// serve every bucket on one host, and `bucket.localhost` names do not resolve.
pub fn s3_client(config: &SdkConfig) -> Client {
    let overridden =
        config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(overridden)
            .build(),
    )
}

/// An object store in an S3 bucket, optionally below a key prefix ("root").
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    root: Prefix,
    multipart: MultipartOptions,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("root", &self.root.with_slash())
            .field("multipart", &self.multipart)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// A store for the whole of `bucket`, with default multipart options. No request is made.
    /// Build `client` with [`s3_client`] to get path-style addressing against emulators.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            root: Prefix::root(),
            multipart: MultipartOptions::default(),
        }
    }

    /// Keeps every object below `root` in the bucket; keys stay relative to it.
    #[must_use]
    pub fn with_root(mut self, root: Prefix) -> Self {
        self.root = root;
        self
    }

    /// Replaces the multipart options.
    #[must_use]
    pub fn with_multipart(mut self, multipart: MultipartOptions) -> Self {
        self.multipart = multipart;
        self
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key S3 sees for `key`.
    fn object_key(&self, key: &str) -> String {
        format!("{}{key}", self.root.with_slash())
    }

    fn object_location(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.object_key(key))
    }

    /// Classifies an SDK error: a missing key is `NotFound`; the client's fault is `Failed`;
    /// anything that may pass (network, timeout, 5xx, throttling) is `Unavailable`.
    fn error<E>(&self, operation: &'static str, key: &str, error: SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let location = self.object_location(key);
        let (message, transient) = match &error {
            // DisplayErrorContext would append the raw response; the code, message and request
            // id say it all.
            SdkError::ServiceError(service) => {
                let status = service.raw().status();
                // HeadObject answers 404 without a body, hence without a code.
                if matches!(error.code(), Some("NoSuchKey" | "NotFound"))
                    || (status.as_u16() == 404 && error.code().is_none())
                {
                    return StoreError::NotFound { location };
                }
                let code = error.code().unwrap_or("unknown error");
                (
                    format!(
                        "{code}: {} (HTTP {}, request id {})",
                        error.message().unwrap_or("no message"),
                        status.as_u16(),
                        error.request_id().unwrap_or("none"),
                    ),
                    status.is_server_error()
                        || matches!(status.as_u16(), 408 | 429)
                        || TRANSIENT_CODES.contains(&code),
                )
            }
            SdkError::ConstructionFailure(_) => (DisplayErrorContext(&error).to_string(), false),
            _ => (DisplayErrorContext(&error).to_string(), true),
        };
        StoreError::backend(transient, location, operation, message)
    }

    fn failed(&self, operation: &'static str, key: &str, message: impl Into<String>) -> StoreError {
        StoreError::Failed {
            location: self.object_location(key),
            operation,
            message: message.into(),
        }
    }

    /// One PutObject of the `size` bytes of `body`.
    async fn put_object(
        &self,
        key: &Key,
        body: ByteStream,
        size: u64,
        options: &PutOptions,
    ) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(key.as_str()))
            .content_length(content_length(size))
            .content_type(options.resolve(key))
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(body)
            .send()
            .await
            .map_err(|error| self.error("PutObject", key.as_str(), error))?;
        Ok(())
    }

    /// Uploads the `size` bytes of `chunks` in parts; aborts the upload if anything fails.
    async fn put_multipart(
        &self,
        key: &Key,
        size: u64,
        chunks: SizedChunks,
        options: &PutOptions,
    ) -> Result<(), StoreError> {
        let object_key = self.object_key(key.as_str());
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&object_key)
            .content_type(options.resolve(key))
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|error| self.error("CreateMultipartUpload", key.as_str(), error))?;
        let upload_id = created.upload_id().ok_or_else(|| {
            self.failed(
                "CreateMultipartUpload",
                key.as_str(),
                "the response has no upload id",
            )
        })?;
        let mut pending = PendingUpload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: object_key.clone(),
            upload_id: upload_id.to_owned(),
            armed: true,
        };
        let result = self
            .upload_parts_and_complete(key, &object_key, upload_id, size, chunks)
            .await;
        pending.armed = false;
        if result.is_err() {
            pending.abort().await;
        }
        result
    }

    /// Cuts `chunks` into parts and uploads them one after the other (the bytes arrive in
    /// order), then completes the upload once the stream has ended cleanly.
    async fn upload_parts_and_complete(
        &self,
        key: &Key,
        object_key: &str,
        upload_id: &str,
        size: u64,
        mut chunks: SizedChunks,
    ) -> Result<(), StoreError> {
        let part_size = self.multipart.part_size_for(size);
        let mut parts = Vec::new();
        let mut carry = None;
        let mut offset = 0;
        while offset < size {
            let length = part_size.min(size - offset);
            let (sender, receiver) = mpsc::channel(1);
            let body = ByteStream::from_body_1_x(SizedChunks::new(receiver, length));
            // `part_size_for` keeps the count within S3's 10,000.
            let number = i32::try_from(parts.len() + 1).unwrap_or(i32::MAX);
            let ((), uploaded) = tokio::join!(
                feed_part(&mut chunks, &mut carry, length, sender),
                self.upload_part(key, object_key, upload_id, number, body),
            );
            parts.push(uploaded?);
            offset += length;
        }
        // Every byte is in a part; the stream must still end without an error to count.
        while let Some(chunk) = chunks.next().await {
            chunk.map_err(|error| self.failed("UploadPart", key.as_str(), error.to_string()))?;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(object_key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|error| self.error("CompleteMultipartUpload", key.as_str(), error))?;
        Ok(())
    }

    /// Uploads one part.
    async fn upload_part(
        &self,
        key: &Key,
        object_key: &str,
        upload_id: &str,
        number: i32,
        body: ByteStream,
    ) -> Result<CompletedPart, StoreError> {
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(object_key)
            .upload_id(upload_id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(body)
            .send()
            .await
            .map_err(|error| self.error("UploadPart", key.as_str(), error))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(uploaded.e_tag().map(str::to_owned))
            .set_checksum_crc32(uploaded.checksum_crc32().map(str::to_owned))
            .build())
    }

    /// The store key of an S3 key from a listing, if it is below the root and valid.
    fn store_key(&self, object_key: &str) -> Option<Key> {
        let relative = object_key.strip_prefix(&self.root.with_slash())?;
        let key = Key::new(relative).ok();
        if key.is_none() {
            tracing::warn!(
                bucket = %self.bucket,
                key = object_key,
                "skipping an object whose key is not a valid store key"
            );
        }
        key
    }
}

/// Moves the next `length` bytes of `source` into one part's body, splitting a chunk that spans
/// two parts (its tail waits in `carry`). A failed or short source ends the part's body early,
/// which fails that part's upload.
async fn feed_part(
    source: &mut SizedChunks,
    carry: &mut Option<Bytes>,
    mut length: u64,
    part: mpsc::Sender<io::Result<Bytes>>,
) {
    while length > 0 {
        let mut chunk = match carry.take() {
            Some(chunk) => chunk,
            None => match source.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(error)) => {
                    let _ = part.send(Err(error)).await;
                    return;
                }
                None => return,
            },
        };
        if chunk.len() as u64 > length {
            // Shorter than the chunk, so it fits in usize.
            *carry = Some(chunk.split_off(length as usize));
        }
        length -= chunk.len() as u64;
        if part.send(Ok(chunk)).await.is_err() {
            // The upload gave up; its error is the one to report.
            return;
        }
    }
}

/// `size` as the SDK's content length; S3 objects are far below `i64::MAX` bytes.
fn content_length(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// A multipart upload that is aborted if its future is dropped before it finished (a cancelled
/// task), so no orphaned parts are left to be billed. Explicit failures abort in line.
struct PendingUpload {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl PendingUpload {
    async fn abort(&self) {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        if let Err(error) = aborted {
            // The upload's own error is the one to report; a bucket lifecycle rule
            // (AbortIncompleteMultipartUpload) collects what is left.
            tracing::warn!(
                bucket = %self.bucket,
                key = %self.key,
                error = %DisplayErrorContext(&error),
                "cannot abort a failed multipart upload"
            );
        }
    }
}

impl Drop for PendingUpload {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pending = PendingUpload {
                client: self.client.clone(),
                bucket: std::mem::take(&mut self.bucket),
                key: std::mem::take(&mut self.key),
                upload_id: std::mem::take(&mut self.upload_id),
                armed: false,
            };
            runtime.spawn(async move { pending.abort().await });
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.root.with_slash())
    }

    async fn put_stream(
        &self,
        key: &Key,
        size: u64,
        chunks: ObjectChunks,
        options: PutOptions,
    ) -> Result<(), StoreError> {
        let chunks = SizedChunks::new(chunks, size);
        if size > self.multipart.threshold {
            return self.put_multipart(key, size, chunks, &options).await;
        }
        let body = ByteStream::from_body_1_x(chunks);
        self.put_object(key, body, size, &options).await
    }

    async fn put_bytes(
        &self,
        key: &Key,
        bytes: Bytes,
        options: PutOptions,
    ) -> Result<(), StoreError> {
        let size = bytes.len() as u64;
        self.put_object(key, ByteStream::from(bytes), size, &options)
            .await
    }

    async fn get(&self, key: &Key) -> Result<ObjectReader, StoreError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key.as_str()))
            .send()
            .await
            .map_err(|error| self.error("GetObject", key.as_str(), error))?;
        Ok(Box::pin(object.body.into_async_read()))
    }

    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key.as_str()))
            .send()
            .await;
        let head = match head {
            Ok(head) => head,
            Err(error) => {
                return match self.error("HeadObject", key.as_str(), error) {
                    StoreError::NotFound { .. } => Ok(None),
                    other => Err(other),
                };
            }
        };
        Ok(Some(ObjectMeta {
            key: key.clone(),
            size: head
                .content_length()
                .and_then(|length| u64::try_from(length).ok())
                .unwrap_or(0),
            etag: head.e_tag().map(|etag| etag.trim_matches('"').to_owned()),
            content_type: head.content_type().map(str::to_owned),
        }))
    }

    async fn list(&self, prefix: &Prefix) -> Result<Vec<ListedObject>, StoreError> {
        let list_prefix = self.object_key(&prefix.with_slash());
        let mut listed = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&list_prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|error| self.error("ListObjectsV2", &prefix.with_slash(), error))?;
            listed.extend(page.contents().iter().filter_map(|object| {
                let key = self.store_key(object.key()?)?;
                let size = object
                    .size()
                    .and_then(|size| u64::try_from(size).ok())
                    .unwrap_or(0);
                let modified = object
                    .last_modified()
                    .and_then(|at| std::time::SystemTime::try_from(*at).ok());
                Some(ListedObject {
                    key,
                    size,
                    modified,
                })
            }));
            token = page.next_continuation_token().map(str::to_owned);
            // Trust the token over `IsTruncated`: a truncated page always carries one.
            if token.is_none() {
                break;
            }
        }
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        let deleted = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_key(key.as_str()))
            .send()
            .await;
        match deleted.map_err(|error| self.error("DeleteObject", key.as_str(), error)) {
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn delete_many(&self, keys: &[Key]) -> Result<Vec<DeleteFailure>, StoreError> {
        let mut failures = Vec::new();
        for chunk in keys.chunks(DELETE_BATCH) {
            let by_object_key: HashMap<String, &Key> = chunk
                .iter()
                .map(|key| (self.object_key(key.as_str()), key))
                .collect();
            let objects = by_object_key
                .keys()
                .map(|object_key| ObjectIdentifier::builder().key(object_key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| self.failed("DeleteObjects", "", error.to_string()))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|error| self.failed("DeleteObjects", "", error.to_string()))?;
            let output = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|error| self.error("DeleteObjects", "", error))?;
            for error in output.errors() {
                let Some(key) = error.key().and_then(|key| by_object_key.get(key)) else {
                    continue;
                };
                // S3 reports nothing for a missing key; an emulator might, and missing is fine.
                if error.code() == Some("NoSuchKey") {
                    continue;
                }
                failures.push(DeleteFailure {
                    key: (*key).clone(),
                    message: format!(
                        "{}: {}",
                        error.code().unwrap_or("unknown error"),
                        error.message().unwrap_or("no message")
                    ),
                });
            }
        }
        Ok(failures)
    }
}
