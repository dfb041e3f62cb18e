//! Keeps the Benchling secret current: loads it in the background, retries with backoff while
//! it is unavailable (so a service started before its secret existed recovers by itself), and
//! re-reads it periodically so rotated credentials are picked up without a restart.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::secret::{BenchlingSecret, SecretLoader};

/// Retry and refresh timing, and what the deployment adds to the secret.
#[derive(Clone, Debug)]
pub struct SecretWatchOptions {
    /// First wait after a failed load; doubles on each failure.
    pub retry_initial: Duration,
    /// Longest wait between two failed loads.
    pub retry_max: Duration,
    /// Wait between two reads of a loaded secret.
    pub refresh_interval: Duration,
    /// `PACKAGE_BUCKET`: the package bucket the deployment names (the stack's `PackageBucket`),
    /// for a secret without one (the four-key form).
    pub package_bucket: Option<String>,
}

impl Default for SecretWatchOptions {
    fn default() -> Self {
        Self {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            refresh_interval: Duration::from_secs(300),
            package_bucket: None,
        }
    }
}

/// Where the secret stands.
#[derive(Clone, Debug)]
pub enum SecretState {
    /// The first load is running.
    Loading,
    /// No usable secret yet.
    Unavailable {
        /// Why (never contains secret values).
        error: String,
        /// What the operator should do.
        suggestion: &'static str,
        /// Failed attempts so far.
        attempts: u32,
    },
    /// A validated secret.
    Ready(Arc<BenchlingSecret>),
}

/// A handle on the current secret state.
#[derive(Clone, Debug)]
pub struct SecretWatch {
    rx: watch::Receiver<SecretState>,
}

impl SecretWatchOptions {
    /// Reads `SECRET_RETRY_INITIAL_MS`, `SECRET_RETRY_MAX_SECS`, `SECRET_REFRESH_SECS` and
    /// `PACKAGE_BUCKET`.
    pub fn from_env(env: &crate::Env) -> Self {
        let defaults = Self::default();
        Self {
            retry_initial: env.millis_or(
                "SECRET_RETRY_INITIAL_MS",
                defaults.retry_initial,
                10..=60_000,
            ),
            retry_max: env.seconds_or("SECRET_RETRY_MAX_SECS", defaults.retry_max, 1..=3_600),
            refresh_interval: env.seconds_or(
                "SECRET_REFRESH_SECS",
                defaults.refresh_interval,
                1..=86_400,
            ),
            package_bucket: env.optional("PACKAGE_BUCKET"),
        }
    }
}

impl SecretWatch {
    /// Watches the secret at `source` (`None`: `BenchlingSecret` unset, never ready). `aws` is
    /// needed only for a Secrets Manager source.
    pub fn connect(
        source: Option<&crate::SecretSource>,
        aws: Option<&aws_config::SdkConfig>,
        options: &SecretWatchOptions,
    ) -> Self {
        match source {
            None => Self::unconfigured("BenchlingSecret is not set"),
            Some(source) => {
                let client = match (source, aws) {
                    (crate::SecretSource::SecretsManager(_), Some(aws)) => {
                        Some(aws_sdk_secretsmanager::Client::new(aws))
                    }
                    _ => None,
                };
                Self::spawn(SecretLoader::new(source.clone(), client), options)
            }
        }
    }

    /// Starts loading on the current tokio runtime. The task ends when every handle is dropped.
    pub fn spawn(loader: SecretLoader, options: &SecretWatchOptions) -> Self {
        let (tx, rx) = watch::channel(SecretState::Loading);
        tokio::spawn(run(loader, options.clone(), tx));
        Self { rx }
    }

    /// A watch that never becomes ready, for a service started without `BenchlingSecret`.
    pub fn unconfigured(error: impl Into<String>) -> Self {
        let (_, rx) = watch::channel(SecretState::Unavailable {
            error: error.into(),
            suggestion: "Set BenchlingSecret to the Secrets Manager name or ARN of the Benchling secret (or file:/path for a local run).",
            attempts: 0,
        });
        Self { rx }
    }

    /// The current state.
    pub fn state(&self) -> SecretState {
        self.rx.borrow().clone()
    }

    /// The secret, when loaded.
    pub fn secret(&self) -> Option<Arc<BenchlingSecret>> {
        match &*self.rx.borrow() {
            SecretState::Ready(secret) => Some(secret.clone()),
            _ => None,
        }
    }

