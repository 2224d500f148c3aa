//! WebSocket on the HTTP port (protocol section 4): identity per
//! connection, concurrent calls answered out of order, client messages,
//! server pushes, and the limits that keep one client from hurting the
//! server.
//!
//! Each connection is one task. Calls made on it are polled concurrently by
//! that task (no task per call); pushes from elsewhere arrive through an
//! unbounded queue whose size in bytes is capped.

use super::{Gateway, Source, client_call};
use crate::envelope::{self, Frame, Malformed};
use crate::events::run_hook;
use crate::hub::Listening;
use crate::hub::connections::{Connection, ConnectionHook, close_code};
use crate::hub::mesh::{MeshEvent, MeshEventKind};
use crate::jsonrpc::{self, Incoming};
use crate::pipeline::{Dispatched, Entry};
use crate::{Data, Identity, RpcError, ServerHandle};
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The WebSocket options.
#[derive(Clone)]
pub(crate) struct WsConfig {
    pub(crate) enabled: bool,
    pub(crate) max_frame: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) ping_interval: Duration,
    pub(crate) idle_timeout: Duration,
    /// How long a message may stay unfinished (its first bytes arrived,
    /// not its last), whatever control frames arrive meanwhile.
    pub(crate) message_timeout: Duration,
    pub(crate) max_queued_bytes: usize,
    pub(crate) write_timeout: Duration,
    pub(crate) allowed_origins: Option<Vec<String>>,
    pub(crate) require_token: bool,
    pub(crate) hooks: crate::hub::connections::ConnectionHooks,
    /// Client messages go to the mesh too.
    pub(crate) mesh_messages: bool,
    /// Connects, identity changes and disconnects go to the mesh too.
    pub(crate) mesh_events: bool,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            enabled: true,
            max_frame: 1024 * 1024,
            max_in_flight: 256,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            message_timeout: Duration::from_secs(30),
            max_queued_bytes: 8 * 1024 * 1024,
            write_timeout: Duration::from_secs(10),
            allowed_origins: None,
            require_token: false,
            hooks: Default::default(),
            mesh_messages: false,
            mesh_events: false,
        }
    }
}

/// How long a closing connection waits for the client's Close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Calls running on a connection (one call, or a JSON-RPC batch).
type Running = Pin<Box<dyn Future<Output = Done> + Send>>;

/// What running calls leave: how many they were, and the frame that
/// answers them (none for JSON-RPC notifications).
struct Done {
    calls: usize,
    frame: Option<String>,
}

