//! A handler server in its own process, for the tests that kill one in the
//! middle of a call or stop it holding calls. It prints `ready` once
//! serving, `started` when a `hang` call begins and `ran N` when a `mark`
//! call runs, then waits to be killed. Its arguments: the broker's URI, and
//! the one procedure to host (else both). It announces itself every 500 ms,
//! so that gateways count it gone soon after it falls silent (after three
//! intervals, but at least 3 s).

use rpc_runtime::{JsonSchema, Server, rpc};
use serde::{Deserialize, Serialize};
use std::io::Write;

#[derive(Deserialize, Serialize, JsonSchema)]
struct Hang {
    ms: u64,
}

/// Reports that it started, then sleeps.
#[rpc(procedure = "hang", scope = "killed", timeout = "1500ms")]
async fn hang(args: Hang) -> u64 {
    println!("started");
    let _ = std::io::stdout().flush();
    tokio::time::sleep(std::time::Duration::from_millis(args.ms)).await;
    args.ms
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Mark {
    n: u64,
}

/// Reports that it ran.
#[rpc(procedure = "mark", scope = "killed", timeout = "800ms")]
async fn mark(args: Mark) -> u64 {
    println!("ran {}", args.n);
    let _ = std::io::stdout().flush();
    args.n
}

#[tokio::main]
async fn main() -> Result<(), rpc_runtime::Error> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    // The one procedure to host (tests running at once each take their own).
    let only = std::env::args().nth(2);
    let server = Server::builder()
        .name("doomed")
        .host(move |address| only.as_deref().is_none_or(|only| address.procedure == only))
        .broker(uri)
        .announce_interval(std::time::Duration::from_millis(500))
        .build()?
        .start()
        .await?;
    println!("ready");
    let _ = std::io::stdout().flush();
    tokio::time::sleep(std::time::Duration::from_secs(600)).await;
    server.shutdown().await
}
