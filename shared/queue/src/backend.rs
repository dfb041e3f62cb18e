//! A service's queues, wired one way: [`QueueBackend::from_env`] reads which of them live in
//! SQS, and a [`QueueOpener`] opens each by its [`QueueName`], on SQS or in process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use bw_config::{AwsResource, Env, FieldError};
use bw_contracts::{QueueKind, QueueName};

use crate::{Capacity, EmbeddedOptions, EmbeddedQueue, Queue, SqsQueue};

/// Where a service's queues live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueBackend {
    /// In-process queues: reachable only by services in the same process, each holding at most
    /// this much.
    Embedded(Capacity),
    /// Amazon SQS, at these URLs.
    Sqs(BTreeMap<QueueName, String>),
}

impl QueueBackend {
    /// Reads the SQS URLs of a service's queues: every one of `required` (all set for SQS,
    /// none for in-process queues) and those of `optional` that are set, which need the
    /// required ones beside them. Records an error in `env` naming each URL that is missing
    /// from a partial set, set without the required ones, not an http(s) URL, or not of the queue's
    /// [`QueueKind`]. In-process queues hold at most `EMBEDDED_QUEUE_MAX_MESSAGES` messages
    /// (default 10,000) and `EMBEDDED_QUEUE_MAX_BYTES` bytes (default 64 MiB) each.
    pub fn from_env(env: &Env, required: &[QueueName], optional: &[QueueName]) -> Self {
        let read = |queue: &QueueName| {
            let url = env.http_url(queue.url_var)?;
            match queue.kind {
                QueueKind::Fifo if !url.ends_with(".fifo") => env.record(FieldError::invalid(
                    queue.url_var,
                    "must be a FIFO queue (name ending in .fifo): jobs for one entry or canvas must run in order",
                )),
                QueueKind::Standard if url.ends_with(".fifo") => env.record(FieldError::invalid(
                    queue.url_var,
                    "must be a standard queue (name not ending in .fifo): EventBridge fills it",
                )),
                _ => {}
            }
            Some((*queue, url))
        };
        let found: BTreeMap<QueueName, String> = required.iter().filter_map(read).collect();
        let extra: BTreeMap<QueueName, String> = optional.iter().filter_map(read).collect();
        let names = || {
            required
                .iter()
                .map(|q| q.url_var)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if found.is_empty() {
            for queue in extra.keys() {
                env.record(FieldError::invalid(
                    queue.url_var,
                    format!(
                        "set without {}: it works only beside the SQS queues",
                        names()
                    ),
                ));
            }
            let defaults = Capacity::default();
            return Self::Embedded(Capacity {
                messages: env.ranged_or(
                    "EMBEDDED_QUEUE_MAX_MESSAGES",
                    defaults.messages as u64,
                    1..=10_000_000,
                ) as usize,
                bytes: env.ranged_or(
                    "EMBEDDED_QUEUE_MAX_BYTES",
                    defaults.bytes as u64,
                    1_048_576..=64 * 1_073_741_824,
                ) as usize,
            });
        }
        for queue in required.iter().filter(|q| !found.contains_key(q)) {
            env.record(FieldError::invalid(
                queue.url_var,
                format!(
                    "not set, but other queue URLs are: set all of {} for SQS, or none for the embedded queues",
                    names()
                ),
            ));
        }
        Self::Sqs(found.into_iter().chain(extra).collect())
    }

    /// Whether the queues are on SQS.
    pub fn is_sqs(&self) -> bool {
        matches!(self, Self::Sqs(_))
    }

    /// What each in-process queue may hold (the default for SQS, where it does not apply).
    pub fn embedded_capacity(&self) -> Capacity {
        match self {
            Self::Embedded(capacity) => *capacity,
            Self::Sqs(_) => Capacity::default(),
        }
    }

    /// The SQS URL of `queue`, when it has one.
    pub fn url(&self, queue: QueueName) -> Option<&str> {
        match self {
            Self::Embedded(_) => None,
            Self::Sqs(urls) => urls.get(&queue).map(String::as_str),
        }
    }
}

impl AwsResource for QueueBackend {
    fn in_aws(&self) -> bool {
        self.is_sqs()
    }
}

/// Opens queues by name: on SQS at the configured URLs, or in process. In-process queues are
/// made once per opener and shared by everyone who opens them through it, which is how the
/// services of one process reach each other; job queues get a dead-letter queue, like their
/// SQS counterparts.
#[derive(Debug)]
pub struct QueueOpener {
    sqs: Option<(aws_sdk_sqs::Client, BTreeMap<QueueName, String>)>,
    capacity: Capacity,
    embedded: Mutex<HashMap<QueueName, Arc<dyn Queue>>>,
}

impl QueueOpener {
    /// An opener for `backend`; `aws` is needed for SQS (without it the queues are in process,
    /// with a warning).
    pub fn new(backend: &QueueBackend, aws: Option<&aws_config::SdkConfig>) -> Self {
        let sqs = match (backend, aws) {
            (QueueBackend::Sqs(urls), Some(aws)) => {
                Some((aws_sdk_sqs::Client::new(aws), urls.clone()))
            }
            _ => {
                tracing::warn!(
                    "no queue URLs: using in-process queues, which only other services in this process can reach"
                );
                None
            }
        };
        Self {
            sqs,
            capacity: backend.embedded_capacity(),
            embedded: Mutex::default(),
        }
    }

