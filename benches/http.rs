//! Run with:
//!
//! ```sh
//! cargo bench -p rpc-benches --bench http
//! ```
//!
//! Calls/s of an `add` procedure over HTTP, through the framework (with
//! args validation) and through a hand-written axum handler that does the
//! same envelope work (parse, dispatch, respond), in one run, alternating.
//! `BENCH_MILLIS` (per round and side, default 1500), `BENCH_ROUNDS`
//! (default 12) and `BENCH_CONNECTIONS` (default 32) adjust it.
//!
//! Wall-clock rates on a shared machine are noisy; for a deterministic
//! cross-check, `BENCH_ONLY=framework|baseline BENCH_CALLS=n` makes `n`
//! sequential calls to one side and exits, so that instructions per call
//! can be counted under `valgrind --tool=callgrind` (difference two values
//! of `n` to cancel start-up).

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use rpc_benches::{
    baseline_envelope, baseline_server, compare, env_or, framework_server, http_load, post_request,
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

    let body = br#"{"procedure":"add","scope":"math","version":"1","args":{"a":40,"b":2},"correlationId":"c-1"}"#;
    let request = post_request(body);

    // Both answer the same thing before anything is measured.
    for addr in [framework_addr, baseline_addr] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut buffer = Vec::new();
        tokio::io::AsyncWriteExt::write_all(&mut stream, &request)
            .await
            .expect("write");
        let (status, body) = rpc_benches::read_response(&mut stream, &mut buffer)
            .await
            .expect("read");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            (status, &body["data"], &body["correlationId"]),
            (200, &json!(42), &json!("c-1"))
        );
    }

    if let Ok(only) = std::env::var("BENCH_ONLY") {
        let addr = if only == "framework" {
            framework_addr
        } else {
            baseline_addr
        };
        sequential(addr, &request, env_or("BENCH_CALLS", 1000)).await;
        return;
    }
    println!(
        "HTTP add: {connections} connections, {rounds} rounds of {millis} ms a side, validation on"
    );
    let warm = Duration::from_secs(1);
    http_load(framework_addr, &request, connections, warm).await;
    http_load(baseline_addr, &request, connections, warm).await;
    let duration = Duration::from_millis(millis);
    let ratio = compare(
        "framework",
        "hand-written axum",
        rounds,
        || http_load(framework_addr, &request, connections, duration),
        || http_load(baseline_addr, &request, connections, duration),
    )
    .await;
    println!("RESULT http framework/hand-written = {ratio:.3} (median of rounds; target >= 0.90)");
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
