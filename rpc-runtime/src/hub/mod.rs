//! The WebSocket connections a server holds and the handle through which
//! handlers and application code reach them (pushes, closes, listings).
//! Transports add connections; the pipeline hands the handle to handlers.

pub(crate) mod connections;
mod handle;
pub(crate) mod mesh;

pub use connections::ConnectionInfo;
pub(crate) use handle::Listening;
pub use handle::ServerHandle;

/// What a handle asks of the server behind it, which it holds weakly (the
/// server owns the handle, not the reverse).
pub(crate) trait Routes: Send + Sync {
    /// Every procedure the server can route.
    fn routable(&self) -> Vec<crate::ProcedureSpec>;

    /// The server's OpenRPC document, as `rpc.discover` answers it.
    #[cfg(feature = "docs")]
    fn openrpc(&self, request: Option<(&axum::http::HeaderMap, &str)>) -> serde_json::Value;
}