/// Accepts or refuses an upgrade: allowed origins, then the bearer token
/// (`Authorization` header, or `token` query parameter for browsers).
pub(crate) async fn upgrade(
    gateway: Arc<Gateway>,
    peer: Option<SocketAddr>,
    request: Request,
) -> Response {
    let ws_config = &gateway.ws;
    let (mut parts, _body) = request.into_parts();
    if let Some(allowed) = &ws_config.allowed_origins {
        let origin = parts
            .headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        if !origin.is_some_and(|origin| allowed.iter().any(|a| a == origin)) {
            return refuse(
                StatusCode::FORBIDDEN,
                "this origin may not open WebSocket connections",
            );
        }
    }
    let token = query_token(parts.uri.query());
    let authorization = super::authorization(&parts.headers, token.as_deref());
    let mut identity = None;
    let mut user_id = None;
    match authorization {
        Some(authorization) => {
            let presented = Identity::with_authorization(authorization);
            if let (Some(authenticator), Some(token)) =
                (gateway.pipeline.authenticator(), presented.token())
            {
                match crate::auth::check(authenticator.as_ref(), token.to_owned()).await {
                    Ok(user) => user_id = Some(user),
                    Err(error) => return refuse(StatusCode::UNAUTHORIZED, error.message()),
                }
            }
            identity = Some(presented);
        }
        None if ws_config.require_token => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "a bearer token is required to connect",
            );
        }
        None => {}
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    // The connection keeps its place in the server's budget while it is a
    // WebSocket.
    // Both absent when the router is served by an application's own server.
    let accepted = super::listener::Accepted::of(&parts.extensions);
    let slot = accepted.map(|connection| connection.slot.clone());
    // Frames come now, not heads: the head timeout ends.
    if let Some(connection) = accepted {
        connection.requests.upgraded();
    }
    let bytes_read = accepted.map(|connection| connection.read.clone());
    let headers = parts.headers;
    let limit = ws_config.max_frame;
    let id = uuid::Uuid::new_v4().to_string();
    let source = Arc::new(Source::new("websocket", headers, peer, Some(id.clone())));
    let ip = source
        .metadata
        .ip
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let (connection, outbound) =
        Connection::new(id, ip, identity, user_id, ws_config.max_queued_bytes);
    // Listed before the handshake is answered, and answered once the
    // broker routes the pushes to it and to its user here: a client whose
    // connection is open receives them, whichever server sends them.
    // (Pushes meanwhile wait in its queue; an upgrade that fails drops the
    // listing.)
    let (listed, listening) = Listed::new(gateway.pipeline.handle.clone(), connection.clone());
    listening.wait().await;
    upgrade
        // The read buffer is allocated up front for every connection; a
        // small one keeps idle connections cheap.
        .read_buffer_size(2 * 1024)
        // Frames collect in the write buffer (which grows only as needed)
        // until the session flushes, so that the answers to the calls
        // that arrived together leave in one write; a buffer of 0 would
        // write every frame on its own.
        .write_buffer_size(64 * 1024)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            let mut session = Session::new(gateway, connection, source);
            session.unfinished = bytes_read.map(Unfinished::new);
            session.run(socket, outbound, listed, slot)
        })
}

fn query_token(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "token" && !value.is_empty()).then(|| value.to_owned())
    })
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = envelope::encode_response(
        &Err(RpcError::new(status.as_u16(), message.to_owned())),
        None,
    );
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The state of one connection's task.
struct Session {
    gateway: Arc<Gateway>,
    connection: Arc<Connection>,
    calls: FuturesUnordered<Running>,
    /// Calls running, counting each of a batch.
    in_flight: usize,
    /// Whether the client speaks JSON-RPC (it has sent a JSON-RPC frame):
    /// its pushes are then notifications, its refusals error objects.
    jsonrpc: bool,
    last_seen: Instant,
    /// The upgrade request's metadata and trace, shared by every call on
    /// the connection.
    source: Arc<Source>,
    /// Tells an unfinished message, when the connection's bytes are
    /// counted.
    unfinished: Option<Unfinished>,
}

/// Bytes read on the connection that no received frame accounts for yet
/// are an unfinished message (tungstenite assembles fragments and hands
/// control frames over meanwhile, so pings cannot keep one alive).
struct Unfinished {
    read: super::budget::BytesRead,
    /// The bytes read that received frames account for.
    accounted: u64,
    since: Option<Instant>,
}

impl Unfinished {
    fn new(read: super::budget::BytesRead) -> Self {
        Unfinished {
            accounted: read.get(),
            read,
            since: None,
        }
    }

    /// A whole message arrived: everything read so far is accounted for
    /// (bytes of the next one read with it count as accounted, which errs
    /// towards letting a message live).
    fn message(&mut self) {
        self.accounted = self.read.get();
        self.since = None;
    }

    /// A control frame arrived: its exact size on the wire (payload of at
    /// most 125 bytes, a 2-byte header and a client's 4-byte mask).
    fn control(&mut self, payload: usize) {
        self.accounted += payload as u64 + 6;
    }

    /// How long bytes have been waiting for the rest of their message.
    fn waiting(&mut self) -> Duration {
        if self.read.get() > self.accounted {
            self.since.get_or_insert_with(Instant::now).elapsed()
        } else {
            self.since = None;
            Duration::ZERO
        }
    }
}

