//! One trace through the mesh, as an OpenTelemetry backend sees it: a
//! client's call with a `traceparent` reaches a gateway, goes through the
//! real RabbitMQ to a handler server, whose procedure calls another; the
//! SDK's in-memory exporter must show one trace whose spans link up
//! (client, gateway, handler server, nested call), with the call's
//! attributes and no authorization anywhere.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use rpc_runtime::Server;
use rpc_tests::{Http, eventually, rabbitmq_uri};
use serde_json::{Value, json};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

mod procs {
    use rpc_runtime::{Context, RpcError, rpc};
    use serde_json::{Value, json};

    /// Calls `inner` and reports the trace it saw.
    #[rpc(procedure = "outer", scope = "otel-test", auth)]
    pub async fn outer(ctx: Context) -> Result<Value, RpcError> {
        let inner = ctx
            .call_json(
                rpc_runtime::Address::new("otel-test", "inner", "1"),
                json!({}),
            )
            .await?;
        Ok(json!({ "traceId": ctx.trace_id(), "spanId": ctx.span_id(), "inner": inner }))
    }

    /// Only other procedures call it.
    #[rpc(procedure = "inner", scope = "otel-test", internal)]
    pub async fn inner(ctx: Context) -> Value {
        json!({ "traceId": ctx.trace_id(), "spanId": ctx.span_id() })
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test]
async fn one_trace_spans_client_gateway_broker_handler_and_nested_call() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("rpc-test")));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let uri = rabbitmq_uri();
    let name = |role: &str| format!("otel-{role}-{}", std::process::id());
    let handler = Server::builder()
        .name(name("handler"))
        .broker(uri.clone())
        .host(|address| address.scope == "otel-test")
        .build()
        .expect("builds")
        .start()
        .await
        .expect("starts");
    let gateway = rpc_tests::start(
        Server::builder()
            .name(name("gateway"))
            .broker(uri)
            .host_none(),
    )
    .await;
    let http = Http::new(gateway.http_addr().expect("http"));
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let mut answered = None;
    // The gateway learns of the handler server from its announcements.
    for _ in 0..100 {
        let response = http
            .client()
            .post(format!("{}/", http.url()))
            .header("traceparent", format!("00-{client_trace}-{client_span}-01"))
            .header("tracestate", "vendor=1")
            .json(&json!({"scope": "otel-test", "procedure": "outer",
                          "identity": {"authorization": "Bearer otel-secret-token"}}))
            .send()
            .await
            .expect("answered");
        if response.status().as_u16() == 200 {
            answered = Some(response.json::<Value>().await.expect("json"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = answered.expect("the call succeeds once the gateway knows the handler server");
    let data = &body["data"];
    assert_eq!(data["traceId"], client_trace, "{body}");
    assert_eq!(data["inner"]["traceId"], client_trace, "{body}");

    let _ = provider.force_flush();
    eventually("three spans", || {
        exporter
            .get_finished_spans()
            .map(|spans| spans.len() >= 3)
            .unwrap_or(false)
    })
    .await;
    let spans = exporter.get_finished_spans().expect("spans");
    let calls: Vec<&SpanData> = spans.iter().filter(|s| s.name == "rpc.call").collect();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    for span in &calls {
        assert_eq!(span.span_context.trace_id().to_string(), client_trace);
    }
    let by_procedure = |procedure: &str| {
        calls
            .iter()
            .filter(|s| attribute(s, "rpc.procedure").as_deref() == Some(procedure))
            .collect::<Vec<_>>()
    };
    let outer = by_procedure("outer");
    assert_eq!(outer.len(), 2, "the gateway's and the handler server's");
    let gateway_span = outer
        .iter()
        .find(|s| s.parent_span_id.to_string() == client_span)
        .expect("the gateway's span is the client's child");
    let handler_span = outer
        .iter()
        .find(|s| s.parent_span_id == gateway_span.span_context.span_id())
        .expect("the handler server's span is the gateway's child");
    let inner = by_procedure("inner");
    assert_eq!(inner.len(), 1);
    assert_eq!(
        inner[0].parent_span_id,
        handler_span.span_context.span_id(),
        "the nested call is the handler's child"
    );
    assert_eq!(
        data["spanId"],
        handler_span.span_context.span_id().to_string()
    );
    assert_eq!(
        attribute(gateway_span, "rpc.transport").as_deref(),
        Some("http")
    );
    for span in &calls {
        assert_eq!(attribute(span, "rpc.scope").as_deref(), Some("otel-test"));
        assert_eq!(attribute(span, "rpc.version").as_deref(), Some("1"));
        assert_eq!(attribute(span, "rpc.code").as_deref(), Some("200"));
    }
    let everything = format!("{spans:?}");
    assert!(!everything.contains("otel-secret-token"), "{everything}");
    gateway.shutdown().await.expect("gateway stops");
    handler.shutdown().await.expect("handler stops");
}
