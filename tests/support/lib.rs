//! Helpers shared by the integration tests: real servers on ephemeral
//! loopback ports and plain clients that speak the wire protocol.

use rpc_runtime::{RunningServer, ServerBuilder};
use serde_json::Value;
use std::net::SocketAddr;

/// Starts a server on an ephemeral loopback port.
pub async fn start(builder: ServerBuilder) -> RunningServer {
    builder
        .http("127.0.0.1:0")
        .build()
        .expect("server builds")
        .start()
        .await
        .expect("server starts")
}

/// A raw HTTP client for one server.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    url: String,
}

impl Http {
    /// A client of the server at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Http {
            client: reqwest::Client::new(),
            url: format!("http://{addr}"),
        }
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Posts an envelope to `/`; returns the HTTP status and the body.
    pub async fn call(&self, envelope: Value) -> (u16, Value) {
        self.post("/", serde_json::to_vec(&envelope).expect("json"))
            .await
    }

    /// Posts raw bytes to a path.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request is answered");
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("body");
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        (status, value)
    }

    /// GETs a path; returns the body as text.
    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("answered")
            .text()
            .await
            .expect("a text body")
    }

    /// GETs a path and parses its JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("a JSON body")
    }

    /// The underlying client, for requests of other shapes.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// The AMQP URI of the RabbitMQ the broker tests use; fails the test with
/// instructions when nothing listens there.
pub fn rabbitmq_uri() -> String {
    let uri = std::env::var("RPC_TEST_AMQP_URI")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    if std::net::TcpStream::connect("127.0.0.1:5672").is_err()
        && std::env::var("RPC_TEST_AMQP_URI").is_err()
    {
        panic!(
            "RabbitMQ is not reachable on 127.0.0.1:5672. Start it with `rabbitmq-server -detached` \
             (install it with `apt-get install -y rabbitmq-server`), or run `.ci/run`, which does both; \
             or point RPC_TEST_AMQP_URI at another broker."
        );
    }
    uri
}

pub mod rabbit;

/// The value of one sample of a Prometheus exposition (`name` with its
/// labels, as written).
pub fn metric(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok()).flatten()
    })
}

/// A raw WebSocket client, for frames the typed client never sends.
pub mod raw {
    use futures_util::{SinkExt, StreamExt};
    use serde_json::Value;
    use std::time::Duration;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    /// A connected raw socket.
    pub type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    /// Opens a connection to `ws://addr/`.
    pub async fn connect(addr: std::net::SocketAddr) -> Socket {
        tokio_tungstenite::connect_async(format!("ws://{addr}/"))
            .await
            .expect("websocket connects")
            .0
    }

    /// Sends a JSON text frame.
    pub async fn send(socket: &mut Socket, frame: Value) {
        socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("send");
    }

    /// Sends a raw frame.
    pub async fn send_message(socket: &mut Socket, message: Message) {
        socket.send(message).await.expect("send");
    }

    /// The next JSON text frame (pings and pongs skipped), within 5 s.
    pub async fn recv(socket: &mut Socket) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .expect("a frame within 5 s")
                .expect("the connection is open")
                .expect("a valid frame");
            match message {
                Message::Text(text) => return serde_json::from_str(text.as_str()).expect("json"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Reads until the server closes; returns the close code.
    pub async fn closed(socket: &mut Socket) -> Option<CloseCode> {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .expect("closed within 5 s")
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                Some(Err(error)) => {
                    eprintln!("closed with an error: {error}");
                    return None;
                }
                None => return None,
            }
        }
    }
}

/// Polls `condition` every 10 ms for up to 5 s.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Closes, from the broker's side, every AMQP connection whose name
/// contains `fragment` (`rabbitmqctl close_connection`); returns how many.
pub fn close_broker_connections(fragment: &str) -> usize {
    let listing = std::process::Command::new("rabbitmqctl")
        .args(["list_connections", "-q", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl runs (it comes with rabbitmq-server)");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let mut closed = 0;
    for line in listing.lines().filter(|line| line.contains(fragment)) {
        let Some(pid) = line.split_whitespace().next() else {
            continue;
        };
        let status = std::process::Command::new("rabbitmqctl")
            .args(["close_connection", pid, "closed by a test"])
            .status()
            .expect("rabbitmqctl runs");
        if status.success() {
            closed += 1;
        }
    }
    closed
}
