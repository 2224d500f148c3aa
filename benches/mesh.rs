//! Run with (RabbitMQ on 127.0.0.1:5672, or `AMQP_URI`):
//!
//! ```sh
//! cargo bench -p rpc-benches --bench mesh
//! ```
//!
//! Pushes through the mesh: a handler server, which holds no connection,
//! broadcasts to WebSocket clients spread over two gateways
//! (`BENCH_CLIENTS` per gateway, default 8) through RabbitMQ. The baseline
//! does the same by hand: a lapin publisher to a direct exchange, and two
//! hand-written gateways, each consuming its own exclusive queue on its own
//! connection and writing every message to its axum WebSocket connections
//! (one writer task per connection, which writes what is ready and flushes
//! once). Each round sends bursts of `BENCH_BURST` (default 100) pushes and
//! waits until every client has all of them, for `BENCH_MILLIS` (default
//! 2000) ms, alternating for `BENCH_ROUNDS` (default 6) rounds; pushes/s
//! counts deliveries (one push to 16 clients counts 16).

use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use futures_util::{SinkExt, StreamExt};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use rpc_benches::{Tally, baseline_server, compare, env_or, ws_connect};
use rpc_runtime::{RunningServer, Server};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const EXCHANGE: &str = "rpc-bench.push";

