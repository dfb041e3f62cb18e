//! Talking to Benchling: verifying the webhooks it signs (ES256 over the raw body, keys from the
//! app's JWKS, cached and refreshed on rotation).

pub mod jwks;
pub mod webhook;

pub use jwks::{JwksCache, JwksError, JwksOptions};
pub use webhook::{SignedRequest, Verifier, VerifyError};
