//! The contracts with Quilt: the message its packager reads, and the `package-revision` event
//! it sends when a revision exists.

use serde::{Deserialize, Serialize};

use crate::job::RenderJob;

/// The message Quilt's packager reads (the shape the upstream service sent): build a revision
/// of `package_name` in `registry` from everything under `source_prefix`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

    /// The key prefix inside `registry` that `source_prefix` names, when it names that bucket
    /// (`None` for another bucket or a malformed URI).
    pub fn source_key_prefix(&self) -> Option<&str> {
        self.source_prefix
            .strip_prefix("s3://")?
            .strip_prefix(self.registry.as_str())?
            .strip_prefix('/')
    }
}
