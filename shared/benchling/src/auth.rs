//! OAuth2 client credentials for the Benchling API: where the current credentials come from
//! (so a rotated secret applies without a restart) and the cached access token.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bw_config::{Redacted, SecretState, SecretWatch};
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;
use url::Url;

/// The app's OAuth client and the tenant it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Tenant name: `acme` for `https://acme.benchling.com`.
    pub tenant: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret (never printed).
    pub client_secret: Redacted,
}

impl Credentials {
    /// `Basic base64(client_id:client_secret)` for the token endpoint.
    pub(crate) fn basic_authorization(&self) -> String {
        let pair = format!("{}:{}", self.client_id, self.client_secret.expose());
        format!("Basic {}", STANDARD.encode(pair))
    }
}

/// Supplies the credentials to use now. Read before every request, so a rotation is picked up
/// by the next call.
pub trait CredentialSource: Send + Sync {
    /// The current credentials, or why there are none (the reason must not contain secrets).
    fn current(&self) -> Result<Credentials, String>;
}

/// The service's secret watcher: credentials are whatever the last successful load returned.
impl CredentialSource for SecretWatch {
    fn current(&self) -> Result<Credentials, String> {
        match self.state() {
            SecretState::Ready(secret) => Ok(Credentials {
                tenant: secret.tenant.clone(),
                client_id: secret.client_id.clone(),
                client_secret: secret.client_secret.clone(),
            }),
            SecretState::Loading => Err("the Benchling secret is still loading".to_owned()),
            SecretState::Unavailable { error, .. } => Err(error),
        }
    }
}

/// Fixed credentials (tools and tests).
impl CredentialSource for Credentials {
    fn current(&self) -> Result<Credentials, String> {
        Ok(self.clone())
    }
}

/// Credentials published through a watch channel; sending new ones rotates them.
impl CredentialSource for watch::Receiver<Credentials> {
    fn current(&self) -> Result<Credentials, String> {
        Ok(self.borrow().clone())
    }
}

/// An access token and when to stop using it.
#[derive(Clone)]
pub(crate) struct AccessToken {
    pub(crate) value: Redacted,
    refresh_at: Instant,
}

impl AccessToken {
    /// A token that is good for `lifetime`; it is dropped a little early (10 % of the lifetime,
    /// 1 to 60 s) so a request never leaves with a token about to expire.
    pub(crate) fn new(value: String, lifetime: Duration) -> Self {
        let buffer = (lifetime / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
        Self {
            value: Redacted::new(value),
            refresh_at: Instant::now() + lifetime.saturating_sub(buffer),
        }
    }
}

/// The token cached for one set of credentials and one API base.
struct Cached {
    credentials: Credentials,
    api: Url,
    token: AccessToken,
}

/// One token shared by every clone of the client. The lock is held while a token is fetched,
/// so concurrent callers wait for one fetch instead of each asking for a token.
#[derive(Default)]
pub(crate) struct TokenCache {
    slot: Mutex<Option<Cached>>,
}

impl TokenCache {
    /// The cached token for these credentials, or a fresh one from `fetch`. A token cached for
    /// other credentials (a rotated secret) is dropped.
    pub(crate) async fn get<F, E>(
        &self,
        credentials: &Credentials,
        api: &Url,
        fetch: F,
    ) -> Result<AccessToken, E>
    where
        F: AsyncFnOnce() -> Result<AccessToken, E>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(cached) = slot.as_ref()
            && cached.credentials == *credentials
            && cached.api == *api
            && Instant::now() < cached.token.refresh_at
        {
            return Ok(cached.token.clone());
        }
        *slot = None;
        let token = fetch().await?;
        *slot = Some(Cached {
            credentials: credentials.clone(),
            api: api.clone(),
            token: token.clone(),
        });
        Ok(token)
    }

    /// Forgets `rejected` (Benchling answered 401 to it); a token fetched meanwhile by another
    /// task is kept.
    pub(crate) async fn invalidate(&self, rejected: &Redacted) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|c| c.token.value == *rejected) {
            *slot = None;
        }
    }
}
