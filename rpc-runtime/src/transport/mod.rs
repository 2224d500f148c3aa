//! The gateway transports on one port: HTTP calls, health, and (in
//! `ws.rs`) WebSocket upgrades. Each transport turns its input into a
//! [`Call`](crate::Call) and hands it to the dispatcher.

mod http;

use crate::dispatch::Dispatcher;
use crate::server::Cors;
use axum::Router;
use axum::routing::get;
use std::sync::Arc;

pub(crate) use http::HttpConfig;

/// What every route handler shares.
pub(crate) struct Gateway {
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) http: HttpConfig,
}

pub(crate) fn router(dispatcher: Arc<Dispatcher>, http: HttpConfig) -> Router {
    let cors = cors_layer(&http.cors);
    let gateway = Arc::new(Gateway { dispatcher, http });
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .fallback(http::entry)
        .with_state(gateway);
    match cors {
        Some(layer) => router.layer(layer),
        None => router,
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

/// The client's address: `X-Real-IP` first, else the socket's peer.
pub(crate) fn client_ip(headers: &axum::http::HeaderMap, peer: std::net::SocketAddr) -> String {
    headers
        .get("x-real-ip")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|ip| !ip.is_empty() && ip.len() <= 64)
        .map_or_else(|| peer.ip().to_string(), str::to_owned)
}

/// A fresh trace id for a call that enters through a transport.
pub(crate) fn trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
