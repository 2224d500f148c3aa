//! Run with:
//!
//! ```sh
//! cargo bench -p rpc-benches --bench ws
//! ```
//!
//! Two measurements in one run:
//!
//! 1. Calls/s of an `add` procedure over WebSocket, through the framework
//!    (validation on) and through a hand-written axum WebSocket handler that
//!    does the same envelope work, alternating rounds; the median ratio is
//!    printed. `BENCH_CONNECTIONS` (default 8), `BENCH_IN_FLIGHT` (16),
//!    `BENCH_ROUNDS` (12) and `BENCH_MILLIS` (1500) adjust it.
//!    For a deterministic cross-check, `BENCH_ONLY=framework|baseline|
//!    jsonrpc|jsonrpsee|client BENCH_CALLS=n` makes `n` calls (16 in
//!    flight) on one connection to one side (`jsonrpc`: the framework, in
//!    JSON-RPC; `client`: the framework, through `WsClient`) and exits,
//!    for counting instructions under callgrind.
//!    Then the JSON-RPC 2.0 form of the same call, through the framework
//!    and through jsonrpsee's server (default settings), alternating;
//!    neither runs a middleware (the framework side is a second server,
//!    without the pass-through middleware the first runs).
//!    Then the framework's typed client, [`rpc_runtime::WsClient`], makes
//!    the same calls to the same server (`BENCH_IN_FLIGHT` callers sharing
//!    each of `BENCH_CONNECTIONS` clients), against the lean hand-written
//!    client above that only sends frames and checks their status.
//! 2. The resident memory of a server process (this binary, started again
//!    as a child) before and after `BENCH_IDLE` (default 10,000) connections
//!    have each set an identity, per connection (alone with
//!    `BENCH_ONLY=idle`).

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use futures_util::{FutureExt, SinkExt, StreamExt};
use rpc_benches::{AddArgs, add};
use rpc_benches::{
    JSONRPC_ADD, Tally, WsStream, bare_framework_server, baseline_envelope, baseline_server,
    compare, env_or, framework_server, gather, jsonrpsee_server, ws_connect,
};
use rpc_runtime::{Server, WsClient};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite;

/// The hand-written baseline, as the reference kit's `axum-baseline`
/// serves a socket: each frame's call runs on its own task (calls on one
/// connection run concurrently, as the framework runs them), through
/// [`baseline_envelope`], and one writer task writes every answer that is
/// ready before it flushes once.
async fn baseline(socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (answers, mut ready) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        'writing: while let Some(first) = ready.recv().await {
            let mut next = Some(first);
            while let Some(answer) = next.take() {
                let text = String::from_utf8(answer).unwrap_or_default();
                if sink.feed(Message::Text(text.into())).await.is_err() {
                    break 'writing;
                }
                next = ready.try_recv().ok();
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Text(text) => {
                let answers = answers.clone();
                tokio::spawn(async move {
                    let (_, answer) = baseline_envelope(text.as_str().as_bytes());
                    let _ = answers.send(answer);
                });
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    drop(answers);
    let _ = writer.await;
}

/// The envelope of a call to `add`, and what its answer holds.
const ENVELOPE: Call = Call {
    frame: r#"{"procedure":"add","scope":"math","args":{"a":40,"b":2},"correlationId":1}"#,
    answered: r#"{"code":200"#,
};

/// The same call in JSON-RPC 2.0, to the framework or to jsonrpsee.
const JSONRPC: Call = Call {
    frame: JSONRPC_ADD,
    answered: r#""result":42"#,
};

/// A frame to send, and what a successful answer to it holds (jsonrpsee
/// writes `id` before `result`, the framework after).
#[derive(Clone, Copy)]
struct Call {
    frame: &'static str,
    answered: &'static str,
}

/// Keeps `in_flight` calls outstanding on each of `connections`.
async fn ws_load(
    addr: SocketAddr,
    call: Call,
    connections: usize,
    in_flight: usize,
    duration: Duration,
) -> Tally {
    let Call { frame, answered } = call;
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let (mut sink, mut stream) = ws_connect(addr).await.split();
                for _ in 0..in_flight {
                    let _ = sink.feed(tungstenite::Message::Text(frame.into())).await;
                }
                let _ = sink.flush().await;
                let mut outstanding = in_flight;
                // Each answer and every other already received, then one
                // flush for the calls that replace them, as the reference
                // kit's `ws-load` does: the client then costs the servers'
                // cores as little as it can.
                'running: while outstanding > 0 {
                    let mut next = stream.next().await;
                    let mut sent = false;
                    loop {
                        match next {
                            Some(Ok(tungstenite::Message::Text(text))) => {
                                outstanding -= 1;
                                if text.as_str().contains(answered) {
                                    tally.ok += 1;
                                } else {
                                    tally.failed += 1;
                                }
                                if Instant::now() < deadline {
                                    if sink
                                        .feed(tungstenite::Message::Text(frame.into()))
                                        .await
                                        .is_err()
                                    {
                                        break 'running;
                                    }
                                    outstanding += 1;
                                    sent = true;
                                }
                            }
                            Some(Ok(_)) => {}
                            _ => {
                                tally.failed += 1;
                                break 'running;
                            }
                        }
                        match stream.next().now_or_never() {
                            Some(ready) => next = ready,
                            None => break,
                        }
                    }
                    if sent && sink.flush().await.is_err() {
                        break;
                    }
                }
                (tally, Vec::new())
            })
        })
        .collect();
    gather(started, tasks).await.0
}

