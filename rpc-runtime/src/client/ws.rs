//! Calls over one WebSocket connection. A background task owns the socket:
//! it matches responses to calls by correlation id, forwards server
//! messages, and reconnects with backoff. After a reconnect it sends the
//! identity again and takes no call before the server acknowledged it.

use super::{CallEnvelope, decode_output};
use crate::envelope::WireIn;
use crate::{Address, Identity, Procedure, RpcError};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How much one read of the socket takes at most.
const READ_BUFFER: usize = 4 * 1024;

/// How many queued frames are written before the socket is read again.
const MAX_BATCH: usize = 64;

type Reply = oneshot::Sender<Result<Value, RpcError>>;

/// Correlation ids: numbers, unique per client across reconnects.
type CallId = u64;

/// Configures a [`WsClient`].
#[derive(Clone, Debug)]
#[must_use]
pub struct WsClientBuilder {
    url: String,
    identity: Option<Identity>,
    token: Option<String>,
    timeout: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    /// Certificates trusted beside the system's, for `wss://`.
    root_pem: Option<String>,
}

impl WsClientBuilder {
    /// Also trusts the certificates of this PEM text (a private CA) for
    /// `wss://` (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn root_certificate_pem(mut self, pem: impl Into<String>) -> Self {
        self.root_pem = Some(pem.into());
        self
    }

    /// Sets this identity once connected, and again after every reconnect.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Sends `Authorization: Bearer <token>` with the upgrade request.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// How long a call waits for its response, reconnects included
    /// (504 after that). Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The first and the longest wait between reconnect attempts; each
    /// failed attempt doubles it. Defaults: 100 ms and 5 s.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    /// Connects (and sets the identity, if any); fails if the first
    /// attempt fails. Later losses of the connection are reconnected.
    pub async fn connect(self) -> Result<WsClient, RpcError> {
        let socket = open(&self.url, self.token.as_deref(), self.root_pem.as_deref()).await?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let (messages, _) = broadcast::channel(1024);
        let (connected, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            next_id: AtomicU64::new(1),
            messages,
            connected,
        });
        let mut task = Task {
            builder: self.clone(),
            shared: shared.clone(),
            commands: receiver,
            pending: Pending::default(),
            identity: self.identity.clone(),
        };
        let ready = task.handshake(socket).await?;
        tokio::spawn(task.run(ready));
        Ok(WsClient {
            commands,
            shared,
            timeout: self.timeout,
        })
    }
}

struct Shared {
    next_id: AtomicU64,
    messages: broadcast::Sender<Value>,
    /// Counts established connections, for tests and for waiting.
    connected: watch::Sender<u64>,
}

impl Shared {
    fn next_id(&self) -> CallId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

enum Command {
    /// A call frame, serialized by the caller with its correlation id.
    Call(CallId, String, Reply),
    SetIdentity(Identity, Reply),
    ClientMessage(Value),
    Close,
}

/// A typed client over one WebSocket connection. Cloning shares the
/// connection; dropping the last clone closes it.
#[derive(Clone)]
pub struct WsClient {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    timeout: Duration,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsClient").finish_non_exhaustive()
    }
}

impl WsClient {
    /// Configures a client of `url`, e.g. `ws://127.0.0.1:9876/`.
    pub fn builder(url: impl Into<String>) -> WsClientBuilder {
        WsClientBuilder {
            url: url.into(),
            identity: None,
            token: None,
            timeout: Duration::from_secs(30),
            root_pem: None,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// Connects with the defaults.
    pub async fn connect(url: impl Into<String>) -> Result<Self, RpcError> {
        Self::builder(url).connect().await
    }

    /// Calls a procedure through its typed marker.
    pub async fn call<P: Procedure>(&self, args: P::Args) -> Result<P::Output, RpcError>
    where
        P::Args: Serialize,
        P::Output: DeserializeOwned,
    {
        let (id, frame) = self.encode(CallEnvelope::of::<P>(&args))?;
        decode_output::<P>(self.call_frame(id, frame).await?)
    }

    /// Calls a procedure by address with JSON args.
    pub async fn call_json(&self, address: Address, args: Value) -> Result<Value, RpcError> {
        let (id, frame) = self.encode(CallEnvelope::to(&address, &args))?;
        self.call_frame(id, frame).await
    }

    /// Serializes a call in the caller's task, not the connection's.
    fn encode<A: Serialize>(
        &self,
        mut envelope: CallEnvelope<'_, A>,
    ) -> Result<(CallId, String), RpcError> {
        let id = self.shared.next_id();
        envelope.correlation_id = Some(id);
        Ok((id, envelope.encode()?))
    }

    async fn call_frame(&self, id: CallId, frame: String) -> Result<Value, RpcError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Call(id, frame, reply))?;
        self.wait(answer).await
    }

