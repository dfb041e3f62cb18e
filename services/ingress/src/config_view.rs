//! The `/config` endpoint: the running configuration as an operator may see it, masked. The
//! typed configuration itself is [`crate::config`].

use actix_web::{HttpResponse, web};
use bw_benchling::webhook::TIMESTAMP_TOLERANCE;
use bw_config::SecretState;
use bw_config::mask::{mask_arn, mask_url};
use serde_json::{Value, json};

use crate::queues::Queues;
use crate::replay::REPLAY_WINDOW;
use crate::state::{AppState, MAX_BODY_BYTES, SERVICE_NAME, VERSION};

/// `GET /config`: what the service runs with. Every ARN, account id and URL credential is
/// masked; Benchling credentials are never shown.
pub async fn show(state: web::Data<AppState>) -> HttpResponse {
    let config = &state.config;
    let secret_state = state.secret.state();
    let secret = match &secret_state {
        SecretState::Ready(secret) => Some(secret.clone()),
        _ => None,
    };
    let queue_urls: serde_json::Map<String, Value> = Queues::NAMES
        .iter()
        .map(|queue| {
            let shown = config
                .queues
                .url(*queue)
                .map_or_else(|| queue.name.to_owned(), mask_url);
            (
                queue.name.trim_end_matches(".fifo").to_owned(),
                json!(shown),
            )
        })
        .collect();
    let benchling = match &secret_state {
        SecretState::Ready(s) => json!({
            "secret_state": "ready",
            "tenant": s.tenant,
            "app_definition_id": s.app_definition_id.as_str(),
        }),
        SecretState::Loading => json!({"secret_state": "loading"}),
        SecretState::Unavailable { error, .. } => {
            json!({"secret_state": "unavailable", "error": error})
        }
    };
    let parameters = secret.as_ref().map_or(Value::Null, |s| {
        json!({
            "pkg_prefix": s.pkg_prefix,
            "pkg_key": s.pkg_key,
            "user_bucket": s.user_bucket,
            "log_level": s.log_level,
            "workflow": s.workflow,
        })
    });
    let body = json!({
        "service": SERVICE_NAME,
        "version": VERSION,
        "mode": if secret.is_some() { "normal" } else { "degraded" },
        "aws": {
            "region": config.display.aws_region,
            "quilt_stack_arn": config.display.quilt_stack_arn.as_deref().map(mask_arn),
            "benchling_secret": config.secret.as_ref().map(|s| s.masked()),
        },
        "security": {
            "webhook_verification_enabled": secret.as_ref().is_some_and(|s| state.verification_enabled(s)),
            "verification_allowed_by_env": config.verification_allowed,
            "jwks_base_url": mask_url(&config.jwks.base_url),
            "jwks_cache_ttl_secs": config.jwks.ttl.as_secs(),
            "timestamp_tolerance_secs": TIMESTAMP_TOLERANCE.as_secs(),
            "replay_window_secs": REPLAY_WINDOW.as_secs(),
            "max_body_bytes": MAX_BODY_BYTES,
        },
        "queues": {"backend": state.outbox.backend(), "urls": queue_urls},
        "quilt": {
            "catalog": config.display.quilt_web_host,
            "database": config.display.athena_database,
            "bucket": secret.as_ref().map(|s| s.user_bucket.clone()),
            "packager_queue_url": config.display.packager_queue_url.as_deref().map(mask_url),
        },
        "benchling": benchling,
        "parameters": parameters,
        "lifecycle": state.lifecycle.snapshot(),
    });
    HttpResponse::Ok().json(body)
}
