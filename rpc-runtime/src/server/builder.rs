//! Every server option, with its default, in one place.

use super::Server;
use crate::events::{Event, Events};
use crate::hub::ConnectionInfo;
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::registry::Registry;
use crate::transport::Cors;
use crate::transport::{HttpConfig, Mount, PagesConfig, WsConfig};
use crate::{Address, Authenticator, Error, ServerHandle};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

type HostFilter = Arc<dyn Fn(&Address) -> bool + Send + Sync>;

/// Configures a [`Server`]; start with [`Server::builder`].
#[must_use]
pub struct ServerBuilder {
    pub(super) name: String,
    pub(super) http: Option<String>,
    pub(super) http_config: HttpConfig,
    pub(super) ws_config: WsConfig,
    pub(super) pages: PagesConfig,
    pub(super) authenticator: Option<Arc<dyn Authenticator>>,
    pub(super) events: Events,
    pub(super) timeout: Duration,
    pub(super) host: HostFilter,
    pub(super) states: crate::state::States,
    pub(super) layers: Vec<crate::pipeline::middleware::LayerFn>,
    pub(super) drain_timeout: Duration,
    pub(super) always_validate: bool,
    pub(super) max_connections: usize,
    pub(super) max_body_bytes: usize,
    pub(super) metrics_buckets: Vec<f64>,
    pub(super) application_metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    #[cfg(feature = "broker")]
    pub(super) broker: Option<crate::broker::BrokerConfig>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            name: "rpc-server".to_owned(),
            http: None,
            http_config: HttpConfig::default(),
            ws_config: WsConfig::default(),
            pages: PagesConfig::default(),
            authenticator: None,
            events: Events::default(),
            timeout: Duration::from_secs(30),
            host: Arc::new(|_| true),
            states: crate::state::States::default(),
            layers: Vec::new(),
            drain_timeout: Duration::from_secs(30),
            always_validate: false,
            max_connections: crate::transport::MAX_CONNECTIONS,
            max_body_bytes: crate::transport::MAX_BODY_BYTES,
            metrics_buckets: crate::telemetry::DEFAULT_BUCKETS.to_vec(),
            application_metrics: None,
            #[cfg(feature = "broker")]
            broker: None,
        }
    }
}

impl ServerBuilder {
    /// The server's display name, shown in telemetry and carried as the
    /// caller of the calls it makes.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Serves HTTP (and WebSocket upgrades) on this address, e.g.
    /// `"127.0.0.1:9876"`; port 0 picks a free port.
    pub fn http(mut self, addr: impl Into<String>) -> Self {
        self.http = Some(addr.into());
        self
    }