/// How two servers are compared: under the same load, in alternating
/// rounds.
#[derive(Clone, Copy)]
struct Sides {
    connections: usize,
    in_flight: usize,
    rounds: u64,
    duration: Duration,
}

impl Sides {
    /// Warms both up, then makes `call` on each in turn; gives the median
    /// of the rounds' ratios of `a` to `b`.
    async fn compare(
        self,
        (name_a, a): (&str, SocketAddr),
        (name_b, b): (&str, SocketAddr),
        call: Call,
    ) -> f64 {
        let Sides {
            connections,
            in_flight,
            rounds,
            duration,
        } = self;
        let warm = Duration::from_millis(500);
        ws_load(a, call, connections, in_flight, warm).await;
        ws_load(b, call, connections, in_flight, warm).await;
        compare(
            name_a,
            name_b,
            rounds,
            || ws_load(a, call, connections, in_flight, duration),
            || ws_load(b, call, connections, in_flight, duration),
        )
        .await
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var("BENCH_ROLE").as_deref() == Ok("server") {
        runtime.block_on(idle_server());
    } else if std::env::var("BENCH_ONLY").as_deref() == Ok("idle") {
        runtime.block_on(idle_memory());
    } else {
        runtime.block_on(throughput());
        if std::env::var("BENCH_ONLY").is_err() {
            runtime.block_on(idle_memory());
        }
    }
}

async fn throughput() {
    let connections = env_or("BENCH_CONNECTIONS", 8) as usize;
    let in_flight = env_or("BENCH_IN_FLIGHT", 16) as usize;
    let rounds = env_or("BENCH_ROUNDS", 12);
    let duration = Duration::from_millis(env_or("BENCH_MILLIS", 1500));

    let framework = framework_server(Server::builder().name("bench")).await;
    let framework_addr = framework.http_addr().expect("addr");
    let baseline_addr = baseline_server(
        axum::Router::new()
            .fallback(|upgrade: WebSocketUpgrade| async move { upgrade.on_upgrade(baseline) }),
    )
    .await;

    // JSON-RPC against jsonrpsee: neither server runs a middleware.
    let bare = bare_framework_server(Server::builder().name("bench-bare")).await;
    let bare_addr = bare.http_addr().expect("addr");
    let (jsonrpsee_addr, _jsonrpsee) = jsonrpsee_server().await;

    if let Ok(only) = std::env::var("BENCH_ONLY") {
        let calls = env_or("BENCH_CALLS", 1000);
        match only.as_str() {
            "framework" => counted(framework_addr, ENVELOPE, calls).await,
            "jsonrpc" => counted(bare_addr, JSONRPC, calls).await,
            "jsonrpsee" => counted(jsonrpsee_addr, JSONRPC, calls).await,
            "client" => counted_typed(framework_addr, calls).await,
            _ => counted(baseline_addr, ENVELOPE, calls).await,
        }
        return;
    }
    println!(
        "WebSocket add: {connections} connections x {in_flight} in flight, {rounds} rounds of {} ms a side",
        duration.as_millis()
    );
    let sides = Sides {
        connections,
        in_flight,
        rounds,
        duration,
    };
    let ratio = sides
        .compare(
            ("framework", framework_addr),
            ("hand-written axum", baseline_addr),
            ENVELOPE,
        )
        .await;
    println!("RESULT ws framework/hand-written = {ratio:.3} (median of rounds; target >= 0.90)");

    println!(
        "WebSocket add as JSON-RPC 2.0: the framework against jsonrpsee's server, neither with a middleware"
    );
    let ratio = sides
        .compare(
            ("framework", bare_addr),
            ("jsonrpsee", jsonrpsee_addr),
            JSONRPC,
        )
        .await;
    println!(
        "RESULT ws JSON-RPC framework/jsonrpsee = {ratio:.3} (median of rounds; target >= 2.0)"
    );

    let warm = Duration::from_millis(500);
    println!(
        "typed client: {connections} WsClient x {in_flight} callers against the hand-written client, same server"
    );
    typed_client_load(framework_addr, connections, in_flight, warm).await;
    let ratio = compare(
        "WsClient",
        "hand-written client",
        rounds,
        || typed_client_load(framework_addr, connections, in_flight, duration),
        || ws_load(framework_addr, ENVELOPE, connections, in_flight, duration),
    )
    .await;
    println!("RESULT ws typed client/hand-written client = {ratio:.3} (median of rounds)");
    let _ = framework.shutdown().await;
}

/// `in_flight` callers sharing each of `connections` typed clients, each
/// caller with one call outstanding: the load of [`ws_load`], through
/// [`WsClient::call`].
async fn typed_client_load(
    addr: SocketAddr,
    connections: usize,
    in_flight: usize,
    duration: Duration,
) -> Tally {
    let mut clients = Vec::new();
    for _ in 0..connections {
        let client = WsClient::connect(format!("ws://{addr}/"))
            .await
            .expect("connect");
        clients.push(Arc::new(client));
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks = clients
        .iter()
        .flat_map(|client| std::iter::repeat_n(client, in_flight))
        .map(|client| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    match client.call::<add>(AddArgs { a: 40, b: 2 }).await {
                        Ok(42) => tally.ok += 1,
                        _ => tally.failed += 1,
                    }
                }
                (tally, Vec::new())
            })
        })
        .collect();
    let (tally, _) = gather(started, tasks).await;
    for client in clients {
        client.close();
    }
    tally
}

