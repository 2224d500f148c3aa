//! A server in its own process, for the test that stops one with SIGTERM:
//! it prints `listening <addr>`, serves until a signal, drains, and exits.

use rpc_runtime::{JsonSchema, Server, rpc};
use serde::{Deserialize, Serialize};
use std::io::Write;

#[derive(Deserialize, Serialize, JsonSchema)]
struct Sleep {
    ms: u64,
}

/// Sleeps.
#[rpc(procedure = "slow", scope = "pipe-drain")]
async fn slow(args: Sleep) -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(args.ms)).await;
    args.ms
}

#[tokio::main]
async fn main() -> Result<(), rpc_runtime::Error> {
    let running = Server::builder()
        .name("terminated")
        .http("127.0.0.1:0")
        .build()?
        .start()
        .await?;
    if let Some(addr) = running.http_addr() {
        println!("listening {addr}");
        let _ = std::io::stdout().flush();
    }
    rpc_runtime::stop_signal().await;
    running.shutdown().await
}
