//! A stand-in for Benchling's JWKS endpoint (`/api/v1/apps/{app_definition_id}/jwks`) whose
//! keys can be rotated and which can be made to fail, counting the fetches it serves.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;

use crate::signer::SigningKey;
use bw_standin::stub::{StubResponse, StubServer};

#[derive(Default)]
struct State {
    keys: Vec<serde_json::Value>,
    failing: bool,
    fetches: usize,
}

/// A running JWKS stand-in.
pub struct JwksServer {
    server: StubServer,
    state: Arc<Mutex<State>>,
}

impl JwksServer {
    /// Serves `keys` for `app_definition_id`; other apps get 404.
    pub fn start(app_definition_id: &str, keys: &[&SigningKey]) -> Self {
        let state = Arc::new(Mutex::new(State {
            keys: keys.iter().map(|k| k.jwk()).collect(),
            ..State::default()
        }));
        let path = format!("/api/v1/apps/{app_definition_id}/jwks");
        let served = Arc::clone(&state);
        let server = StubServer::start(move |request| {
            if request.method != "GET" || request.path != path {
                return StubResponse::json("404 Not Found", r#"{"error":"not found"}"#);
            }
            let mut state = served.lock().unwrap_or_else(PoisonError::into_inner);
            state.fetches += 1;
            if state.failing {
                return StubResponse::json("503 Service Unavailable", r#"{"error":"down"}"#);
            }
            StubResponse::json("200 OK", json!({"keys": state.keys}).to_string())
        });
        Self { server, state }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The base URL to use as `BENCHLING_JWKS_BASE_URL`.
    pub fn base_url(&self) -> String {
        self.server.url()
    }

    /// Replaces the published keys (a rotation).
    pub fn set_keys(&self, keys: &[&SigningKey]) {
        let keys = keys.iter().map(|k| k.jwk()).collect();
        self.with_state(|s| s.keys = keys);
    }

    /// Makes every fetch answer 503 (or stop doing so).
    pub fn set_failing(&self, failing: bool) {
        self.with_state(|s| s.failing = failing);
    }

    /// How many fetches were served.
    pub fn fetches(&self) -> usize {
        self.with_state(|s| s.fetches)
    }
}
