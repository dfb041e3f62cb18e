//! The app's JSON Web Key Set: fetched from Benchling, parsed once into verifying keys, cached
//! with a TTL, and re-fetched (rate-limited) when a signature matches none of the cached keys,
//! so a key rotation is picked up without a restart.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use bw_contracts::AppDefinitionId;
use serde::Deserialize;

/// Longest JWKS document we read; a real one is well under 4 KiB.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Where and how to fetch keys.
#[derive(Clone, Debug)]
pub struct JwksOptions {
    /// Base URL; keys are at `{base}/api/v1/apps/{app_definition_id}/jwks`.
    pub base_url: String,
    /// How long fetched keys are trusted before they are fetched again.
    pub ttl: Duration,
    /// The least time between two fetches for one app, so unsigned junk cannot make us
    /// hammer Benchling.
    pub min_refresh_interval: Duration,
    /// Timeout of one fetch.
    pub timeout: Duration,
}

/// Why keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The request failed (connection, timeout).
    #[error("JWKS request failed: {0}")]
    Request(String),
    /// Benchling answered with an error status.
    #[error("JWKS request answered HTTP {0}")]
    Status(u16),
    /// The document is not a JWK set.
    #[error("JWKS document is invalid: {0}")]
    Invalid(String),
    /// The set holds no P-256 key.
    #[error("JWKS holds no usable P-256 key")]
    NoUsableKeys,
    /// A fetch failed moments ago; the next one waits for the refresh interval.
    #[error("JWKS fetch failed moments ago; not retrying yet")]
    Backoff,
}

/// One key that may have signed a webhook.
pub struct VerifyingKey {
    /// The key id, for logs.
    pub kid: Option<String>,
    key: ParsedPublicKey,
}

impl VerifyingKey {
    /// Builds a key from a JWK's base64url `x` and `y` P-256 coordinates.
    pub fn from_coordinates(kid: Option<String>, x: &str, y: &str) -> Result<Self, JwksError> {
        let decode = |c: &str| {
            URL_SAFE_NO_PAD
                .decode(c)
                .or_else(|_| URL_SAFE.decode(c))
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    JwksError::Invalid("EC coordinate is not 32 bytes of base64url".into())
                })
        };
        let mut point = Vec::with_capacity(65);
        point.push(0x04);
        point.extend(decode(x)?);
        point.extend(decode(y)?);
        let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &point)
            .map_err(|e| JwksError::Invalid(format!("EC point rejected: {e}")))?;
        Ok(Self { kid, key })
    }

    /// Whether `signature` (DER) is this key's ES256 signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

/// The keys of one app at one point in time.
pub struct KeySet {
    /// The keys.
    pub keys: Vec<VerifyingKey>,
    fetched_at: Instant,
}

#[derive(Default)]
struct Slot {
    keys: Option<Arc<KeySet>>,
    last_attempt: Option<Instant>,
}

/// Cached key sets per app definition.
pub struct JwksCache {
    http: reqwest::Client,
    options: JwksOptions,
    slots: RwLock<HashMap<AppDefinitionId, Slot>>,
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    kid: Option<String>,
}

