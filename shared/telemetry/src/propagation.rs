//! W3C trace context across queue hops: the `traceparent` a producer puts on a job, and the
//! consumer span that continues that trace.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";

/// The W3C `traceparent` of the current span, or `None` outside any traced span (or before
/// [`crate::init`]).
pub fn current_traceparent() -> Option<String> {
    let mut cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        // The current span may be one the OpenTelemetry layer filters out (below INFO); the
        // context of the traced span around it is still the active one.
        cx = opentelemetry::Context::current();
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the remote span in `traceparent`. Call it before the span is
/// first entered. Malformed input is ignored (logged at debug): a job still runs without
/// its trace.
pub fn set_parent(span: &tracing::Span, traceparent: &str) {
    let cx = TraceContextPropagator::new().extract(&Traceparent(traceparent));
    if !cx.span().span_context().is_valid() {
        tracing::debug!(traceparent, "ignoring a malformed traceparent");
        return;
    }
    if let Err(error) = span.set_parent(cx) {
        tracing::debug!(%error, traceparent, "cannot continue the remote trace");
    }
}

/// The trace id (32 lowercase hex digits) of a well-formed version-00 `traceparent`.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let fields: Vec<&str> = traceparent.split('-').collect();
    let [version, trace_id, span_id, flags] = fields.as_slice() else {
        return None;
    };
    let well_formed = *version == "00"
        && is_hex_id(trace_id, 32)
        && is_hex_id(span_id, 16)
        && flags.len() == 2
        && flags.bytes().all(is_lower_hex);
    well_formed.then_some(trace_id)
}

/// Lowercase hex of the given length and not all zeros (the W3C invalid id).
fn is_hex_id(id: &str, len: usize) -> bool {
    id.len() == len && id.bytes().all(is_lower_hex) && id.bytes().any(|b| b != b'0')
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// A carrier holding just a `traceparent`, as it arrives on a job.
struct Traceparent<'a>(&'a str);

impl Extractor for Traceparent<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::reload;

    use super::*;
    use crate::LogFormat;
    use crate::filter::parse_filter;
    use crate::subscriber::layers;

    /// Runs `f` under `init`'s layer stack (logs discarded, spans not exported).
    fn traced<T>(log_level: &str, f: impl FnOnce() -> T) -> T {
        let (filter, _handle) = reload::Layer::new(parse_filter(log_level).unwrap());
        let tracer = SdkTracerProvider::builder().build().tracer("test");
        let subscriber = layers(LogFormat::Json, false, filter, tracer, std::io::sink);
        tracing::subscriber::with_default(subscriber, f)
    }

    fn span_id_of(traceparent: &str) -> &str {
        &traceparent[36..52]
    }

    #[test]
    fn consumer_span_continues_the_producer_trace() {
        let (producer, consumer) = traced("info", || {
            let producer = tracing::info_span!("enqueue").in_scope(current_traceparent);
            let producer = producer.expect("traceparent inside a span");
            let span = tracing::info_span!("handle_job");
            set_parent(&span, &producer);
            (producer, span.in_scope(current_traceparent).unwrap())
        });
        let trace_id = trace_id_of(&producer).expect("well-formed");
        assert_eq!(trace_id_of(&consumer), Some(trace_id));
        assert_ne!(span_id_of(&consumer), span_id_of(&producer));
    }

    #[test]
    fn no_traceparent_outside_spans() {
        assert_eq!(traced("info", current_traceparent), None);
    }

    #[test]
    fn spans_kept_out_of_traces_report_the_traced_span_around_them() {
        let (outer, inner) = traced("debug", || {
            let outer = tracing::info_span!("job");
            let _entered = outer.enter();
            let inner = tracing::debug_span!("detail").in_scope(current_traceparent);
            (current_traceparent(), inner)
        });
        assert!(outer.is_some());
        assert_eq!(inner, outer);
    }

    #[test]
    fn traceparent_survives_a_log_level_that_hides_the_span() {
        let traceparent = traced("error", || {
            tracing::info_span!("job").in_scope(current_traceparent)
        });
        assert!(traceparent.as_deref().and_then(trace_id_of).is_some());
    }

    #[test]
    fn bad_input_starts_a_fresh_trace_instead_of_failing() {
        let producer = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (garbage, late) = traced("info", || {
            let span = tracing::info_span!("handle_job");
            set_parent(&span, "not-a-traceparent");
            let garbage = span.in_scope(current_traceparent).unwrap();
            // Too late: the span has started, so the parent cannot change any more.
            set_parent(&span, producer);
            (garbage, span.in_scope(current_traceparent).unwrap())
        });
        assert!(trace_id_of(&garbage).is_some());
        assert_eq!(late, garbage);
    }

    #[test]
    fn remote_parent_is_kept_even_when_not_sampled() {
        let producer = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let consumer = traced("info", || {
            let span = tracing::info_span!("handle_job");
            set_parent(&span, producer);
            span.in_scope(current_traceparent)
        });
        assert_eq!(
            consumer.as_deref().and_then(trace_id_of),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }

    #[test]
    fn trace_id_of_accepts_only_well_formed_version_00() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id_of(good), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(trace_id_of(bad), None, "{bad:?}");
        }
    }
}
