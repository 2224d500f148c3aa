//! Typed remote procedure calls, driven by one attribute.
//!
//! (The manual is written at the end of this file's module docs.)

#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate self as rpc_runtime;

mod call;
mod context;
mod envelope;
mod error;
mod identity;
mod procedure;

#[cfg(feature = "server")]
mod auth;
#[cfg(feature = "server")]
mod dispatch;
#[cfg(feature = "server")]
mod events;
#[cfg(feature = "server")]
mod registry;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
mod transport;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use call::{Call, Caller};
pub use context::Context;
pub use error::{Error, FieldError, RpcError};
pub use identity::Identity;
pub use procedure::{Address, NoArgs, Procedure, ProcedureSpec, RpcArgs, RpcOutput};
pub use rpc_macros::rpc;
pub use schemars::JsonSchema;

#[cfg(feature = "server")]
pub use auth::Authenticator;
#[cfg(feature = "server")]
pub use events::{Event, EventKind};
#[cfg(feature = "server")]
pub use server::{Cors, RunningServer, Server, ServerBuilder, ServerHandle};