impl JwksCache {
    /// A cache that fetches with `http`.
    pub fn new(http: reqwest::Client, options: JwksOptions) -> Self {
        Self {
            http,
            options,
            slots: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self, app: &AppDefinitionId) -> (Option<Arc<KeySet>>, Option<Instant>) {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        slots
            .get(app)
            .map_or((None, None), |s| (s.keys.clone(), s.last_attempt))
    }

    fn may_fetch(&self, last_attempt: Option<Instant>) -> bool {
        last_attempt.is_none_or(|t| t.elapsed() >= self.options.min_refresh_interval)
    }

    /// The app's keys: cached ones while fresh; otherwise fetched. When a refresh of expired
    /// keys fails, the expired keys keep serving (they were valid, and Benchling being briefly
    /// unreachable must not stop verification).
    pub async fn keys(&self, app: &AppDefinitionId) -> Result<Arc<KeySet>, JwksError> {
        let (keys, last_attempt) = self.snapshot(app);
        match keys {
            Some(keys) if keys.fetched_at.elapsed() < self.options.ttl => Ok(keys),
            Some(stale) if !self.may_fetch(last_attempt) => Ok(stale),
            Some(stale) => match self.refresh(app, last_attempt).await {
                Ok(fresh) => Ok(fresh),
                Err(e) => {
                    tracing::warn!(app_definition_id = %app, error = %e, "JWKS refresh failed; using the expired keys");
                    Ok(stale)
                }
            },
            None if !self.may_fetch(last_attempt) => Err(JwksError::Backoff),
            None => self.refresh(app, last_attempt).await,
        }
    }

    /// Called when no cached key verified a signature: fetches the set again unless it was
    /// fetched less than `min_refresh_interval` ago. `None` means "not refetched".
    pub async fn refresh_after_miss(
        &self,
        app: &AppDefinitionId,
    ) -> Result<Option<Arc<KeySet>>, JwksError> {
        let (_, last_attempt) = self.snapshot(app);
        if !self.may_fetch(last_attempt) {
            return Ok(None);
        }
        self.refresh(app, last_attempt).await.map(Some)
    }

    /// Fetches once even when many requests ask at the same moment: latecomers reuse the
    /// result of the fetch that was running when they queued.
    async fn refresh(
        &self,
        app: &AppDefinitionId,
        seen_attempt: Option<Instant>,
    ) -> Result<Arc<KeySet>, JwksError> {
        let _guard = self.fetching.lock().await;
        let (keys, last_attempt) = self.snapshot(app);
        if last_attempt != seen_attempt {
            // Another request fetched while we waited: share its outcome.
            return keys
                .filter(|k| Some(k.fetched_at) == last_attempt)
                .ok_or(JwksError::Backoff);
        }
        let result = self.fetch(app).await.map(Arc::new);
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        let slot = slots.entry(app.clone()).or_default();
        match &result {
            Ok(keys) => {
                slot.last_attempt = Some(keys.fetched_at);
                slot.keys = Some(keys.clone());
            }
            Err(_) => slot.last_attempt = Some(Instant::now()),
        }
        result
    }

    async fn fetch(&self, app: &AppDefinitionId) -> Result<KeySet, JwksError> {
        let url = format!(
            "{}/api/v1/apps/{app}/jwks",
            self.options.base_url.trim_end_matches('/')
        );
        let response = self
            .http
            .get(&url)
            .timeout(self.options.timeout)
            .send()
            .await
            .map_err(|e| JwksError::Request(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(JwksError::Status(response.status().as_u16()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| JwksError::Request(e.without_url().to_string()))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(JwksError::Invalid(format!(
                "larger than {MAX_JWKS_BYTES} bytes"
            )));
        }
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| JwksError::Invalid(e.to_string()))?;
        let keys: Vec<VerifyingKey> = set
            .keys
            .into_iter()
            .filter_map(|jwk| {
                if jwk.kty != "EC" || jwk.crv.as_deref() != Some("P-256") {
                    tracing::debug!(kid = ?jwk.kid, kty = %jwk.kty, "skipping a non-P-256 JWK");
                    return None;
                }
                let parsed = VerifyingKey::from_coordinates(
                    jwk.kid.clone(),
                    jwk.x.as_deref().unwrap_or_default(),
                    jwk.y.as_deref().unwrap_or_default(),
                );
                parsed
                    .inspect_err(
                        |e| tracing::warn!(kid = ?jwk.kid, error = %e, "skipping an invalid JWK"),
                    )
                    .ok()
            })
            .collect();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys);
        }
        tracing::info!(app_definition_id = %app, keys = keys.len(), "fetched JWKS");
        Ok(KeySet {
            keys,
            fetched_at: Instant::now(),
        })
    }
}