/// Why the task stops.
enum Stop {
    /// The client closed or the socket failed: nothing more to send.
    Gone,
    /// Send this close code, then stop.
    Close(u16, &'static str),
}

/// Lists a connection in its server's hub while its task runs, and takes
/// it off however the task ends (a panicking hook included), so that
/// listings, pushes and a shutdown waiting for connections never count a
/// dead one.
struct Listed {
    handle: ServerHandle,
    connection: Arc<Connection>,
}

impl Listed {
    fn new(handle: ServerHandle, connection: Arc<Connection>) -> (Self, Listening) {
        let listening = handle.add_connection(connection.clone());
        (Listed { handle, connection }, listening)
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        self.handle.remove_connection(&self.connection);
    }
}

impl Session {
    fn new(gateway: Arc<Gateway>, connection: Arc<Connection>, source: Arc<Source>) -> Self {
        Session {
            gateway,
            connection,
            calls: FuturesUnordered::new(),
            unfinished: None,
            in_flight: 0,
            jsonrpc: false,
            last_seen: Instant::now(),
            source,
        }
    }

    /// The connection's task, until the connection ends; `slot` (its place
    /// in the server's budget) is given up last.
    // Not an `async fn`: rustc keeps an `async fn`'s arguments twice in its
    // future, and this one is the connection's task, kept while it is idle.
    #[allow(clippy::manual_async_fn, reason = "the arguments once")]
    fn run(
        mut self,
        mut socket: WebSocket,
        mut outbound: tokio::sync::mpsc::UnboundedReceiver<Utf8Bytes>,
        listed: Listed,
        slot: Option<super::budget::ConnectionSlot>,
    ) -> impl Future<Output = ()> + Send {
        async move {
            self.emit(&self.gateway.ws.hooks.connect);
            self.to_mesh(MeshEventKind::Connect, None);
            let ping_every = self.gateway.ws.ping_interval;
            let mut ping =
                tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
            // Registered once for the connection's life, not once per frame.
            let connection = self.connection.clone();
            let closing = connection.close_requested();
            tokio::pin!(closing);
            // A close that waits for the calls in flight, once asked for.
            let mut draining = None;
            let stop = loop {
                let step = tokio::select! {
                    biased;
                    code = &mut closing, if draining.is_none() => {
                        if self.connection.finishes_calls() {
                            draining = Some(code);
                            Ok(())
                        } else {
                            Err(Stop::Close(code, "closed by the server"))
                        }
                    }
                    Some(text) = outbound.recv() => {
                        self.push(&mut socket, text, &mut outbound).await
                    }
                    Some(done) = self.calls.next(), if !self.calls.is_empty() => {
                        self.finished(&mut socket, done).await
                    }
                    frame = socket.recv() => self.on_frame(&mut socket, frame).await,
                    _ = ping.tick() => self.keep_alive(&mut socket).await,
                };
                let flushed = match step {
                    Ok(()) => match self.drain_input(&mut socket).await {
                        Ok(()) => self.flush(&mut socket).await,
                        Err(stop) => Err(stop),
                    },
                    Err(stop) => Err(stop),
                };
                if let Err(stop) = flushed {
                    break stop;
                }
                if let Some(code) = draining
                    && self.calls.is_empty()
                {
                    break Stop::Close(code, "the server is shutting down");
                }
            };
            if let Stop::Close(code, reason) = stop {
                self.gateway.pipeline.telemetry.counters.closed(code);
                let close = Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                }));
                let _ =
                    tokio::time::timeout(self.gateway.ws.write_timeout, socket.send(close)).await;
                // The closing handshake: wait for the client's Close before the
                // socket is dropped. Dropping it with unread input would reset
                // the connection and could destroy the Close the client has not
                // read yet. A client that never answers is given one second.
                let _ = tokio::time::timeout(CLOSE_LINGER, async {
                    loop {
                        match socket.recv().await {
                            Some(Ok(Message::Close(_))) => return,
                            Some(Ok(_)) => {}
                            // Unreadable input (such as the rest of an oversized
                            // frame) ends the stream: give the client time to
                            // read the Close before the reset.
                            Some(Err(_)) | None => std::future::pending::<()>().await,
                        }
                    }
                })
                .await;
            }
            drop(listed);
            self.emit(&self.gateway.ws.hooks.disconnect);
            self.to_mesh(MeshEventKind::Disconnect, None);
            // The connection's place in the server's budget goes last.
            drop((self, socket, outbound));
            drop(slot);
        }
    }

    /// Writes a push, and the others already queued (a bounded number),
    /// so that a burst of pushes leaves in one write.
    async fn push(
        &mut self,
        socket: &mut WebSocket,
        first: Utf8Bytes,
        outbound: &mut tokio::sync::mpsc::UnboundedReceiver<Utf8Bytes>,
    ) -> Result<(), Stop> {
        const MAX_PUSHES_PER_WRITE: usize = 64;
        let mut text = first;
        for _ in 1..MAX_PUSHES_PER_WRITE {
            self.write_push(socket, text).await?;
            match outbound.try_recv() {
                Ok(more) => text = more,
                Err(_) => return Ok(()),
            }
        }
        self.write_push(socket, text).await
    }

    async fn write_push(&mut self, socket: &mut WebSocket, text: Utf8Bytes) -> Result<(), Stop> {
        let size = text.len();
        let text = match self.jsonrpc {
            true => jsonrpc::notification_from_push(&text).map_or(text, Utf8Bytes::from),
            false => text,
        };
        self.feed(socket, Message::Text(text)).await?;
        self.connection.written(size);
        Ok(())
    }

    /// Handles the frames that already arrived (a client with calls in
    /// flight sends them back to back) before anything is flushed, so that
    /// their answers leave in one write instead of one each. Bounded, so
    /// that a client streaming frames still sees its answers.
    async fn drain_input(&mut self, socket: &mut WebSocket) -> Result<(), Stop> {
        const MAX_FRAMES_PER_WRITE: usize = 64;
        for _ in 0..MAX_FRAMES_PER_WRITE {
            // `recv` is cancel-safe: a frame not complete yet stays in the
            // socket's buffer for the next poll.
            match socket.recv().now_or_never() {
                Some(frame) => self.on_frame(socket, frame).await?,
                None => break,
            }
        }
        Ok(())
    }

    fn emit(&self, hooks: &[ConnectionHook]) {
        if hooks.is_empty() {
            return;
        }
        let info = self.connection.info();
        for hook in hooks {
            run_hook("connection", || hook(&info));
        }
    }

    async fn on_frame(
        &mut self,
        socket: &mut WebSocket,
        frame: Option<Result<Message, axum::Error>>,
    ) -> Result<(), Stop> {
        self.last_seen = Instant::now();
        match frame {
            None | Some(Ok(Message::Close(_))) => Err(Stop::Gone),
            Some(Err(error)) => {
                if is_too_big(&error) {
                    let limit = self.gateway.ws.max_frame;
                    let too_big = RpcError::new(
                        413,
                        format!("the frame is larger than the limit of {limit} bytes"),
                    );
                    let _ = self.refuse(socket, too_big, None).await;
                    Err(Stop::Close(close_code::TOO_BIG, "frame too large"))
                } else if is_invalid_utf8(&error) {
                    // RFC 6455 has the connection fail (1007) on a text
                    // message that is not UTF-8: answer why, then close.
                    let invalid = RpcError::bad_request("a text frame must be valid UTF-8");
                    let _ = self.refuse(socket, invalid, None).await;
                    Err(Stop::Close(close_code::INVALID_DATA, "invalid UTF-8"))
                } else {
                    Err(Stop::Gone)
                }
            }
            Some(Ok(Message::Text(text))) => {
                if let Some(unfinished) = &mut self.unfinished {
                    unfinished.message();
                }
                self.on_text(socket, text.into()).await
            }
            Some(Ok(Message::Binary(_))) => {
                if let Some(unfinished) = &mut self.unfinished {
                    unfinished.message();
                }
                let error =
                    RpcError::bad_request("binary frames are not supported: send JSON text frames");
                self.refuse(socket, error, None).await
            }
            Some(Ok(Message::Ping(payload) | Message::Pong(payload))) => {
                if let Some(unfinished) = &mut self.unfinished {
                    unfinished.control(payload.len());
                }
                self.check_unfinished()
            }
        }
    }

    /// Any frame but the common call shape, read through a `Value`; `None`
    /// once answered here (malformed, or JSON-RPC).
    async fn general_frame(
        &mut self,
        socket: &mut WebSocket,
        bytes: &[u8],
    ) -> Result<Option<Frame>, Stop> {
        let value = match envelope::parse_json(bytes) {
            Ok(value) => value,
            Err(malformed) => {
                if jsonrpc::looks_like(bytes) {
                    self.jsonrpc = true;
                    let error =
                        jsonrpc::ErrorObject::new(jsonrpc::PARSE_ERROR, malformed.error.message());
                    let mut out = Vec::new();
                    let _ = jsonrpc::write_error(&mut out, &Value::Null, &error);
                    return self.send_bytes(socket, out).await.map(|()| None);
                }
                return self
                    .refuse(socket, malformed.error, None)
                    .await
                    .map(|()| None);
            }
        };
        if jsonrpc::is_jsonrpc(&value) {
            self.jsonrpc = true;
            let answered = match jsonrpc::parse(value, self.gateway.http.max_batch) {
                Ok(incoming) => self.on_jsonrpc(socket, incoming).await,
                Err(refused) => {
                    self.send_bytes(socket, jsonrpc::write_refused(&refused))
                        .await
                }
            };
            return answered.map(|()| None);
        }
        match envelope::object(value).and_then(envelope::parse_frame) {
            Ok(frame) => Ok(Some(frame)),
            Err(Malformed {
                error,
                correlation_id,
            }) => self
                .answer(socket, &Err(error), correlation_id.as_ref())
                .await
                .map(|()| None),
        }
    }

    async fn on_text(&mut self, socket: &mut WebSocket, bytes: Bytes) -> Result<(), Stop> {
        // The common shapes first, their args kept as text. The other
        // paths' futures are boxed: the connection's task is as large as
        // the largest future it may await, idle or not.
        let frame = match super::read_common(&bytes, &self.gateway.pipeline.registry) {
            Some(super::Common::Envelope(envelope)) => Frame::Call(envelope),
            Some(super::Common::JsonRpc(request)) => {
                self.jsonrpc = true;
                let incoming = Incoming::Single(Ok(request));
                return Box::pin(self.on_jsonrpc(socket, incoming)).await;
            }
            None => match Box::pin(self.general_frame(socket, &bytes)).await? {
                Some(frame) => frame,
                None => return Ok(()),
            },
        };
        match frame {
            Frame::SetIdentity {
                identity,
                correlation_id,
            } => {
                let result = self.set_identity(identity).await.map(|()| Data::default());
                let answered = self.answer(socket, &result, correlation_id.as_ref()).await;
                if matches!(&result, Err(e) if e.code() == 400) {
                    return Err(Stop::Close(
                        close_code::POLICY,
                        "identity.authorization has changed",
                    ));
                }
                answered
            }
            Frame::ClientMessage(message) => {
                self.client_message(message);
                Ok(())
            }
            Frame::Call(envelope) => {
                let correlation_id = envelope.correlation_id;
                if let Some(identity) = envelope.identity
                    && let Err(error) = self.set_identity(identity).await
                {
                    let answered = self
                        .answer(socket, &Err(error.clone()), correlation_id.as_ref())
                        .await;
                    if error.code() == 400 {
                        return Err(Stop::Close(
                            close_code::POLICY,
                            "identity.authorization has changed",
                        ));
                    }
                    return answered;
                }
                if let Err(busy) = self.room_for(1) {
                    return self
                        .answer(socket, &Err(busy), correlation_id.as_ref())
                        .await;
                }
                let mut call =
                    client_call(&self.gateway, envelope.address, envelope.args, &self.source);
                call.identity = self.connection.identity();
                call.user_id = self.connection.user_id();
                super::continue_trace(
                    &mut call,
                    envelope.traceparent.as_deref(),
                    envelope.tracestate,
                );
                let answered = move |result: Result<Data, RpcError>| Done {
                    calls: 1,
                    frame: Some(envelope::encode_response_text(
                        &result,
                        correlation_id.as_ref(),
                    )),
                };
                // Most calls are answered at once: no future of their own.
                let running: Running = match self.gateway.pipeline.dispatch(call, Entry::Transport)
                {
                    Dispatched::Now(result) => {
                        self.in_flight += 1;
                        return self.finished(socket, answered(result)).await;
                    }
                    Dispatched::Later(waiting) => Box::pin(waiting.map(answered)),
                };
                self.start(socket, 1, running).await
            }
        }
    }

    /// Runs calls: most finish in their first poll and are answered at
    /// once; the others keep running on the connection.
    async fn start(
        &mut self,
        socket: &mut WebSocket,
        calls: usize,
        mut running: Running,
    ) -> Result<(), Stop> {
        self.in_flight += calls;
        match (&mut running).now_or_never() {
            Some(done) => self.finished(socket, done).await,
            None => {
                self.calls.push(running);
                Ok(())
            }
        }
    }

    /// Refuses calls past the connection's in-flight limit.
    fn room_for(&self, calls: usize) -> Result<(), RpcError> {
        let limit = self.gateway.ws.max_in_flight;
        if self.in_flight + calls > limit {
            return Err(RpcError::new(
                429,
                format!("more than {limit} calls in flight on this connection"),
            ));
        }
        Ok(())
    }

    /// A JSON-RPC request or batch. The connection's identity applies to
    /// its calls; `rpc.setIdentity` and `rpc.clientMessage` (on their own,
    /// not in a batch) do what the envelope's identity and client message
    /// frames do.
    async fn on_jsonrpc(&mut self, socket: &mut WebSocket, incoming: Incoming) -> Result<(), Stop> {
        let incoming = match incoming {
            Incoming::Single(Ok(request)) if request.method == jsonrpc::SET_IDENTITY => {
                let identity = match serde_json::from_value::<Identity>(jsonrpc::message_param(
                    request.args.into_value(),
                )) {
                    Ok(identity) => identity,
                    Err(error) => {
                        let error = RpcError::invalid_args(vec![crate::FieldError {
                            path: String::new(),
                            message: format!("not an identity: {error}"),
                        }]);
                        return self.jsonrpc_answer(socket, request.id, &Err(error)).await;
                    }
                };
                let result = self.set_identity(identity).await.map(|()| Data::default());
                let changed = matches!(&result, Err(e) if e.code() == 400);
                let answered = self.jsonrpc_answer(socket, request.id, &result).await;
                if changed {
                    return Err(Stop::Close(
                        close_code::POLICY,
                        "identity.authorization has changed",
                    ));
                }
                return answered;
            }
            Incoming::Single(Ok(request)) if request.method == jsonrpc::CLIENT_MESSAGE => {
                self.client_message(jsonrpc::message_param(request.args.into_value()));
                return self
                    .jsonrpc_answer(socket, request.id, &Ok(Data::default()))
                    .await;
            }
            incoming => incoming,
        };
        let gateway = self.gateway.clone();
        let (identity, user_id) = (self.connection.identity(), self.connection.user_id());
        let source = self.source.clone();
        let work = super::jsonrpc::work(&gateway, incoming, |request| {
            if request.method == jsonrpc::SET_IDENTITY || request.method == jsonrpc::CLIENT_MESSAGE
            {
                return Err(RpcError::bad_request(format!(
                    "{} is sent on its own, not in a batch",
                    request.method
                )));
            }
            let mut call = super::jsonrpc::call(&gateway, request, &source);
            call.identity = identity.clone();
            call.user_id = user_id.clone();
            Ok(call)
        });
        if let Err(busy) = self.room_for(work.calls) {
            let error = jsonrpc::ErrorObject::from_rpc(&busy);
            let mut out = Vec::new();
            let _ = jsonrpc::write_error(&mut out, &Value::Null, &error);
            return self.send_bytes(socket, out).await;
        }
        let calls = work.calls;
        let answer = work.answer;
        let running: Running = Box::pin(async move {
            let frame = answer.await.and_then(|bytes| String::from_utf8(bytes).ok());
            Done { calls, frame }
        });
        self.start(socket, calls, running).await
    }

    async fn jsonrpc_answer(
        &mut self,
        socket: &mut WebSocket,
        id: Option<Value>,
        result: &Result<Data, RpcError>,
    ) -> Result<(), Stop> {
        let Some(id) = id else {
            return Ok(());
        };
        let mut out = Vec::new();
        jsonrpc::write_response(&mut out, &id, result);
        self.send_bytes(socket, out).await
    }

    fn client_message(&self, message: Value) {
        let hooks = &self.gateway.ws.hooks.message;
        if !hooks.is_empty() {
            let info = self.connection.info();
            for hook in hooks {
                run_hook("client message", || hook(&info, &message));
            }
        }
        if self.gateway.ws.mesh_messages {
            self.to_mesh(MeshEventKind::Message, Some(message));
        }
    }

    /// Forwards a connection event through the broker, when the gateway
    /// does (client messages with `mesh_client_messages`, the others with
    /// `mesh_connection_events`).
    fn to_mesh(&self, kind: MeshEventKind, message: Option<Value>) {
        if kind != MeshEventKind::Message && !self.gateway.ws.mesh_events {
            return;
        }
        let info = self.connection.info();
        self.gateway.pipeline.handle.forward_event(MeshEvent {
            kind,
            connection_id: info.id,
            user_id: info.user_id,
            identity: info.identity,
            ip: info.ip,
            gateway: self.gateway.pipeline.name.to_string(),
            message,
        });
    }

    /// Applies the identity rules of the protocol: a held authorization may
    /// not change (400, then the connection closes); the authenticator, if
    /// any, must accept a presented token (401, identity unchanged).
    async fn set_identity(&mut self, identity: Identity) -> Result<(), RpcError> {
        let held = self.connection.identity();
        if let Some(held) = held.as_ref().and_then(|i| i.authorization.as_deref())
            && identity.authorization.as_deref() != Some(held)
        {
            return Err(RpcError::bad_request(
                "identity.authorization has changed - disconnecting websocket connection",
            ));
        }
        let mut user_id = self.connection.user_id();
        if let (Some(authenticator), Some(token)) =
            (self.gateway.pipeline.authenticator(), identity.token())
        {
            user_id = Some(crate::auth::check(authenticator.as_ref(), token.to_owned()).await?);
        }
        let changed = held.as_ref() != Some(&identity);
        // Answered (or the call run) once pushes to the new user arrive.
        self.gateway
            .pipeline
            .handle
            .set_identity(&self.connection, identity, user_id)
            .wait()
            .await;
        if changed {
            self.emit(&self.gateway.ws.hooks.identity);
            self.to_mesh(MeshEventKind::Identity, None);
        }
        Ok(())
    }

    /// Closes the connection (1008) once a message has stayed unfinished
    /// for the message timeout.
    fn check_unfinished(&mut self) -> Result<(), Stop> {
        let limit = self.gateway.ws.message_timeout;
        let waiting = self
            .unfinished
            .as_mut()
            .map_or(Duration::ZERO, Unfinished::waiting);
        if !waiting.is_zero() && waiting >= limit {
            return Err(Stop::Close(
                close_code::POLICY,
                "a message was not finished within the message timeout",
            ));
        }
        Ok(())
    }

    async fn keep_alive(&mut self, socket: &mut WebSocket) -> Result<(), Stop> {
        if self.last_seen.elapsed() >= self.gateway.ws.idle_timeout {
            return Err(Stop::Close(close_code::GOING_AWAY, "idle for too long"));
        }
        self.check_unfinished()?;
        self.feed(socket, Message::Ping(Default::default())).await
    }

    /// Writes an envelope response, and every answer already finished,
    /// unflushed.
    async fn answer(
        &mut self,
        socket: &mut WebSocket,
        result: &Result<Data, RpcError>,
        correlation_id: Option<&Value>,
    ) -> Result<(), Stop> {
        let text = envelope::encode_response_text(result, correlation_id);
        self.send_text(socket, text).await
    }

    /// A refusal of the frame itself, in the protocol the client speaks.
    async fn refuse(
        &mut self,
        socket: &mut WebSocket,
        error: RpcError,
        correlation_id: Option<&Value>,
    ) -> Result<(), Stop> {
        if self.jsonrpc {
            let mut out = Vec::new();
            let _ = jsonrpc::write_error(
                &mut out,
                &Value::Null,
                &jsonrpc::ErrorObject::from_rpc(&error),
            );
            return self.send_bytes(socket, out).await;
        }
        self.answer(socket, &Err(error), correlation_id).await
    }

    /// Writes the answer of calls that finished.
    async fn finished(&mut self, socket: &mut WebSocket, done: Done) -> Result<(), Stop> {
        self.in_flight -= done.calls;
        match done.frame {
            Some(text) => self.send_text(socket, text).await,
            None => Ok(()),
        }
    }

    async fn send_bytes(&mut self, socket: &mut WebSocket, bytes: Vec<u8>) -> Result<(), Stop> {
        if bytes.is_empty() {
            return Ok(());
        }
        // serde_json writes UTF-8.
        let text = String::from_utf8(bytes).unwrap_or_default();
        self.send_text(socket, text).await
    }

    /// Writes a frame, and every answer already finished, unflushed.
    async fn send_text(&mut self, socket: &mut WebSocket, text: String) -> Result<(), Stop> {
        self.feed(socket, Message::Text(text.into())).await?;
        while let Some(Some(done)) = self.calls.next().now_or_never() {
            self.in_flight -= done.calls;
            if let Some(text) = done.frame {
                self.feed(socket, Message::Text(text.into())).await?;
            }
        }
        Ok(())
    }

    // `&mut self` rather than `&self`: the session is not `Sync`.
    async fn feed(&mut self, socket: &mut WebSocket, message: Message) -> Result<(), Stop> {
        within(self.gateway.ws.write_timeout, socket.feed(message)).await
    }

    async fn flush(&mut self, socket: &mut WebSocket) -> Result<(), Stop> {
        within(self.gateway.ws.write_timeout, socket.flush()).await
    }
}

/// A write that must make progress within `limit`. Most writes complete in
/// their first poll (into the socket's buffer): those set no timer.
async fn within(
    limit: Duration,
    write: impl Future<Output = Result<(), axum::Error>>,
) -> Result<(), Stop> {
    let mut write = std::pin::pin!(write);
    let written = match (&mut write).now_or_never() {
        Some(written) => written,
        None => match tokio::time::timeout(limit, write).await {
            Ok(written) => written,
            Err(_) => return Err(Stop::Gone),
        },
    };
    written.map_err(|_| Stop::Gone)
}

fn is_too_big(error: &axum::Error) -> bool {
    tungstenite_error(error, |error| {
        matches!(error, tungstenite::Error::Capacity(_))
    })
}

fn is_invalid_utf8(error: &axum::Error) -> bool {
    tungstenite_error(error, |error| matches!(error, tungstenite::Error::Utf8(_)))
}

/// Whether the error's chain holds a tungstenite error that `test` accepts.
fn tungstenite_error(error: &axum::Error, test: impl Fn(&tungstenite::Error) -> bool) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(current) = source {
        if current
            .downcast_ref::<tungstenite::Error>()
            .is_some_and(&test)
        {
            return true;
        }
        source = current.source();
    }
    false
}
