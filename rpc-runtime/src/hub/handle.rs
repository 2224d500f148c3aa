//! A cheap, cloneable handle on a running server, for handlers (through
//! `Context::server`) and for code outside the server.

use crate::hub::connections::{ConnectionInfo, Hub, close_code};
use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// A handle on a server.
#[derive(Clone)]
pub struct ServerHandle {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    http_addr: std::sync::OnceLock<std::net::SocketAddr>,
    routes: std::sync::OnceLock<std::sync::Weak<dyn super::Routes>>,
    name: String,
    instance_id: String,
    started: Instant,
    started_at: SystemTime,
    counters: Arc<crate::telemetry::Counters>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("name", &self.inner.name)
            .field("instance_id", &self.inner.instance_id)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    pub(crate) fn new(name: String, counters: Arc<crate::telemetry::Counters>) -> Self {
        ServerHandle {
            inner: Arc::new(Inner {
                hub: Hub::default(),
                http_addr: std::sync::OnceLock::new(),
                routes: std::sync::OnceLock::new(),
                name,
                instance_id: uuid::Uuid::new_v4().to_string(),
                started: Instant::now(),
                started_at: SystemTime::now(),
                counters,
            }),
        }
    }

    /// The server's display name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// A unique id of this server process.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// How long the server has existed.
    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }

    /// When the server was built.
    pub fn started_at(&self) -> SystemTime {
        self.inner.started_at
    }

    pub(crate) fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub(crate) fn attach(&self, routes: std::sync::Weak<dyn super::Routes>) {
        let _ = self.inner.routes.set(routes);
    }

    fn routes(&self) -> Option<std::sync::Arc<dyn super::Routes>> {
        self.inner.routes.get().and_then(std::sync::Weak::upgrade)
    }

    pub(crate) fn set_http_addr(&self, addr: std::net::SocketAddr) {
        let _ = self.inner.http_addr.set(addr);
    }

    /// The bound HTTP address, once the server has started.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.http_addr.get().copied()
    }

    /// Every procedure the server can route: its own and, with a broker,
    /// those other servers announce.
    pub fn procedures(&self) -> Vec<crate::ProcedureSpec> {
        self.routes()
            .map(|routes| routes.routable())
            .unwrap_or_default()
    }

    /// The server's OpenRPC document, as `rpc.discover` answers it.
    #[cfg(feature = "docs")]
    pub fn openrpc(&self) -> Option<serde_json::Value> {
        self.openrpc_for(None)
    }

    /// The TypeScript client of the procedures this server can route (its
    /// own and those other servers announced), as served at `/client.ts`:
    /// write it to a file in a build step, for instance.
    #[cfg(feature = "docs")]
    pub fn typescript_client(&self) -> String {
        crate::docs::typescript_client(self.name(), self.procedures())
    }

    /// The OpenRPC document as seen by a request (its headers, and the
    /// prefix the router is mounted under), which gives `servers`.
    #[cfg(feature = "docs")]
    pub(crate) fn openrpc_for(
        &self,
        request: Option<(&axum::http::HeaderMap, &str)>,
    ) -> Option<serde_json::Value> {
        self.routes().map(|routes| routes.openrpc(request))
    }

    /// Pushes `{"serverMessage": message}` to one connection; false if it
    /// is gone (or too far behind in reading, in which case it is closed).
    pub fn send_to_connection(&self, connection_id: &str, message: impl Serialize) -> bool {
        let sent = match (self.inner.hub.get(connection_id), push_frame(&message)) {
            (Some(connection), Some(frame)) => connection.push(frame),
            _ => false,
        };
        self.count_pushes(usize::from(sent), usize::from(!sent));
        sent
    }

    fn count_pushes(&self, sent: usize, dropped: usize) {
        use std::sync::atomic::Ordering;
        let counters = &self.inner.counters;
        counters
            .pushes_sent
            .fetch_add(sent as u64, Ordering::Relaxed);
        counters
            .pushes_dropped
            .fetch_add(dropped as u64, Ordering::Relaxed);
    }

    /// Pushes a server message to every connection of a user; returns how
    /// many it was queued on.
    pub fn send_to_user(&self, user_id: &str, message: impl Serialize) -> usize {
        self.send_to_users([user_id], message)
    }

    /// Pushes a server message to every connection of these users.
    pub fn send_to_users<'a>(
        &self,
        user_ids: impl IntoIterator<Item = &'a str>,
        message: impl Serialize,
    ) -> usize {
        let Some(frame) = push_frame(&message) else {
            return 0;
        };
        let connections = self.inner.hub.of_users(user_ids);
        let sent = connections.iter().filter(|c| c.push(frame.clone())).count();
        self.count_pushes(sent, connections.len() - sent);
        sent
    }

    /// Pushes a server message to every connection.
    pub fn broadcast(&self, message: impl Serialize) -> usize {
        let Some(frame) = push_frame(&message) else {
            return 0;
        };
        let connections = self.inner.hub.all();
        let sent = connections.iter().filter(|c| c.push(frame.clone())).count();
        self.count_pushes(sent, connections.len() - sent);
        sent
    }

    /// Closes one connection (close code 1000); false if it is gone.
    pub fn close_connection(&self, connection_id: &str) -> bool {
        self.inner
            .hub
            .get(connection_id)
            .map(|c| c.request_close(close_code::NORMAL))
            .is_some()
    }

    /// Closes every connection of a user; returns how many.
    pub fn close_user(&self, user_id: &str) -> usize {
        let connections = self.inner.hub.of_users([user_id]);
        connections
            .iter()
            .for_each(|c| c.request_close(close_code::NORMAL));
        connections.len()
    }

    /// Closes every connection; returns how many.
    pub fn close_all(&self) -> usize {
        let connections = self.inner.hub.all();
        connections
            .iter()
            .for_each(|c| c.request_close(close_code::GOING_AWAY));
        connections.len()
    }

    /// At shutdown: closes every connection, and any that opens from now
    /// on, with close code 1001 once the calls in flight on it are
    /// answered.
    pub(crate) fn go_away(&self) {
        self.inner.hub.go_away();
    }

    /// Resolves once no connection is left.
    pub(crate) async fn connections_gone(&self) {
        self.inner.hub.emptied().await;
    }

    /// How many WebSocket connections are open.
    pub fn connection_count(&self) -> usize {
        self.inner.hub.len()
    }

    /// Every open connection.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.inner.hub.all().iter().map(|c| c.info()).collect()
    }

    /// One connection, if it is open.
    pub fn connection(&self, connection_id: &str) -> Option<ConnectionInfo> {
        self.inner.hub.get(connection_id).map(|c| c.info())
    }
}

/// Encodes a push once, to be shared by every connection it goes to.
fn push_frame(message: &impl Serialize) -> Option<Utf8Bytes> {
    #[derive(Serialize)]
    struct Push<'a, T> {
        #[serde(rename = "serverMessage")]
        server_message: &'a T,
    }
    serde_json::to_string(&Push {
        server_message: message,
    })
    .ok()
    .map(Utf8Bytes::from)
}