    /// The largest accepted HTTP body; larger ones get 413. Default 1 MiB.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.http_config.body_limit = bytes;
        self
    }

    /// How long a connection may take to send the head of a request,
    /// counted from when the server is ready for it: after accepting the
    /// connection, or after answering its previous request. A connection
    /// that sends no complete head in time is closed, so idle or stalled
    /// clients cannot hold connections open. (One timer per connection
    /// checks this lazily, so a head has between one and two timeouts
    /// to arrive; a request being answered, and a WebSocket, are not
    /// timed.) The body the head announces must then arrive within the
    /// timeout, or the request is answered 408 and the connection closed.
    /// Default 30 s.
    pub fn http_header_timeout(mut self, timeout: Duration) -> Self {
        self.http_config.header_timeout = timeout;
        self
    }

    /// How long a write to a client may make no progress before the
    /// connection is closed: a client that does not read its answers
    /// (HTTP, pipelined or not) or its frames (WebSocket) cannot hold the
    /// server's buffers. Default 30 s.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.http_config.write_timeout = timeout;
        self.ws_config.write_timeout = timeout;
        self
    }

    /// The most request bytes one HTTP connection may send ahead of its
    /// answers (pipelined requests wait in this buffer); the longest
    /// request head is this long too (else 431). Default 64 KiB, at least
    /// 8 KiB.
    pub fn http_read_ahead(mut self, bytes: usize) -> Self {
        self.http_config.read_buffer = bytes.max(8 * 1024);
        self
    }

    /// The most connections (HTTP and WebSocket) the server holds at once.
    /// Over it, a new connection is answered 503 (with `retry-after: 1`)
    /// and closed at once. Default 10,000.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// The most bytes of request bodies the server reads at once, over all
    /// connections. A body that does not fit (by its declared length, or
    /// as it arrives) is answered 503. Default 64 MiB.
    pub fn max_buffered_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Answer every RPC over HTTP with status 200, the real code only in the
    /// body, as clients built for the Node.js framework expect. Default off:
    /// the HTTP status equals the body's `code`.
    pub fn always_200(mut self, yes: bool) -> Self {
        self.http_config.always_200 = yes;
        self
    }

    /// Which browser origins may call. Default: any.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.http_config.cors = cors;
        self
    }

    /// Accept WebSocket upgrades on the HTTP port. Default on.
    pub fn websocket(mut self, enabled: bool) -> Self {
        self.ws_config.enabled = enabled;
        self
    }

    /// The largest WebSocket frame; a larger one gets a 413 reply and the
    /// connection closes with code 1009. Default 1 MiB.
    pub fn ws_frame_limit(mut self, bytes: usize) -> Self {
        self.ws_config.max_frame = bytes;
        self
    }

    /// Requests a JSON-RPC batch may hold, over HTTP and WebSocket; a larger
    /// batch is answered with one -32600 error. Default 100.
    pub fn jsonrpc_max_batch(mut self, requests: usize) -> Self {
        self.http_config.max_batch = requests.max(1);
        self
    }

    /// How long a WebSocket message may stay unfinished (its first bytes
    /// arrived, not its last), whatever control frames (pings) arrive
    /// meanwhile; then the connection closes with code 1008. Checked when
    /// control frames arrive and at every server ping, on connections
    /// served by the server itself (not a router mounted in an
    /// application's server). Default 30 s.
    pub fn ws_message_timeout(mut self, timeout: Duration) -> Self {
        self.ws_config.message_timeout = timeout;
        self
    }

    /// Calls in flight on one WebSocket connection (each call of a JSON-RPC
    /// batch counts); more get 429. Default 256.
    pub fn ws_max_in_flight(mut self, calls: usize) -> Self {
        self.ws_config.max_in_flight = calls;
        self
    }

    /// The server pings every `ping_interval`, and closes a connection that
    /// sent nothing (not even a pong) for `idle_timeout` (code 1001).
    /// Defaults: 30 s and 90 s.
    pub fn ws_keep_alive(mut self, ping_interval: Duration, idle_timeout: Duration) -> Self {
        self.ws_config.ping_interval = ping_interval;
        self.ws_config.idle_timeout = idle_timeout;
        self
    }

    /// Bytes of pushes that may wait for one connection. A client that
    /// stops reading is closed (code 1013) once this much is queued, and its
    /// queue is dropped, so it cannot grow the server's memory. A write that
    /// makes no progress for `write_timeout` also ends the connection.
    /// Defaults: 8 MiB and 10 s.
    pub fn ws_outbound_limit(mut self, bytes: usize, write_timeout: Duration) -> Self {
        self.ws_config.max_queued_bytes = bytes;
        self.ws_config.write_timeout = write_timeout;
        self
    }

    /// Only these `Origin`s may open WebSocket connections (others get
    /// 403). Default: any.
    pub fn ws_allowed_origins(
        mut self,
        origins: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.ws_config.allowed_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Refuse WebSocket upgrades (401) that carry no bearer token. Default
    /// off: a connection may set its identity later with an identity frame.
    pub fn ws_require_token(mut self, required: bool) -> Self {
        self.ws_config.require_token = required;
        self
    }

    /// Runs when a WebSocket connection opens.
    pub fn on_connect(mut self, hook: impl Fn(&ConnectionInfo) + Send + Sync + 'static) -> Self {
        self.ws_config.hooks.connect.push(Arc::new(hook));
        self
    }

    /// Runs when a connection's identity changes.
    pub fn on_identity_change(
        mut self,
        hook: impl Fn(&ConnectionInfo) + Send + Sync + 'static,
    ) -> Self {
        self.ws_config.hooks.identity.push(Arc::new(hook));
        self
    }

    /// Runs for every `{"clientMessage": ...}` frame.
    pub fn on_client_message(
        mut self,
        hook: impl Fn(&ConnectionInfo, &serde_json::Value) + Send + Sync + 'static,
    ) -> Self {
        self.ws_config.hooks.message.push(Arc::new(hook));
        self
    }

    /// Runs when a WebSocket connection closes, for whatever reason.
    pub fn on_disconnect(mut self, hook: impl Fn(&ConnectionInfo) + Send + Sync + 'static) -> Self {
        self.ws_config.hooks.disconnect.push(Arc::new(hook));
        self
    }

    /// Adds a value of application state: procedures that take
    /// `State<T>` get a clone of it. Any number of values, one per type (a
    /// second value of the same type replaces the first). `build()` fails,
    /// naming every procedure and type, if a hosted procedure needs a type
    /// that was not given.
    pub fn state<T: crate::state::StateValue>(mut self, value: T) -> Self {
        self.states.insert(value);
        self
    }

    /// Wraps every call, of every transport, local or forwarded, in a
    /// middleware: a `tower::Layer` over
    /// [`CallService`](crate::middleware::CallService). The first layer
    /// added is the outermost: it sees the call first and the answer last.
    /// See [`middleware`](crate::middleware) for what a middleware sees and
    /// where it runs among the pipeline's stages.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower_layer::Layer<crate::middleware::CallService> + Send + Sync + 'static,
        L::Service: tower_service::Service<crate::Call, Response = crate::Data, Error = crate::RpcError>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower_service::Service<crate::Call>>::Future: Send + 'static,
    {
        self.layers
            .push(crate::pipeline::middleware::layer_fn(layer));
        self
    }

    /// Runs the args schema validator on every call. By default it runs
    /// only for procedures whose schema asks more than their args type
    /// enforces when decoding (formats, lengths, patterns, ranges...), and
    /// otherwise only when decoding fails, to list every failure: the
    /// answers are the same, at the cost of serde alone. This relies on the
    /// args schema being the one `schemars` derives from the type; turn
    /// this on if a hand-written `JsonSchema` impl, or `#[schemars(with)]`
    /// or `#[schemars(required)]`, makes a schema ask more than serde
    /// checks.
    pub fn always_validate(mut self, yes: bool) -> Self {
        self.always_validate = yes;
        self
    }

    /// How long a shutdown waits for the calls in flight; calls still
    /// running then are answered 503. Default 30 s.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Connects to RabbitMQ at this AMQP URI, e.g.
    /// `amqp://guest:guest@127.0.0.1:5672/%2f`: calls this server does not
    /// host are forwarded there, and the procedures it hosts are served to
    /// other servers.
    #[cfg(feature = "broker")]
    pub fn broker(self, uri: impl Into<String>) -> Self {
        self.broker_nodes([uri])
    }

    /// Connects to the first of these AMQP URIs that answers, the nodes of
    /// a RabbitMQ cluster: when the connection to one is lost, the server
    /// reconnects to the next, declares its queues again and goes on.
    /// `amqps://` URIs need the `tls` feature (see
    /// [`ServerBuilder::broker_tls`]).
    #[cfg(feature = "broker")]
    pub fn broker_nodes(mut self, uris: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let uris: Vec<String> = uris.into_iter().map(Into::into).collect();
        let mut config = crate::broker::BrokerConfig::new(uris);
        if let Some(previous) = self.broker.take() {
            config.tls = previous.tls;
        }
        self.broker = Some(config);
        self
    }

    /// Forwards the client messages of this gateway's WebSocket
    /// connections through the broker, to the servers with
    /// [`ServerBuilder::on_mesh_event`] hooks (each message to one of
    /// them). Local `on_client_message` hooks still run. Default: off.
    #[cfg(feature = "broker")]
    pub fn mesh_client_messages(mut self, forward: bool) -> Self {
        self.ws_config.mesh_messages = forward;
        self
    }

    /// Also forwards connects, identity changes and disconnects of this
    /// gateway's connections, as [`ServerBuilder::mesh_client_messages`]
    /// does client messages. Default: off.
    #[cfg(feature = "broker")]
    pub fn mesh_connection_events(mut self, forward: bool) -> Self {
        self.ws_config.mesh_events = forward;
        self
    }

    /// A hook on the connection events gateways forward (see
    /// [`ServerBuilder::mesh_client_messages`]): with the connection id,
    /// user id, identity, client IP and gateway name, and the server's
    /// handle, which can answer with a push to that connection
    /// (`send_to_connection`, which reaches it on its gateway). Give it
    /// after `broker`.
    #[cfg(feature = "broker")]
    pub fn on_mesh_event(
        mut self,
        hook: impl Fn(&crate::MeshEvent, &crate::ServerHandle) + Send + Sync + 'static,
    ) -> Self {
        if let Some(broker) = &mut self.broker {
            broker.mesh_hooks.push(Arc::new(hook));
        }
        self
    }

    /// The CA and client certificate for `amqps://` brokers (rustls; the
    /// system's roots are trusted too). Give it after `broker`.
    #[cfg(feature = "broker")]
    pub fn broker_tls(mut self, tls: crate::BrokerTls) -> Self {
        if let Some(broker) = &mut self.broker {
            broker.tls = tls;
        }
        self
    }

    /// When the broker is unreachable at start: `false` (the default) makes
    /// `start` fail with a clear error; `true` starts anyway and keeps
    /// trying in the background (forwarded calls get 503 until then).
    #[cfg(feature = "broker")]
    pub fn broker_retry_at_start(mut self, retry: bool) -> Self {
        if let Some(broker) = &mut self.broker {
            broker.retry_at_start = retry;
        }
        self
    }

    /// How often a handler server announces what it serves. Gateways forget
    /// a server silent for three intervals. Default 5 s.
    #[cfg(feature = "broker")]
    pub fn announce_interval(mut self, interval: Duration) -> Self {
        if let Some(broker) = &mut self.broker {
            broker.announce_interval = interval.max(Duration::from_millis(100));
        }
        self
    }

    /// Broker calls a handler server holds at once, per procedure (and
    /// calls nobody serves that a server holds to answer 404). Default 64.
    #[cfg(feature = "broker")]
    pub fn broker_prefetch(mut self, calls: u16) -> Self {
        if let Some(broker) = &mut self.broker {
            broker.prefetch = calls.max(1);
        }
        self
    }

    /// The request headers (lower-case names) that calls forwarded
    /// through the broker carry, so that a procedure on a handler server
    /// sees them in its `Context`. Default: none. Forward credentials
    /// (`authorization`, `cookie`) only if handler servers need them.
    #[cfg(feature = "broker")]
    pub fn broker_forward_headers(
        mut self,
        names: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Self {
        if let Some(broker) = &mut self.broker {
            broker.forward_headers = names
                .into_iter()
                .filter_map(|name| http::HeaderName::from_bytes(name.as_ref().as_bytes()).ok())
                .collect();
        }
        self
    }

    /// Where the API docs page (`/docs`) is served. Default: at the root,
    /// to anyone. `Mount::disabled()` turns it off.
    #[cfg(feature = "docs")]
    pub fn docs_mount(mut self, mount: Mount) -> Self {
        self.pages.docs = mount;
        self
    }

    /// Where the machine-readable specs (`/docs.json`, `/openrpc.json`) and
    /// the TypeScript client (`/client.ts`) are
    /// served. Default: at the root, to anyone.
    #[cfg(feature = "docs")]
    pub fn specs_mount(mut self, mount: Mount) -> Self {
        self.pages.specs = mount;
        self
    }

    /// Whether docs, specs and `rpc.discover` list internal procedures
    /// (marked internal); the same as [`ServerBuilder::show_internal`],
    /// which also covers telemetry and metrics. Default: hidden.
    #[cfg(feature = "docs")]
    pub fn docs_show_internal(mut self, show: bool) -> Self {
        self.pages.show_internal = show;
        self
    }

    /// The URL clients reach the RPC endpoint at (for instance
    /// `https://api.example.com/rpc/`), given as `servers` in the OpenRPC
    /// document. Default: the URL the request for the document was sent
    /// to (honouring `X-Forwarded-Proto`, `X-Forwarded-Host`,
    /// `X-Forwarded-Prefix` and the prefix the router is mounted under).
    #[cfg(feature = "docs")]
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.pages.public_url = Some(url.into());
        self
    }

    /// Whether docs, specs, `rpc.discover`, telemetry and metrics list
    /// internal procedures. Default: hidden, from all of them.
    pub fn show_internal(mut self, show: bool) -> Self {
        self.pages.show_internal = show;
        self
    }

    /// The buckets (upper bounds in seconds) of the call duration
    /// histograms on `/metrics`. Default: 5 ms to 10 s, as Prometheus
    /// client libraries have them.
    pub fn metrics_buckets(mut self, seconds: impl IntoIterator<Item = f64>) -> Self {
        self.metrics_buckets = seconds.into_iter().collect();
        self
    }

    /// Puts the application's own metrics on the server's `/metrics`: give
    /// the handle of the Prometheus recorder the application installed
    /// (`metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()`),
    /// and what it records with the `metrics` macros is rendered after the
    /// server's figures.
    pub fn application_metrics(
        mut self,
        handle: metrics_exporter_prometheus::PrometheusHandle,
    ) -> Self {
        self.application_metrics = Some(handle);
        self
    }

    /// Where telemetry (`/telemetry`, `/telemetry.html`, `/metrics`) is
    /// served. Default: at the root, to anyone.
    pub fn telemetry_mount(mut self, mount: Mount) -> Self {
        self.pages.telemetry = mount;
        self
    }

    /// Checks bearer tokens; see [`Authenticator`].
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Some(Arc::new(authenticator));
        self
    }

    /// Calls `hook` after every call with its request and outcome. Hooks run
    /// on the call's task: keep them quick.
    pub fn on_event(mut self, hook: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.events.push(Arc::new(hook));
        self
    }

    /// The deadline of calls whose procedure sets none. Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Hosts only the linked procedures that `filter` accepts; calls to the
    /// others are forwarded (with a broker) or answered 404. Default: all.
    pub fn host(mut self, filter: impl Fn(&Address) -> bool + Send + Sync + 'static) -> Self {
        self.host = Arc::new(filter);
        self
    }

    /// Hosts no procedure: a pure gateway.
    pub fn host_none(self) -> Self {
        self.host(|_| false)
    }

    /// Checks the configuration and builds the procedure table. Fails on
    /// duplicate registrations, on a schema that does not compile, and on
    /// a malformed address.
    pub fn build(mut self) -> Result<Server, Error> {
        self.http_config.budget =
            crate::transport::Budget::new(self.max_connections, self.max_body_bytes);
        let http_addr = match &self.http {
            Some(addr) => Some(
                addr.parse::<SocketAddr>()
                    .map_err(|error| Error::Config(format!("http address {addr:?}: {error}")))?,
            ),
            None => None,
        };
        if self.http_config.body_limit == 0 {
            return Err(Error::Config("body_limit must be greater than 0".into()));
        }
        let host = self.host.clone();
        let telemetry = crate::telemetry::Telemetry::new(crate::telemetry::TelemetryConfig {
            buckets: self.metrics_buckets,
            show_internal: self.pages.show_internal,
            application: self.application_metrics,
        });
        let registry = Registry::from_inventory(&*host, &telemetry, self.always_validate)?;
        registry.check_states(&self.states)?;
        let handle = ServerHandle::new(self.name.clone(), telemetry.counters.clone());
        let pipeline = Pipeline::new(PipelineConfig {
            name: self.name.clone(),
            registry,
            events: self.events,
            authenticator: self.authenticator,
            default_timeout: self.timeout,
            handle: handle.clone(),
            telemetry,
            show_internal: self.pages.show_internal,
            public_url: self.pages.public_url.clone(),
            states: self.states,
            layers: self.layers,
        });
        let routes: std::sync::Weak<dyn crate::hub::Routes> = Arc::downgrade(&pipeline) as _;
        handle.attach(routes);
        if self.ws_config.max_frame == 0 || self.ws_config.max_in_flight == 0 {
            return Err(Error::Config(
                "WebSocket limits must be greater than 0".into(),
            ));
        }
        #[cfg(feature = "broker")]
        let broker = self.broker.map(|mut config| {
            config.mesh_listen = self.ws_config.enabled;
            let broker = crate::broker::Broker::new(config, &pipeline);
            let _ = pipeline.forward.set(broker.clone());
            let mesh: std::sync::Weak<dyn crate::hub::mesh::Mesh> = Arc::downgrade(&broker) as _;
            pipeline.handle.attach_mesh(mesh);
            broker
        });
        Ok(Server {
            http_addr,
            http_config: self.http_config,
            ws_config: self.ws_config,
            pages: self.pages,
            drain_timeout: self.drain_timeout,
            pipeline,
            #[cfg(feature = "broker")]
            broker,
        })
    }
}
