//! `POST /` (and any path no other route takes): one call per request,
//! stateless, identity in every envelope (protocol section 3).

use super::{Gateway, client_ip};
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
    call(gateway, peer, request).await
}

/// A request [`entry`] takes, from a client at `peer`.
pub(crate) async fn call(
    gateway: Arc<Gateway>,
    peer: Option<SocketAddr>,
    request: Request,
) -> Response {
    if gateway.ws.enabled
        && request.method() == Method::GET
        && is_websocket_upgrade(request.headers())
    {
        return super::ws::upgrade(gateway, peer, request).await;
    }
    if request.method() != Method::POST {
        let error = RpcError::new(405, "send calls as POST with a JSON envelope");
        return respond(&gateway.http, &Err(error), None);
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match read_body(body, &parts.headers, &gateway.http).await {
        Ok(bytes) => bytes,
        Err(error) => return respond(&gateway.http, &Err(error), None),
    };
    // The common shapes first, their args kept as text.
    let envelope = match envelope::parse_common_call(&bytes) {
        Some(envelope) => envelope,
        None if let Some(request) = jsonrpc::parse_common_request(&bytes) => {
            return jsonrpc_entry(&gateway, parts, peer, Incoming::Single(Ok(request))).await;
        }
        None => match general_request(&gateway, parts, peer, &bytes).await {
            Ok((envelope, given_back)) => {
                parts = given_back;
                envelope
            }
            Err(response) => return response,
        },
    };
    let metadata = Metadata {
        transport: "http".into(),
        ip: client_ip(&parts.headers, peer),
        connection_id: None,
        headers: parts.headers,
    };
    let mut call = super::client_call(&gateway, envelope.address, envelope.args, metadata);
    call.identity = envelope.identity;
    super::continue_trace(
        &mut call,
        envelope.traceparent.as_deref(),
        envelope.tracestate,
    );
    let result = gateway.pipeline.dispatch(call, Entry::Transport).await;
    respond(&gateway.http, &result, envelope.correlation_id.as_ref())
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
