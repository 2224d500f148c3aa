//! `POST /` (and any path no other route takes): one call per request,
//! stateless, identity in every envelope (protocol section 3).

use super::{Common, Gateway, client_ip};
use crate::envelope::{self, Malformed};
use crate::jsonrpc::{self, Incoming};
use crate::pipeline::Entry;
use crate::{Identity, Metadata, RpcError};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;

/// Which origins browsers may call from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cors {
    /// Any origin, like the Node.js framework (the default).
    #[default]
    AnyOrigin,
    /// Only these origins, e.g. `https://app.example.com`.
    Origins(Vec<String>),
    /// No CORS headers at all.
    Disabled,
}

/// The HTTP options.
#[derive(Clone)]
pub(crate) struct HttpConfig {
    pub(crate) body_limit: usize,
    pub(crate) always_200: bool,
    pub(crate) cors: Cors,
    pub(crate) header_timeout: std::time::Duration,
    /// A write (of an answer, or to a WebSocket) that makes no progress for
    /// this long ends the connection.
    pub(crate) write_timeout: std::time::Duration,
    /// The most a connection may have read ahead (pipelined requests).
    pub(crate) read_buffer: usize,
    /// Connections and body bytes across the whole server.
    pub(crate) budget: super::budget::Budget,
    /// Requests a JSON-RPC batch may hold (over HTTP and WebSocket).
    pub(crate) max_batch: usize,
}

/// Connections a server holds at most, by default.
pub(crate) const MAX_CONNECTIONS: usize = 10_000;
/// Bytes of request bodies a server reads at once, by default.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit: 1024 * 1024,
            always_200: false,
            cors: Cors::AnyOrigin,
            header_timeout: std::time::Duration::from_secs(30),
            write_timeout: std::time::Duration::from_secs(30),
            read_buffer: 64 * 1024,
            budget: super::budget::Budget::new(MAX_CONNECTIONS, MAX_BODY_BYTES),
            max_batch: crate::jsonrpc::MAX_BATCH,
        }
    }
}

/// Every request no other route took.
pub(crate) async fn entry(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let peer = super::listener::peer(request.extensions());
    let (parts, body) = request.into_parts();
    call(gateway, peer, parts, body).await
}

/// A request [`entry`] takes, from a client at `peer`. (The request
/// comes in parts: a future keeps its arguments to the end, and a
/// request taken apart inside would be held twice.)
pub(crate) async fn call(
    held: impl super::Held,
    peer: Option<SocketAddr>,
    parts: axum::http::request::Parts,
    body: Body,
) -> Response {
    let gateway: &Gateway = held.gateway();
    if gateway.ws.enabled && parts.method == Method::GET && is_websocket_upgrade(&parts.headers) {
        let request = Request::from_parts(parts, body);
        let gateway = held.gateway().clone();
        return Box::pin(super::ws::upgrade(gateway, peer, request)).await;
    }
    if parts.method != Method::POST {
        let error = RpcError::new(405, "send calls as POST with a JSON envelope");
        return respond(&gateway.http, &Err(error), None);
    }
    let bytes = match read_body(body, &parts.headers, &gateway.http).await {
        Ok(bytes) => bytes,
        Err(error) => return respond(&gateway.http, &Err(error), None),
    };
    // The common shape first, its args kept as text; anything else in a
    // box of its own, so that the common call's future stays small.
    let (envelope, parts) = match super::read_common(&bytes) {
        Some(Common::Envelope(envelope)) => (envelope, parts),
        other => match other_request(gateway, parts, peer, other, &bytes).await {
            Ok(read) => read,
            Err(response) => return response,
        },
    };
    let (answer, correlation_id) = start(gateway, parts, peer, envelope);
    let result = answer.await;
    respond(&gateway.http, &result, correlation_id.as_ref())
}

/// Turns an envelope into a call and hands it to the pipeline; gives
/// the answer to wait for and the correlation id to echo.
fn start(
    gateway: &Gateway,
    parts: axum::http::request::Parts,
    peer: Option<SocketAddr>,
    envelope: envelope::Envelope,
) -> (
    impl Future<Output = Result<Value, RpcError>> + Send + '_,
    Option<Value>,
) {
    let metadata = Metadata {
        transport: "http".into(),
        ip: client_ip(&parts.headers, peer),
        connection_id: None,
        headers: parts.headers,
    };
    let mut call = super::client_call(gateway, envelope.address, envelope.args, metadata);
    call.identity = envelope.identity;
    super::continue_trace(
        &mut call,
        envelope.traceparent.as_deref(),
        envelope.tracestate,
    );
    let answer = gateway.pipeline.dispatch(call, Entry::Transport);
    (answer, envelope.correlation_id)
}

/// Any request but an envelope in the common shape: a JSON-RPC request
/// in its common shape, or anything read the general way; each in a box
/// of its own size.
fn other_request<'a>(
    gateway: &'a Gateway,
    parts: axum::http::request::Parts,
    peer: Option<SocketAddr>,
    common: Option<Common>,
    bytes: &'a Bytes,
) -> futures_util::future::BoxFuture<
    'a,
    Result<(envelope::Envelope, axum::http::request::Parts), Response>,
> {
    match common {
        Some(Common::JsonRpc(request)) => Box::pin(async move {
            let incoming = Incoming::Single(Ok(request));
            Err(jsonrpc_entry(gateway, parts, peer, incoming).await)
        }),
        Some(Common::Envelope(envelope)) => Box::pin(std::future::ready(Ok((envelope, parts)))),
        None => Box::pin(general_request(gateway, parts, peer, bytes)),
    }
}

