//! Webhook signature verification.
//!
//! Benchling signs `"{webhook-id}.{webhook-timestamp}.{raw body}"` with ES256 and sends the
//! DER-encoded signatures, base64, in `webhook-signature` as space-separated `v1der,<sig>` items.
//! A request is authentic when any item whose version contains `der` verifies under any key of
//! the app's JWKS, and its timestamp is within five minutes of now, either way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bw_contracts::AppDefinitionId;

use crate::jwks::{JwksCache, JwksError, KeySet};

/// How far a webhook's timestamp may be from our clock, in either direction.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Most signature items we try; each costs a verification per key, so a header stuffed with
/// items must not buy unbounded CPU.
pub const MAX_SIGNATURES: usize = 8;

/// The signed parts of a request.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`, verbatim.
    pub timestamp: &'a str,
    /// `webhook-signature`.
    pub signature: &'a str,
    /// The raw body.
    pub body: &'a [u8],
}

impl<'a> SignedRequest<'a> {
    /// Collects the three headers, naming every one that is missing.
    pub fn from_headers(
        id: Option<&'a str>,
        timestamp: Option<&'a str>,
        signature: Option<&'a str>,
        body: &'a [u8],
    ) -> Result<Self, VerifyError> {
        match (id, signature, timestamp) {
            (Some(id), Some(signature), Some(timestamp)) => Ok(Self {
                id,
                timestamp,
                signature,
                body,
            }),
            _ => Err(VerifyError::MissingHeaders(
                [
                    ("webhook-id", id),
                    ("webhook-signature", signature),
                    ("webhook-timestamp", timestamp),
                ]
                .into_iter()
                .filter(|(_, v)| v.is_none())
                .map(|(name, _)| name)
                .collect(),
            )),
        }
    }

    /// The timestamp as seconds since the epoch.
    pub fn unix_timestamp(&self) -> Result<i64, VerifyError> {
        let raw = self.timestamp.trim();
        if raw.is_empty() || raw.len() > 12 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VerifyError::InvalidTimestamp);
        }
        raw.parse().map_err(|_| VerifyError::InvalidTimestamp)
    }
}

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Some of `webhook-id`, `webhook-signature`, `webhook-timestamp` are absent.
    #[error("missing required webhook headers: {}", .0.join(", "))]
    MissingHeaders(Vec<&'static str>),
    /// The timestamp is not whole seconds since the epoch.
    #[error("webhook-timestamp is not a Unix timestamp in seconds")]
    InvalidTimestamp,
    /// The timestamp is more than the tolerance in the past.
    #[error("webhook timestamp is older than {} seconds", TIMESTAMP_TOLERANCE.as_secs())]
    StaleTimestamp,
    /// The timestamp is more than the tolerance in the future.
    #[error("webhook timestamp is more than {} seconds in the future", TIMESTAMP_TOLERANCE.as_secs())]
    FutureTimestamp,
    /// The signature header cannot be read.
    #[error("webhook-signature is malformed: {0}")]
    MalformedSignature(&'static str),
    /// No signature verifies under any key.
    #[error("no signature matches any of the app's keys")]
    NoMatchingSignature,
    /// The keys could not be fetched; the sender should retry later.
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(#[from] JwksError),
}

impl VerifyError {
    /// A short machine-readable reason for API error bodies.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeaders(_) => "missing_headers",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::StaleTimestamp => "stale_timestamp",
            Self::FutureTimestamp => "future_timestamp",
            Self::MalformedSignature(_) | Self::NoMatchingSignature => "invalid_signature",
            Self::KeysUnavailable(_) => "jwks_unavailable",
        }
    }

    /// Whether the failure is ours, not the sender's: answer 503 so Benchling retries.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::KeysUnavailable(_))
    }
}

/// Verifies webhooks against the app's keys.
pub struct Verifier {
    jwks: JwksCache,
}

impl Verifier {
    /// A verifier over a key cache.
    pub fn new(jwks: JwksCache) -> Self {
        Self { jwks }
    }

    /// Fetches the app's keys ahead of the first webhook; returns how many were loaded.
    pub async fn prewarm(&self, app: &AppDefinitionId) -> Result<usize, JwksError> {
        Ok(self.jwks.keys(app).await?.keys.len())
    }

