//! Announcing an entry version to Quilt: the packager message, sent once per version.
//!
//! Quilt's packager queue is a standard queue owned by the Quilt stack, so SQS does not
//! deduplicate for us. The [`PublishedRecord`] is the guard: checked before sending, written
//! right after. A crash between the two sends the message again on redelivery (at least once,
//! which Quilt tolerates: the same source prefix makes the same revision); every other
//! redelivery finds the record and sends nothing. When the URL is a FIFO queue, the message also
//! gets a deterministic deduplication id (package name + version).

use bw_contracts::RenderJob;
use bw_contracts::bookkeeping::version_tag;
use bw_queue::OutgoingMessage;
use serde::Serialize;

/// The message Quilt's packager reads (the shape the upstream service sent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackagerMessage {
    /// `s3://{bucket}/{package}/`: what goes into the package.
    pub source_prefix: String,
    /// The registry bucket.
    pub registry: String,
    /// The package name.
    pub package_name: String,
    /// The package metadata, relative to `source_prefix`.
    pub metadata_uri: String,
    /// `Benchling {event type} at {event time, RFC 3339}`.
    pub commit_message: String,
    /// The Quilt workflow, when the secret names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

impl PackagerMessage {
    /// The message for a render job.
    pub fn for_job(job: &RenderJob, workflow: Option<&str>) -> Self {
        Self {
            source_prefix: format!("s3://{}/{}/", job.bucket, job.package_prefix),
            registry: job.bucket.clone(),
            package_name: job.package_prefix.clone(),
            metadata_uri: "entry.json".to_owned(),
            commit_message: format!(
                "Benchling {} at {}",
                job.trigger.event_type.as_str(),
                job.trigger
                    .occurred_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
            workflow: workflow.filter(|w| !w.is_empty()).map(str::to_owned),
        }
    }

    /// The SQS message: a group and deduplication id only for a FIFO queue.
    pub fn to_outgoing(&self, job: &RenderJob, fifo: bool) -> OutgoingMessage {
        let message =
            OutgoingMessage::new(serde_json::to_string(self).expect("the message serializes"));
        if fifo {
            message.group(self.package_name.clone()).dedup(format!(
                "{}:{}",
                self.package_name,
                version_tag(&job.modified_at)
            ))
        } else {
            message
        }
    }
}
