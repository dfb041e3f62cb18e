//! The transport under the Benchling client: HTTP with timeouts and no redirects, the OAuth
//! token, the client-side rate limit, retries with backoff, and mapping failures to
//! [`BenchlingError`]. The typed endpoints build a [`Call`] and hand it to
//! [`Transport::execute`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bw_config::Redacted;
use bw_metrics::{Counter, Family as _};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use url::{Host, Url};

use crate::auth::{AccessToken, CredentialSource, Credentials, TokenCache};
use crate::error::{BenchlingError, TransportKind};
use crate::ratelimit::{RateLimit, RateLimiter};
use crate::retry::{RetryOptions, is_retryable_status, server_hint};

/// Longest error message kept from a Benchling error body.
const MAX_MESSAGE_CHARS: usize = 500;

/// Benchling's 429 answers: the tenant's rate limit, shared with every other client of it.
static THROTTLED: Counter = Counter::new(
    "bw_benchling_throttled_total",
    "Benchling answers of 429 Too Many Requests.",
    &[],
);

/// Calls tried again, by cause: `throttled` (429), `unavailable` (502, 503, 504), `transport`
/// (timeouts, refused or broken connections) or `token` (a token Benchling rejected, refreshed).
static RETRIES: Counter = Counter::new(
    "bw_benchling_retries_total",
    "Benchling calls tried again, by cause (throttled, unavailable, transport, token).",
    &["cause"],
);

/// Client settings; `Default` gives Benchling's tenant URL and production limits.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// `BENCHLING_API_BASE_URL`; `None` means `https://{tenant}.benchling.com`, with the tenant
    /// read from the current credentials. The API is under `{base}/api/v2`.
    pub base_url: Option<Url>,
    /// Timeout for one request, response body included.
    pub request_timeout: Duration,
    /// Timeout for opening a connection.
    pub connect_timeout: Duration,
    /// Retry policy for transient failures.
    pub retry: RetryOptions,
    /// Client-side request budget, shared by every clone of the client.
    pub rate_limit: RateLimit,
    /// Hosts reachable over plain http besides loopback.
    pub plain_http: PlainHttpHosts,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            base_url: None,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryOptions::default(),
            rate_limit: RateLimit::default(),
            plain_http: PlainHttpHosts::default(),
        }
    }
}

impl ClientOptions {
    /// Reads `BENCHLING_API_BASE_URL`, `BENCHLING_MAX_ATTEMPTS` (default 5),
    /// `BENCHLING_RETRY_INITIAL_MS` (default 1000) and `BENCHLING_RATE_LIMIT` (requests per 30 s,
    /// default 60: Benchling's default tenant limit) and `BENCHLING_ALLOW_HTTP_HOSTS`
    /// ([`PlainHttpHosts`]), recording bad values in `env`.
    pub fn from_env(env: &bw_config::Env) -> Self {
        let defaults = Self::default();
        let plain_http = PlainHttpHosts::from_env(env);
        let base_url = env.http_url("BENCHLING_API_BASE_URL").and_then(|raw| {
            let parsed = Url::parse(&raw).ok()?;
            if let Err(e) = check_base_url(&parsed, &plain_http) {
                env.record(bw_config::FieldError::invalid(
                    "BENCHLING_API_BASE_URL",
                    e.to_string(),
                ));
            }
            Some(parsed)
        });
        let retry = RetryOptions {
            max_attempts: env.ranged_or(
                "BENCHLING_MAX_ATTEMPTS",
                u64::from(defaults.retry.max_attempts),
                1..=10,
            ) as u32,
            initial_backoff: env.millis_or(
                "BENCHLING_RETRY_INITIAL_MS",
                defaults.retry.initial_backoff,
                1..=60_000,
            ),
            ..defaults.retry
        };
        let rate_limit = RateLimit {
            requests: env.ranged_or(
                "BENCHLING_RATE_LIMIT",
                u64::from(defaults.rate_limit.requests),
                1..=10_000,
            ) as u32,
            ..defaults.rate_limit
        };
        Self {
            base_url,
            retry,
            rate_limit,
            plain_http,
            ..defaults
        }
    }
}

/// The hosts Benchling credentials and data may reach over plain `http`: loopback addresses
/// always (the test stand-ins), and the host names in `BENCHLING_ALLOW_HTTP_HOSTS`
/// (comma-separated), for a stand-in in another container of a local compose network. Never set
/// in a deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlainHttpHosts(Vec<String>);

impl PlainHttpHosts {
    /// Loopback and these host names.
    pub fn new(hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self(
            hosts
                .into_iter()
                .map(|h| h.into().to_ascii_lowercase())
                .collect(),
        )
    }

