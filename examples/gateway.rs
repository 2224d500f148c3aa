//! Run with:
//!
//! ```sh
//! cargo run --example gateway              # HTTP and WebSocket on 127.0.0.1:9876
//! cargo run --example handler -- shelf-1   # in another terminal
//! cargo run --example handler -- shelf-2   # and another
//! ```
//!
//! A gateway: it faces the clients and hosts no procedure; every call goes
//! through RabbitMQ to the handler servers, which announce what they serve.
//! `AMQP_URI` overrides the broker (default: the local RabbitMQ, guest).

use rpc_runtime::Server;

#[tokio::main]
async fn main() -> Result<(), rpc_runtime::Error> {
    let uri = std::env::var("AMQP_URI")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    // `host_none`: this process forwards everything it is asked.
    let server = Server::builder()
        .name("gateway-1")
        .http("127.0.0.1:9876")
        .host_none()
        .broker(uri)
        .build()?;
    println!("gateway on http://127.0.0.1:9876 ; try, once a handler server runs:");
    println!(
        r#"  curl -s 127.0.0.1:9876/ -d '{{"procedure":"get-product","scope":"catalog","args":{{"id":2}}}}'"#
    );
    println!(r#"  curl -s 127.0.0.1:9876/ -d '{{"procedure":"list-products","scope":"catalog"}}'"#);
    // Ctrl-C stops taking calls and waits for the ones in flight.
    server.serve().await
}
