#![doc = include_str!("../../README.md")]
//!
//! # State, errors, middleware, mounting
//!
//! A procedure asks for application state by type ([`State`]), uses `?` on
//! any error (it answers 500 and is logged with its cause; [`RpcError`]
//! chooses another code), reads its request through [`Context`]; the
//! server takes tower layers as [`middleware`] and mounts in an axum app:
//!
//! ```no_run
//! use rpc_runtime::middleware::{from_fn, CallService, Quota, RateLimit};
//! use rpc_runtime::{rpc, Call, Context, JsonSchema, Server, State};
//! use serde::{Deserialize, Serialize};
//! use std::num::NonZeroU32;
//! use tower::ServiceExt;
//!
//! #[derive(Clone)]
//! struct Db(std::sync::Arc<std::collections::HashMap<u64, String>>);
//!
//! #[derive(Deserialize, Serialize, JsonSchema)]
//! struct GetUser {
//!     id: u64,
//! }
//!
//! /// Fetches a user's name.
//! #[rpc(procedure = "get-user", scope = "users")]
//! async fn get_user(args: GetUser, State(db): State<Db>, ctx: Context) -> anyhow::Result<String> {
//!     let _request_id = ctx.headers().get("x-request-id");
//!     let name = db.0.get(&args.id).ok_or_else(|| anyhow::anyhow!("no user {}", args.id))?;
//!     Ok(name.clone())
//! }
//!
//! # async fn run() -> Result<(), rpc_runtime::Error> {
//! let audit = from_fn(|call: Call, next: CallService| async move {
//!     let address = call.address.clone();
//!     let answer = next.oneshot(call).await;
//!     tracing::info!(%address, ok = answer.is_ok(), "audited");
//!     answer
//! });
//! let rpc = Server::builder()
//!     .state(Db(Default::default()))
//!     .layer(RateLimit::per_user(Quota::per_second(NonZeroU32::new(20).unwrap())))
//!     .layer(audit)
//!     .build()?
//!     .start()
//!     .await?;
//! // Mounted under /rpc in the application's own router.
//! let app = axum::Router::new().nest("/rpc", rpc.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
//!     .with_graceful_shutdown(rpc_runtime::stop_signal())
//!     .await?;
//! rpc.shutdown().await
//! # }
//! ```
//!
//! # Cargo features
//!
//! - `server` (default): the registry, dispatch, HTTP and WebSocket.
//! - `broker` (default): forwarding calls between servers through RabbitMQ.
//! - `docs` (default): the generated API pages and specs.
//! - `client` (default): a typed client over HTTP and WebSocket.
//! - `rate-limit` (default): the [`RateLimit`](middleware::RateLimit)
//!   middleware, on `governor`.
//! - `otel`: calls' spans continue W3C traces in OpenTelemetry, through
//!   `tracing-opentelemetry`.
//!
//! Without default features only what `#[rpc]` expands to is compiled.

#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate self as rpc_runtime;

mod args;
mod call;
mod context;
mod data;
mod decode;
mod descriptor;
mod envelope;
mod error;
mod html;
mod identity;
mod json;
mod procedure;
mod reader;
mod state;
mod trace;

#[cfg(feature = "server")]
mod auth;
#[cfg(feature = "docs")]
mod docs;
#[cfg(feature = "server")]
mod events;
#[cfg(feature = "server")]
mod hub;
#[cfg(feature = "server")]
mod jsonrpc;
#[cfg(feature = "server")]
mod pipeline;
#[cfg(feature = "server")]
mod registry;
#[cfg(feature = "server")]
mod schema;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
mod telemetry;
#[cfg(feature = "server")]
mod transport;

