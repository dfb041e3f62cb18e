//! Every error the ingress answers with, as JSON. Bodies never carry secrets, signatures or
//! internal error text beyond a short reason.

use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use bw_benchling::VerifyError;
use bw_contracts::PayloadError;
use serde_json::json;

use crate::state::MAX_BODY_BYTES;

/// A request the ingress refuses or cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such endpoint.
    #[error("endpoint not found")]
    NotFound,
    /// The endpoint exists, with other methods.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// The body is over [`MAX_BODY_BYTES`].
    #[error("request body exceeds {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    /// The body could not be read from the connection.
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// The signature check failed (403), or could not run (503).
    #[error(transparent)]
    Unverified(#[from] VerifyError),
    /// A webhook header is present but unusable.
    #[error("invalid header {0}")]
    InvalidHeader(&'static str),
    /// The body is not a usable webhook.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The Benchling secret is not loaded yet: the service is degraded.
    #[error("{message}")]
    SecretUnavailable {
        /// Why.
        message: String,
        /// What the operator should do.
        action: &'static str,
    },
    /// The same `webhook-id` is being processed by another request.
    #[error("this webhook is already being processed; retry shortly")]
    DuplicateInFlight,
    /// The job could not be stored; the sender should retry.
    #[error("could not queue the job; retry later")]
    QueueUnavailable,
}

impl ApiError {
    /// The short reason the error body carries (and the metrics count), such as
    /// `invalid_signature`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::PayloadTooLarge => "body_too_large",
            Self::BodyRead(_) => "body_unreadable",
            Self::Unverified(e) => e.reason(),
            Self::InvalidHeader(_) => "invalid_headers",
            Self::Payload(e) => e.reason(),
            Self::SecretUnavailable { .. } => "benchling_secret_unavailable",
            Self::DuplicateInFlight => "duplicate_in_flight",
            Self::QueueUnavailable => "queue_unavailable",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyRead(_) | Self::InvalidHeader(_) | Self::Payload(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Unverified(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unverified(_) => StatusCode::FORBIDDEN,
            Self::SecretUnavailable { .. } | Self::DuplicateInFlight | Self::QueueUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut response = HttpResponse::build(status);
        let body = match self {
            Self::NotFound => json!({"error": "Endpoint not found"}),
            Self::MethodNotAllowed(allow) => {
                response.insert_header((ALLOW, *allow));
                json!({"error": "Method Not Allowed"})
            }
            Self::SecretUnavailable { message, action } => {
                response.insert_header((RETRY_AFTER, "30"));
                json!({"error": "Service unavailable", "reason": self.reason(), "message": message, "action": action})
            }
            _ => {
                let error = match status {
                    StatusCode::FORBIDDEN => "Forbidden",
                    StatusCode::PAYLOAD_TOO_LARGE => "Payload too large",
                    StatusCode::SERVICE_UNAVAILABLE => {
                        response.insert_header((RETRY_AFTER, "5"));
                        "Service unavailable"
                    }
                    _ => "Invalid request",
                };
                json!({"error": error, "reason": self.reason(), "message": self.to_string()})
            }
        };
        response.json(body)
    }
}
