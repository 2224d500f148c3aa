//! The gateway transports on one port: HTTP calls, health, and (in
//! `ws.rs`) WebSocket upgrades. Each transport turns its input into a
//! [`Call`](crate::Call) and hands it to the pipeline.

mod budget;
mod framing;
mod http;
mod jsonrpc;
mod listener;
mod pages;
mod ws;

use crate::pipeline::Pipeline;
use axum::Router;
use axum::routing::get;
use std::sync::Arc;

pub(crate) use budget::Budget;
pub use http::Cors;
pub(crate) use http::{HttpConfig, MAX_BODY_BYTES, MAX_CONNECTIONS};
pub use pages::Mount;
pub(crate) use pages::PagesConfig;
pub(crate) use ws::WsConfig;

/// What every route handler shares.
pub(crate) struct Gateway {
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) http: HttpConfig,
    pub(crate) ws: WsConfig,
    pub(crate) pages: PagesConfig,
}

/// Where `/health` is served.
const HEALTH: &str = "/health";

impl Gateway {
    pub(crate) fn new(
        pipeline: Arc<Pipeline>,
        http: HttpConfig,
        ws: WsConfig,
        pages: PagesConfig,
    ) -> Arc<Self> {
        Arc::new(Gateway {
            pipeline,
            http,
            ws,
            pages,
        })
    }

    /// The routes; CORS is applied by [`serve`] (or [`with_cors`] for a
    /// router an application mounts).
    pub(crate) fn router(self: &Arc<Self>) -> Router {
        let routes = pages::routes(
            Router::new().route(HEALTH, get(|| async { "ok" }).fallback(method_not_allowed)),
            &self.pages,
        );
        routes.fallback(http::entry).with_state(self.clone())
    }
}

/// A page or `/health` asked for with another method than GET: an
/// envelope 405, with the `Allow` header HTTP asks for.
pub(crate) async fn method_not_allowed() -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = crate::envelope::encode_response(
        &Err(crate::RpcError::new(405, "this path answers GET only")),
        None,
    );
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        [
            (axum::http::header::ALLOW, "GET, HEAD"),
            (axum::http::header::CONTENT_TYPE, "application/json"),
        ],
        body,
    )
        .into_response()
}

/// Serves the gateway on a bound listener until `stop` resolves.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = gateway.router();
    let cors = cors_layer(&gateway.http.cors)
        .map(|layer| tower_layer::Layer::layer(&layer, router.clone()));
    let mut get_only: Vec<String> = pages::paths(&gateway.pages).collect();
    get_only.push(HEALTH.to_owned());
    let http = gateway.http.clone();
    let shared = Arc::new(Shared {
        gateway,
        get_only,
        router,
        cors,
    });
    // Each connection holds what its requests share through a reference
    // of its own, so that the reference counting its requests do stays
    // within the thread that serves it instead of moving one counter
    // between threads on every request.
    let service = move |accepted| {
        Served(Arc::new(Here {
            shared: shared.clone(),
            accepted,
        }))
    };
    listener::serve(listener, service, &http, stop).await
}

/// The router with the CORS layer, for mounting in an application.
pub(crate) fn with_cors(router: Router, cors: &Cors) -> Router {
    match cors_layer(cors) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// What the server's own listener runs for each request of a connection.
///
/// Requests that carry an `Origin` (those from browsers) go through the
/// CORS layer around the router; CORS headers mean nothing to other
/// clients, and computing them is a large share of a small call's cost.
/// A call (`POST` to any path no page takes) from any other client goes
/// straight to [`http::call`], where the router's fallback
/// ([`http::entry`]) sends it too: the router's own work for it (matching
/// the path, the extensions it adds, its boxed service) was about a
/// seventh of a small call's instructions. Everything else goes through
/// the router, with the connection as an extension.
#[derive(Clone)]
struct Served(Arc<Here>);

/// A connection's own reference to what every connection shares.
struct Here {
    shared: Arc<Shared>,
    accepted: listener::Accepted,
}

struct Shared {
    gateway: Arc<Gateway>,
    /// The paths of the router's own routes, which answer GET only.
    get_only: Vec<String>,
    router: Router,
    cors: Option<CorsService>,
}

/// What owns a request's hold on the gateway: its own reference, or its
/// connection's.
pub(crate) trait Held: Send + Sync + 'static {
    fn gateway(&self) -> &Arc<Gateway>;
}

