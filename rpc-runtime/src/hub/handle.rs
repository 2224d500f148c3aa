//! A cheap, cloneable handle on a running server, for handlers (through
//! `Context::server`) and for code outside the server.

use crate::hub::connections::{Connection, ConnectionInfo, Hub, close_code};
use crate::hub::mesh::{Action, Mesh, MeshEvent, Order, Target};
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
    mesh: std::sync::OnceLock<std::sync::Weak<dyn Mesh>>,
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
                mesh: std::sync::OnceLock::new(),
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

    #[cfg_attr(not(feature = "broker"), allow(dead_code, reason = "the broker's"))]
    pub(crate) fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub(crate) fn attach(&self, routes: std::sync::Weak<dyn super::Routes>) {
        let _ = self.inner.routes.set(routes);
    }

    /// Pushes and closes reach the other servers' connections from now on.
    #[cfg_attr(not(feature = "broker"), allow(dead_code, reason = "the broker's"))]
    pub(crate) fn attach_mesh(&self, mesh: std::sync::Weak<dyn Mesh>) {
        let _ = self.inner.mesh.set(mesh);
    }

    fn mesh(&self) -> Option<Arc<dyn Mesh>> {
        self.inner.mesh.get().and_then(std::sync::Weak::upgrade)
    }

    fn publish(&self, target: Target, action: Action) {
        if let Some(mesh) = self.mesh() {
            mesh.publish(Order {
                origin: self.inner.instance_id.clone(),
                target,
                action,
            });
        }
    }

    fn listen(&self, keys: Vec<(String, bool)>) -> Listening {
        let (done, listened) = tokio::sync::oneshot::channel();
        match self.mesh() {
            Some(mesh) if !keys.is_empty() => {
                mesh.listen(keys, done);
                Listening(Some(listened))
            }
            _ => Listening(None),
        }
    }

    /// Lists a connection (a transport's, while it is open); what it
    /// returns resolves once pushes to it from other servers arrive.
    pub(crate) fn add_connection(&self, connection: Arc<Connection>) -> Listening {
        let keys = self.inner.hub.insert(connection);
        self.listen(keys)
    }

    pub(crate) fn remove_connection(&self, connection: &Connection) {
        let keys = self.inner.hub.remove(connection);
        drop(self.listen(keys));
    }

    /// Sets a connection's identity; what it returns resolves once pushes
    /// to its (new) user from other servers arrive.
    pub(crate) fn set_identity(
        &self,
        connection: &Connection,
        identity: crate::Identity,
        user_id: Option<String>,
    ) -> Listening {
        let keys = self.inner.hub.set_identity(connection, identity, user_id);
        self.listen(keys)
    }

    /// Forwards a connection event to the handler servers that take them.
    pub(crate) fn forward_event(&self, event: MeshEvent) {
        if let Some(mesh) = self.mesh() {
            mesh.forward_event(event);
        }
    }

    /// Carries out an order another server published, on this server's
    /// connections only.
    #[cfg_attr(not(feature = "broker"), allow(dead_code, reason = "the broker's"))]
    pub(crate) fn obey(&self, order: Order) {
        if order.origin == self.inner.instance_id {
            return;
        }
        let connections = match &order.target {
            Target::Connection(id) => self.inner.hub.get(id).into_iter().collect(),
            Target::User(user) => self.inner.hub.of_users([user.as_str()]),
            Target::All => self.inner.hub.all(),
        };
        match order.action {
            Action::Send(frame) => {
                let frame = Utf8Bytes::from(frame);
                let sent = connections.iter().filter(|c| c.push(frame.clone())).count();
                self.count_pushes(sent, connections.len() - sent);
            }
            Action::Close(code) => connections.iter().for_each(|c| c.request_close(code)),
        }
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

    /// Pushes `{"serverMessage": message}` to one connection, on this
    /// server or (with a broker) on any gateway. True if it was queued on
    /// this server's connection, or handed to the broker for the others;
    /// false if neither (no such connection here and no broker, or a
    /// connection here too far behind in reading, which is then closed).
    /// Through the broker, delivery is at most once, and not confirmed.
    pub fn send_to_connection(&self, connection_id: &str, message: impl Serialize) -> bool {
        let Some(frame) = push_frame(&message) else {
            return false;
        };
        if let Some(connection) = self.inner.hub.get(connection_id) {
            let sent = connection.push(frame);
            self.count_pushes(usize::from(sent), usize::from(!sent));
            return sent;
        }
        match self.mesh() {
            Some(_) => {
                self.publish(
                    Target::Connection(connection_id.to_owned()),
                    Action::Send(frame.as_str().to_owned()),
                );
                true
            }
            None => {
                self.count_pushes(0, 1);
                false
            }
        }
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

    /// Pushes a server message to every connection of a user, on every
    /// gateway; returns how many of this server's connections it was
    /// queued on (those of other gateways are reached through the broker,
    /// at most once, and not counted).
    pub fn send_to_user(&self, user_id: &str, message: impl Serialize) -> usize {
        self.send_to_users([user_id], message)
    }

    /// Pushes a server message to every connection of these users, on
    /// every gateway; returns how many of this server's connections it was
    /// queued on.
    pub fn send_to_users<'a>(
        &self,
        user_ids: impl IntoIterator<Item = &'a str>,
        message: impl Serialize,
    ) -> usize {
        let Some(frame) = push_frame(&message) else {
            return 0;
        };
        let user_ids: Vec<&str> = user_ids.into_iter().collect();
        let connections = self.inner.hub.of_users(user_ids.iter().copied());
        let sent = connections.iter().filter(|c| c.push(frame.clone())).count();
        self.count_pushes(sent, connections.len() - sent);
        if self.mesh().is_some() {
            for user in user_ids {
                self.publish(
                    Target::User(user.to_owned()),
                    Action::Send(frame.as_str().to_owned()),
                );
            }
        }
        sent
    }

    /// Pushes a server message to every connection, on every gateway;
    /// returns how many of this server's connections it was queued on.
    pub fn broadcast(&self, message: impl Serialize) -> usize {
        let Some(frame) = push_frame(&message) else {
            return 0;
        };
        let connections = self.inner.hub.all();
        let sent = connections.iter().filter(|c| c.push(frame.clone())).count();
        self.count_pushes(sent, connections.len() - sent);
        self.publish(Target::All, Action::Send(frame.as_str().to_owned()));
        sent
    }

    /// Closes one connection (close code 1000), here or on another
    /// gateway; true if it was here or handed to the broker.
    pub fn close_connection(&self, connection_id: &str) -> bool {
        if let Some(connection) = self.inner.hub.get(connection_id) {
            connection.request_close(close_code::NORMAL);
            return true;
        }
        let published = self.mesh().is_some();
        self.publish(
            Target::Connection(connection_id.to_owned()),
            Action::Close(close_code::NORMAL),
        );
        published
    }

    /// Closes every connection of a user, on every gateway; returns how
    /// many were this server's.
    pub fn close_user(&self, user_id: &str) -> usize {
        let connections = self.inner.hub.of_users([user_id]);
        connections
            .iter()
            .for_each(|c| c.request_close(close_code::NORMAL));
        self.publish(
            Target::User(user_id.to_owned()),
            Action::Close(close_code::NORMAL),
        );
        connections.len()
    }

    /// Closes this server's connections (close code 1001); returns how
    /// many. Other gateways' connections are theirs to close.
    pub fn close_all(&self) -> usize {
        let connections = self.inner.hub.all();
        connections
            .iter()
            .for_each(|c| c.request_close(close_code::GOING_AWAY));
        connections.len()
    }

    /// Whether a user has a connection on this server or, as the other
    /// gateways last reported, on any of them.
    pub fn is_user_connected(&self, user_id: &str) -> bool {
        self.user_connection_count(user_id) > 0
    }

    /// A user's connections on this server (exact) and on the other
    /// gateways (as of their last presence report: at most one announce
    /// interval old).
    pub fn user_connection_count(&self, user_id: &str) -> usize {
        let here = self.inner.hub.of_users([user_id]).len();
        here + self
            .mesh()
            .map_or(0, |mesh| mesh.remote_connections(Some(user_id)))
    }

    /// The connections of the whole mesh: this server's and the other
    /// gateways' (as of their last presence reports).
    pub fn mesh_connection_count(&self) -> usize {
        self.inner.hub.len() + self.mesh().map_or(0, |mesh| mesh.remote_connections(None))
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

/// How long a connection waits for the broker to route its pushes before
/// it goes on regardless (the broker is slow or the link is failing; the
/// next link binds every key again).
const LISTEN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves once the broker routes the pushes for a connection's new keys
/// to this server: at once without a broker, or when the link is lost.
#[must_use = "the pushes from other servers may not arrive before it resolves"]
pub(crate) struct Listening(Option<tokio::sync::oneshot::Receiver<()>>);

impl Listening {
    pub(crate) async fn wait(self) {
        if let Some(listened) = self.0 {
            let _ = tokio::time::timeout(LISTEN_WAIT, listened).await;
        }
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
