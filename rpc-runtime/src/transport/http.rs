//! `POST /` (and any path no other route takes): one call per request,
//! stateless, identity in every envelope (protocol section 3).

use super::{Common, Gateway, Source};
use crate::envelope::{self, Malformed};
use crate::jsonrpc::{self, Incoming};
use crate::pipeline::{Dispatched, Entry};
use crate::procedure::BoxFuture;
use crate::{Call, Data, Identity, RpcError};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

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

/// A request [`entry`] takes, from a client at `peer`, as a call whose
/// future answers it.
pub(crate) fn call<H: super::Held + Unpin>(
    held: H,
    peer: Option<SocketAddr>,
    request: Request,
) -> HttpCall<H> {
    let gateway: &Gateway = held.gateway();
    let waiting = if gateway.ws.enabled
        && request.method() == Method::GET
        && is_websocket_upgrade(request.headers())
    {
        let gateway = held.gateway().clone();
        Box::pin(super::ws::upgrade(gateway, peer, request)) as BoxFuture<Response>
    } else if request.method() != Method::POST {
        let error = RpcError::new(405, "send calls as POST with a JSON envelope");
        Box::pin(std::future::ready(respond(
            &gateway.http,
            &Err(error),
            None,
        )))
    } else {
        let (parts, body) = request.into_parts();
        return HttpCall(Stage::Start(Start {
            held,
            peer,
            headers: parts.headers,
            body,
        }));
    };
    HttpCall(Stage::Waiting(waiting))
}

/// The future of an HTTP call. Its first poll answers the call there and
/// then when the body came with the head and the procedure does not wait
/// (most calls), with what the call needs on the stack; anything else
/// goes on in a box of its own. Until then it holds only what a call
/// starts from, which the server keeps where it keeps each connection's
/// request in progress.
pub(crate) struct HttpCall<H>(Stage<H>);

enum Stage<H> {
    Start(Start<H>),
    Waiting(BoxFuture<Response>),
    Answered,
}

/// What a call starts from: the request's headers and body, and who
/// holds the gateway.
struct Start<H> {
    held: H,
    peer: Option<SocketAddr>,
    headers: HeaderMap,
    body: Body,
}

impl<H: super::Held + Unpin> Future for HttpCall<H> {
    type Output = Response;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let stage = &mut self.get_mut().0;
        loop {
            match stage {
                Stage::Waiting(waiting) => return waiting.as_mut().poll(cx),
                Stage::Answered => panic!("an HTTP call's future was polled after its answer"),
                Stage::Start(_) => {}
            }
            if let Stage::Start(start) = std::mem::replace(stage, Stage::Answered) {
                match start.first_poll(cx) {
                    Ok(response) => return Poll::Ready(response),
                    Err(waiting) => *stage = Stage::Waiting(waiting),
                }
            }
        }
    }
}

impl<H: super::Held> Start<H> {
    /// The answer, or what is left to do when something waits.
    fn first_poll(self, cx: &mut Context<'_>) -> Result<Response, BoxFuture<Response>> {
        let Start {
            held,
            peer,
            headers,
            mut body,
        } = self;
        let config = &held.gateway().http;
        let declared = axum::body::HttpBody::size_hint(&body).exact();
        let first = match body_now(&mut body, declared, config, cx) {
            BodyNow::Whole(bytes) => return answer(held, peer, headers, bytes),
            BodyNow::Refused(error) => return Ok(respond(config, &Err(error), None)),
            BodyNow::Partial(first) => first,
        };
        Err(Box::pin(async move {
            let config = &held.gateway().http;
            match read_body(body, first, declared, config).await {
                Ok(bytes) => match answer(held, peer, headers, bytes) {
                    Ok(response) => response,
                    Err(waiting) => waiting.await,
                },
                Err(error) => respond(config, &Err(error), None),
            }
        }))
    }
}