    /// The secret, or why it is not available (for a job's error).
    ///
    /// # Errors
    /// The load error, or "still loading".
    pub fn loaded(&self) -> Result<Arc<BenchlingSecret>, String> {
        match &*self.rx.borrow() {
            SecretState::Ready(secret) => Ok(secret.clone()),
            SecretState::Unavailable { error, .. } => Err(error.clone()),
            SecretState::Loading => Err("still loading".to_owned()),
        }
    }

    /// Waits until a secret is loaded (workers call this before they poll).
    pub async fn ready(&mut self) -> Option<Arc<BenchlingSecret>> {
        let state = self
            .rx
            .wait_for(|s| matches!(s, SecretState::Ready(_)))
            .await
            .ok()?;
        match &*state {
            SecretState::Ready(secret) => Some(secret.clone()),
            _ => None,
        }
    }

    /// A receiver that sees every change (e.g. to apply a new log level). Its first
    /// `changed()` returns at once, so a late subscriber still acts on the current state.
    pub fn subscribe(&self) -> watch::Receiver<SecretState> {
        let mut rx = self.rx.clone();
        rx.mark_changed();
        rx
    }
}

async fn run(loader: SecretLoader, options: SecretWatchOptions, tx: watch::Sender<SecretState>) {
    let source = loader.source().masked();
    let mut backoff = options.retry_initial;
    let mut failures = 0u32;
    loop {
        let wait = match loader.load(options.package_bucket.as_deref()).await {
            Ok(secret) => {
                failures = 0;
                backoff = options.retry_initial;
                let changed = tx.send_if_modified(|state| match state {
                    SecretState::Ready(current) if **current == secret => false,
                    _ => {
                        *state = SecretState::Ready(Arc::new(secret.clone()));
                        true
                    }
                });
                if changed {
                    tracing::info!(secret = %source, "Benchling secret loaded");
                }
                options.refresh_interval
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let error = e.to_string();
                let keep_previous = matches!(&*tx.borrow(), SecretState::Ready(_));
                if keep_previous {
                    tracing::warn!(secret = %source, %error, "secret refresh failed; keeping the loaded secret");
                } else {
                    tracing::warn!(secret = %source, %error, attempts = failures, retry_in_ms = backoff.as_millis() as u64, "Benchling secret unavailable");
                    tx.send_replace(SecretState::Unavailable {
                        error,
                        suggestion: e.suggestion(),
                        attempts: failures,
                    });
                }
                let wait = backoff;
                backoff = (backoff * 2).min(options.retry_max);
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretSource;

    #[tokio::test]
    async fn late_subscribers_see_the_current_state_first() {
        let watch = SecretWatch::unconfigured("BenchlingSecret is not set");
        let mut rx = watch.subscribe();
        tokio::time::timeout(Duration::from_secs(1), rx.changed())
            .await
            .expect("the current state is reported at once")
            .unwrap();
        assert!(matches!(&*rx.borrow(), SecretState::Unavailable { .. }));
    }

    #[tokio::test]
    async fn recovers_when_the_secret_file_appears() {
        let dir = std::env::temp_dir().join(format!("bw-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.json");
        let _ = std::fs::remove_file(&path);
        let options = SecretWatchOptions {
            retry_initial: Duration::from_millis(20),
            retry_max: Duration::from_millis(50),
            refresh_interval: Duration::from_millis(50),
            package_bucket: None,
        };
        let mut watch = SecretWatch::spawn(
            SecretLoader::new(SecretSource::File(path.clone()), None),
            &options,
        );
        let mut rx = watch.subscribe();
        rx.wait_for(|s| matches!(s, SecretState::Unavailable { .. }))
            .await
            .unwrap();
        assert!(watch.secret().is_none());
        std::fs::write(
            &path,
            r#"{"tenant":"t","client_id":"i","client_secret":"s","app_definition_id":"appdef_1","user_bucket":"bkt"}"#,
        )
        .unwrap();
        let secret = tokio::time::timeout(Duration::from_secs(5), watch.ready())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(secret.user_bucket, "bkt");
        std::fs::write(
            &path,
            r#"{"tenant":"t","client_id":"i","client_secret":"rotated","app_definition_id":"appdef_1","user_bucket":"bkt"}"#,
        )
        .unwrap();
        tokio::time::timeout(
            Duration::from_secs(5),
            rx.wait_for(
                |s| matches!(s, SecretState::Ready(s) if s.client_secret.expose() == "rotated"),
            ),
        )
        .await
        .unwrap()
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
