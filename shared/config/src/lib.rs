//! Service configuration: typed reads of the environment and of the Benchling secret (from
//! AWS Secrets Manager or a local file), the watcher that keeps the secret current, and the
//! masking rules for anything shown back to operators.

pub mod env;
pub mod mask;
pub mod secret;
pub mod store;
pub mod watch;

pub use env::{ConfigError, Env, FieldError};
pub use secret::{BenchlingSecret, Redacted, SecretError, SecretLoader, SecretSource};
pub use store::StoreBackend;
pub use watch::{SecretState, SecretWatch, SecretWatchOptions};

/// Something a service is configured to use that may live in AWS: a queue set, an object
/// store, the secret, a query engine.
pub trait AwsResource: Sync {
    /// Whether it lives in AWS (and so needs credentials and a region).
    fn in_aws(&self) -> bool;
}

impl AwsResource for bool {
    fn in_aws(&self) -> bool {
        *self
    }
}

impl AwsResource for StoreBackend {
    fn in_aws(&self) -> bool {
        matches!(self, StoreBackend::S3)
    }
}

impl AwsResource for Option<SecretSource> {
    fn in_aws(&self) -> bool {
        matches!(self, Some(SecretSource::SecretsManager(_)))
    }
}

/// [`aws_sdk_config`] when any of `resources` lives in AWS, so a service that touches no AWS
/// resource never looks for credentials.
pub async fn aws_sdk_config_for(resources: &[&dyn AwsResource]) -> Option<aws_config::SdkConfig> {
    if resources.iter().any(|r| r.in_aws()) {
        Some(aws_sdk_config().await)
    } else {
        None
    }
}

/// Loads the AWS SDK configuration from the standard sources (environment, ECS task role,
/// profile). `AWS_ENDPOINT_URL` points every client at an emulator in tests.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}