fn uri() -> String {
    std::env::var("AMQP_URI").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// WebSocket clients that count the pushes they receive.
async fn clients(gateways: &[SocketAddr], per_gateway: usize) -> Vec<Arc<AtomicU64>> {
    let mut counters = Vec::new();
    for addr in gateways {
        for _ in 0..per_gateway {
            let mut socket = ws_connect(*addr).await;
            let counter = Arc::new(AtomicU64::new(0));
            counters.push(counter.clone());
            tokio::spawn(async move {
                while let Some(Ok(message)) = socket.next().await {
                    if let tokio_tungstenite::tungstenite::Message::Text(text) = message
                        && text.as_str().contains("serverMessage")
                    {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    }
    counters
}

/// Sends bursts until the time is up, each burst received by every client
/// before the next.
async fn round<F, Fut>(counters: &[Arc<AtomicU64>], burst: u64, millis: u64, mut send: F) -> Tally
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let started = Instant::now();
    let mut sent = 0;
    let mut failed = 0;
    while started.elapsed() < Duration::from_millis(millis) {
        send(burst).await;
        sent += burst;
        let waiting = Instant::now();
        while counters
            .iter()
            .zip(&start)
            .any(|(counter, start)| counter.load(Ordering::Relaxed) < start + sent)
        {
            if waiting.elapsed() > Duration::from_secs(10) {
                failed += 1;
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    Tally {
        ok: sent * counters.len() as u64,
        failed,
        elapsed: started.elapsed(),
    }
}

async fn framework_gateway(name: &str) -> RunningServer {
    Server::builder()
        .name(name)
        .http("127.0.0.1:0")
        .host_none()
        .broker(uri())
        .build()
        .expect("build")
        .start()
        .await
        .expect("start")
}

/// A hand-written gateway's connections: one writer per connection.
type Writers = Arc<Mutex<Vec<mpsc::UnboundedSender<Utf8Bytes>>>>;

async fn upgrade(
    upgrade: WebSocketUpgrade,
    State(writers): State<Writers>,
) -> axum::response::Response {
    upgrade.on_upgrade(move |socket| write_pushes(socket, writers))
}

async fn write_pushes(mut socket: WebSocket, writers: Writers) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    writers.lock().expect("lock").push(tx);
    while let Some(frame) = rx.recv().await {
        if socket.feed(Message::Text(frame)).await.is_err() {
            return;
        }
        while let Ok(frame) = rx.try_recv() {
            if socket.feed(Message::Text(frame)).await.is_err() {
                return;
            }
        }
        if socket.flush().await.is_err() {
            return;
        }
    }
}

/// A hand-written gateway: an axum WebSocket server, and a lapin consumer
/// of its own queue that hands every message to each connection.
async fn hand_written_gateway() -> SocketAddr {
    let writers: Writers = Arc::default();
    let router = axum::Router::new()
        .route("/", axum::routing::get(upgrade))
        .with_state(writers.clone());
    let addr = baseline_server(router).await;
    let connection = Connection::connect(&uri(), ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue");
    channel
        .queue_bind(
            queue.name().clone(),
            EXCHANGE.into(),
            "all".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume");
    tokio::spawn(async move {
        let _connection = connection;
        while let Some(Ok(delivery)) = consumer.next().await {
            let Ok(text) = String::from_utf8(delivery.data) else {
                continue;
            };
            let frame = Utf8Bytes::from(text);
            for writer in writers.lock().expect("lock").iter() {
                let _ = writer.send(frame.clone());
            }
        }
    });
    addr
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

async fn run() {
    let per_gateway = env_or("BENCH_CLIENTS", 8) as usize;
    let burst = env_or("BENCH_BURST", 100);
    let millis = env_or("BENCH_MILLIS", 2000);
    let rounds = env_or("BENCH_ROUNDS", 6);

    // The framework: two gateways and a handler server without connections.
    let gateways = [
        framework_gateway("bench-mesh-g1").await,
        framework_gateway("bench-mesh-g2").await,
    ];
    let handler = Server::builder()
        .name("bench-mesh-handler")
        .websocket(false)
        .host_none()
        .broker(uri())
        .build()
        .expect("build")
        .start()
        .await
        .expect("start");
    let addrs: Vec<SocketAddr> = gateways
        .iter()
        .map(|g| g.http_addr().expect("http"))
        .collect();
    let framework_clients = clients(&addrs, per_gateway).await;
    // Until both gateways have bound their queues for their connections.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The baseline.
    let publisher = Connection::connect(&uri(), ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = publisher.create_channel().await.expect("channel");
    channel
        .exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("exchange");
    let baseline_addrs = [hand_written_gateway().await, hand_written_gateway().await];
    let baseline_clients = clients(&baseline_addrs, per_gateway).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let server = handler.handle();
    let mut n = 0u64;
    let mut m = 0u64;
    let channel = &channel;
    let ratio = compare(
        "framework",
        "hand-written",
        rounds,
        || {
            let server = server.clone();
            let counters = framework_clients.clone();
            let start = n;
            n += 1_000_000;
            async move {
                let mut i = start;
                round(&counters, burst, millis, |burst| {
                    for _ in 0..burst {
                        i += 1;
                        server.broadcast(serde_json::json!({ "n": i }));
                    }
                    std::future::ready(())
                })
                .await
            }
        },
        || {
            let counters = baseline_clients.clone();
            let start = m;
            m += 1_000_000;
            async move {
                let mut i = start;
                round(&counters, burst, millis, |burst| {
                    let publishes: Vec<_> = (0..burst)
                        .map(|_| {
                            i += 1;
                            let payload =
                                format!(r#"{{"serverMessage":{{"n":{i}}}}}"#).into_bytes();
                            async move {
                                let _ = channel
                                    .basic_publish(
                                        EXCHANGE.into(),
                                        "all".into(),
                                        BasicPublishOptions::default(),
                                        &payload,
                                        BasicProperties::default(),
                                    )
                                    .await;
                            }
                        })
                        .collect();
                    async move {
                        futures_util::future::join_all(publishes).await;
                    }
                })
                .await
            }
        },
    )
    .await;
    println!(
        "pushes/s through the mesh, framework / hand-written: {ratio:.3} (target 0.8), \
         {} clients on 2 gateways, bursts of {burst}",
        2 * per_gateway
    );
    for gateway in gateways {
        let _ = gateway.shutdown().await;
    }
    let _ = handler.shutdown().await;
}
