//! Typed remote procedure calls, driven by one attribute.
//!
//! Annotate an `async fn` with [`#[rpc]`](rpc): it is collected at link
//! time, its args and result get JSON Schemas, every call is validated
//! against them, and a [`Server`] serves it over HTTP and WebSocket on one
//! port.
//!
//! ```no_run
//! use rpc_runtime::{rpc, Context, JsonSchema, RpcError, Server};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize, Serialize, JsonSchema)]
//! struct LoginArgs {
//!     email: String,
//!     password: String,
//! }
//!
//! #[derive(Deserialize, Serialize, JsonSchema)]
//! struct Session {
//!     user: String,
//! }
//!
//! /// Signs a user in and returns the session.
//! #[rpc(procedure = "login", scope = "auth", version = "1")]
//! async fn login(args: LoginArgs, ctx: Context) -> Result<Session, RpcError> {
//!     let _ = ctx.identity();
//!     if args.password == "secret" {
//!         Ok(Session { user: args.email })
//!     } else {
//!         Err(RpcError::forbidden("Auth failed"))
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), rpc_runtime::Error> {
//!     Server::builder().name("gateway-1").http("127.0.0.1:9876").build()?.serve().await
//! }
//! ```
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
//! The README of the repository is the manual: the attribute's keys and
//! accepted signatures, the server's options, the wire protocol, and the
//! linker note for procedures defined in other crates;
//! `docs/ARCHITECTURE.md` maps the call pipeline.
//!
//! # Features
//!
//! - `server` (default): the registry, dispatch, HTTP and WebSocket.
//! - `broker` (default): forwarding calls between servers through RabbitMQ.
//! - `docs` (default): the generated API pages and specs.
//! - `client` (default): a typed client over HTTP and WebSocket.
//! - `rate-limit` (default): the [`RateLimit`](middleware::RateLimit)
//!   middleware, on `governor`.
//!
//! Without default features only what `#[rpc]` expands to is compiled.

#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate self as rpc_runtime;

mod call;
mod context;
mod descriptor;
mod envelope;
mod error;
mod html;
mod identity;
mod procedure;
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

pub use call::{Call, Caller, Metadata};
pub use context::Context;
pub use error::{Error, FieldError, RpcError};
pub use identity::Identity;
pub use procedure::{
    Address, NoArgs, Procedure, ProcedureSpec, RpcArgs, RpcErrorSource, RpcOutput,
};
pub use rpc_macros::rpc;
pub use schemars::JsonSchema;
pub use state::State;
pub use trace::TraceContext;

/// Middleware: tower layers around every call (see
/// [`ServerBuilder::layer`]), and the ones that ship with the framework.
#[cfg(feature = "server")]
pub mod middleware {
    pub use crate::pipeline::middleware::*;
}

#[cfg(feature = "server")]
pub use auth::Authenticator;
#[cfg(feature = "broker")]
pub use broker::{BrokerState, RemoteServer};
#[cfg(feature = "client")]
pub use client::{HttpClient, ServerMessages, WsClient, WsClientBuilder};
#[cfg(feature = "server")]
pub use events::{Event, EventKind};
#[cfg(feature = "server")]
pub use hub::{ConnectionInfo, ServerHandle};
#[cfg(feature = "server")]
pub use server::{RunningServer, Server, ServerBuilder, stop_signal};
#[cfg(feature = "server")]
pub use transport::Cors;
#[cfg(feature = "server")]
pub use transport::Mount;