/// Any request but the common call shape, read through a `Value`: an
/// envelope (and the request's parts back), or the response already
/// (malformed, or JSON-RPC).
async fn general_request(
    gateway: &Gateway,
    parts: axum::http::request::Parts,
    peer: Option<SocketAddr>,
    bytes: &[u8],
) -> Result<(envelope::Envelope, axum::http::request::Parts), Response> {
    let value = match envelope::parse_json(bytes) {
        Ok(value) => value,
        Err(malformed) if jsonrpc::looks_like(bytes) => {
            let error = jsonrpc::ErrorObject::new(jsonrpc::PARSE_ERROR, malformed.error.message());
            let mut out = Vec::new();
            let _ = jsonrpc::write_error(&mut out, &Value::Null, &error);
            return Err(jsonrpc_response(Some(out)));
        }
        Err(malformed) => return Err(respond(&gateway.http, &Err(malformed.error), None)),
    };
    if jsonrpc::is_jsonrpc(&value) {
        let response = match jsonrpc::parse(value, gateway.http.max_batch) {
            Ok(incoming) => jsonrpc_entry(gateway, parts, peer, incoming).await,
            Err(refused) => jsonrpc_response(Some(jsonrpc::write_refused(&refused))),
        };
        return Err(response);
    }
    envelope::object(value)
        .and_then(envelope::parse_call)
        .map(|envelope| (envelope, parts))
        .map_err(
            |Malformed {
                 error,
                 correlation_id,
             }| respond(&gateway.http, &Err(error), correlation_id.as_ref()),
        )
}

/// A JSON-RPC request or batch: identity from the `Authorization` header.
async fn jsonrpc_entry(
    gateway: &Gateway,
    parts: axum::http::request::Parts,
    peer: Option<SocketAddr>,
    incoming: Incoming,
) -> Response {
    let identity = super::authorization(&parts.headers, None).map(Identity::with_authorization);
    let metadata = Arc::new(Metadata {
        transport: "http".into(),
        ip: client_ip(&parts.headers, peer),
        connection_id: None,
        headers: parts.headers,
    });
    let work = super::jsonrpc::work(gateway, incoming, |request| {
        let mut call = super::jsonrpc::call(gateway, request, &metadata);
        call.identity = identity.clone();
        Ok(call)
    });
    jsonrpc_response(work.answer.await)
}

/// 200 with the answer, or 204 when every request was a notification.
fn jsonrpc_response(answer: Option<Vec<u8>>) -> Response {
    match answer {
        Some(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

/// Reads the body, up to the size limit, within the header timeout: a
/// client that announces a body and stalls is answered 408 (and its
/// connection closed, since the rest of the body is still to come).
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    config: &HttpConfig,
) -> Result<Bytes, RpcError> {
    let mut reading = std::pin::pin!(read_whole_body(body, headers, config));
    // Most bodies came with their head: they need no timer.
    if let Some(read) = futures_util::FutureExt::now_or_never(reading.as_mut()) {
        return read;
    }
    tokio::time::timeout(config.header_timeout, reading)
        .await
        .unwrap_or_else(|_| {
            Err(RpcError::new(
                408,
                format!(
                    "the body did not arrive within {} ms",
                    config.header_timeout.as_millis()
                ),
            ))
        })
}

async fn read_whole_body(
    body: Body,
    headers: &HeaderMap,
    config: &HttpConfig,
) -> Result<Bytes, RpcError> {
    let limit = config.body_limit;
    let too_large = || {
        RpcError::new(
            413,
            format!("the body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let busy = || {
        RpcError::new(
            503,
            "the server is reading as many request bodies as it holds at once; try again",
        )
    };
    // The body's bytes count against the server's budget while they are
    // held: all of the declared length at once, else as they arrive.
    let mut held = config
        .budget
        .body(declared.map_or(0, |length| length as usize))
        .ok_or_else(busy)?;
    let mut body = http_body_util::Limited::new(body, limit);
    // Most bodies arrive in one piece, which is kept as it came.
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        let frame = frame.map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                RpcError::bad_request("the body could not be read")
            }
        })?;
        if let Ok(data) = frame.into_data() {
            if declared.is_none() && !held.grow(data.len()) {
                return Err(busy());
            }
            match &first {
                None => first = Some(data),
                Some(first) => {
                    if joined.is_empty() {
                        joined.extend_from_slice(first);
                    }
                    joined.extend_from_slice(&data);
                }
            }
        }
    }
    Ok(if joined.is_empty() {
        first.unwrap_or_default()
    } else {
        Bytes::from(joined)
    })
}

fn respond(
    config: &HttpConfig,
    result: &Result<Value, RpcError>,
    correlation_id: Option<&Value>,
) -> Response {
    let status = match (config.always_200, result) {
        (true, _) | (false, Ok(_)) => StatusCode::OK,
        (false, Err(error)) => {
            StatusCode::from_u16(error.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
    };
    let body = envelope::encode_response(result, correlation_id);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each HTTP call's future is boxed once, by the server or a router;
    /// the rare paths (malformed input, JSON-RPC) box their own state,
    /// so that the common one stays small enough for the allocator's
    /// cheap sizes.
    #[test]
    fn the_future_of_an_http_call_is_small() {
        let server = crate::Server::builder().build().expect("builds");
        let gateway = super::super::Gateway::new(
            server.pipeline().clone(),
            HttpConfig::default(),
            super::super::WsConfig::default(),
            super::super::PagesConfig::default(),
        );
        let (parts, body) = Request::new(Body::empty()).into_parts();
        let answer = call(gateway, None, parts, body);
        let size = std::mem::size_of_val(&answer);
        assert!(
            size <= 1024,
            "the future of an HTTP call takes {size} bytes"
        );
    }
}
