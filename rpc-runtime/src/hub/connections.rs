//! The WebSocket connections a server holds, indexed by id and by user, so
//! that a push reaches one connection, one user's, or all of them.

use crate::Identity;
use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, mpsc};

/// What hooks and listings see of a connection.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// A UUID, unique to this connection.
    pub id: String,
    /// The identity the connection holds, if it set one.
    pub identity: Option<Identity>,
    /// The user id the authenticator gave, if any.
    pub user_id: Option<String>,
    /// The client's address: `X-Real-IP` first, else the peer's.
    pub ip: IpAddr,
}

/// Close codes the server uses.
pub(crate) mod close_code {
    /// A normal close asked for by the server.
    pub(crate) const NORMAL: u16 = 1000;
    /// The server is going away, or the client was idle too long.
    pub(crate) const GOING_AWAY: u16 = 1001;
    /// The client broke a rule (its authorization changed).
    pub(crate) const POLICY: u16 = 1008;
    /// A text frame was not UTF-8.
    pub(crate) const INVALID_DATA: u16 = 1007;
    /// A frame was larger than the limit.
    pub(crate) const TOO_BIG: u16 = 1009;
    /// The client reads too slowly: its queue of pushes is full.
    pub(crate) const TRY_AGAIN_LATER: u16 = 1013;
}

/// One live connection, shared by its task and the hub.
pub(crate) struct Connection {
    pub(crate) id: String,
    pub(crate) ip: IpAddr,
    state: Mutex<State>,
    outbound: mpsc::UnboundedSender<Utf8Bytes>,
    /// Bytes queued for this connection and not yet written.
    queued: AtomicUsize,
    max_queued: usize,
    close: Notify,
    close_code: AtomicU16,
    /// The close waits until the calls in flight are answered (the server
    /// is shutting down).
    finish_calls: AtomicBool,
}

#[derive(Default)]
struct State {
    identity: Option<Identity>,
    user_id: Option<String>,
}

impl Connection {
    pub(crate) fn new(
        id: String,
        ip: IpAddr,
        identity: Option<Identity>,
        user_id: Option<String>,
        max_queued: usize,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Utf8Bytes>) {
        let (outbound, receiver) = mpsc::unbounded_channel();
        let connection = Connection {
            id,
            ip,
            state: Mutex::new(State { identity, user_id }),
            outbound,
            queued: AtomicUsize::new(0),
            max_queued,
            close: Notify::new(),
            close_code: AtomicU16::new(0),
            finish_calls: AtomicBool::new(false),
        };
        (Arc::new(connection), receiver)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn info(&self) -> ConnectionInfo {
        let state = self.state();
        ConnectionInfo {
            id: self.id.clone(),
            identity: state.identity.clone(),
            user_id: state.user_id.clone(),
            ip: self.ip,
        }
    }

    pub(crate) fn identity(&self) -> Option<Identity> {
        self.state().identity.clone()
    }

    pub(crate) fn user_id(&self) -> Option<String> {
        self.state().user_id.clone()
    }

    /// Queues a text frame. A client that lets more than the limit pile up
    /// is closed (1013) rather than allowed to grow the server's memory.
    pub(crate) fn push(&self, text: Utf8Bytes) -> bool {
        let size = text.len();
        let queued = self.queued.fetch_add(size, Ordering::AcqRel) + size;
        if queued > self.max_queued {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            self.request_close(close_code::TRY_AGAIN_LATER);
            return false;
        }
        self.outbound.send(text).is_ok()
    }

    /// Called by the connection's task once a queued frame is written.
    pub(crate) fn written(&self, size: usize) {
        self.queued.fetch_sub(size, Ordering::AcqRel);
    }

    pub(crate) fn request_close(&self, code: u16) {
        let _ = self
            .close_code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.close.notify_one();
    }

    /// Asks for a close once the calls in flight are answered.
    pub(crate) fn request_close_after_calls(&self, code: u16) {
        self.finish_calls.store(true, Ordering::Release);
        self.request_close(code);
    }

    /// Whether the close asked for waits for the calls in flight.
    pub(crate) fn finishes_calls(&self) -> bool {
        self.finish_calls.load(Ordering::Acquire)
    }

    /// Resolves when a close was asked for; yields the close code.
    pub(crate) async fn close_requested(&self) -> u16 {
        self.close.notified().await;
        match self.close_code.load(Ordering::Acquire) {
            0 => close_code::NORMAL,
            code => code,
        }
    }
}

/// Every connection of a server.
#[derive(Default)]
pub(crate) struct Hub {
    inner: Mutex<Index>,
    /// Notified whenever the last connection goes.
    emptied: Notify,
}

#[derive(Default)]
struct Index {
    by_id: HashMap<String, Arc<Connection>>,
    by_user: HashMap<String, HashSet<String>>,
    /// The server is shutting down: every connection is to close.
    going_away: bool,
}

impl Hub {
    fn index(&self) -> MutexGuard<'_, Index> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a connection; returns the routing keys to listen to from now
    /// on (its own, and its user's if it is the user's first here).
    pub(crate) fn insert(&self, connection: Arc<Connection>) -> Vec<(String, bool)> {
        let mut index = self.index();
        let mut keys = vec![(super::mesh::connection_key(&connection.id), true)];
        if let Some(user) = connection.user_id() {
            keys.extend(link(&mut index, &user, &connection.id));
        }
        if index.going_away {
            connection.request_close_after_calls(close_code::GOING_AWAY);
        }
        index.by_id.insert(connection.id.clone(), connection);
        keys
    }