    /// An opener of in-process queues only, for services sharing one process.
    pub fn embedded() -> Self {
        Self::embedded_with(Capacity::default())
    }

    /// An opener of in-process queues of `capacity` only.
    pub fn embedded_with(capacity: Capacity) -> Self {
        Self {
            sqs: None,
            capacity,
            embedded: Mutex::default(),
        }
    }

    /// Opens `queue`: on SQS when its URL is configured, else in process.
    pub fn open(&self, queue: QueueName) -> Arc<dyn Queue> {
        self.open_sqs(queue)
            .unwrap_or_else(|| self.open_embedded(queue))
    }

    /// Opens `queue` when it is configured: on SQS when its URL is, never in process.
    pub fn open_configured(&self, queue: QueueName) -> Option<Arc<dyn Queue>> {
        self.open_sqs(queue)
    }

    /// Whether the queues are on SQS.
    pub fn is_sqs(&self) -> bool {
        self.sqs.is_some()
    }

    fn open_sqs(&self, queue: QueueName) -> Option<Arc<dyn Queue>> {
        let (client, urls) = self.sqs.as_ref()?;
        let url = urls.get(&queue)?;
        Some(Arc::new(SqsQueue::new(client.clone(), url)))
    }

    fn open_embedded(&self, queue: QueueName) -> Arc<dyn Queue> {
        let mut embedded = self.embedded.lock().unwrap_or_else(PoisonError::into_inner);
        let opened = embedded.entry(queue).or_insert_with(|| {
            if queue.is_fifo() {
                EmbeddedQueue::with_dead_letter_and_capacity(queue.name, true, self.capacity).0
            } else {
                EmbeddedQueue::new(EmbeddedOptions::new(queue.name).capacity(self.capacity))
            }
        });
        Arc::clone(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    const REQUIRED: [QueueName; 2] = [QueueName::EXPORT, QueueName::CANVAS];
    const URL: &str = "http://127.0.0.1:5000/123456789012/";

    #[test]
    fn no_urls_mean_in_process_queues() {
        let env = env(&[]);
        let backend = QueueBackend::from_env(&env, &REQUIRED, &[QueueName::PACKAGE_EVENTS]);
        assert_eq!(backend, QueueBackend::Embedded(Capacity::default()));
        assert!(env.finish(()).is_ok());
    }

    #[test]
    fn in_process_capacity_comes_from_the_environment() {
        let env = env(&[
            ("EMBEDDED_QUEUE_MAX_MESSAGES", "50"),
            ("EMBEDDED_QUEUE_MAX_BYTES", "2097152"),
        ]);
        let backend = QueueBackend::from_env(&env, &REQUIRED, &[]);
        assert_eq!(
            backend.embedded_capacity(),
            Capacity {
                messages: 50,
                bytes: 2_097_152
            }
        );
        assert!(env.finish(()).is_ok());
        let zero = self::env(&[("EMBEDDED_QUEUE_MAX_MESSAGES", "0")]);
        QueueBackend::from_env(&zero, &REQUIRED, &[]);
        let error = zero.finish(()).unwrap_err().to_string();
        assert!(error.contains("EMBEDDED_QUEUE_MAX_MESSAGES"), "{error}");
    }

    #[test]
    fn all_required_urls_mean_sqs_with_the_optional_ones_set() {
        let export = format!("{URL}export.fifo");
        let canvas = format!("{URL}canvas.fifo");
        let events = format!("{URL}events");
        let env = env(&[
            ("EXPORT_QUEUE_URL", &export),
            ("CANVAS_QUEUE_URL", &canvas),
            ("PACKAGE_EVENT_QUEUE_URL", &events),
        ]);
        let backend = QueueBackend::from_env(&env, &REQUIRED, &[QueueName::PACKAGE_EVENTS]);
        assert_eq!(backend.url(QueueName::EXPORT), Some(export.as_str()));
        assert_eq!(
            backend.url(QueueName::PACKAGE_EVENTS),
            Some(events.as_str())
        );
        assert_eq!(backend.url(QueueName::RENDER), None);
        assert!(env.finish(()).is_ok());
    }

    #[test]
    fn a_partial_set_names_the_missing_url() {
        let export = format!("{URL}export.fifo");
        let env = env(&[("EXPORT_QUEUE_URL", &export)]);
        QueueBackend::from_env(&env, &REQUIRED, &[]);
        let error = env.finish(()).unwrap_err().to_string();
        assert!(error.contains("CANVAS_QUEUE_URL"), "{error}");
        assert!(!error.contains("EXPORT_QUEUE_URL: not set"), "{error}");
    }

    #[test]
    fn a_standard_queue_where_order_matters_is_refused() {
        let export = format!("{URL}export");
        let canvas = format!("{URL}canvas.fifo");
        let env = env(&[("EXPORT_QUEUE_URL", &export), ("CANVAS_QUEUE_URL", &canvas)]);
        QueueBackend::from_env(&env, &REQUIRED, &[]);
        let error = env.finish(()).unwrap_err().to_string();
        assert!(
            error.contains("EXPORT_QUEUE_URL") && error.contains(".fifo"),
            "{error}"
        );
    }

    #[test]
    fn a_fifo_queue_where_a_standard_one_is_fed_is_refused() {
        let export = format!("{URL}export.fifo");
        let canvas = format!("{URL}canvas.fifo");
        let events = format!("{URL}events.fifo");
        let env = env(&[
            ("EXPORT_QUEUE_URL", &export),
            ("CANVAS_QUEUE_URL", &canvas),
            ("PACKAGE_EVENT_QUEUE_URL", &events),
        ]);
        QueueBackend::from_env(&env, &REQUIRED, &[QueueName::PACKAGE_EVENTS]);
        let error = env.finish(()).unwrap_err().to_string();
        assert!(
            error.contains("PACKAGE_EVENT_QUEUE_URL") && error.contains("standard"),
            "{error}"
        );
    }

    #[test]
    fn an_optional_url_alone_is_refused() {
        let events = format!("{URL}events");
        let env = env(&[("PACKAGE_EVENT_QUEUE_URL", &events)]);
        let backend = QueueBackend::from_env(&env, &REQUIRED, &[QueueName::PACKAGE_EVENTS]);
        assert_eq!(backend, QueueBackend::Embedded(Capacity::default()));
        let error = env.finish(()).unwrap_err().to_string();
        assert!(error.contains("PACKAGE_EVENT_QUEUE_URL"), "{error}");
    }

    #[test]
    fn one_opener_shares_its_in_process_queues() {
        let opener = QueueOpener::embedded();
        let first = opener.open(QueueName::EXPORT);
        let again = opener.open(QueueName::EXPORT);
        assert!(Arc::ptr_eq(&first, &again));
        assert!(first.is_fifo());
        assert!(!opener.open(QueueName::QUILT_PACKAGER).is_fifo());
        assert!(opener.open_configured(QueueName::PACKAGE_EVENTS).is_none());
        assert!(
            !Arc::ptr_eq(&first, &QueueOpener::embedded().open(QueueName::EXPORT)),
            "each opener has its own queues"
        );
    }
}
