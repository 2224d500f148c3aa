//! Connections beyond this process: the pushes and closes a server hands to
//! the other servers (through the broker, when it has one), what it knows
//! of the connections the other gateways hold, and the connection events
//! gateways forward to handler servers. The hub defines what it needs;
//! `broker/mesh.rs` provides it.

use crate::Identity;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A push or close for connections of other servers.
#[derive(Debug)]
pub(crate) struct Order {
    /// The instance that published it (which has served its own
    /// connections already).
    pub(crate) origin: String,
    pub(crate) target: Target,
    pub(crate) action: Action,
}

/// Whose connections.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Connection(String),
    User(String),
    All,
}

#[cfg_attr(not(feature = "broker"), allow(dead_code, reason = "the broker's"))]
impl Target {
    /// The routing key gateways bind for it.
    pub(crate) fn key(&self) -> String {
        match self {
            Target::Connection(id) => connection_key(id),
            Target::User(user) => user_key(user),
            Target::All => ALL_KEY.to_owned(),
        }
    }

    /// The target of a routing key.
    pub(crate) fn from_key(key: &str) -> Option<Target> {
        if key == ALL_KEY {
            return Some(Target::All);
        }
        match key.split_once(':')? {
            ("c", id) => Some(Target::Connection(id.to_owned())),
            ("u", user) => Some(Target::User(user.to_owned())),
            _ => None,
        }
    }
}

#[cfg_attr(not(feature = "broker"), allow(dead_code, reason = "the broker's"))]
pub(crate) const ALL_KEY: &str = "all";

pub(crate) fn connection_key(id: &str) -> String {
    format!("c:{id}")
}

pub(crate) fn user_key(user: &str) -> String {
    format!("u:{user}")
}

/// What to do with them.
#[derive(Debug)]
pub(crate) enum Action {
    /// Push this frame (`{"serverMessage": ...}`, encoded).
    Send(String),
    /// Close with this code.
    Close(u16),
}

/// What the hub asks of the mesh.
pub(crate) trait Mesh: Send + Sync {
    /// Hands an order to the other servers (at most once, not awaited).
    fn publish(&self, order: Order);

    /// Starts (or stops) taking the orders for these routing keys on this
    /// server, in order: as its connections and their users come and go.
    /// `done` is sent once the broker has them (dropped when there is no
    /// broker to ask).
    fn listen(&self, changes: Vec<(String, bool)>, done: tokio::sync::oneshot::Sender<()>);

    /// The connections the other gateways hold, as their last presence
    /// reports say: of one user, or in all.
    fn remote_connections(&self, user: Option<&str>) -> usize;

    /// Forwards a connection event to the handler servers that take them.
    fn forward_event(&self, event: MeshEvent);
}

/// A connection event a gateway forwards through the broker, as handler
/// servers receive it (see `ServerBuilder::on_mesh_event`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MeshEvent {
    /// What happened.
    pub kind: MeshEventKind,
    /// The connection, on its gateway.
    pub connection_id: String,
    /// The user the authenticator gave, if any.
    pub user_id: Option<String>,
    /// The connection's identity, if it set one.
    pub identity: Option<Identity>,
    /// The client's address.
    pub ip: IpAddr,
    /// The name of the gateway that holds the connection.
    pub gateway: String,
    /// A client message's content (`kind` is `message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<serde_json::Value>,
}

/// The kinds of [`MeshEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum MeshEventKind {
    /// A client message (`{"clientMessage": ...}`).
    Message,
    /// A connection opened.
    Connect,
    /// A connection's identity changed.
    Identity,
    /// A connection closed.
    Disconnect,
}
