//! One call on its way to a handler, wherever it came from.

use crate::procedure::BoxFuture;
use crate::{Address, Identity, RpcError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Instant;

/// A call: what the dispatcher routes, what event hooks see, and what
/// travels through the broker.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Call {
    /// The procedure called.
    pub address: Address,
    /// The args, `{}` when the envelope had none.
    pub args: Value,
    /// The caller's identity.
    pub identity: Option<Identity>,
    /// True only for calls made by other procedures; a gateway always
    /// forwards outside calls with `false`.
    pub internal: bool,
    /// Who made the call.
    pub caller: Caller,
    /// Shared by a call and every call it makes, for tracing.
    pub trace_id: String,
    /// When the caller stops waiting.
    pub deadline: Option<Instant>,
}

/// Who made a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Caller {
    /// A client of a gateway transport.
    #[serde(rename_all = "camelCase")]
    Client {
        /// `"http"` or `"websocket"`.
        transport: std::borrow::Cow<'static, str>,
        /// The WebSocket connection, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection_id: Option<String>,
        /// The client's IP address (`X-Real-IP` first).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<std::net::IpAddr>,
        /// The name of the gateway server.
        server: String,
    },
    /// Another procedure.
    #[serde(rename_all = "camelCase")]
    Procedure {
        /// The calling procedure.
        address: Address,
        /// The name of the server it ran on.
        server: String,
    },
    /// Code outside any server, such as a unit test.
    Detached,
}

/// Something that can run calls: a server's dispatcher.
pub(crate) trait Invoke: Send + Sync {
    fn invoke(&self, call: Call) -> BoxFuture<Result<Value, RpcError>>;

    /// The server the calls run on.
    #[cfg(feature = "server")]
    fn server(&self) -> &crate::ServerHandle;
}