/// The call a request's body makes, handed to the pipeline: its response,
/// or what is left to do when something waits. The common shapes are
/// read first, their args kept as text; anything else in a box of its own.
fn answer<H: super::Held>(
    held: H,
    peer: Option<SocketAddr>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, BoxFuture<Response>> {
    let gateway: &Gateway = held.gateway();
    let Some(common) = super::read_common(&bytes, &gateway.pipeline.registry) else {
        return Err(Box::pin(general(held, peer, headers, bytes)));
    };
    let (call, reply) = match common {
        Common::Envelope(envelope) => envelope_call(gateway, headers, peer, envelope),
        Common::JsonRpc(request) => jsonrpc_call(gateway, headers, peer, request),
    };
    match gateway.pipeline.dispatch(call, Entry::Transport) {
        Dispatched::Now(result) => Ok(reply.write(&gateway.http, &result)),
        Dispatched::Later(waiting) => Err(Box::pin(async move {
            let result = waiting.await;
            reply.write(&held.gateway().http, &result)
        })),
    }
}

/// Any request but the common call shape: its response.
async fn general<H: super::Held>(
    held: H,
    peer: Option<SocketAddr>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let gateway: &Gateway = held.gateway();
    match general_request(gateway, headers, peer, &bytes).await {
        Ok((envelope, headers)) => {
            let (call, reply) = envelope_call(gateway, headers, peer, envelope);
            let result = gateway.pipeline.dispatch(call, Entry::Transport).await;
            reply.write(&gateway.http, &result)
        }
        Err(response) => response,
    }
}

/// How a call's answer is written: as an envelope with its correlation
/// id, or as a JSON-RPC response with its id (none for a notification).
enum Reply {
    Envelope(Option<Value>),
    JsonRpc(Option<Value>),
}

impl Reply {
    fn write(self, config: &HttpConfig, result: &Result<Data, RpcError>) -> Response {
        match self {
            Reply::Envelope(correlation_id) => respond(config, result, correlation_id.as_ref()),
            Reply::JsonRpc(id) => jsonrpc_response(jsonrpc::response_to(id, result)),
        }
    }
}

/// The call an envelope makes.
fn envelope_call(
    gateway: &Gateway,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
    envelope: envelope::Envelope,
) -> (Box<Call>, Reply) {
    let source = Source::new("http", headers, peer, None);
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
    headers: HeaderMap,
    peer: Option<SocketAddr>,
    mut request: jsonrpc::Request,
) -> (Box<Call>, Reply) {
    let identity = super::authorization(&headers, None).map(Identity::with_authorization);
    let source = Source::new("http", headers, peer, None);
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
    headers: HeaderMap,
    peer: Option<SocketAddr>,
    bytes: &[u8],
) -> Result<(envelope::Envelope, HeaderMap), Response> {
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
            Ok(incoming) => jsonrpc_entry(gateway, headers, peer, incoming).await,
            Err(refused) => jsonrpc_response(Some(jsonrpc::write_refused(&refused))),
        };
        return Err(response);
    }
    envelope::object(value)
        .and_then(envelope::parse_call)
        .map(|envelope| (envelope, headers))
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
    headers: HeaderMap,
    peer: Option<SocketAddr>,
    incoming: Incoming,
) -> Response {
    let identity = super::authorization(&headers, None).map(Identity::with_authorization);
    let source = Source::new("http", headers, peer, None);
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

/// What a body's first poll finds.
enum BodyNow {
    /// The whole body, which came with the head (most requests).
    Whole(Bytes),
    Refused(RpcError),
    /// Still to come, after its first piece if one came.
    Partial(Option<Bytes>),
}

/// The body, when it came whole with the head: the common case, read
/// without a future or a timer of its own. `declared` is the length the
/// request's head gave.
fn body_now(
    body: &mut Body,
    declared: Option<u64>,
    config: &HttpConfig,
    cx: &mut Context<'_>,
) -> BodyNow {
    use axum::body::HttpBody as _;
    let limit = config.body_limit;
    if declared.is_some_and(|length| length > limit as u64) {
        return BodyNow::Refused(too_large(limit));
    }
    if body.is_end_stream() {
        return BodyNow::Whole(Bytes::new());
    }
    match std::pin::Pin::new(&mut *body).poll_frame(cx) {
        Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
            Ok(data) if body.is_end_stream() => {
                if data.len() > limit {
                    BodyNow::Refused(too_large(limit))
                } else if config.budget.body(data.len()).is_none() {
                    BodyNow::Refused(busy())
                } else {
                    BodyNow::Whole(data)
                }
            }
            Ok(data) => BodyNow::Partial(Some(data)),
            Err(_trailers) => BodyNow::Partial(None),
        },
        Poll::Ready(Some(Err(_))) => BodyNow::Refused(unreadable()),
        Poll::Ready(None) => BodyNow::Whole(Bytes::new()),
        Poll::Pending => BodyNow::Partial(None),
    }
}

