//! A fast SQS stand-in for the ingress benchmark: answers the SQS JSON protocol calls the
//! ingress makes (`SendMessageBatch`, `SendMessage`, `GetQueueAttributes`) at once and keeps
//! nothing but a count, so a run measures the ingress's own cost per webhook on SQS (request
//! signing, serialisation, batching) rather than moto's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bw_standin::stub::{StubRequest, StubResponse, StubServer};
use serde_json::{Value, json};

/// The running stand-in; it stops when dropped.
pub struct FastSqs {
    server: StubServer,
    counts: Arc<Counts>,
}

/// What it has answered.
#[derive(Default)]
struct Counts {
    messages: AtomicU64,
    requests: AtomicU64,
}

impl FastSqs {
    /// Starts it on a free loopback port.
    pub fn start() -> Self {
        let counts = Arc::new(Counts::default());
        let shared = Arc::clone(&counts);
        let server = StubServer::start(move |request| answer(request, &shared));
        Self { server, counts }
    }

    /// Its endpoint (`AWS_ENDPOINT_URL`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A queue URL on it.
    pub fn queue_url(&self, name: &str) -> String {
        format!("{}/123456789012/{name}", self.url())
    }

    /// Messages accepted so far.
    pub fn stored(&self) -> u64 {
        self.counts.messages.load(Ordering::Relaxed)
    }

    /// `SendMessage` and `SendMessageBatch` requests answered so far.
    pub fn send_requests(&self) -> u64 {
        self.counts.requests.load(Ordering::Relaxed)
    }
}

fn answer(request: &StubRequest, counts: &Counts) -> StubResponse {
    let stored = |messages: usize| {
        counts.requests.fetch_add(1, Ordering::Relaxed);
        counts
            .messages
            .fetch_add(messages as u64, Ordering::Relaxed);
    };
    let body = request.json().unwrap_or(Value::Null);
    let id = || uuid::Uuid::new_v4().to_string();
    let answer = match request.header("x-amz-target").unwrap_or_default() {
        "AmazonSQS.SendMessageBatch" => {
            let entries = body["Entries"].as_array().cloned().unwrap_or_default();
            stored(entries.len());
            let successful: Vec<Value> = entries
                .iter()
                .map(|entry| json!({"Id": entry["Id"], "MessageId": id(), "MD5OfMessageBody": ""}))
                .collect();
            json!({"Successful": successful, "Failed": []})
        }
        "AmazonSQS.SendMessage" => {
            stored(1);
            json!({"MessageId": id(), "MD5OfMessageBody": ""})
        }
        "AmazonSQS.GetQueueAttributes" => json!({"Attributes": {
            "VisibilityTimeout": "30",
            "ApproximateNumberOfMessages": "0",
            "QueueArn": "arn:aws:sqs:us-east-1:123456789012:bench",
        }}),
        other => {
            return StubResponse::json(
                "400 Bad Request",
                json!({"__type": "InvalidAction", "message": format!("not served: {other}")})
                    .to_string(),
            );
        }
    };
    StubResponse {
        content_type: "application/x-amz-json-1.0",
        ..StubResponse::json("200 OK", answer.to_string())
    }
}
