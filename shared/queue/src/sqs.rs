//! The Amazon SQS backend.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::RequestId;
use aws_sdk_sqs::types::{
    Message, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};

use crate::{
    MAX_BATCH, MAX_WAIT, OutgoingMessage, Queue, QueueError, ReceiptHandle, ReceivedMessage,
};

/// Error codes SQS returns with a 4xx status for conditions that pass with time.
const TRANSIENT_CODES: &[&str] = &[
    "RequestThrottled",
    "ThrottlingException",
    "KmsThrottled",
    "OverLimit",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
];

const GET_ATTRIBUTES: &str = "GetQueueAttributes";

/// A queue in Amazon SQS (or an emulator), addressed by its URL.
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    name: String,
    fifo: bool,
}

impl SqsQueue {
    /// A queue at `url`; it is FIFO when the URL ends in `.fifo`, as SQS requires of FIFO
    /// queue names. No request is made.
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        let url = url.into();
        let name = url
            .rsplit('/')
            .find(|segment| !segment.is_empty())
            .unwrap_or(url.as_str())
            .to_owned();
        Self {
            client,
            fifo: name.ends_with(".fifo"),
            url,
            name,
        }
    }

    /// The same queue through a client with its own connection pool, everything else as
    /// configured: without an HTTP client in its configuration, the SDK builds its default one
    /// afresh for the new client.
    pub fn with_own_connections(&self) -> Self {
        let mut config = self.client.config().to_builder();
        config.set_http_client(None);
        Self {
            client: Client::from_conf(config.build()),
            ..self.clone()
        }
    }

    /// One queue attribute, `None` when the queue does not have it.
    async fn attribute(&self, name: QueueAttributeName) -> Result<Option<String>, QueueError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(name.clone())
            .send()
            .await
            .map_err(|error| self.error(GET_ATTRIBUTES, error))?;
        Ok(output
            .attributes
            .and_then(|mut attributes| attributes.remove(&name)))
    }

    /// The queue named by this queue's `RedrivePolicy`, if it has one.
    ///
    /// # Errors
    ///
    /// When SQS cannot be asked, or the policy names no queue.
    pub async fn dead_letter(&self) -> Result<Option<SqsQueue>, QueueError> {
        let Some(policy) = self.attribute(QueueAttributeName::RedrivePolicy).await? else {
            return Ok(None);
        };
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct RedrivePolicy {
            dead_letter_target_arn: String,
        }
        let policy: RedrivePolicy = serde_json::from_str(&policy).map_err(|e| {
            self.unavailable(GET_ATTRIBUTES, format!("unreadable RedrivePolicy: {e}"))
        })?;
        // arn:{partition}:sqs:{region}:{account}:{name}
        let fields: Vec<&str> = policy.dead_letter_target_arn.split(':').collect();
        let [_, _, _, _, account, name] = fields[..] else {
            return Err(self.unavailable(GET_ATTRIBUTES, "RedrivePolicy names no queue ARN"));
        };
        let url = self
            .client
            .get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .send()
            .await
            .map_err(|error| self.error("GetQueueUrl", error))?
            .queue_url
            .ok_or_else(|| self.unavailable("GetQueueUrl", "SQS returned no queue URL"))?;
        Ok(Some(SqsQueue::new(self.client.clone(), url)))
    }

    /// How many messages wait to be received (`ApproximateNumberOfMessages`: SQS's estimate).
    ///
    /// # Errors
    ///
    /// When SQS cannot be asked.
    pub async fn depth(&self) -> Result<u64, QueueError> {
        self.attribute(QueueAttributeName::ApproximateNumberOfMessages)
            .await?
            .and_then(|count| count.parse().ok())
            .ok_or_else(|| {
                self.unavailable(
                    GET_ATTRIBUTES,
                    "SQS returned no ApproximateNumberOfMessages",
                )
            })
    }

    fn rejected(&self, operation: &'static str, message: impl Into<String>) -> QueueError {
        QueueError::Rejected {
            queue: self.name.clone(),
            operation,
            message: message.into(),
        }
    }

    fn unavailable(&self, operation: &'static str, message: impl Into<String>) -> QueueError {
        QueueError::Unavailable {
            queue: self.name.clone(),
            operation,
            message: message.into(),
        }
    }

    /// Classifies an SDK error: the client's fault is `Rejected`, anything that may pass
    /// (network, timeout, 5xx, throttling) is `Unavailable`.
    fn error<E>(&self, operation: &'static str, error: SdkError<E>) -> QueueError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let message = match &error {
            // DisplayErrorContext would append the raw response; the code, message and request
            // id say it all.
            SdkError::ServiceError(_) => format!(
                "{}: {} (request id {})",
                error.code().unwrap_or("unknown error"),
                error.message().unwrap_or("no message"),
                error.request_id().unwrap_or("none"),
            ),
            _ => DisplayErrorContext(&error).to_string(),
        };
        // The URL carries the account id; errors name the queue only.
        let message = message.replace(self.url.as_str(), &self.name);
        let refused = match &error {
            SdkError::ServiceError(service) => {
                !service.raw().status().is_server_error()
                    && !error
                        .code()
                        .is_some_and(|code| TRANSIENT_CODES.contains(&code))
            }
            SdkError::ConstructionFailure(_) => true,
            _ => false,
        };
        if refused {
            self.rejected(operation, message)
        } else {
            self.unavailable(operation, message)
        }
    }

    /// Converts attributes to SQS String attributes.
    fn attributes(
        &self,
        operation: &'static str,
        attributes: BTreeMap<String, String>,
    ) -> Result<Vec<(String, MessageAttributeValue)>, QueueError> {
        attributes
            .into_iter()
            .map(|(name, value)| {
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map(|value| (name, value))
                    .map_err(|error| self.rejected(operation, error.to_string()))
            })
            .collect()
    }

    /// One batch entry with id `index`, or why it cannot be sent.
    fn entry(
        &self,
        index: usize,
        message: OutgoingMessage,
    ) -> Result<SendMessageBatchRequestEntry, QueueError> {
        const OPERATION: &str = "SendMessageBatch";
        // SQS refuses the whole batch for one entry without a group, so refuse just that entry.
        if self.fifo && message.group_id.is_none() {
            return Err(self.rejected(OPERATION, "MessageGroupId is required on a FIFO queue"));
        }
        let mut entry = SendMessageBatchRequestEntry::builder()
            .id(index.to_string())
            .message_body(message.body);
        if self.fifo {
            entry = entry
                .set_message_group_id(message.group_id)
                .set_message_deduplication_id(message.dedup_id);
        }
        for (name, value) in self.attributes(OPERATION, message.attributes)? {
            entry = entry.message_attributes(name, value);
        }
        entry
            .build()
            .map_err(|error| self.rejected(OPERATION, error.to_string()))
    }

    fn received(&self, message: Message) -> Result<ReceivedMessage, QueueError> {
        let Message {
            message_id,
            receipt_handle,
            body,
            attributes,
            message_attributes,
            ..
        } = message;
        let (Some(message_id), Some(receipt)) = (message_id, receipt_handle) else {
            return Err(self.unavailable(
                "ReceiveMessage",
                "a message came back without an id or receipt handle",
            ));
        };
        let mut system = attributes.unwrap_or_default();
        Ok(ReceivedMessage {
            message_id,
            receipt: ReceiptHandle(receipt),
            body: body.unwrap_or_default(),
            // Missing only if SQS ignored the request for it; this receipt counts as one.
            receive_count: system
                .get(&MessageSystemAttributeName::ApproximateReceiveCount)
                .and_then(|count| count.parse().ok())
                .unwrap_or(1),
            group_id: if self.fifo {
                system.remove(&MessageSystemAttributeName::MessageGroupId)
            } else {
                None
            },
            attributes: message_attributes
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(name, value)| value.string_value.map(|value| (name, value)))
                .collect(),
            sent_at: system
                .get(&MessageSystemAttributeName::SentTimestamp)
                .and_then(|millis| millis.parse().ok())
                .map(|millis| UNIX_EPOCH + Duration::from_millis(millis)),
        })
    }
}

