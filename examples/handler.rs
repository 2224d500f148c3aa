//! Run with:
//!
//! ```sh
//! cargo run --example handler -- shelf-1
//! ```
//!
//! A handler server: no HTTP, only the broker. It serves the procedures of
//! the `catalog` crate to every gateway (run several and they share the
//! load), and `news/announce`, which pushes to the WebSocket clients of
//! every gateway although this server holds no connection. Options: the
//! name as first argument or `--name` (`RPC_NAME`), `--broker`
//! (`AMQP_URI`; a cluster's nodes separated by commas). See `gateway.rs`
//! for the whole set-up.

// Naming the crate links its procedures into this binary.
use catalog as _;
use rpc_examples::Options;
use rpc_runtime::{Context, JsonSchema, RpcError, Server, rpc};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, JsonSchema)]
struct Announce {
    /// What to tell everyone.
    #[schemars(length(min = 1, max = 500))]
    text: String,
}

/// Pushes `{"news": text}` to every WebSocket client of every gateway;
/// answers with the name of the server that sent it.
#[rpc(procedure = "announce", scope = "news")]
async fn announce(args: Announce, ctx: Context) -> Result<String, RpcError> {
    let server = ctx.server().ok_or_else(RpcError::internal)?;
    server.broadcast(serde_json::json!({ "news": args.text }));
    Ok(server.name().to_owned())
}

#[tokio::main]
async fn main() -> Result<(), rpc_runtime::Error> {
    let options = Options::read("", "shelf-1", "amqp://guest:guest@127.0.0.1:5672/%2f");
    let name = options.rest.first().cloned().unwrap_or(options.name);
    let server = Server::builder()
        .name(name.clone())
        .websocket(false)
        .broker_nodes(options.broker)
        .build()?;
    println!("handler server {name} serving:");
    for procedure in server.hosted() {
        println!("  {procedure}");
    }
    // Ctrl-C stops consuming and finishes the calls it holds.
    server.serve().await
}