fn too_large(limit: usize) -> RpcError {
    RpcError::new(
        413,
        format!("the body is larger than the limit of {limit} bytes"),
    )
}

fn busy() -> RpcError {
    RpcError::new(
        503,
        "the server is reading as many request bodies as it holds at once; try again",
    )
}

fn unreadable() -> RpcError {
    RpcError::bad_request("the body could not be read")
}

/// Reads the rest of a body that did not come whole with its head, after
/// its `first` piece, up to the size limit, within the header timeout: a
/// client that announces a body and stalls is answered 408 (and its
/// connection closed, since the rest of the body is still to come).
async fn read_body(
    body: Body,
    first: Option<Bytes>,
    declared: Option<u64>,
    config: &HttpConfig,
) -> Result<Bytes, RpcError> {
    tokio::time::timeout(
        config.header_timeout,
        read_whole_body(body, first, declared, config),
    )
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
    mut first: Option<Bytes>,
    declared: Option<u64>,
    config: &HttpConfig,
) -> Result<Bytes, RpcError> {
    let limit = config.body_limit;
    // The body's bytes count against the server's budget while they are
    // held: all of the declared length at once, else as they arrive.
    let mut held = config
        .budget
        .body(declared.map_or(0, |length| length as usize))
        .ok_or_else(busy)?;
    let mut joined: Vec<u8> = Vec::new();
    if let Some(first) = &first {
        if first.len() > limit {
            return Err(too_large(limit));
        }
        if declared.is_none() && !held.grow(first.len()) {
            return Err(busy());
        }
    }
    let left = limit - first.as_ref().map_or(0, Bytes::len);
    let mut body = http_body_util::Limited::new(body, left);
    // Most bodies arrive in one piece, which is kept as it came.
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        let frame = frame.map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                too_large(limit)
            } else {
                unreadable()
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

    /// The gateway of a server with the default settings.
    fn gateway() -> Arc<Gateway> {
        let server = crate::Server::builder().build().expect("builds");
        Gateway::new(
            server.pipeline().clone(),
            HttpConfig::default(),
            super::super::WsConfig::default(),
            super::super::PagesConfig::default(),
        )
    }

    /// Each HTTP call's future is kept where the server keeps the
    /// connection's request in progress, and until its first poll it
    /// holds only the request's headers and body: the rare paths
    /// (a body still to come, malformed input, JSON-RPC batches, a
    /// procedure that waits) box their own state.
    #[test]
    fn the_future_of_an_http_call_is_small() {
        let answer = call(gateway(), None, Request::new(Body::empty()));
        let size = std::mem::size_of_val(&answer);
        assert!(size <= 256, "the future of an HTTP call takes {size} bytes");
    }

    /// A call whose body came with its head, to a procedure that does not
    /// wait, is answered in its future's first poll, with no box or timer
    /// of its own.
    #[test]
    fn a_call_that_does_not_wait_is_answered_in_its_first_poll() {
        let request = Request::post("/")
            .body(Body::from(r#"{"scope":"none","procedure":"here"}"#))
            .expect("a request");
        let mut answer = call(gateway(), None, request);
        assert!(matches!(answer.0, Stage::Start(_)));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match std::pin::Pin::new(&mut answer).poll(&mut cx) {
            Poll::Ready(response) => assert_eq!(response.status(), StatusCode::NOT_FOUND),
            Poll::Pending => panic!("the call waited"),
        }
        assert!(matches!(answer.0, Stage::Answered));
    }
}