/// SQS takes whole seconds; round up so a short wait is still a long poll and a short
/// extension still extends.
fn whole_seconds(duration: Duration) -> i32 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(seconds).unwrap_or(i32::MAX)
}

/// `MaxNumberOfMessages` for a requested count.
fn whole_count(max: usize) -> i32 {
    // MAX_BATCH is 10, so the clamped count always fits.
    i32::try_from(max.clamp(1, MAX_BATCH)).unwrap_or(1)
}

/// The slot for a batch result entry, whose id is the entry's index.
fn entry_result<'a, T>(results: &'a mut [T], id: &str) -> Option<&'a mut T> {
    id.parse()
        .ok()
        .and_then(|index: usize| results.get_mut(index))
}

impl fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsQueue")
            .field("name", &self.name)
            .field("fifo", &self.fifo)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Queue for SqsQueue {
    fn name(&self) -> &str {
        &self.name
    }

    fn with_own_connections(&self) -> Option<Arc<dyn Queue>> {
        Some(Arc::new(SqsQueue::with_own_connections(self)))
    }

    fn is_fifo(&self) -> bool {
        self.fifo
    }

    async fn send(&self, message: OutgoingMessage) -> Result<String, QueueError> {
        const OPERATION: &str = "SendMessage";
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(message.body);
        if self.fifo {
            request = request
                .set_message_group_id(message.group_id)
                .set_message_deduplication_id(message.dedup_id);
        }
        for (name, value) in self.attributes(OPERATION, message.attributes)? {
            request = request.message_attributes(name, value);
        }
        let output = request
            .send()
            .await
            .map_err(|error| self.error(OPERATION, error))?;
        output
            .message_id
            .ok_or_else(|| self.unavailable(OPERATION, "SQS returned no message id"))
    }

    async fn send_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<Result<String, QueueError>>, QueueError> {
        const OPERATION: &str = "SendMessageBatch";
        if messages.is_empty() || messages.len() > MAX_BATCH {
            return Err(self.rejected(
                OPERATION,
                format!(
                    "a batch holds 1 to {MAX_BATCH} messages, not {}",
                    messages.len()
                ),
            ));
        }
        let mut results: Vec<Option<Result<String, QueueError>>> =
            Vec::with_capacity(messages.len());
        let mut entries = Vec::with_capacity(messages.len());
        for (index, message) in messages.into_iter().enumerate() {
            match self.entry(index, message) {
                Ok(entry) => {
                    entries.push(entry);
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(error))),
            }
        }
        if !entries.is_empty() {
            let output = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|error| self.error(OPERATION, error))?;
            for stored in output.successful() {
                if let Some(result) = entry_result(&mut results, stored.id()) {
                    *result = Some(Ok(stored.message_id().to_owned()));
                }
            }
            for failed in output.failed() {
                if let Some(result) = entry_result(&mut results, failed.id()) {
                    let message = format!(
                        "{}: {}",
                        failed.code(),
                        failed.message().unwrap_or("no message")
                    );
                    *result = Some(Err(if failed.sender_fault() {
                        self.rejected(OPERATION, message)
                    } else {
                        self.unavailable(OPERATION, message)
                    }));
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    Err(self.unavailable(OPERATION, "SQS did not report on this entry"))
                })
            })
            .collect())
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        const OPERATION: &str = "ReceiveMessage";
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(whole_count(max))
            .wait_time_seconds(whole_seconds(wait.min(MAX_WAIT)))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|error| self.error(OPERATION, error))?;
        output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|message| self.received(message))
            .collect()
    }

    async fn delete(&self, receipt: &ReceiptHandle) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&receipt.0)
            .send()
            .await
            .map_err(|error| self.error("DeleteMessage", error))?;
        Ok(())
    }

    async fn change_visibility(
        &self,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&receipt.0)
            .visibility_timeout(whole_seconds(timeout))
            .send()
            .await
            .map_err(|error| self.error("ChangeMessageVisibility", error))?;
        Ok(())
    }

    async fn visibility_timeout(&self) -> Result<Duration, QueueError> {
        self.attribute(QueueAttributeName::VisibilityTimeout)
            .await?
            .and_then(|seconds| seconds.parse().ok())
            .map(Duration::from_secs)
            .ok_or_else(|| self.unavailable(GET_ATTRIBUTES, "SQS returned no VisibilityTimeout"))
    }

    async fn check(&self) -> Result<(), QueueError> {
        self.visibility_timeout().await.map(drop)
    }

    async fn dead_letter_queue(&self) -> Result<Option<Arc<dyn Queue>>, QueueError> {
        Ok(self
            .dead_letter()
            .await?
            .map(|queue| Arc::new(queue) as Arc<dyn Queue>))
    }
}