    /// Closes every connection, and every one inserted from now on, once
    /// the calls in flight on it are answered (close code 1001).
    pub(crate) fn go_away(&self) {
        let mut index = self.index();
        index.going_away = true;
        for connection in index.by_id.values() {
            connection.request_close_after_calls(close_code::GOING_AWAY);
        }
    }

    /// Takes a connection off; returns the routing keys to stop listening
    /// to.
    pub(crate) fn remove(&self, connection: &Connection) -> Vec<(String, bool)> {
        let mut index = self.index();
        let mut keys = vec![(super::mesh::connection_key(&connection.id), false)];
        index.by_id.remove(&connection.id);
        if let Some(user) = connection.user_id() {
            keys.extend(unlink(&mut index, &user, &connection.id));
        }
        if index.by_id.is_empty() {
            self.emptied.notify_waiters();
        }
        keys
    }

    /// Resolves once no connection is left.
    pub(crate) async fn emptied(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.len() == 0 {
                return;
            }
            emptied.await;
        }
    }

    /// Replaces a connection's identity and user, keeping the user index;
    /// returns the routing keys that change.
    pub(crate) fn set_identity(
        &self,
        connection: &Connection,
        identity: Identity,
        user_id: Option<String>,
    ) -> Vec<(String, bool)> {
        let mut index = self.index();
        let mut state = connection.state();
        let mut keys = Vec::new();
        if state.user_id != user_id {
            if let Some(old) = &state.user_id {
                keys.extend(unlink(&mut index, old, &connection.id));
            }
            if let Some(new) = &user_id {
                keys.extend(link(&mut index, new, &connection.id));
            }
        }
        state.identity = Some(identity);
        state.user_id = user_id;
        keys
    }

    #[cfg_attr(not(feature = "broker"), allow(dead_code, reason = "the broker's"))]
    /// The routing keys this server listens to: every connection's, and
    /// every user's with a connection here (to bind again after a
    /// reconnection).
    pub(crate) fn keys(&self) -> Vec<String> {
        let index = self.index();
        index
            .by_id
            .keys()
            .map(|id| super::mesh::connection_key(id))
            .chain(index.by_user.keys().map(|user| super::mesh::user_key(user)))
            .collect()
    }

    #[cfg_attr(not(feature = "broker"), allow(dead_code, reason = "the broker's"))]
    /// Connections per user, for presence reports.
    pub(crate) fn users(&self) -> HashMap<String, usize> {
        self.index()
            .by_user
            .iter()
            .map(|(user, ids)| (user.clone(), ids.len()))
            .collect()
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Connection>> {
        self.index().by_id.get(id).cloned()
    }

    pub(crate) fn of_users<'a>(
        &self,
        users: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Arc<Connection>> {
        let index = self.index();
        let mut found = Vec::new();
        for user in users {
            if let Some(ids) = index.by_user.get(user) {
                found.extend(ids.iter().filter_map(|id| index.by_id.get(id).cloned()));
            }
        }
        found
    }

    pub(crate) fn all(&self) -> Vec<Arc<Connection>> {
        self.index().by_id.values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.index().by_id.len()
    }
}

/// Adds a connection to its user's; the user's key when it is the first.
fn link(index: &mut Index, user: &str, id: &str) -> Option<(String, bool)> {
    let ids = index.by_user.entry(user.to_owned()).or_default();
    ids.insert(id.to_owned());
    (ids.len() == 1).then(|| (super::mesh::user_key(user), true))
}

/// Takes a connection from its user's; the user's key when it was the
/// last.
fn unlink(index: &mut Index, user: &str, id: &str) -> Option<(String, bool)> {
    let ids = index.by_user.get_mut(user)?;
    ids.remove(id);
    if ids.is_empty() {
        index.by_user.remove(user);
        return Some((super::mesh::user_key(user), false));
    }
    None
}

/// A hook on a connection event.
pub(crate) type ConnectionHook = Arc<dyn Fn(&ConnectionInfo) + Send + Sync>;
/// A hook on a client message.
pub(crate) type MessageHook = Arc<dyn Fn(&ConnectionInfo, &serde_json::Value) + Send + Sync>;

/// Hooks on connection events; each runs on the connection's task.
#[derive(Clone, Default)]
pub(crate) struct ConnectionHooks {
    pub(crate) connect: Vec<ConnectionHook>,
    pub(crate) identity: Vec<ConnectionHook>,
    pub(crate) message: Vec<MessageHook>,
    pub(crate) disconnect: Vec<ConnectionHook>,
}
