//! Forwarding calls between servers through RabbitMQ.
//!
//! A supervisor task owns the connection. While it is up, the server
//! forwards calls it does not host (gateway side), consumes the queues of
//! the procedures it hosts (handler side), announces them, and listens to
//! the announcements of others. When the connection is lost, calls waiting
//! for a reply fail at once with 503, and the supervisor reconnects with
//! backoff and declares everything again.
//!
//! Delivery is at most once: a call is acknowledged after it ran, and a
//! message the broker delivers again (because the server that held it died)
//! is dropped rather than run a second time; its caller gets 504 at the
//! deadline.
//!
//! - `connection`: connecting, declaring the topology, reconnecting,
//!   draining at shutdown;
//! - `forward`: the gateway side, a call out and its reply back;
//! - `serve`: the handler side, the calls delivered on the hosted
//!   procedures' queues, and 404 for the calls nobody serves;
//! - `announce`: what a server publishes of its procedures, and what it
//!   hears of the others';
//! - `remote`: the registry of remote procedures and their instances;
//! - `wire`: names, message properties and bodies (`docs/BROKER.md` is
//!   their reference).

mod announce;
mod connection;
mod forward;
mod mesh;
mod remote;
mod serve;
mod wire;

pub use remote::RemoteServer;

use crate::pipeline::{Forward, Pipeline};
use crate::procedure::BoxFuture;
use crate::{Call, Data, Error, ProcedureSpec, RpcError, ServerHandle};
use connection::redact;
use lapin::{Channel, Connection};
use remote::Remote;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

/// The broker options.
#[derive(Clone)]
pub(crate) struct BrokerConfig {
    /// The nodes, tried in turn: one URI, or those of a cluster's nodes.
    pub(crate) uris: Vec<String>,
    pub(crate) tls: BrokerTls,
    pub(crate) retry_at_start: bool,
    pub(crate) announce_interval: Duration,
    pub(crate) prefetch: u16,
    /// The request headers forwarded calls carry to handler servers.
    pub(crate) forward_headers: Vec<http::HeaderName>,
    /// Whether this server takes pushes for WebSocket connections from
    /// the mesh (it takes WebSocket connections) and reports presence.
    pub(crate) mesh_listen: bool,
    /// Hooks on the connection events gateways forward.
    pub(crate) mesh_hooks: Vec<mesh::MeshHook>,
}

impl BrokerConfig {
    pub(crate) fn new(uris: Vec<String>) -> Self {
        BrokerConfig {
            uris,
            tls: BrokerTls::default(),
            retry_at_start: false,
            announce_interval: Duration::from_secs(5),
            prefetch: 64,
            forward_headers: Vec::new(),
            mesh_listen: true,
            mesh_hooks: Vec::new(),
        }
    }
}

/// How to reach a broker over TLS (`amqps://` URIs), with rustls: the CA
/// that signed the broker's certificate when the system's roots do not
/// hold it, and a client certificate when the broker asks for one. Needs
/// the `tls` feature.
#[derive(Clone, Default)]
pub struct BrokerTls {
    ca_pem: Option<String>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl BrokerTls {
    /// The system's roots only, no client certificate.
    pub fn new() -> Self {
        BrokerTls::default()
    }

    /// Also trusts the certificates of this PEM text (a CA, or a chain).
    #[must_use]
    pub fn ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Presents this client certificate (PEM, with its chain) and its
    /// PKCS#8 private key (PEM).
    #[must_use]
    pub fn client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.client = Some((cert_pem.into(), key_pem.into()));
        self
    }

    fn lapin_config(&self) -> lapin::tcp::OwnedTLSConfig {
        lapin::tcp::OwnedTLSConfig {
            identity: self
                .client
                .as_ref()
                .map(|(pem, key)| lapin::tcp::OwnedIdentity::PKCS8 {
                    pem: pem.clone(),
                    key: key.clone(),
                }),
            cert_chain: self.ca_pem.clone(),
        }
    }
}

impl std::fmt::Debug for BrokerTls {
    /// Never shows the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerTls")
            .field("ca_pem", &self.ca_pem.is_some())
            .field("client_certificate", &self.client.is_some())
            .finish()
    }
}

/// The state of a server's broker connection, as telemetry shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum BrokerState {
    /// Not connected yet, or reconnecting.
    Connecting,
    /// Connected, with the topology declared.
    Connected,
    /// Shut down.
    Stopped,
}

type Reply = oneshot::Sender<Replied>;

/// A forwarded call's answer, as its caller reads it.
struct Replied {
    result: Result<Data, RpcError>,
    /// The answer to a call no queue took (no handler server serves it).
    unroutable: bool,
}

impl Replied {
    fn error(error: RpcError) -> Self {
        Replied {
            result: Err(error),
            unroutable: false,
        }
    }
}

/// One live connection with the channel everything is published on; cheap
/// to clone (a lapin `Channel` is a bundle of a dozen `Arc`s, so it is
/// shared rather than cloned per call).
#[derive(Clone)]
struct Link {
    connection: Arc<Connection>,
    /// Publishes calls, replies and announcements, and consumes the replies
    /// to its calls from direct reply-to (which must be the same channel).
    publisher: Arc<Channel>,
}