impl Held for Arc<Gateway> {
    fn gateway(&self) -> &Arc<Gateway> {
        self
    }
}

impl Held for Served {
    fn gateway(&self) -> &Arc<Gateway> {
        &self.0.shared.gateway
    }
}

type CorsService = tower_http::cors::Cors<Router>;

impl tower_service::Service<axum::extract::Request> for Served {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::Either<
        futures_util::future::Either<
            <CorsService as tower_service::Service<axum::extract::Request>>::Future,
            <Router as tower_service::Service<axum::extract::Request>>::Future,
        >,
        futures_util::future::Map<
            http::HttpCall<Served>,
            fn(axum::response::Response) -> Result<axum::response::Response, Self::Error>,
        >,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // A router is always ready, and so is CORS around one.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: axum::extract::Request) -> Self::Future {
        use futures_util::FutureExt;
        use futures_util::future::Either;
        let shared = &*self.0.shared;
        let browser = request.headers().contains_key(axum::http::header::ORIGIN);
        if !browser || shared.cors.is_none() {
            let path = request.uri().path();
            if request.method() == axum::http::Method::POST
                && !shared.get_only.iter().any(|page| page == path)
            {
                let peer = Some(self.0.accepted.peer());
                let call = http::call(self.clone(), peer, request);
                return Either::Right(call.map(Ok));
            }
        }
        request.extensions_mut().insert(self.0.accepted.clone());
        Either::Left(match &shared.cors {
            Some(cors) if browser => Either::Left(cors.clone().call(request)),
            _ => Either::Right(shared.router.clone().call(request)),
        })
    }
}

fn cors_layer(cors: &Cors) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    let base = CorsLayer::new()
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers(Any);
    match cors {
        Cors::AnyOrigin => Some(base.allow_origin(Any)),
        Cors::Origins(origins) => {
            let origins = origins
                .iter()
                .filter_map(|origin| origin.parse().ok())
                .collect::<Vec<axum::http::HeaderValue>>();
            Some(base.allow_origin(AllowOrigin::list(origins)))
        }
        Cors::Disabled => None,
    }
}

/// A request in one of the common shapes, read straight from its bytes
/// with its args kept as text (and decoded, where the registry has the
/// decoder of the procedure it names).
pub(crate) enum Common {
    Envelope(crate::envelope::Envelope),
    JsonRpc(crate::jsonrpc::Request),
}

/// Reads a body or frame in one of the common shapes, or `None` for the
/// general reading. JSON-RPC clients write `"jsonrpc"` first: a request
/// that starts so is read as JSON-RPC first, and anything else as an
/// envelope first, so that each is read once.
pub(crate) fn read_common(
    bytes: &axum::body::Bytes,
    registry: &crate::registry::Registry,
) -> Option<Common> {
    use crate::{envelope, jsonrpc};
    let decoder = |address: &crate::Address| registry.get(address)?.decode_prefix;
    let method_decoder = |method: &str| {
        let address = jsonrpc::address(method, |address| registry.get(address).is_some());
        decoder(&address)
    };
    let envelope = || envelope::parse_common_call(bytes, decoder).map(Common::Envelope);
    let jsonrpc = || jsonrpc::parse_common_request(bytes, method_decoder).map(Common::JsonRpc);
    if jsonrpc::named_first(bytes) {
        jsonrpc().or_else(envelope)
    } else {
        envelope().or_else(jsonrpc)
    }
}

