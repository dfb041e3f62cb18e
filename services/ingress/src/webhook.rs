//! The webhook endpoints: verify the signature on the raw bytes, drop replays, parse, route,
//! and answer only once the job is stored in its queue. Nothing here calls Benchling, S3 or
//! Athena; the only outbound call is the (cached) JWKS fetch.

use std::time::{Instant, SystemTime};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bw_benchling::SignedRequest;
use bw_config::SecretState;
use bw_contracts::{EventType, Webhook, WebhookId};
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use serde_json::json;
use tracing::{Instrument as _, field};

use crate::dispatch::{Delivery, Disposition, dispatch};
use crate::error::ApiError;
use crate::metrics::{WEBHOOK_DURATION, WEBHOOKS};
use crate::outbox::Senders;
use crate::replay::Claim;
use crate::state::{AppState, MAX_BODY_BYTES};

/// `POST /event`, `/canvas`, `/lifecycle`, `/` and their `/{stage}/…` forms.
pub async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    senders: web::Data<Senders>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "webhook",
        path = %req.path(),
        webhook_id = field::Empty,
        event_type = field::Empty,
        entry_id = field::Empty,
        canvas_id = field::Empty,
    );
    let result = handle(&req, payload, &state, &senders)
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    let elapsed = started.elapsed();
    let elapsed_us = elapsed.as_micros() as u64;
    WEBHOOK_DURATION.observe(&[], elapsed.as_secs_f64());
    WEBHOOKS.inc(&[match &result {
        Ok((_, outcome)) => *outcome,
        Err(e) => e.reason(),
    }]);
    match &result {
        Ok((response, outcome)) => {
            tracing::info!(
                status = response.status().as_u16(),
                outcome,
                duration_us = elapsed_us,
                "webhook handled"
            );
        }
        Err(e) => {
            let status = actix_web::ResponseError::status_code(e).as_u16();
            if status >= 500 {
                tracing::warn!(status, error = %e, duration_us = elapsed_us, "webhook not accepted");
            } else {
                tracing::info!(status, error = %e, duration_us = elapsed_us, "webhook refused");
            }
        }
    }
    result.map(|(response, _)| response)
}

async fn handle(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    senders: &Senders,
) -> Result<(HttpResponse, &'static str), ApiError> {
    // Degraded until the secret is loaded: without it there is no app to verify against.
    let secret = match state.secret.state() {
        SecretState::Ready(secret) => secret,
        SecretState::Loading => {
            return Err(ApiError::SecretUnavailable {
                message: "the Benchling secret is still loading".into(),
                action: "Retry shortly.",
            });
        }
        SecretState::Unavailable {
            error, suggestion, ..
        } => {
            return Err(ApiError::SecretUnavailable {
                message: error,
                action: suggestion,
            });
        }
    };
    let body = read_body(req, payload).await?;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let received_at = SystemTime::now();
    let (webhook_id, timestamp) = if state.verification_enabled(&secret) {
        let signed = SignedRequest::from_headers(
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            &body,
        )?;
        state
            .verifier
            .verify(&secret.app_definition_id, &signed, received_at)
            .await?;
        (Some(signed.id), Some(signed.unix_timestamp()?))
    } else {
        let timestamp = header("webhook-timestamp").and_then(|t| t.trim().parse().ok());
        (header("webhook-id"), timestamp)
    };
    let webhook_id = webhook_id
        .map(|raw| WebhookId::parse(raw).map_err(|_| ApiError::InvalidHeader("webhook-id")))
        .transpose()?;
    let span = tracing::Span::current();
    if let Some(id) = &webhook_id {
        span.record("webhook_id", id.as_str());
    }

    let claim = match &webhook_id {
        None => None,
        Some(id) => match state.replay.claim(id) {
            Claim::New(token) => Some(token),
            Claim::Accepted => {
                let body =
                    json!({"status": "duplicate", "message": "this webhook was already accepted"});
                return Ok((HttpResponse::Ok().json(body), "duplicate"));
            }
            Claim::InFlight => return Err(ApiError::DuplicateInFlight),
        },
    };

    let webhook = Webhook::from_slice(&body)?;
    span.record("event_type", webhook.message.event_type().as_str());
    let delivery = Delivery {
        webhook_id,
        timestamp: timestamp
            .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
            .unwrap_or_else(|| received_at.into()),
    };
    let answer = act(dispatch(webhook, &delivery), &delivery, state, senders).await?;
    if let Some(token) = claim {
        token.accept();
    }
    Ok(answer)
}

async fn act(
    disposition: Disposition,
    delivery: &Delivery,
    state: &AppState,
    senders: &Senders,
) -> Result<(HttpResponse, &'static str), ApiError> {
    let span = tracing::Span::current();
    let queued = |result: Result<String, bw_queue::QueueError>| {
        result.map_err(|e| {
            tracing::error!(error = %e, "could not queue job");
            ApiError::QueueUnavailable
        })
    };
    Ok(match disposition {
        Disposition::Export(job) => {
            span.record("entry_id", job.entry_id.as_str());
            let entry_id = job.entry_id.to_string();
            let message_id = queued(senders.export(job).await)?;
            let body = json!({"status": "ACCEPTED", "job": "export", "entry_id": entry_id, "message_id": message_id});
            (HttpResponse::Accepted().json(body), "export_queued")
        }
        Disposition::Canvas(job) => {
            if let Some(canvas) = &job.canvas_id {
                span.record("canvas_id", canvas.as_str());
            }
            if let Some(entry) = &job.entry_id {
                span.record("entry_id", entry.as_str());
            }
            let canvas_id = job.canvas_id.as_ref().map(ToString::to_string);
            let message_id = queued(senders.canvas(job).await)?;
            let body = json!({"status": "ACCEPTED", "job": "canvas", "canvas_id": canvas_id, "message_id": message_id});
            (HttpResponse::Accepted().json(body), "canvas_queued")
        }
        Disposition::Lifecycle { event, canvas } => {
            let queued_canvas = match canvas {
                Some(job) => Some(queued(senders.canvas(job).await)?),
                None => None,
            };
            state.lifecycle.record(
                &event,
                delivery.timestamp,
                delivery.webhook_id.as_ref().map(WebhookId::as_str),
            );
            let (status, message) = lifecycle_message(&event);
            let mut body = json!({"status": status, "message": message});
            if let Some(message_id) = queued_canvas {
                body["job"] = json!("canvas");
                body["message_id"] = json!(message_id);
            }
            (HttpResponse::Ok().json(body), "lifecycle")
        }
        Disposition::Ignored { event, reason } => {
            // Says which event or button was not ours; the outcome line alone would not.
            tracing::info!(event_type = event.as_str(), reason = %reason, "webhook ignored");
            let body =
                json!({"status": "ignored", "event_type": event.as_str(), "message": reason});
            (HttpResponse::build(StatusCode::OK).json(body), "ignored")
        }
    })
}

/// Upstream's answers, kept for operators who grep for them.
fn lifecycle_message(event: &EventType) -> (&'static str, &'static str) {
    match event {
        EventType::AppInstalled => ("success", "App installed successfully"),
        EventType::AppActivateRequested => ("activated", "App activated successfully"),
        EventType::AppDeactivated => ("success", "App deactivated successfully"),
        _ => ("success", "Configuration updated successfully"),
    }
}

/// Reads the body, refusing more than [`MAX_BODY_BYTES`] before and while reading it.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<web::BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(4096));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BodyRead(e.to_string()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
