//! OpenTelemetry traces: exported over OTLP (gRPC) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and off otherwise, at no cost (no
//! layer is installed and nothing is extracted or injected).
//!
//! The spans are the `tracing` spans the service already makes, carried by
//! `tracing-opentelemetry`: one `rpc` span per call (continuing the caller's
//! trace from a W3C `traceparent` in its metadata), a `reply` span per reply
//! with its stages as children, and the provider request carrying the trace
//! onward in its own `traceparent`. Span fields are ids, names, counts and
//! codes; never message text or keys.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    global,
    propagation::{Extractor, Injector},
    trace::TracerProvider as _,
};
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::{
    Resource, propagation::TraceContextPropagator, runtime, trace::SdkTracerProvider,
    trace::span_processor_with_async_runtime::BatchSpanProcessor,
};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{Layer, filter::Targets, registry::LookupSpan};

/// The standard variable that turns exporting on.
pub const ENDPOINT_VARIABLE: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are being exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporting pipeline, kept to flush what is pending at shutdown.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Sends the spans still queued and stops exporting.
    pub async fn shutdown(self) {
        // The provider blocks until the batch task (on this runtime) is done,
        // so it waits on a blocking thread rather than on a worker.
        let provider = self.provider;
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "traces could not all be sent at shutdown"),
            Err(err) => tracing::warn!(error = %err, "the traces' shutdown failed"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("traces are off: the OTLP exporter could not be built: {0}")]
pub struct TracesError(#[from] opentelemetry_otlp::ExporterBuildError);

/// The layer that turns this crate's spans into OpenTelemetry spans, when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the exporter reads it and the other
/// standard `OTEL_*` variables itself). Must be called inside the runtime.
pub fn layer<S>() -> Result<Option<(impl Layer<S>, Traces)>, TracesError>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    if std::env::var(ENDPOINT_VARIABLE).map_or(true, |endpoint| endpoint.trim().is_empty()) {
        return Ok(None);
    }
    let exporter = SpanExporter::builder().with_tonic().build()?;
    let processor = BatchSpanProcessor::builder(exporter, runtime::Tokio).build();
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(env!("CARGO_PKG_NAME"));
    }
    let provider = SdkTracerProvider::builder().with_span_processor(processor).with_resource(resource.build()).build();
    let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
    global::set_text_map_propagator(TraceContextPropagator::new());
    ENABLED.store(true, Ordering::Relaxed);
    // Only the service's own spans: the transport's (h2, hyper, tonic) would
    // be many per call and say nothing about the service.
    let own_spans = Targets::new().with_target(env!("CARGO_CRATE_NAME"), tracing::Level::INFO);
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(own_spans);
    Ok(Some((layer, Traces { provider })))
}

/// Makes `span` continue the trace named by a W3C `traceparent` in
/// `headers` (a call's gRPC metadata), if there is one.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    if !enabled() {
        return;
    }
    let parent = global::get_text_map_propagator(|propagator| propagator.extract(&Headers(headers)));
    if let Err(err) = span.set_parent(parent) {
        tracing::debug!(error = %err, "the incoming trace context could not be used");
    }
}

/// Adds the current span's `traceparent` to an outgoing request's headers.
pub fn inject_current(headers: &mut HeaderMap) {
    if !enabled() {
        return;
    }
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut HeadersMut(headers)));
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(key), HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}