#[cfg(feature = "broker")]
mod broker;
#[cfg(feature = "client")]
mod client;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// Entry points for the fuzz targets in `fuzz/`; not a public API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz {
    use crate::decode::decoders::any_json;

    /// Reads `bytes` as an envelope (a call, and a WebSocket frame), and
    /// writes the response a server would answer. The common call shape,
    /// read straight from the bytes (its args skimmed, and decoded into a
    /// `Value` as a procedure's type would be), must agree with the
    /// general reading.
    pub fn envelope(bytes: &[u8]) {
        use crate::envelope;
        let shared = bytes::Bytes::copy_from_slice(bytes);
        let skimmed = envelope::parse_common_call(&shared, |_| None);
        let decoded = envelope::parse_common_call(&shared, |_| Some(any_json));
        let object = match envelope::parse_json(bytes).and_then(envelope::object) {
            Ok(object) => object,
            Err(malformed) => {
                let common = skimmed.is_some() || decoded.is_some();
                assert!(!common, "read as a call: {malformed:?}");
                let _ = envelope::encode_response(&Err(malformed.error), None);
                return;
            }
        };
        let _ = envelope::parse_frame(object.clone());
        match envelope::parse_call(object) {
            Ok(call) => {
                for common in [skimmed, decoded].iter().flatten() {
                    envelope::assert_same(common, &call);
                }
                // The args as data, as text and as a value.
                let value = call.args.into_value();
                let text = crate::Data::encode(&value).expect("a value serializes");
                for data in [text, crate::Data::from(value)] {
                    let _ = envelope::encode_response_text(&Ok(data), call.correlation_id.as_ref());
                }
            }
            Err(malformed) => {
                let common = skimmed.is_some() || decoded.is_some();
                assert!(!common, "read as a call: {malformed:?}");
                let _ = envelope::encode_response(
                    &Err(malformed.error),
                    malformed.correlation_id.as_ref(),
                );
            }
        }
    }

    /// Reads `bytes` as a JSON-RPC request or batch, and writes the
    /// responses a server would answer (each request failing).
    pub fn jsonrpc(bytes: &[u8]) {
        use crate::jsonrpc::{self, Incoming};
        // The common shape, read straight from the bytes, must agree with
        // the general reading.
        let shared = bytes::Bytes::copy_from_slice(bytes);
        let parts = |request: jsonrpc::Request| {
            let parts = (request.id, request.method, request.args.into_value());
            (parts, request.traceparent, request.tracestate)
        };
        // The params skimmed, and decoded into a `Value` as a procedure's
        // type would be: the two readings agree.
        let common = jsonrpc::parse_common_request(&shared, |_| None).map(parts);
        let decoded = jsonrpc::parse_common_request(&shared, |_| Some(any_json)).map(parts);
        assert_eq!(common, decoded);
        let value = match crate::envelope::parse_json(bytes) {
            Ok(value) => value,
            Err(_) => {
                assert!(common.is_none(), "read as a request: {common:?}");
                let _ = jsonrpc::looks_like(bytes);
                return;
            }
        };
        if !jsonrpc::is_jsonrpc(&value) {
            assert!(common.is_none(), "read as a request: {common:?}");
            return;
        }
        if let Some(common) = common {
            match jsonrpc::parse(value.clone(), jsonrpc::MAX_BATCH) {
                Ok(Incoming::Single(Ok(request))) => assert_eq!(
                    common,
                    (
                        (request.id, request.method, request.args.into_value()),
                        request.traceparent,
                        request.tracestate
                    )
                ),
                _ => panic!("read as a request, refused the general way: {common:?}"),
            }
        }
        let failed = crate::RpcError::invalid_args(Vec::new());
        let answer = |request: Result<jsonrpc::Request, jsonrpc::Refused>| match request {
            Ok(request) => {
                let _ = jsonrpc::address(&request.method, |_| false);
                let mut out = Vec::new();
                if let Some(id) = &request.id {
                    jsonrpc::write_response(&mut out, id, &Err(failed.clone()));
                }
                out
            }
            Err(refused) => jsonrpc::write_refused(&refused),
        };
        match jsonrpc::parse(value, jsonrpc::MAX_BATCH) {
            Ok(Incoming::Single(request)) => {
                let _ = answer(request);
            }
            Ok(Incoming::Batch(items)) => {
                let answers: Vec<Vec<u8>> = items.into_iter().map(answer).collect();
                let _ = jsonrpc::write_batch(&answers);
            }
            Err(refused) => {
                let _ = jsonrpc::write_refused(&refused);
            }
        }
    }
}

pub use args::Args;
pub use call::{Call, Caller, Metadata};
pub use context::Context;
pub use data::Data;
pub use error::{Error, FieldError, RpcError};
pub use identity::Identity;
pub use procedure::{
    Address, NoArgs, Procedure, ProcedureSpec, RpcArgs, RpcErrorSource, RpcOutput,
};
pub use rpc_macros::rpc;
pub use schemars::JsonSchema;
pub use state::State;
pub use trace::{SpanId, TraceContext, TraceId};

/// Middleware: tower layers around every call (see
/// [`ServerBuilder::layer`]), and the ones that ship with the framework.
#[cfg(feature = "server")]
pub mod middleware {
    pub use crate::pipeline::middleware::*;
}

#[cfg(feature = "server")]
pub use auth::Authenticator;
#[cfg(feature = "broker")]
pub use broker::{BrokerState, BrokerTls, RemoteServer};
#[cfg(feature = "client")]
pub use client::{HttpClient, ServerMessages, WsClient, WsClientBuilder};
#[cfg(feature = "server")]
pub use events::{Event, EventKind};
#[cfg(feature = "server")]
pub use hub::mesh::{MeshEvent, MeshEventKind};
#[cfg(feature = "server")]
pub use hub::{ConnectionInfo, ServerHandle};
#[cfg(feature = "server")]
pub use server::{RunningServer, Server, ServerBuilder, stop_signal};
#[cfg(feature = "server")]
pub use transport::Cors;
#[cfg(feature = "server")]
pub use transport::Mount;