/// Makes exactly `calls` calls, 16 in flight, on one connection.
async fn counted(addr: SocketAddr, call: Call, calls: u64) {
    let Call { frame, answered } = call;
    let (mut sink, mut stream) = ws_connect(addr).await.split();
    let mut sent = 0;
    while sent < calls.min(16) {
        sink.send(tungstenite::Message::Text(frame.into()))
            .await
            .expect("send");
        sent += 1;
    }
    let mut count = 0;
    while count < calls {
        if let Some(Ok(tungstenite::Message::Text(text))) = stream.next().await {
            assert!(text.as_str().contains(answered), "{text}");
            count += 1;
            if sent < calls {
                sink.send(tungstenite::Message::Text(frame.into()))
                    .await
                    .expect("send");
                sent += 1;
            }
        }
    }
}

/// Makes exactly `calls` calls (rounded down to a multiple of 16) through
/// one [`WsClient`] shared by 16 callers.
async fn counted_typed(addr: SocketAddr, calls: u64) {
    let client = WsClient::connect(format!("ws://{addr}/"))
        .await
        .expect("connect");
    let callers = (0..16).map(|_| {
        let client = client.clone();
        tokio::spawn(async move {
            for _ in 0..calls / 16 {
                let sum = client.call::<add>(AddArgs { a: 40, b: 2 }).await;
                assert_eq!(sum.ok(), Some(42));
            }
        })
    });
    for caller in callers.collect::<Vec<_>>() {
        caller.await.expect("caller");
    }
    client.close();
}

/// The child process: a server that prints its address and waits.
async fn idle_server() {
    let server = rpc_benches::application(Server::builder().name("idle"))
        .http("127.0.0.1:0")
        .build()
        .expect("build")
        .start()
        .await
        .expect("start");
    println!("{}", server.http_addr().expect("addr"));
    let _ = tokio::io::BufReader::new(tokio::io::stdin())
        .lines()
        .next_line()
        .await;
}

fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

async fn idle_memory() {
    let count = env_or("BENCH_IDLE", 10_000) as usize;
    let exe = std::env::current_exe().expect("exe");
    let mut child = tokio::process::Command::new(exe)
        .env("BENCH_ROLE", "server")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the server");
    let pid = child.id().expect("pid");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr: SocketAddr = lines
        .next_line()
        .await
        .ok()
        .flatten()
        .and_then(|l| l.parse().ok())
        .expect("address");

    // Warm the server's allocator and runtime with a few connections first.
    let mut warm = Vec::new();
    for _ in 0..50 {
        warm.push(identify(ws_connect(addr).await, 0).await);
    }
    drop(warm);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = resident_kib(pid);

    let mut clients = Vec::with_capacity(count);
    let mut pending = futures_util::stream::FuturesUnordered::new();
    for i in 0..count {
        pending.push(async move { identify(ws_connect(addr).await, i).await });
        if pending.len() >= 200
            && let Some(client) = pending.next().await
        {
            clients.push(client);
        }
    }
    while let Some(client) = pending.next().await {
        clients.push(client);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = resident_kib(pid);
    let per_connection = (after.saturating_sub(before)) as f64 * 1024.0 / count as f64;
    println!(
        "idle memory: server RSS {before} KiB before, {after} KiB with {count} identified connections: {:.0} bytes ({:.2} KiB) per connection",
        per_connection,
        per_connection / 1024.0
    );
    println!(
        "RESULT ws idle memory = {:.2} KiB per connection (target <= 16)",
        per_connection / 1024.0
    );
    drop(clients);
    let _ = child.kill().await;
}

async fn identify(mut client: WsStream, i: usize) -> WsStream {
    let frame = json!({"identity": {"authorization": format!("Bearer user-{i:06}"), "deviceName": "bench"}, "correlationId": i});
    client
        .send(tungstenite::Message::Text(frame.to_string().into()))
        .await
        .expect("send identity");
    loop {
        match client.next().await {
            Some(Ok(tungstenite::Message::Text(text))) => {
                assert!(text.as_str().starts_with(r#"{"code":200"#), "{text}");
                return client;
            }
            Some(Ok(_)) => continue,
            other => panic!("identity not acknowledged: {other:?}"),
        }
    }
}
