//! Through the real global subscriber on a tokio runtime: a producer span's `traceparent`
//! crosses a queue hop to a consumer span, and both reach an OTLP/HTTP sink in one trace.
//! One test, because the global subscriber can be installed once per process.

use std::time::Duration;

use bw_telemetry::{
    LogFormat, TelemetryConfig, TelemetryError, current_traceparent, init, set_parent, trace_id_of,
};
use bw_testkit::otlp::{OtlpSink, SinkSpan};
use tracing::Instrument;

/// `00-<32 hex>-<16 hex>-<2 hex>`, checked without the crate's own parser.
fn assert_well_formed(traceparent: &str) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    let lengths: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    assert_eq!(lengths, [2, 32, 16, 2], "{traceparent}");
    assert!(
        parts.iter().all(|p| p
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())),
        "{traceparent}"
    );
    assert_eq!(parts[0], "00", "{traceparent}");
}

fn named<'a>(spans: &'a [SinkSpan], name: &str) -> &'a SinkSpan {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {spans:#?}"))
}

#[test]
fn traceparent_crosses_a_queue_hop_and_both_spans_are_exported() {
    let sink = OtlpSink::start();
    let config = TelemetryConfig {
        service_name: "telemetry-it".into(),
        service_version: Some("0.0.1".into()),
        log_level: Some("debug".into()),
        format: LogFormat::Json,
        otlp_endpoint: Some(sink.endpoint()),
    };
    // Current-thread, like each actix-web worker: the case where a client built or used on
    // the runtime thread would panic or deadlock.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let (producer_tp, consumer_tp) = runtime.block_on(async {
        // Services call init from inside `#[actix_web::main]` / `#[tokio::main]`.
        let telemetry = init(&config).expect("first init");
        assert!(matches!(
            init(&config),
            Err(TelemetryError::AlreadyInitialized)
        ));
        assert!(telemetry.log_level_from_env());
        telemetry.set_log_level("WARNING").unwrap();
        assert!(matches!(
            telemetry.set_log_level("loud"),
            Err(TelemetryError::InvalidLogLevel { .. })
        ));
        telemetry.set_log_level("info,bw_telemetry=debug").unwrap();

        // A oneshot channel stands in for the queue: only the traceparent string crosses it.
        let (queue_tx, queue_rx) = tokio::sync::oneshot::channel::<String>();
        let producer_tp = async {
            let traceparent = current_traceparent().expect("traceparent inside a span");
            queue_tx.send(traceparent.clone()).unwrap();
            traceparent
        }
        .instrument(tracing::info_span!("enqueue", job = "export"))
        .await;

        let consumer = tokio::spawn(async move {
            let traceparent = queue_rx.await.unwrap();
            let span = tracing::info_span!("handle_job", job = "export");
            set_parent(&span, &traceparent);
            async {
                tracing::info!("job handled");
                current_traceparent()
            }
            .instrument(span)
            .await
        });
        let consumer_tp = consumer.await.unwrap().expect("consumer traceparent");
        telemetry.shutdown();
        (producer_tp, consumer_tp)
    });

    assert_well_formed(&producer_tp);
    assert_well_formed(&consumer_tp);
    let trace_id = trace_id_of(&producer_tp).expect("producer trace id");
    assert_eq!(trace_id_of(&consumer_tp), Some(trace_id));

    // shutdown() flushed the batch, so the spans are there already; the wait only bounds a
    // slow machine.
    let spans = sink.wait_for(|s| s.len() >= 2, Duration::from_secs(10));
    let producer = named(&spans, "enqueue");
    let consumer = named(&spans, "handle_job");
    for span in [producer, consumer] {
        assert_eq!(span.service_name, "telemetry-it");
        assert_eq!(span.resource["service.version"], "0.0.1");
        assert_eq!(span.attributes["job"], "export");
        assert_eq!(span.trace_id, trace_id);
    }
    assert_eq!(producer.span_id, &producer_tp[36..52]);
    assert_eq!(producer.parent_span_id, "");
    assert_eq!(consumer.parent_span_id, producer.span_id);
    assert_eq!(consumer.span_id, &consumer_tp[36..52]);
}