    /// Verifies `request` for the app `app` at time `now`.
    pub async fn verify(
        &self,
        app: &AppDefinitionId,
        request: &SignedRequest<'_>,
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        check_timestamp(request.unix_timestamp()?, now)?;
        let signatures = der_signatures(request.signature)?;
        let mut message =
            Vec::with_capacity(request.id.len() + request.timestamp.len() + request.body.len() + 2);
        message.extend_from_slice(request.id.as_bytes());
        message.push(b'.');
        message.extend_from_slice(request.timestamp.as_bytes());
        message.push(b'.');
        message.extend_from_slice(request.body);

        let keys = self.jwks.keys(app).await?;
        if any_verifies(&keys, &message, &signatures) {
            return Ok(());
        }
        // Unknown signer: Benchling may have rotated its key since we fetched the set.
        match self.jwks.refresh_after_miss(app).await? {
            Some(fresh) if any_verifies(&fresh, &message, &signatures) => Ok(()),
            _ => Err(VerifyError::NoMatchingSignature),
        }
    }
}

fn check_timestamp(timestamp: i64, now: SystemTime) -> Result<(), VerifyError> {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let tolerance = i64::try_from(TIMESTAMP_TOLERANCE.as_secs()).unwrap_or(i64::MAX);
    if timestamp < now - tolerance {
        Err(VerifyError::StaleTimestamp)
    } else if timestamp > now + tolerance {
        Err(VerifyError::FutureTimestamp)
    } else {
        Ok(())
    }
}

/// Decodes the DER signature items of a `webhook-signature` header (space-separated
/// `version,base64` items; items of a version without `der` are skipped), at most
/// [`MAX_SIGNATURES`] of them.
///
/// # Errors
/// [`VerifyError::MalformedSignature`] when an item is not `version,signature`, a signature is
/// not base64, there are too many, or none is DER.
pub fn der_signatures(header: &str) -> Result<Vec<Vec<u8>>, VerifyError> {
    let mut signatures = Vec::new();
    for item in header.split(' ').filter(|i| !i.is_empty()) {
        let (version, encoded) = item
            .split_once(',')
            .filter(|(_, sig)| !sig.contains(','))
            .ok_or(VerifyError::MalformedSignature(
                "an item is not `version,signature`",
            ))?;
        if !version.contains("der") {
            continue;
        }
        if signatures.len() == MAX_SIGNATURES {
            return Err(VerifyError::MalformedSignature("too many signatures"));
        }
        let der = STANDARD
            .decode(encoded)
            .map_err(|_| VerifyError::MalformedSignature("a signature is not base64"))?;
        signatures.push(der);
    }
    if signatures.is_empty() {
        return Err(VerifyError::MalformedSignature("no DER-encoded signature"));
    }
    Ok(signatures)
}

fn any_verifies(keys: &KeySet, message: &[u8], signatures: &[Vec<u8>]) -> bool {
    keys.keys
        .iter()
        .any(|key| signatures.iter().any(|sig| key.verifies(message, sig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_missing_header_in_a_fixed_order() {
        let err = SignedRequest::from_headers(None, None, Some("v1der,x"), b"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required webhook headers: webhook-id, webhook-timestamp"
        );
        assert_eq!(err.reason(), "missing_headers");
    }

    #[test]
    fn timestamp_window_is_two_sided() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(check_timestamp(1_700_000_000 - 300, now).is_ok());
        assert!(check_timestamp(1_700_000_000 + 300, now).is_ok());
        assert!(matches!(
            check_timestamp(1_700_000_000 - 301, now),
            Err(VerifyError::StaleTimestamp)
        ));
        assert!(matches!(
            check_timestamp(1_700_000_000 + 301, now),
            Err(VerifyError::FutureTimestamp)
        ));
    }

    #[test]
    fn timestamps_must_be_whole_seconds() {
        for raw in ["", "abc", "1.5", "-1", "99999999999999"] {
            let req = SignedRequest {
                id: "i",
                timestamp: raw,
                signature: "",
                body: b"",
            };
            assert!(
                matches!(req.unix_timestamp(), Err(VerifyError::InvalidTimestamp)),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn keeps_only_der_items() {
        let sigs = der_signatures("v1,AAAA v1der,AQID v2der,BAUG").unwrap();
        assert_eq!(sigs, vec![vec![1, 2, 3], vec![4, 5, 6]]);
        assert!(matches!(
            der_signatures("v1,AAAA"),
            Err(VerifyError::MalformedSignature(_))
        ));
        assert!(matches!(
            der_signatures("v1der"),
            Err(VerifyError::MalformedSignature(_))
        ));
        assert!(matches!(
            der_signatures("v1der,a,b"),
            Err(VerifyError::MalformedSignature(_))
        ));
        assert!(matches!(
            der_signatures("v1der,@@@"),
            Err(VerifyError::MalformedSignature(_))
        ));
        let many = ["v1der,AQID"; MAX_SIGNATURES + 1].join(" ");
        assert!(matches!(
            der_signatures(&many),
            Err(VerifyError::MalformedSignature(_))
        ));
    }
}
