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
//! The README of the repository is the manual: the attribute's keys and
//! accepted signatures, the server's options, the wire protocol, and the
//! linker note for procedures defined in other crates.
//!
//! # Features
//!
//! - `server` (default): the registry, dispatch, HTTP and WebSocket.
//! - `broker` (default): forwarding calls between servers through RabbitMQ.
//! - `docs` (default): the generated API pages and specs.
//! - `client` (default): a typed client over HTTP and WebSocket.
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