    /// Sets the connection's identity and waits for the server's
    /// acknowledgement; it is sent again after every reconnect.
    pub async fn set_identity(&self, identity: Identity) -> Result<(), RpcError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::SetIdentity(identity, reply))?;
        self.wait(answer).await.map(|_| ())
    }

    /// Sends `{"clientMessage": message}`; the server does not answer.
    pub fn send_client_message(&self, message: impl Serialize) -> Result<(), RpcError> {
        let message =
            serde_json::to_value(message).map_err(|e| RpcError::bad_request(e.to_string()))?;
        self.send(Command::ClientMessage(message))
    }

    /// The server's pushes from now on.
    pub fn server_messages(&self) -> ServerMessages {
        ServerMessages(self.shared.messages.subscribe())
    }

    /// How many times a connection was established (1 after `connect`).
    pub fn connections_made(&self) -> u64 {
        *self.shared.connected.borrow()
    }

    /// Waits until at least `count` connections were established.
    pub async fn wait_for_connections(&self, count: u64) {
        let mut connected = self.shared.connected.subscribe();
        let _ = connected.wait_for(|made| *made >= count).await;
    }

    /// Closes the connection; calls still waiting get 503.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }

    fn send(&self, command: Command) -> Result<(), RpcError> {
        self.commands
            .send(command)
            .map_err(|_| RpcError::new(503, "the client is closed"))
    }

    async fn wait(
        &self,
        answer: oneshot::Receiver<Result<Value, RpcError>>,
    ) -> Result<Value, RpcError> {
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RpcError::new(503, "the client is closed")),
            Err(_) => Err(RpcError::new(
                504,
                "no response before the client's deadline",
            )),
        }
    }
}

/// The server's pushes, in order. A reader that falls more than 1,024
/// messages behind skips the oldest.
#[derive(Debug)]
pub struct ServerMessages(broadcast::Receiver<Value>);

impl ServerMessages {
    /// The next push; `None` once the client is closed.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            match self.0.recv().await {
                Ok(message) => return Some(message),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

async fn open(url: &str, token: Option<&str>, root_pem: Option<&str>) -> Result<Socket, RpcError> {
    let mut request = url.into_client_request().map_err(|error| {
        RpcError::bad_request(format!("invalid WebSocket URL {url:?}: {error}"))
    })?;
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| RpcError::bad_request("the token is not a valid header value"))?;
        request.headers_mut().insert("authorization", value);
    }
    // Before every read tungstenite zeroes as much of its buffer as one
    // read may fill (128 KiB by default); calls and responses are small.
    // Nagle's algorithm would hold a call back while an earlier one is
    // unacknowledged.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    #[cfg(feature = "tls")]
    let connecting = {
        let connector = if url.starts_with("wss:") {
            Some(tokio_tungstenite::Connector::Rustls(
                super::tls::client_config(root_pem)?,
            ))
        } else {
            None
        };
        tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, connector)
    };
    #[cfg(not(feature = "tls"))]
    let connecting = {
        let _ = root_pem;
        tokio_tungstenite::connect_async_with_config(request, Some(config), true)
    };
    match connecting.await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(RpcError::new(
            response.status().as_u16(),
            "the server refused the WebSocket upgrade",
        )),
        Err(error) => Err(RpcError::new(
            503,
            format!("cannot connect to {url}: {error}"),
        )),
    }
}

/// The background task that owns the socket.
struct Task {
    builder: WsClientBuilder,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    pending: Pending,
    identity: Option<Identity>,
}

/// How a connection ended.
enum End {
    Lost,
    Closed,
}

