//! Announcing an entry version to Quilt: the packager message, sent once per version.
//!
//! Quilt's packager queue is a standard queue owned by the Quilt stack, so SQS does not
//! deduplicate for us. The [`PublishedRecord`] is the guard: checked before sending, written
//! right after. A crash between the two sends the message again on redelivery (at least once,
//! which Quilt tolerates: the same source prefix makes the same revision); every other
//! redelivery finds the record and sends nothing. When the URL is a FIFO queue, the message also
//! gets a deterministic deduplication id (package name + version, + the repeated announcement's
//! time for a re-announcement).

use bw_contracts::bookkeeping::version_tag;
use bw_contracts::{PackagerMessage, RenderJob};
use bw_queue::OutgoingMessage;

/// The SQS message for `message`: a group and deduplication id only for a FIFO queue.
pub fn outgoing(message: &PackagerMessage, job: &RenderJob, fifo: bool) -> OutgoingMessage {
    let outgoing =
        OutgoingMessage::new(serde_json::to_string(message).expect("the message serializes"));
    if fifo {
        // A re-announcement must get through, so it carries the announcement it repeats.
        let repeat = job
            .reannounce
            .map(|at| format!(":{}", version_tag(&at)))
            .unwrap_or_default();
        outgoing.group(message.package_name.clone()).dedup(format!(
            "{}:{}{repeat}",
            message.package_name,
            version_tag(&job.modified_at)
        ))
    } else {
        outgoing
    }
}
