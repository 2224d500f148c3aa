//! Run with:
//!
//! ```sh
//! cargo run --example handler -- shelf-1
//! ```
//!
//! A handler server: no HTTP, only the broker. It serves the procedures of
//! the `catalog` crate to every gateway; run several and they share the
//! load. See `gateway.rs` for the whole set-up.

// Naming the crate links its procedures into this binary.
use catalog as _;
use rpc_runtime::Server;

#[tokio::main]
async fn main() -> Result<(), rpc_runtime::Error> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "shelf-1".into());
    let uri = std::env::var("AMQP_URI")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let server = Server::builder().name(name.clone()).broker(uri).build()?;
    println!("handler server {name} serving:");
    for procedure in server.hosted() {
        println!("  {procedure}");
    }
    // Ctrl-C stops consuming and finishes the calls it holds.
    server.serve().await
}
