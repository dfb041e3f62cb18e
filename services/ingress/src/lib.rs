//! The webhook ingress: verifies each Benchling webhook, turns it into a job, and answers as
//! soon as the job is stored in its queue. No slow work happens in the request path.

pub mod config;
pub mod dispatch;
pub mod error;
pub mod health;
pub mod lifecycle;
pub mod outbox;
pub mod replay;
pub mod server;
pub mod webhook;

pub use config::{IngressConfig, QueueBackend};
pub use outbox::Queues;
pub use server::{AppState, Ingress};

use bw_config::{SecretSource, SecretWatch};

/// Builds the queues and secret watch the configuration asks for. AWS clients are created
/// only when a queue or the secret lives in AWS.
pub async fn connect(config: &IngressConfig) -> (Queues, SecretWatch) {
    let needs_aws = matches!(config.queues, QueueBackend::Sqs { .. })
        || matches!(config.secret, Some(SecretSource::SecretsManager(_)));
    let aws = bw_config::aws_sdk_config_if(needs_aws).await;
    let queues = match (&config.queues, &aws) {
        (
            QueueBackend::Sqs {
                export_url,
                canvas_url,
            },
            Some(aws),
        ) => Queues::sqs(&aws_sdk_sqs::Client::new(aws), export_url, canvas_url),
        _ => {
            tracing::warn!(
                "no EXPORT_QUEUE_URL/CANVAS_QUEUE_URL: using in-process queues (jobs are kept in memory; for local runs only)"
            );
            Queues::embedded()
        }
    };
    let secret = SecretWatch::connect(config.secret.as_ref(), aws.as_ref(), config.secret_watch);
    (queues, secret)
}
