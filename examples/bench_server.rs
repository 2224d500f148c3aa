//! Run with:
//!
//! ```sh
//! cargo build --profile bench-server -p rpc-examples --example bench_server
//! $KIT/run.sh "ours=$PWD/target/bench-server/examples/bench_server --port {port}"
//! ```
//!
//! (`$KIT` is the folder of the reference benchmark kit.) The server the
//! kit measures: `bench.add` and
//! `bench.order`, written as a user would (typed args, `#[rpc]`, schema
//! validation on), over HTTP and WebSocket on `--port` (default 9878).
//! `benches/README.md` has the method and the figures.

use rpc_runtime::{JsonSchema, Server, rpc};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, JsonSchema)]
struct AddArgs {
    a: i64,
    b: i64,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Sum {
    sum: i64,
}

/// Adds two integers.
#[rpc(procedure = "add", scope = "bench")]
async fn add(args: AddArgs) -> Sum {
    Sum {
        sum: args.a.wrapping_add(args.b),
    }
}

/// The same `add` in scope `global`, which JSON-RPC clients call as method
/// `add` (as jsonrpsee's peer names it).
#[rpc(procedure = "add")]
async fn add_global(args: AddArgs) -> Sum {
    Sum {
        sum: args.a.wrapping_add(args.b),
    }
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Order {
    number: u64,
    customer: Customer,
    items: Vec<Item>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Customer {
    name: String,
    email: String,
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Item {
    sku: String,
    qty: u32,
    price_cents: u64,
    tags: Vec<String>,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Receipt {
    n: u64,
    sum: i64,
}

/// Totals an order.
#[rpc(procedure = "order", scope = "bench")]
async fn order(args: Order) -> Receipt {
    let sum = args
        .items
        .iter()
        .map(|item| i64::from(item.qty) * item.price_cents as i64)
        .sum();
    Receipt {
        n: args.number,
        sum,
    }
}

#[tokio::main]
async fn main() -> Result<(), rpc_runtime::Error> {
    let mut args = std::env::args().skip(1);
    let mut port = 9878;
    while let Some(arg) = args.next() {
        if arg == "--port" {
            port = args.next().and_then(|p| p.parse().ok()).unwrap_or(port);
        }
    }
    Server::builder()
        .name("bench-server")
        .http(format!("127.0.0.1:{port}"))
        .build()?
        .serve()
        .await
}
