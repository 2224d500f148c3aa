//! `POST /` (and any path no other route takes): one call per request,
//! stateless, identity in every envelope (protocol section 3).

use super::{Common, Gateway, Source};
use crate::envelope::{self, Malformed};
use crate::jsonrpc::{self, Incoming};
use crate::pipeline::Entry;
use crate::{Call, Data, Identity, RpcError};
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
    // The common shapes first, their args kept as text; anything else in
    // a box of its own, so that the common call's future stays small.
    let response = {
        let (common, parts) = match super::read_common(&bytes, &gateway.pipeline.registry) {
            Some(common) => (common, parts),
            None => match Box::pin(general_request(gateway, parts, peer, &bytes)).await {
                Ok((envelope, parts)) => (Common::Envelope(envelope), parts),
                Err(response) => return response,
            },
        };
        answer(gateway, parts, peer, common)
    };
    response.await
}

/// Hands the call a request makes to the pipeline; the future answers
/// it. (The call is built before the future is: a future would keep
/// room for it, and for the request's parts, while the answer is
/// awaited.)
fn answer(
    gateway: &Gateway,
    parts: axum::http::request::Parts,
    peer: Option<SocketAddr>,
    common: Common,
) -> impl Future<Output = Response> + Send + '_ {
    let (call, reply) = match common {
        Common::Envelope(envelope) => envelope_call(gateway, parts, peer, envelope),
        Common::JsonRpc(request) => jsonrpc_call(gateway, parts, peer, request),
    };
    // A combinator rather than an `async` block, which would hold the
    // pipeline's future twice (as captured, and as awaited).
    let answer = gateway.pipeline.dispatch(call, Entry::Transport);
    futures_util::FutureExt::map(answer, move |result| match reply {
        Reply::Envelope(correlation_id) => respond(&gateway.http, &result, correlation_id.as_ref()),
        Reply::JsonRpc(id) => jsonrpc_response(jsonrpc::response_to(id, &result)),
    })
}

/// How a call's answer is written: as an envelope with its correlation
/// id, or as a JSON-RPC response with its id (none for a notification).
enum Reply {
    Envelope(Option<Value>),
    JsonRpc(Option<Value>),
}

/// The call an envelope makes.
fn envelope_call(
    gateway: &Gateway,
    parts: axum::http::request::Parts,
    peer: Option<SocketAddr>,
    envelope: envelope::Envelope,
) -> (Box<Call>, Reply) {
    let source = Source::new("http", parts.headers, peer, None);
    let mut call = super::client_call(gateway, envelope.address, envelope.args, &source);
    call.identity = envelope.identity;
    super::continue_trace(
        &mut call,
        envelope.traceparent.as_deref(),
        envelope.tracestate,
    );
    (call, Reply::Envelope(envelope.correlation_id))
}

/// The call a JSON-RPC request (not a batch) makes: identity from the
/// `Authorization` header.
fn jsonrpc_call(
    gateway: &Gateway,
    parts: axum::http::request::Parts,
    peer: Option<SocketAddr>,
    mut request: jsonrpc::Request,
) -> (Box<Call>, Reply) {
    let identity = super::authorization(&parts.headers, None).map(Identity::with_authorization);
    let source = Source::new("http", parts.headers, peer, None);
    let id = request.id.take();
    let mut call = super::jsonrpc::call(gateway, request, &source);
    call.identity = identity;
    (call, Reply::JsonRpc(id))
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

/// A JSON-RPC batch, or a request not in the common shape: identity
/// from the `Authorization` header.
async fn jsonrpc_entry(
    gateway: &Gateway,
    parts: axum::http::request::Parts,
    peer: Option<SocketAddr>,
    incoming: Incoming,
) -> Response {
    let identity = super::authorization(&parts.headers, None).map(Identity::with_authorization);
    let source = Source::new("http", parts.headers, peer, None);
    let work = super::jsonrpc::work(gateway, incoming, |request| {
        let mut call = super::jsonrpc::call(gateway, request, &source);
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
    result: &Result<Data, RpcError>,
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
