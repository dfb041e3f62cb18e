//! The ingress's metrics and `GET /metrics`, which serves every family the process registered.

use actix_web::HttpResponse;
use bw_metrics::{Counter, Family as _, Histogram};

/// Webhooks answered, by outcome: what was done (`export_queued`, `canvas_queued`,
/// `lifecycle`, `duplicate`, `ignored`) or why the webhook was refused (the `reason` of the
/// error body, such as `invalid_signature` or `body_too_large`).
pub static WEBHOOKS: Counter = Counter::new(
    "bw_webhooks_total",
    "Webhooks answered, by outcome (what was done, or the refusal's reason).",
    &["outcome"],
);

/// How long webhooks took, from the request's arrival to its answer; most take well under a
/// millisecond, so the buckets start lower than the workers' job durations.
pub static WEBHOOK_DURATION: Histogram = Histogram::new(
    "bw_webhook_duration_seconds",
    "Time from a webhook's arrival to its answer.",
    &[],
    &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ],
);

/// Registers the ingress's families, so a scrape shows them before the first webhook.
pub fn register() {
    WEBHOOKS.register();
    WEBHOOK_DURATION.register();
}

/// `GET /metrics`: every registered family in Prometheus' text format.
pub async fn show() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(bw_metrics::CONTENT_TYPE)
        .body(bw_metrics::render())
}
