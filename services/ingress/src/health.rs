//! The probes: `/health`, `/health/live` and `/health/ready`.

use actix_web::{HttpResponse, web};
use bw_config::SecretState;
use serde_json::json;

use crate::state::{AppState, SERVICE_NAME, VERSION};

/// `GET /health`: the process is up (and whether it is degraded).
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let mut body = json!({"status": "healthy", "service": SERVICE_NAME, "version": VERSION});
    if let SecretState::Unavailable { error, .. } = state.secret.state() {
        body["mode"] = json!("degraded");
        body["warning"] = json!(error);
    }
    HttpResponse::Ok().json(body)
}

/// `GET /health/live`: the process answers.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "alive"}))
}

/// `GET /health/ready`: 200 only when the secret is loaded and both queues work, so the load
/// balancer sends webhooks only to tasks that can accept them.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let secret = match state.secret.state() {
        SecretState::Ready(_) => json!({"ok": true}),
        SecretState::Loading => json!({"ok": false, "error": "loading"}),
        SecretState::Unavailable {
            error,
            suggestion,
            attempts,
        } => {
            json!({"ok": false, "error": error, "action": suggestion, "attempts": attempts})
        }
    };
    let queues = match state.outbox.health() {
        Ok(()) => json!({"ok": true, "backend": state.outbox.backend()}),
        Err(error) => json!({"ok": false, "backend": state.outbox.backend(), "error": error}),
    };
    let ok = secret["ok"] == json!(true) && queues["ok"] == json!(true);
    let body = json!({
        "status": if ok { "ready" } else { "not ready" },
        "checks": {"config": {"ok": true}, "secret": secret, "queues": queues},
    });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
