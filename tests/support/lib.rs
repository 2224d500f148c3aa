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
