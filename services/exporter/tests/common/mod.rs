//! What the exporter's end-to-end suites share: a rig of SQS queues and an S3 bucket on moto,
//! the Benchling stand-in, the secret file, and helpers to send jobs and read results.

#![allow(dead_code, reason = "each suite uses its own part of the rig")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bw_contracts::{ExportJob, Job, JobEnvelope, Trigger, WebhookId};
use bw_queue::{OutgoingMessage, Queue, ReceivedMessage, SqsQueue};
use bw_standin::benchling::{BenchlingStandIn, secret_json};
use bw_testkit::moto::Moto;
use serde_json::Value;

/// The OAuth client the stand-in accepts.
pub const CLIENT_ID: &str = "exporter-client";
/// Its secret; it must never appear in logs.
pub const CLIENT_SECRET: &str = "exporter-secret-DO-NOT-LOG";
/// The package prefix of the test secret.
pub const PKG_PREFIX: &str = "benchling";

/// SQS queues and a bucket on the shared moto server, plus a Benchling stand-in.
pub struct Rig {
    /// The moto server.
    pub moto: &'static Moto,
    /// The bucket (`user_bucket` of the secret).
    pub bucket: String,
    /// `EXPORT_QUEUE_URL`.
    pub export_url: String,
    /// The export queue's dead-letter queue.
    pub dead_letter_url: String,
    /// `RENDER_QUEUE_URL`.
    pub render_url: String,
    /// `CANVAS_QUEUE_URL`.
    pub canvas_url: String,
    /// The Benchling API stand-in.
    pub benchling: BenchlingStandIn,
    /// The secret file (`BenchlingSecret=file:…`).
    pub secret_path: PathBuf,
    /// Holds the secret file.
    _dir: tempfile::TempDir,
}

impl Rig {
    /// A fresh rig; the export queue has a dead-letter queue after `max_receives` receives and
    /// the given visibility timeout.
    pub async fn new(visibility_secs: u32, max_receives: u32) -> Self {
        let moto = Moto::shared();
        let bucket = Moto::unique_name("exporter");
        moto.create_bucket(&bucket).await;
        let queues = moto
            .create_worker_queues(visibility_secs, max_receives)
            .await;
        let benchling = BenchlingStandIn::start(CLIENT_ID, CLIENT_SECRET);
        let dir = tempfile::tempdir().unwrap();
        let secret_path = dir.path().join("secret.json");
        std::fs::write(&secret_path, secret_json(CLIENT_ID, CLIENT_SECRET, &bucket)).unwrap();
        Self {
            moto,
            bucket,
            export_url: queues.export,
            dead_letter_url: queues.export_dead_letter,
            render_url: queues.render,
            canvas_url: queues.canvas,
            benchling,
            secret_path,
            _dir: dir,
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
                format!("file:{}", self.secret_path.display()),
            ),
            ("BENCHLING_API_BASE_URL", self.benchling.url()),
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

    /// A queue client for `url`.
    pub async fn queue(&self, url: &str) -> Arc<dyn Queue> {
        Arc::new(SqsQueue::new(self.moto.sqs_client().await, url))
    }

    /// Every object in the bucket with its bytes.
    pub async fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        let s3 = self.moto.s3_client().await;
        let mut objects = BTreeMap::new();
        let mut token = None;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .set_continuation_token(token)
                .send()
                .await
                .unwrap();
            for object in page.contents() {
                let key = object.key().unwrap().to_owned();
                let body = s3
                    .get_object()
                    .bucket(&self.bucket)
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
        let s3 = self.moto.s3_client().await;
        let page = s3
            .list_objects_v2()
            .bucket(&self.bucket)
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
        self.moto
            .put_object(&self.bucket, key, bytes.to_vec())
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
