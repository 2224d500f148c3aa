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
//! Pushes from any server reach its WebSocket clients. Options (flags, or
//! the environment): `--http` (`RPC_HTTP`, default 127.0.0.1:9876),
//! `--name` (`RPC_NAME`, default gateway-1), `--broker` (`AMQP_URI`, the
//! local RabbitMQ by default; a cluster's nodes separated by commas). A
//! second gateway: `cargo run --example gateway -- --http 127.0.0.1:9886
//! --name gateway-2`.

use rpc_examples::Options;
use rpc_runtime::Server;

#[tokio::main]
async fn main() -> Result<(), rpc_runtime::Error> {
    let options = Options::read(
        "127.0.0.1:9876",
        "gateway-1",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
    );
    // `host_none`: this process forwards everything it is asked.
    let server = Server::builder()
        .name(options.name.clone())
        .http(options.http.clone())
        .host_none()
        .broker_nodes(options.broker)
        .build()?;
    let http = &options.http;
    println!(
        "{} on http://{http} ; try, once a handler server runs:",
        options.name
    );
    println!(
        r#"  curl -s {http}/ -d '{{"procedure":"get-product","scope":"catalog","args":{{"id":2}}}}'"#
    );
    println!(r#"  curl -s {http}/ -d '{{"procedure":"list-products","scope":"catalog"}}'"#);
    println!(
        r#"  curl -s {http}/ -d '{{"procedure":"announce","scope":"news","args":{{"text":"hello"}}}}'   # a push to every gateway's clients"#
    );
    // Ctrl-C stops taking calls and waits for the ones in flight.
    server.serve().await
}