/// What the calls of one request, or of one WebSocket connection, share:
/// their metadata, and the trace the request's headers continue. The
/// headers are read in one pass, which costs less than a lookup of each
/// name among the few a request has.
pub(crate) struct Source {
    pub(crate) metadata: Arc<crate::Metadata>,
    trace: Option<(crate::TraceId, crate::trace::TraceContext)>,
}

impl Source {
    /// The client's address is a valid `X-Real-IP` first, else the
    /// socket's peer (unknown when a mounted router is served without
    /// connect info); the trace is a valid `traceparent`'s (with its
    /// `tracestate`).
    pub(crate) fn new(
        transport: &'static str,
        headers: axum::http::HeaderMap,
        peer: Option<std::net::SocketAddr>,
        connection_id: Option<String>,
    ) -> Source {
        use axum::http::HeaderName;
        // Compared as names, not as text: a standard name (most of a
        // request's) then differs at once, without its text looked up.
        static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
        static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
        static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
        let (mut real_ip, mut traceparent, mut tracestate) = (None, None, None);
        for (name, value) in &headers {
            let first = if *name == X_REAL_IP {
                &mut real_ip
            } else if *name == TRACEPARENT {
                &mut traceparent
            } else if *name == TRACESTATE {
                &mut tracestate
            } else {
                continue;
            };
            first.get_or_insert(value);
        }
        fn text(value: Option<&axum::http::HeaderValue>) -> Option<&str> {
            value?.to_str().ok()
        }
        let ip = text(real_ip)
            .and_then(|value| value.trim().parse().ok())
            .or_else(|| peer.map(|peer| peer.ip()));
        let trace = text(traceparent)
            .and_then(crate::trace::TraceParent::parse)
            .map(|parent| {
                let context = crate::trace::TraceContext {
                    parent_span_id: Some(parent.parent_id),
                    sampled: parent.sampled,
                    state: text(tracestate).map(str::to_owned),
                };
                (parent.trace_id, context)
            });
        let metadata = crate::Metadata {
            transport: transport.into(),
            ip,
            connection_id,
            headers,
        };
        Source {
            metadata: Arc::new(metadata),
            trace,
        }
    }
}

/// The credentials of a request: its `Authorization` header, else a
/// `token` query parameter (browsers cannot set headers on WebSocket
/// upgrades or page loads) as a bearer token.
pub(crate) fn authorization(
    headers: &axum::http::HeaderMap,
    query_token: Option<&str>,
) -> Option<String> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            query_token
                .filter(|token| !token.is_empty())
                .map(|token| format!("Bearer {token}"))
        })
}

/// A call from a client of a transport: external, with a fresh trace id
/// unless its source continues a trace. (Boxed from the start: it moves
/// through the pipeline's stages into the handler's context, as a pointer
/// rather than its few hundred bytes.)
pub(crate) fn client_call(
    gateway: &Gateway,
    address: crate::Address,
    args: crate::Args,
    source: &Source,
) -> Box<crate::Call> {
    let mut call = Box::new(crate::Call::new(address, args));
    let metadata = &source.metadata;
    call.caller = crate::Caller::Client {
        transport: metadata.transport.clone(),
        connection_id: metadata.connection_id.clone(),
        ip: metadata.ip,
        server: gateway.pipeline.name.clone(),
    };
    if let Some((trace_id, trace)) = &source.trace {
        call.trace_id = *trace_id;
        call.trace = trace.clone();
    }
    call.metadata = metadata.clone();
    call
}

/// A call's own `traceparent` field (from its envelope) wins over the
/// request's or connection's.
pub(crate) fn continue_trace(
    call: &mut crate::Call,
    traceparent: Option<&str>,
    tracestate: Option<String>,
) {
    if let Some(parent) = traceparent.and_then(crate::trace::TraceParent::parse) {
        call.trace_id = parent.trace_id;
        call.trace = crate::trace::TraceContext {
            parent_span_id: Some(parent.parent_id),
            sampled: parent.sampled,
            state: tracestate,
        };
    }
}
