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

/// [`aws_sdk_config`] when `needed`, so services that touch no AWS resource never look for
/// credentials.
pub async fn aws_sdk_config_if(needed: bool) -> Option<aws_config::SdkConfig> {
    if needed {
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
