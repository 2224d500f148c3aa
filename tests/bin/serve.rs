//! A server in its own process, for the tests that stop one with SIGTERM
//! or measure its memory: it prints `listening <addr>`, serves until a
//! signal, drains, and exits. `RPC_TEST_BODY_BUDGET` and
//! `RPC_TEST_HEADER_TIMEOUT_MS` set those limits.

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
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut builder = Server::builder().name("terminated").http("127.0.0.1:0");
    if let Some(bytes) = env("RPC_TEST_BODY_BUDGET") {
        builder = builder.max_buffered_body_bytes(bytes as usize);
    }
    if let Some(ms) = env("RPC_TEST_HEADER_TIMEOUT_MS") {
        builder = builder.http_header_timeout(std::time::Duration::from_millis(ms));
    }
    let running = builder.build()?.start().await?;
    if let Some(addr) = running.http_addr() {
        println!("listening {addr}");
        let _ = std::io::stdout().flush();
    }
    rpc_runtime::stop_signal().await;
    running.shutdown().await
}