    /// Reads `BENCHLING_ALLOW_HTTP_HOSTS`, warning loudly when it names any host.
    pub fn from_env(env: &bw_config::Env) -> Self {
        let hosts = Self::new(
            env.optional("BENCHLING_ALLOW_HTTP_HOSTS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty()),
        );
        if !hosts.0.is_empty() {
            tracing::warn!(
                hosts = ?hosts.0,
                "BENCHLING_ALLOW_HTTP_HOSTS: Benchling credentials may go over plain http to these hosts (local stand-ins only)"
            );
        }
        hosts
    }

    /// Whether a URL may carry Benchling credentials or data: `https`, or plain `http` to a
    /// loopback address or an allowed host. Also used for export download URLs.
    pub fn is_secure(&self, url: &Url) -> bool {
        match url.scheme() {
            "https" => true,
            "http" => match url.host() {
                Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                Some(Host::Domain(domain)) => {
                    domain.eq_ignore_ascii_case("localhost")
                        || self.0.iter().any(|h| domain.eq_ignore_ascii_case(h))
                }
                None => false,
            },
            _ => false,
        }
    }
}

fn check_base_url(url: &Url, plain_http: &PlainHttpHosts) -> Result<(), BenchlingError> {
    let refuse = |reason| {
        Err(BenchlingError::InvalidBaseUrl {
            url: url.to_string(),
            reason,
        })
    };
    if !plain_http.is_secure(url) {
        return refuse(
            "only https is allowed (http only for loopback addresses and BENCHLING_ALLOW_HTTP_HOSTS)",
        );
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return refuse("not a base URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("credentials do not belong in the URL");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return refuse("a query or fragment is not allowed");
    }
    Ok(())
}

/// One API call: method, path segments under `/api/v2`, query and JSON body.
pub(super) struct Call<'a> {
    pub(super) method: Method,
    pub(super) segments: Vec<&'a str>,
    pub(super) query: Vec<(&'static str, String)>,
    pub(super) body: Option<Value>,
    /// Not idempotent: retried only when the request certainly had no effect (a refused
    /// connection, or 429), never after a timeout or a 5xx that may have applied it.
    pub(super) at_most_once: bool,
}

impl<'a> Call<'a> {
    /// A call with no query or body, safe to retry.
    pub(super) fn new(method: Method, segments: &[&'a str]) -> Self {
        Self {
            method,
            segments: segments.to_vec(),
            query: Vec::new(),
            body: None,
            at_most_once: false,
        }
    }

    /// The path under `/api/v2`, for errors and logs.
    pub(super) fn path(&self) -> String {
        format!("/{}", self.segments.join("/"))
    }
}

/// A failed attempt and what to do about it.
struct Failure {
    error: BenchlingError,
    retryable: bool,
    /// How long Benchling asked us to wait.
    hint: Option<Duration>,
    /// The token Benchling answered 401 to.
    rejected_token: Option<Redacted>,
}

impl Failure {
    fn final_(error: BenchlingError) -> Self {
        Self {
            error,
            retryable: false,
            hint: None,
            rejected_token: None,
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

/// The HTTP side of the client, shared by every clone: connection pool, token cache, rate
/// limiter and retry policy.
pub(super) struct Transport {
    http: reqwest::Client,
    base_url: Option<Url>,
    credentials: Arc<dyn CredentialSource>,
    tokens: TokenCache,
    limiter: RateLimiter,
    retry: RetryOptions,
}

impl Transport {
    /// Builds the HTTP client. Fails when the configured base URL is not https (or http to
    /// loopback).
    pub(super) fn new(
        credentials: Arc<dyn CredentialSource>,
        options: ClientOptions,
    ) -> Result<Self, BenchlingError> {
        if let Some(base) = &options.base_url {
            check_base_url(base, &options.plain_http)?;
        }
        THROTTLED.register();
        RETRIES.register();
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.connect_timeout)
            // A redirect could carry the bearer token somewhere else; the API never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bw-benchling/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BenchlingError::HttpClient(e.to_string()))?;
        Ok(Self {
            http,
            base_url: options.base_url,
            credentials,
            tokens: TokenCache::default(),
            limiter: RateLimiter::new(options.rate_limit),
            retry: options.retry,
        })
    }

    /// Runs a call: retries transient failures with backoff, refreshes the token once on 401.
    pub(super) async fn execute(&self, call: &Call<'_>) -> Result<Value, BenchlingError> {
        let retry = self.retry;
        let mut attempt = 1;
        let mut refreshed = false;
        loop {
            let failure = match self.attempt(call).await {
                Ok(body) => return Ok(body),
                Err(failure) => failure,
            };
            if let Some(rejected) = &failure.rejected_token
                && !refreshed
            {
                // Expired or revoked before our own clock said so: one fresh token, one retry.
                refreshed = true;
                RETRIES.inc(&["token"]);
                self.tokens.invalidate(rejected).await;
                tracing::debug!(method = %call.method, path = %call.path(), "Benchling rejected the token; refreshing");
                continue;
            }
            let throttled = failure.error.status() == Some(429);
            if throttled {
                THROTTLED.inc(&[]);
            }
            let unapplied = throttled
                || matches!(
                    failure.error,
                    BenchlingError::Transport {
                        kind: TransportKind::Connect,
                        ..
                    }
                );
            if !failure.retryable
                || (call.at_most_once && !unapplied)
                || attempt >= retry.max_attempts.max(1)
            {
                return Err(failure.error);
            }
            RETRIES.inc(&[match &failure.error {
                _ if throttled => "throttled",
                BenchlingError::Transport { .. } => "transport",
                _ => "unavailable",
            }]);
            let wait = retry.wait(attempt, failure.hint);
            if failure.hint.is_some() {
                // Benchling's budget is per tenant: every task holds off, not only this one.
                self.limiter.hold_until(Instant::now() + wait);
            }
            tracing::debug!(
                method = %call.method,
                path = %call.path(),
                attempt,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                error = %failure.error,
                "retrying Benchling call"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One try of a call (fetching a token first when none is cached).
    async fn attempt(&self, call: &Call<'_>) -> Result<Value, Failure> {
        let credentials = self
            .credentials
            .current()
            .map_err(|reason| Failure::final_(BenchlingError::NoCredentials(reason)))?;
        let api = self.api_url(&credentials).map_err(Failure::final_)?;
        let token = self
            .tokens
            .get(&credentials, &api, async || {
                self.fetch_token(&api, &credentials).await
            })
            .await?;
        let mut url = api;
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(&call.segments);
        }
        if !call.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .bearer_auth(token.value.expose());
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        self.limiter.acquire().await;
        let response = request
            .send()
            .await
            .map_err(|e| transport_failure(call, &e))?;
        let status = response.status();
        if status.is_success() {
            let bytes = response
                .bytes()
                .await
                .map_err(|e| transport_failure(call, &e))?;
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| Failure::final_(invalid(call, e)));
        }
        let hint = server_hint(response.headers());
        let message = error_message(response).await;
        Err(Failure {
            error: status_error(call, status, message),
            retryable: is_retryable_status(status),
            hint,
            rejected_token: (status == StatusCode::UNAUTHORIZED).then(|| token.value.clone()),
        })
    }

    /// `POST {api}/token` with the client credentials.
    async fn fetch_token(
        &self,
        api: &Url,
        credentials: &Credentials,
    ) -> Result<AccessToken, Failure> {
        let call = Call::new(Method::POST, &["token"]);
        let mut url = api.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push("token");
        }
        self.limiter.acquire().await;
        let response = self
            .http
            .post(url)
            .header(AUTHORIZATION, credentials.basic_authorization())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| transport_failure(&call, &e))?;
        let status = response.status();
        if !status.is_success() {
            let hint = server_hint(response.headers());
            let message = error_message(response).await;
            return Err(Failure {
                error: status_error(&call, status, message),
                retryable: is_retryable_status(status),
                hint,
                rejected_token: None,
            });
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_failure(&call, &e))?;
        // The body holds the token: report only that it is malformed, never its content.
        let token: TokenResponse = serde_json::from_slice(&bytes).map_err(|_| {
            Failure::final_(invalid(
                &call,
                "no access_token and expires_in in the answer",
            ))
        })?;
        tracing::debug!(
            expires_in = token.expires_in,
            "Benchling access token fetched"
        );
        Ok(AccessToken::new(
            token.access_token,
            Duration::from_secs(token.expires_in),
        ))
    }

    /// `{base}/api/v2`, the base being configured or derived from the tenant.
    fn api_url(&self, credentials: &Credentials) -> Result<Url, BenchlingError> {
        let mut url = match &self.base_url {
            Some(base) => base.clone(),
            None => tenant_url(&credentials.tenant)?,
        };
        let shown = url.to_string();
        url.path_segments_mut()
            .map_err(|()| BenchlingError::InvalidBaseUrl {
                url: shown,
                reason: "not a base URL",
            })?
            .pop_if_empty()
            .extend(["api", "v2"]);
        Ok(url)
    }
}

/// `https://{tenant}.benchling.com`, for a tenant that is a plain DNS label.
fn tenant_url(tenant: &str) -> Result<Url, BenchlingError> {
    let is_label = !tenant.is_empty()
        && tenant.len() <= 63
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let refused = || BenchlingError::InvalidBaseUrl {
        url: format!("https://{tenant}.benchling.com"),
        reason: "the tenant must be a DNS label (letters, digits, '-')",
    };
    if !is_label {
        return Err(refused());
    }
    Url::parse(&format!("https://{tenant}.benchling.com")).map_err(|_| refused())
}

/// The call's answer (or, rarely, its request body) is not what the call expects.
pub(super) fn invalid(call: &Call<'_>, detail: impl ToString) -> BenchlingError {
    BenchlingError::InvalidResponse {
        path: call.path(),
        detail: detail.to_string(),
    }
}

fn status_error(call: &Call<'_>, status: StatusCode, message: String) -> BenchlingError {
    if status == StatusCode::NOT_FOUND {
        BenchlingError::NotFound {
            method: call.method.to_string(),
            path: call.path(),
            message,
        }
    } else {
        BenchlingError::Status {
            method: call.method.to_string(),
            path: call.path(),
            status: status.as_u16(),
            message,
        }
    }
}

fn transport_failure(call: &Call<'_>, error: &reqwest::Error) -> Failure {
    let kind = if error.is_timeout() {
        TransportKind::Timeout
    } else if error.is_connect() {
        TransportKind::Connect
    } else {
        TransportKind::Other
    };
    // Timeouts, refused connections and broken connections are all worth another try.
    Failure {
        error: BenchlingError::Transport {
            method: call.method.to_string(),
            path: call.path(),
            kind,
            message: error_chain(error),
        },
        retryable: true,
        hint: None,
        rejected_token: None,
    }
}

/// The error and its sources, without the URL reqwest puts first (the message names the path).
fn error_chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    if parts.is_empty() {
        parts.push(error.to_string());
    }
    parts.join(": ")
}

/// Benchling's error text: `{"error": {"message": …}}`, or OAuth's `{"error": "…",
/// "error_description": "…"}`. Other bodies are not echoed.
async fn error_message(response: reqwest::Response) -> String {
    let Ok(bytes) = response.bytes().await else {
        return String::new();
    };
    let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
        return String::new();
    };
    let text = match body.get("error") {
        Some(Value::Object(error)) => error
            .get("message")
            .or_else(|| error.get("userMessage"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        Some(Value::String(code)) => match body.get("error_description").and_then(Value::as_str) {
            Some(description) => format!("{code}: {description}"),
            None => code.clone(),
        },
        _ => String::new(),
    };
    text.chars().take(MAX_MESSAGE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn only_https_or_loopback_http_base_urls() {
        let loopback = PlainHttpHosts::default();
        assert!(check_base_url(&url("https://acme.benchling.com"), &loopback).is_ok());
        assert!(check_base_url(&url("http://127.0.0.1:8080"), &loopback).is_ok());
        assert!(check_base_url(&url("http://[::1]:8080/"), &loopback).is_ok());
        assert!(check_base_url(&url("http://localhost:1"), &loopback).is_ok());
        for bad in [
            "http://acme.benchling.com",
            "http://10.0.0.1",
            "http://benchling-standin:8081",
            "ftp://127.0.0.1",
            "https://user:pw@acme.benchling.com",
            "https://acme.benchling.com/?x=1",
        ] {
            let err = check_base_url(&url(bad), &loopback).unwrap_err();
            assert!(
                matches!(err, BenchlingError::InvalidBaseUrl { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn plain_http_only_to_the_hosts_named() {
        let env = bw_config::Env::from_pairs([(
            "BENCHLING_ALLOW_HTTP_HOSTS",
            " Benchling-Standin , other ",
        )]);
        let hosts = PlainHttpHosts::from_env(&env);
        assert!(hosts.is_secure(&url("http://benchling-standin:8081/downloads/x.zip")));
        assert!(hosts.is_secure(&url("http://OTHER/")));
        assert!(hosts.is_secure(&url("http://127.0.0.1/")));
        for bad in [
            "http://benchling-standin.evil.com/",
            "http://10.0.0.1/",
            "ftp://benchling-standin/",
        ] {
            assert!(!hosts.is_secure(&url(bad)), "{bad}");
        }
    }

    #[test]
    fn tenants_must_be_dns_labels() {
        assert_eq!(
            tenant_url("acme").unwrap().as_str(),
            "https://acme.benchling.com/"
        );
        for bad in ["", "a.b", "evil.com/x", "a@b"] {
            assert!(tenant_url(bad).is_err(), "{bad}");
        }
    }
}
