//! Talking to Benchling: verifying the webhooks it signs (ES256 over the raw body, keys from the
//! app's JWKS, cached and refreshed on rotation).
//! Also its REST API through one typed client (`client`): OAuth, retries, rate limiting.

pub mod auth;
pub mod client;
pub mod error;
pub mod jwks;
pub mod model;
pub mod ratelimit;
pub mod retry;
pub mod webhook;

pub use auth::{CredentialSource, Credentials};
pub use client::{BenchlingClient, ClientOptions, EntryFilter, EntryPage, PlainHttpHosts};
pub use error::{BenchlingError, TransportKind};
pub use jwks::{JwksCache, JwksError, JwksOptions, VerifyingKey};
pub use model::{AppCanvas, Entry, NameLookup, NewAppCanvas, Person, TaskId, TaskStatus};
pub use ratelimit::RateLimit;
pub use retry::RetryOptions;
pub use webhook::{SignedRequest, Verifier, VerifyError};
