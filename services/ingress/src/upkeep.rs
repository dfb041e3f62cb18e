//! Background work beside the HTTP server: keeps queue health current for readiness, and when
//! the secret arrives or changes, pre-fetches the app's keys and says loudly if verification is
//! off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bw_config::SecretState;

use crate::state::AppState;

/// Runs until the process exits: nothing it watches ever finishes.
pub async fn run(state: Arc<AppState>) {
    let mut secret_changes = state.secret.subscribe();
    if !state.config.verification_allowed {
        tracing::warn!(
            "ENABLE_WEBHOOK_VERIFICATION is off: webhooks are accepted WITHOUT signature checks"
        );
    }
    let mut check = tokio::time::interval(Duration::from_secs(5));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_check = None;
    let mut watching_secret = true;
    loop {
        tokio::select! {
            _ = check.tick() => {
                // Check every 5 s while failing, every 30 s once healthy.
                let due = state.outbox.health().is_err()
                    || last_check.is_none_or(|t: Instant| t.elapsed() >= Duration::from_secs(30));
                if due {
                    state.outbox.check().await;
                    last_check = Some(Instant::now());
                }
            }
            changed = secret_changes.changed(), if watching_secret => {
                if changed.is_err() {
                    // No loader (BenchlingSecret unset): nothing more will change.
                    watching_secret = false;
                    continue;
                }
                let current = secret_changes.borrow_and_update().clone();
                if let SecretState::Ready(secret) = current {
                    if !secret.enable_webhook_verification {
                        tracing::warn!("the Benchling secret turns webhook verification off: webhooks are accepted WITHOUT signature checks");
                    }
                    if state.verification_enabled(&secret) {
                        match state.verifier.prewarm(&secret.app_definition_id).await {
                            Ok(keys) => tracing::info!(keys, "JWKS pre-fetched"),
                            Err(e) => tracing::warn!(error = %e, "JWKS pre-fetch failed; will fetch on the first webhook"),
                        }
                    }
                }
            }
        }
    }
}
