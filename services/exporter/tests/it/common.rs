//! What the exporter's end-to-end suites share: a rig of SQS queues and an S3 bucket on moto,
//! the Benchling stand-in, the secret file, and helpers to send jobs and read results.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bw_contracts::{ExportJob, Job, JobEnvelope, Trigger, WebhookId};
use bw_queue::{OutgoingMessage, Queue, ReceivedMessage};
use bw_testkit::rig::ServiceRig;
use serde_json::Value;

/// The OAuth client the stand-in accepts.
pub const CLIENT_ID: &str = "exporter-client";
/// Its secret; it must never appear in logs.
pub const CLIENT_SECRET: &str = "exporter-secret-DO-NOT-LOG";
/// The package prefix of the test secret.
pub const PKG_PREFIX: &str = "benchling";

/// The exporter's queues on the shared moto server, beside the bucket, stand-in and secret
/// every worker rig has.
pub struct Rig {
    /// The bucket, the Benchling stand-in and the secret file.
    pub base: ServiceRig,
    /// `EXPORT_QUEUE_URL`.
    pub export_url: String,
    /// The export queue's dead-letter queue.
    pub dead_letter_url: String,
    /// `RENDER_QUEUE_URL`.
    pub render_url: String,
    /// `CANVAS_QUEUE_URL`.
    pub canvas_url: String,
}

impl Rig {
    /// A fresh rig; the export queue has a dead-letter queue after `max_receives` receives and
    /// the given visibility timeout.
    pub async fn new(visibility_secs: u32, max_receives: u32) -> Self {
        let base = ServiceRig::new("exporter", CLIENT_ID, CLIENT_SECRET).await;
        let queues = base
            .moto
            .create_worker_queues(visibility_secs, max_receives)
            .await;
        Self {
            base,
            export_url: queues.export,
            dead_letter_url: queues.export_dead_letter,
            render_url: queues.render,
            canvas_url: queues.canvas,
        }
    }

    /// The environment a worker of this rig runs with (queues, secret, stand-in, fast polls).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("EXPORT_QUEUE_URL", self.export_url.clone()),
            ("RENDER_QUEUE_URL", self.render_url.clone()),
            ("CANVAS_QUEUE_URL", self.canvas_url.clone()),
            (
                "BenchlingSecret",
                format!("file:{}", self.base.secret_path.display()),
            ),
            ("BENCHLING_API_BASE_URL", self.base.benchling.url()),
            ("BENCHLING_RETRY_INITIAL_MS", "20".to_owned()),
            ("EXPORT_FIRST_POLL_MS", "10".to_owned()),
            ("EXPORT_MAX_POLL_SECS", "1".to_owned()),
            ("HOST", "127.0.0.1".to_owned()),
            ("PORT", "0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Every object in the bucket with its bytes.
    pub async fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        let s3 = self.base.moto.s3_client().await;
        let mut objects = BTreeMap::new();
        let mut token = None;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket(&self.base.bucket)
                .set_continuation_token(token)
                .send()
                .await
                .unwrap();
            for object in page.contents() {
                let key = object.key().unwrap().to_owned();
                let body = s3
                    .get_object()
                    .bucket(&self.base.bucket)
                    .key(&key)
                    .send()
                    .await
                    .unwrap()
                    .body
                    .collect()
                    .await
                    .unwrap()
                    .into_bytes()
                    .to_vec();
                objects.insert(key, body);
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                return objects;
            }
        }
    }

    /// Keys in the bucket below `prefix`.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let s3 = self.base.moto.s3_client().await;
        let page = s3
            .list_objects_v2()
            .bucket(&self.base.bucket)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        page.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    /// Puts an object.
    pub async fn put(&self, key: &str, bytes: &[u8]) {
        self.base
            .moto
            .put_object(&self.base.bucket, key, bytes.to_vec())
            .await;
    }
}

/// The fixture's entry object (`GET /entries/etr_0uKCQZ8f` → `entry`).
pub fn fixture_entry() -> Value {
    let fixture: Value =
        serde_json::from_str(bw_standin::benchling::ENTRY_FIXTURE).expect("fixture is JSON");
    fixture["entry"].clone()
}

/// An export job for `entry`, as the ingress would write it for webhook `webhook`.
pub fn export_job(entry: &str, webhook: &str, canvas: Option<&str>) -> ExportJob {
    ExportJob {
        entry_id: entry.parse().unwrap(),
        canvas_id: canvas.map(|c| c.parse().unwrap()),
        base_url: Some("https://standin.benchling.com".into()),
        trigger: Trigger {
            event_type: bw_contracts::EventType::EntryUpdatedFields,
            event_id: None,
            webhook_id: Some(WebhookId::parse(webhook).unwrap()),
            occurred_at: "2025-03-30T23:37:23Z".parse().unwrap(),
            user_id: None,
        },
    }
}

/// Sends `job` as the ingress does.
pub async fn send<J: Job>(queue: &dyn Queue, job: J) {
    queue.send(OutgoingMessage::job(job, None)).await.unwrap();
}

/// The next message on `queue` within `timeout` (deleted), or `None`.
pub async fn next_message(queue: &dyn Queue, timeout: Duration) -> Option<ReceivedMessage> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = left.min(Duration::from_secs(1));
        if let Some(message) = queue.receive(1, wait).await.unwrap().into_iter().next() {
            queue.delete(&message.receipt).await.unwrap();
            return Some(message);
        }
        if Instant::now() >= deadline {
            return None;
        }
    }
}

/// The next job of type `J` on `queue` within `timeout`.
///
/// # Panics
/// When none arrives.
pub async fn next_job<J: Job>(queue: &dyn Queue, timeout: Duration) -> J {
    let message = next_message(queue, timeout)
        .await
        .unwrap_or_else(|| panic!("no {} job within {timeout:?}", J::KIND));
    JobEnvelope::<J>::from_body(&message.body).unwrap().job
}
