//! Run with:
//!
//! ```sh
//! cargo bench -p rpc-benches --bench http
//! ```
//!
//! Calls/s of an `add` procedure over HTTP, through the framework (with
//! args validation) and through a hand-written axum handler that does the
//! same envelope work (parse, dispatch, respond), in one run, alternating;
//! then the JSON-RPC 2.0 form of the same call, through the framework and
//! through jsonrpsee's server (neither running a middleware: the framework
//! side here is a second server, without the pass-through middleware the
//! first runs).
//! `BENCH_MILLIS` (per round and side, default 1500), `BENCH_ROUNDS`
//! (default 12) and `BENCH_CONNECTIONS` (default 32) adjust it.
//!
//! Wall-clock rates on a shared machine are noisy; for a deterministic
//! cross-check, `BENCH_ONLY=framework|baseline|jsonrpc|jsonrpsee
//! BENCH_CALLS=n` makes `n`
//! sequential calls to one side and exits, so that instructions per call
//! can be counted under `valgrind --tool=callgrind` (difference two values
//! of `n` to cancel start-up).

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use rpc_benches::{
    JSONRPC_ADD, bare_framework_server, baseline_envelope, baseline_server, compare, env_or,
    framework_server, http_load, jsonrpsee_server, post_request,
};
use rpc_runtime::Server;
use serde_json::{Value, json};
use std::time::Duration;

/// The hand-written baseline: [`baseline_envelope`] behind axum.
async fn baseline(body: Bytes) -> impl IntoResponse {
    let (code, body) = baseline_envelope(&body);
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let millis = env_or("BENCH_MILLIS", 1500);
    let rounds = env_or("BENCH_ROUNDS", 12);
    let connections = env_or("BENCH_CONNECTIONS", 32) as usize;

    let framework = framework_server(Server::builder().name("bench")).await;
    let framework_addr = framework.http_addr().expect("addr");
    let baseline_addr =
        baseline_server(axum::Router::new().fallback(axum::routing::post(baseline))).await;

    // JSON-RPC against jsonrpsee: neither server runs a middleware.
    let bare = bare_framework_server(Server::builder().name("bench-bare")).await;
    let bare_addr = bare.http_addr().expect("addr");
    let (jsonrpsee_addr, _jsonrpsee) = jsonrpsee_server().await;

    let body = br#"{"procedure":"add","scope":"math","version":"1","args":{"a":40,"b":2},"correlationId":"c-1"}"#;
    let request = post_request(body);
    let jsonrpc_request = post_request(JSONRPC_ADD.as_bytes());

    // Each answers the same thing before anything is measured.
    for addr in [framework_addr, baseline_addr] {
        let body = answer(addr, &request).await;
        assert_eq!(
            (&body["data"], &body["correlationId"]),
            (&json!(42), &json!("c-1"))
        );
    }
    for addr in [framework_addr, bare_addr, jsonrpsee_addr] {
        let body = answer(addr, &jsonrpc_request).await;
        assert_eq!(body, json!({"jsonrpc": "2.0", "result": 42, "id": 1}));
    }

    if let Ok(only) = std::env::var("BENCH_ONLY") {
        let (addr, request) = match only.as_str() {
            "framework" => (framework_addr, &request),
            "jsonrpc" => (bare_addr, &jsonrpc_request),
            "jsonrpsee" => (jsonrpsee_addr, &jsonrpc_request),
            _ => (baseline_addr, &request),
        };
        sequential(addr, request, env_or("BENCH_CALLS", 1000)).await;
        return;
    }
    println!(
        "HTTP add: {connections} connections, {rounds} rounds of {millis} ms a side, validation on"
    );
    let duration = Duration::from_millis(millis);
    let sides = Sides {
        connections,
        rounds,
        duration,
    };
    let ratio = sides
        .compare(
            ("framework", framework_addr),
            ("hand-written axum", baseline_addr),
            &request,
        )
        .await;
    println!("RESULT http framework/hand-written = {ratio:.3} (median of rounds; target >= 0.95)");

    println!(
        "HTTP add as JSON-RPC 2.0: the framework against jsonrpsee's server, neither with a middleware"
    );
    let ratio = sides
        .compare(
            ("framework", bare_addr),
            ("jsonrpsee", jsonrpsee_addr),
            &jsonrpc_request,
        )
        .await;
    println!(
        "RESULT http JSON-RPC framework/jsonrpsee = {ratio:.3} (median of rounds; target >= 1.0)"
    );
}

/// How two servers are compared: under the same load, in alternating
/// rounds.
struct Sides {
    connections: usize,
    rounds: u64,
    duration: Duration,
}

impl Sides {
    /// Warms both up, then sends `request` to each in turn; gives the
    /// median of the rounds' ratios of `a` to `b`.
    async fn compare(
        &self,
        (name_a, a): (&str, std::net::SocketAddr),
        (name_b, b): (&str, std::net::SocketAddr),
        request: &[u8],
    ) -> f64 {
        let Sides {
            connections,
            rounds,
            duration,
        } = *self;
        let warm = Duration::from_secs(1);
        http_load(a, request, connections, warm).await;
        http_load(b, request, connections, warm).await;
        compare(
            name_a,
            name_b,
            rounds,
            || http_load(a, request, connections, duration),
            || http_load(b, request, connections, duration),
        )
        .await
    }
}

/// One call's answer, as JSON (status 200).
async fn answer(addr: std::net::SocketAddr, request: &[u8]) -> Value {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut buffer = Vec::new();
    tokio::io::AsyncWriteExt::write_all(&mut stream, request)
        .await
        .expect("write");
    let (status, body) = rpc_benches::read_response(&mut stream, &mut buffer)
        .await
        .expect("read");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("json")
}

async fn sequential(addr: std::net::SocketAddr, request: &[u8], calls: u64) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut buffer = Vec::new();
    for _ in 0..calls {
        tokio::io::AsyncWriteExt::write_all(&mut stream, request)
            .await
            .expect("write");
        let (status, _) = rpc_benches::read_response(&mut stream, &mut buffer)
            .await
            .expect("read");
        assert_eq!(status, 200);
    }
}