impl Task {
    /// Sends the identity, if any, and waits for its acknowledgement; only
    /// then is the connection ready for calls.
    async fn handshake(&mut self, mut socket: Socket) -> Result<Socket, RpcError> {
        if let Some(identity) = self.identity.clone() {
            let id = self.shared.next_id();
            let frame = serde_json::json!({ "identity": identity, "correlationId": id });
            let sent = socket.send(Message::Text(frame.to_string().into())).await;
            sent.map_err(connection_failed)?;
            loop {
                match socket.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let Ok(frame) = serde_json::from_str::<WireIn>(text.as_str()) else {
                            continue;
                        };
                        if correlation_id(&frame) == Some(id) {
                            frame.into_result()?;
                            break;
                        }
                        self.on_frame(frame);
                    }
                    Some(Ok(_)) => {}
                    _ => {
                        return Err(RpcError::new(
                            503,
                            "the connection closed during the identity handshake",
                        ));
                    }
                }
            }
        }
        self.shared.connected.send_modify(|made| *made += 1);
        Ok(socket)
    }

    async fn run(mut self, mut socket: Socket) {
        let mut backoff = self.builder.min_backoff;
        loop {
            match self.serve(&mut socket).await {
                End::Closed => {
                    let _ = socket.close(None).await;
                    self.fail_pending("the client is closed");
                    return;
                }
                End::Lost => self.fail_pending("the connection was lost"),
            }
            socket = loop {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.builder.max_backoff);
                if self.commands.is_closed() {
                    return;
                }
                let builder = &self.builder;
                let opened = open(
                    &builder.url,
                    builder.token.as_deref(),
                    builder.root_pem.as_deref(),
                );
                let Ok(fresh) = opened.await else {
                    continue;
                };
                if let Ok(ready) = self.handshake(fresh).await {
                    backoff = self.builder.min_backoff;
                    break ready;
                }
            };
        }
    }

    async fn serve(&mut self, socket: &mut Socket) -> End {
        loop {
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(command) = command else { return End::Closed };
                    // Every frame queued by now goes out in one write.
                    let mut next = Some(command);
                    let mut batch = 0;
                    while let Some(command) = next {
                        let Some(frame) = self.frame(command) else { return End::Closed };
                        if socket.feed(Message::Text(frame.into())).await.is_err() {
                            return End::Lost;
                        }
                        batch += 1;
                        next = if batch < MAX_BATCH { self.commands.try_recv().ok() } else { None };
                    }
                    if socket.flush().await.is_err() {
                        return End::Lost;
                    }
                }
                message = socket.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if let Ok(frame) = serde_json::from_str::<WireIn>(text.as_str()) {
                            self.on_frame(frame);
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return End::Lost,
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    /// The frame a command sends; `None` for closing.
    fn frame(&mut self, command: Command) -> Option<String> {
        Some(match command {
            Command::Close => return None,
            Command::Call(id, frame, reply) => {
                self.pending.insert(id, reply);
                frame
            }
            Command::SetIdentity(identity, reply) => {
                let id = self.shared.next_id();
                let frame = serde_json::json!({ "identity": identity, "correlationId": id });
                self.identity = Some(identity);
                self.pending.insert(id, reply);
                frame.to_string()
            }
            Command::ClientMessage(message) => {
                serde_json::json!({ "clientMessage": message }).to_string()
            }
        })
    }

    /// A server message goes to the subscribers; a response to its caller.
    fn on_frame(&mut self, frame: WireIn) {
        if let Some(message) = frame.server_message {
            let _ = self.shared.messages.send(message);
            return;
        }
        let reply = correlation_id(&frame).and_then(|id| self.pending.remove(id));
        if let Some(reply) = reply {
            let _ = reply.send(frame.into_result());
        }
    }

    fn fail_pending(&mut self, why: &'static str) {
        for reply in self.pending.drain() {
            let _ = reply.send(Err(RpcError::new(503, why)));
        }
    }
}

/// The calls waiting for their response. A caller that stopped waiting
/// (its deadline passed) leaves its entry behind until the response comes,
/// which a server may never send: entries nobody waits for are swept out
/// whenever the map has doubled, so it stays within twice the calls really
/// waiting.
struct Pending {
    replies: HashMap<CallId, Reply>,
    sweep_at: usize,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            replies: HashMap::new(),
            sweep_at: MIN_SWEEP,
        }
    }
}

/// The size below which the pending calls are never swept.
const MIN_SWEEP: usize = 64;

impl Pending {
    fn insert(&mut self, id: CallId, reply: Reply) {
        if self.replies.len() >= self.sweep_at {
            self.replies.retain(|_, reply| !reply.is_closed());
            self.sweep_at = (self.replies.len() * 2).max(MIN_SWEEP);
        }
        self.replies.insert(id, reply);
    }

    fn remove(&mut self, id: CallId) -> Option<Reply> {
        self.replies.remove(&id)
    }

    fn drain(&mut self) -> impl Iterator<Item = Reply> + '_ {
        self.replies.drain().map(|(_, reply)| reply)
    }
}

fn correlation_id(frame: &WireIn) -> Option<CallId> {
    frame.correlation_id.as_ref().and_then(Value::as_u64)
}

fn connection_failed(error: tokio_tungstenite::tungstenite::Error) -> RpcError {
    RpcError::new(503, format!("the connection failed: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_nobody_waits_for_are_swept_out() {
        let mut pending = Pending::default();
        let mut waiting = Vec::new();
        for id in 0..10_000 {
            let (reply, answer) = oneshot::channel();
            pending.insert(id, reply);
            // One caller in ten is still waiting; the others gave up.
            if id % 10 == 0 {
                waiting.push((id, answer));
            }
        }
        assert!(
            pending.replies.len() <= 2 * waiting.len() + MIN_SWEEP,
            "{} entries for {} waiting calls",
            pending.replies.len(),
            waiting.len()
        );
        for (id, _answer) in &waiting {
            assert!(pending.remove(*id).is_some(), "call {id} was swept out");
        }
    }

    #[test]
    fn a_small_map_is_not_swept() {
        let mut pending = Pending::default();
        for id in 0..MIN_SWEEP as CallId {
            let (reply, _) = oneshot::channel();
            pending.insert(id, reply);
        }
        assert_eq!(pending.replies.len(), MIN_SWEEP);
    }
}
