//! The `otel` feature: a call's span continues the trace it came with in
//! OpenTelemetry (through `tracing-opentelemetry`), so that a handler's
//! span is a child of the gateway's and nested calls are children of
//! their caller in any OpenTelemetry backend.

use crate::Call;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Sets the span's parent from the call's trace context, then takes the
/// span's OpenTelemetry ids as the call's (when a layer gives it some).
pub(super) fn link(span: &tracing::Span, call: &mut Call) {
    if let (Some(parent), Ok(trace_id)) =
        (call.trace.parent_span_id, TraceId::from_hex(&call.trace_id))
        && let Ok(span_id) = SpanId::from_hex(&parent)
    {
        let flags = if call.trace.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let state = call
            .trace
            .state
            .as_deref()
            .and_then(|state| state.parse::<TraceState>().ok())
            .unwrap_or_default();
        let remote = SpanContext::new(trace_id, span_id, flags, true, state);
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    let context = span.context();
    let own = context.span().span_context().clone();
    if own.is_valid() {
        // OpenTelemetry's valid ids are well-formed W3C ids.
        if let (Some(trace_id), Some(span_id)) = (
            crate::TraceId::parse(&own.trace_id().to_string()),
            crate::SpanId::parse(&own.span_id().to_string()),
        ) {
            call.trace_id = trace_id;
            call.span_id = Some(span_id);
        }
    }
}