pub(crate) struct Broker {
    config: BrokerConfig,
    pipeline: Weak<Pipeline>,
    handle: ServerHandle,
    default_timeout: Duration,
    hosted: Vec<ProcedureSpec>,
    link: RwLock<Option<Link>>,
    /// Calls waiting for their reply, by the id their messages carry.
    pending: Mutex<HashMap<u64, Reply>>,
    next_id: AtomicU64,
    remote: Remote,
    state: watch::Sender<BrokerState>,
    /// Calls delivered to this server and not finished yet.
    in_flight: AtomicUsize,
    /// Notified when `in_flight` or `pending` runs out: a draining server
    /// waits for both.
    idle: Notify,
    counters: Arc<crate::telemetry::Counters>,
    /// The node (index into the URIs) connected to, or to try first.
    node: AtomicUsize,
    /// This server's push queue, while connected.
    push: Mutex<Option<mesh::PushQueue>>,
    /// What the other gateways last reported of their connections.
    presence: Mutex<mesh::Presence>,
    me: Weak<Broker>,
}

impl Broker {
    pub(crate) fn new(config: BrokerConfig, pipeline: &Arc<Pipeline>) -> Arc<Self> {
        let hosted = pipeline
            .registry
            .iter()
            .map(|local| local.spec.clone())
            .collect();
        Arc::new_cyclic(|me| Broker {
            node: AtomicUsize::new(0),
            push: Mutex::new(None),
            presence: Mutex::new(mesh::Presence::default()),
            config,
            pipeline: Arc::downgrade(pipeline),
            handle: pipeline.handle.clone(),
            default_timeout: pipeline.default_timeout(),
            hosted,
            link: RwLock::new(None),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            remote: Remote::default(),
            state: watch::Sender::new(BrokerState::Connecting),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            counters: pipeline.telemetry.counters.clone(),
            me: me.clone(),
        })
    }

    pub(crate) fn state(&self) -> BrokerState {
        *self.state.borrow()
    }

    pub(crate) fn remote_servers(&self) -> Vec<RemoteServer> {
        self.remote.servers()
    }

    /// Starts the supervisor; resolves once the first connection is up, or
    /// with the error of the first attempt unless retrying was asked for.
    pub(crate) async fn start(
        self: &Arc<Self>,
        stop: watch::Receiver<bool>,
    ) -> Result<JoinHandle<()>, Error> {
        let (first_tx, first_rx) = oneshot::channel();
        let task = tokio::spawn(self.clone().supervise(first_tx, stop));
        match first_rx.await {
            Ok(Ok(())) => Ok(task),
            Ok(Err(error)) => {
                task.abort();
                Err(error)
            }
            Err(_) => Err(Error::Broker("the broker supervisor ended".into())),
        }
    }

    fn link_slot(&self) -> std::sync::RwLockWriteGuard<'_, Option<Link>> {
        self.link
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn current_link(&self) -> Option<Link> {
        self.link
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Adds one to a counter of the server's telemetry.
    fn count(
        &self,
        counter: impl FnOnce(&crate::telemetry::Counters) -> &std::sync::atomic::AtomicU64,
    ) {
        counter(&self.counters).fetch_add(1, Ordering::Relaxed);
    }

    fn push_slot(&self) -> MutexGuard<'_, Option<mesh::PushQueue>> {
        self.push
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn presence(&self) -> MutexGuard<'_, mesh::Presence> {
        self.presence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<u64, Reply>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Queues a broker operation: lapin queues the frames of a publish or an
/// acknowledgement in the first poll of its future, which then waits for
/// them to be written. Waiting for that would only wake the task once more;
/// a write that fails loses the connection, which fails every call waiting
/// for a reply with 503. Yields the result if it is known at once (an
/// error, when the channel is closed).
fn queue<F: std::future::Future>(operation: F) -> Option<F::Output> {
    futures_util::FutureExt::now_or_never(operation)
}

impl Forward for Broker {
    fn forward(&self, call: Call) -> BoxFuture<Result<Data, RpcError>> {
        let Some(me) = self.me.upgrade() else {
            return Box::pin(async { Err(RpcError::new(503, "the server is stopping")) });
        };
        Box::pin(async move { me.forward_call(call).await })
    }

    fn announced(&self, address: &crate::Address) -> Option<Arc<dyn crate::registry::Rules>> {
        self.remote
            .get(address)
            .map(|remote| remote as Arc<dyn crate::registry::Rules>)
    }

    fn gauges(&self) -> Vec<(&'static str, f64)> {
        vec![
            (
                "rpc_broker_forwarded_in_flight",
                self.pending().len() as f64,
            ),
            (
                "rpc_broker_calls_held",
                self.in_flight.load(Ordering::Relaxed) as f64,
            ),
            (
                "rpc_broker_connected",
                f64::from(u8::from(self.state() == BrokerState::Connected)),
            ),
        ]
    }

    fn remote_procedures(&self) -> Vec<ProcedureSpec> {
        self.remote.procedures()
    }

    fn status(&self) -> Value {
        serde_json::json!({
            "state": self.state(),
            "blocked": self.current_link().is_some_and(|link| link.connection.status().blocked()),
            "uri": redact(&self.config.uris[self.node.load(Ordering::Relaxed) % self.config.uris.len()]),
            "nodes": self.config.uris.iter().map(|uri| redact(uri)).collect::<Vec<_>>(),
            "pendingReplies": self.pending().len(),
            "callsHeld": self.in_flight.load(Ordering::Relaxed),
            "servers": self.remote.servers(),
        })
    }
}
