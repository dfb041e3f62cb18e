//! What every request shares: the running state and the fixed limits. It sits below the
//! handlers and the error type and imports none of them, so the module graph stays one-way.

use bw_benchling::Verifier;
use bw_config::{BenchlingSecret, SecretWatch};

use crate::config::IngressConfig;
use crate::lifecycle::LifecycleLog;
use crate::outbox::Outbox;
use crate::replay::ReplayGuard;

/// The service name in probes and `/config`.
pub const SERVICE_NAME: &str = "benchling-webhook-ingress";

/// The build's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Largest webhook body accepted (Benchling's are a few KiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// State shared by every request.
pub struct AppState {
    /// The configuration.
    pub config: IngressConfig,
    /// The Benchling secret.
    pub secret: SecretWatch,
    /// Signature verification.
    pub verifier: Verifier,
    /// The queues.
    pub outbox: Outbox,
    /// Recently accepted `webhook-id`s.
    pub replay: ReplayGuard,
    /// Last lifecycle signals.
    pub lifecycle: LifecycleLog,
}

impl AppState {
    /// Verification runs unless the environment or the secret turns it off.
    pub fn verification_enabled(&self, secret: &BenchlingSecret) -> bool {
        self.config.verification_allowed && secret.enable_webhook_verification
    }
}
