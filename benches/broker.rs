//! Run with (RabbitMQ on 127.0.0.1:5672, or `AMQP_URI`):
//!
//! ```sh
//! cargo bench -p rpc-benches --bench broker
//! ```
//!
//! Forwarded calls: an HTTP client calls a gateway, which forwards through
//! RabbitMQ to a handler server and back. The baseline is a hand-written
//! lapin request/reply loop with direct reply-to on the same broker (no
//! HTTP, no envelope, no validation). A second baseline puts the same loop
//! behind a hand-written axum gateway, so that the framework is also
//! measured against hand-written code on its own path (client, gateway,
//! broker, handler and back), and the loop's missing HTTP leg is measured
//! by itself. They run with
//! `BENCH_CONCURRENCY` (default 16) callers, alternating for `BENCH_ROUNDS`
//! (default 6) rounds of `BENCH_MILLIS` (default 2000) ms; printed are
//! calls/s (median ratio of rounds) and p50/p99 latency over all rounds,
//! then p50/p99 with a single caller (unloaded latency; over HTTP, and
//! over one WebSocket connection for comparison), next to a single
//! caller of a server hosting `add` itself (the HTTP leg alone), back to
//! back and with the workers idle before each call. The loaded
//! measurement runs twice: with HTTP clients, and with the callers spread
//! over 4 WebSocket connections (the transport browser and mobile clients
//! keep open), each call's latency taken from its frame to its answer.
//!
//! `BENCH_ONLY=framework|framework-ws|gateway|baseline BEAM=<pid of beam.smp>`
//! runs one side once (the framework with HTTP or WebSocket clients, the
//! hand-written gateway, the loop) and prints
//! the CPU time per call of this process and of RabbitMQ.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderName, StatusCode, header};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rpc_benches::AddArgs;
use rpc_benches::{
    Side, Tally, alternate, baseline_server, env_or, framework_server, gather, http_latencies,
    load, post_request, ws_connect,
};
use rpc_runtime::Server;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const BASELINE_QUEUE: &str = "rpc-bench.baseline";

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>>;

/// The hand-written baseline: a replying consumer and a caller with direct
/// reply-to, on their own connections.
struct Baseline {
    channel: lapin::Channel,
    pending: Pending,
    next: std::sync::atomic::AtomicU64,
}

impl Baseline {
    async fn start(uri: &str) -> Arc<Self> {
        let server = Connection::connect(uri, ConnectionProperties::default())
            .await
            .expect("connect");
        let channel = server.create_channel().await.expect("channel");
        channel
            .basic_qos(64, BasicQosOptions::default())
            .await
            .expect("qos");
        channel
            .queue_declare(
                BASELINE_QUEUE.into(),
                QueueDeclareOptions {
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare");
        let mut consumer = channel
            .basic_consume(
                BASELINE_QUEUE.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        tokio::spawn(async move {
            let _server = server;
            // Each delivery in its own task, lapin's usual pattern, so that
            // the consumer does not wait for one reply to be written before
            // it takes the next call.
            while let Some(Ok(delivery)) = consumer.next().await {
                let channel = channel.clone();
                tokio::spawn(async move {
                    let reply = match serde_json::from_slice::<AddArgs>(&delivery.data) {
                        Ok(args) => {
                            serde_json::to_vec(&args.a.wrapping_add(args.b)).unwrap_or_default()
                        }
                        Err(_) => b"null".to_vec(),
                    };
                    if let (Some(to), Some(id)) = (
                        delivery.properties.reply_to(),
                        delivery.properties.correlation_id(),
                    ) {
                        let properties = BasicProperties::default().with_correlation_id(id.clone());
                        let _ = channel
                            .basic_publish(
                                "".into(),
                                to.as_str().into(),
                                BasicPublishOptions::default(),
                                &reply,
                                properties,
                            )
                            .await;
                    }
                    let _ = delivery.ack(BasicAckOptions::default()).await;
                });
            }
        });

        let client = Connection::connect(uri, ConnectionProperties::default())
            .await
            .expect("connect");
        let channel = client.create_channel().await.expect("channel");
        let mut replies = channel
            .basic_consume(
                "amq.rabbitmq.reply-to".into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consume replies");
        let pending: Pending = Arc::default();
        let waiting = pending.clone();
        tokio::spawn(async move {
            let _client = client;
            while let Some(Ok(delivery)) = replies.next().await {
                let id = delivery
                    .properties
                    .correlation_id()
                    .as_ref()
                    .map(|id| id.to_string());
                let reply = id.and_then(|id| waiting.lock().ok()?.remove(&id));
                if let Some(reply) = reply {
                    let _ = reply.send(delivery.data);
                }
            }
        });
        Arc::new(Baseline {
            channel,
            pending,
            next: Default::default(),
        })
    }

    /// Makes one call and yields its reply's body.
    async fn call(&self, body: &[u8]) -> Option<Vec<u8>> {
        let id = self
            .next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_string();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id.clone(), tx);
        }
        let properties = BasicProperties::default()
            .with_correlation_id(id.as_str().into())
            .with_reply_to("amq.rabbitmq.reply-to".into());
        self.channel
            .basic_publish(
                "".into(),
                BASELINE_QUEUE.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .ok()?;
        rx.await.ok()
    }
}

/// What a hand-written gateway reads of the envelope.
#[derive(serde::Deserialize)]
struct Envelope {
    args: AddArgs,
}

/// The hand-written gateway: reads the envelope's args, makes the loop's
/// call, and answers with an envelope. Nothing else: no routing,
/// validation, identity, deadline, correlation id or telemetry.
async fn gateway_by_hand(
    State(baseline): State<Arc<Baseline>>,
    body: Bytes,
) -> (StatusCode, [(HeaderName, &'static str); 1], Vec<u8>) {
    let json = [(header::CONTENT_TYPE, "application/json")];
    let Ok(envelope) = serde_json::from_slice::<Envelope>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            json,
            br#"{"code":400,"success":false}"#.to_vec(),
        );
    };
    let args = serde_json::to_vec(&envelope.args).unwrap_or_default();
    let Some(data) = baseline.call(&args).await else {
        return (
            StatusCode::BAD_GATEWAY,
            json,
            br#"{"code":502,"success":false}"#.to_vec(),
        );
    };
    let mut answer = Vec::with_capacity(40 + data.len());
    answer.extend_from_slice(br#"{"code":200,"success":true,"data":"#);
    answer.extend_from_slice(&data);
    answer.push(b'}');
    (StatusCode::OK, json, answer)
}

async fn baseline_load(
    baseline: &Arc<Baseline>,
    concurrency: usize,
    duration: Duration,
) -> (Tally, Vec<Duration>) {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let baseline = baseline.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    if baseline.call(br#"{"a":40,"b":2}"#).await.as_deref() == Some(b"42") {
                        tally.ok += 1;
                        latencies.push(sent.elapsed());
                    } else {
                        tally.failed += 1;
                    }
                }
                (tally, latencies)
            })
        })
        .collect();
    gather(started, tasks).await
}

/// `concurrency` callers over 4 WebSocket connections, each caller with one
/// call in flight: the same load as the HTTP callers, on WebSocket.
async fn ws_latencies(
    addr: std::net::SocketAddr,
    concurrency: usize,
    duration: Duration,
) -> (Tally, Vec<Duration>) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let connections = 4.min(concurrency).max(1);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let callers = concurrency / connections + usize::from(c < concurrency % connections);
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut latencies = Vec::new();
                let (mut sink, mut stream) = ws_connect(addr).await.split();
                let frame = |id: usize| {
                    format!(r#"{{"procedure":"add","scope":"math","args":{{"a":40,"b":2}},"correlationId":{id}}}"#)
                };
                let mut sent_at = vec![Instant::now(); callers];
                for (id, at) in sent_at.iter_mut().enumerate() {
                    *at = Instant::now();
                    let _ = sink.send(Message::Text(frame(id).into())).await;
                }
                let mut outstanding = callers;
                while outstanding > 0 {
                    let Some(Ok(Message::Text(text))) = stream.next().await else {
                        tally.failed += 1;
                        break;
                    };
                    outstanding -= 1;
                    let id = correlation_id(text.as_str()) % callers;
                    if text.starts_with(r#"{"code":200,"#) {
                        tally.ok += 1;
                        latencies.push(sent_at[id].elapsed());
                    } else {
                        tally.failed += 1;
                    }
                    if Instant::now() < deadline {
                        sent_at[id] = Instant::now();
                        if sink.send(Message::Text(frame(id).into())).await.is_err() {
                            break;
                        }
                        outstanding += 1;
                    }
                }
                (tally, latencies)
            })
        })
        .collect();
    gather(started, tasks).await
}

/// One caller on one connection that pauses 1 ms before each call, so that
/// the runtime's workers are idle when it comes, as they are between
/// forwarded calls while RabbitMQ works.
async fn paced_latencies(
    addr: std::net::SocketAddr,
    request: &[u8],
    duration: Duration,
) -> Vec<Duration> {
    use tokio::io::AsyncWriteExt;
    let deadline = Instant::now() + duration;
    let mut latencies = Vec::new();
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return latencies;
    };
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::with_capacity(16 * 1024);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let sent = Instant::now();
        if stream.write_all(request).await.is_err() {
            break;
        }
        match rpc_benches::read_response(&mut stream, &mut buffer).await {
            Ok((200, _)) => latencies.push(sent.elapsed()),
            _ => break,
        }
    }
    latencies
}

/// The numeric correlation id of a reply frame, read without parsing the
/// whole envelope (the hand-written loop's caller parses nothing either);
/// the envelope puts it last.
fn correlation_id(reply: &str) -> usize {
    const KEY: &str = r#""correlationId":"#;
    reply
        .rfind(KEY)
        .and_then(|at| {
            let digits = &reply[at + KEY.len()..];
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            digits[..end].parse().ok()
        })
        .unwrap_or(0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let uri = std::env::var("AMQP_URI")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let concurrency = env_or("BENCH_CONCURRENCY", 16) as usize;
    let round_count = env_or("BENCH_ROUNDS", 6);
    let duration = Duration::from_millis(env_or("BENCH_MILLIS", 2000));

    let handler =
        rpc_benches::application(Server::builder().name("bench-handler").broker(uri.clone()))
            .build()
            .expect("build")
            .start()
            .await
            .expect("the handler server starts (is RabbitMQ running?)");
    let gateway = framework_server(
        Server::builder()
            .name("bench-gateway")
            .host_none()
            .broker(uri.clone()),
    )
    .await;
    let addr = gateway.http_addr().expect("addr");
    let request = post_request(br#"{"procedure":"add","scope":"math","args":{"a":40,"b":2}}"#);
    let baseline = Baseline::start(&uri).await;
    let by_hand = baseline_server(
        axum::Router::new()
            .fallback(axum::routing::post(gateway_by_hand))
            .with_state(baseline.clone()),
    )
    .await;

    // All answer before anything is measured; the gateway has heard the
    // handler's announcement.
    for _ in 0..100 {
        if gateway
            .procedures()
            .iter()
            .any(|p| p.address.scope == "math")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        baseline.call(br#"{"a":40,"b":2}"#).await.as_deref(),
        Some(&b"42"[..]),
        "the baseline answers"
    );
    for (name, addr) in [
        ("the framework", addr),
        ("the hand-written gateway", by_hand),
    ] {
        let (warm, _) =
            http_latencies(addr, &request, concurrency, Duration::from_millis(500)).await;
        assert!(warm.ok > 0 && warm.failed == 0, "{name} answers: {warm:?}");
    }
    baseline_load(&baseline, concurrency, Duration::from_millis(500)).await;

    if let Ok(only) = std::env::var("BENCH_ONLY") {
        let cpu = |pid: &str| -> u64 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let fields: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            fields
                .get(11)
                .and_then(|u| u.parse::<u64>().ok())
                .unwrap_or(0)
                + fields
                    .get(12)
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0)
        };
        let beam = std::env::var("BEAM").unwrap_or_default();
        let (b0, s0) = (cpu(&beam), cpu("self"));
        let calls = match only.as_str() {
            "framework" => {
                http_latencies(addr, &request, concurrency, duration)
                    .await
                    .0
                    .ok
            }
            "framework-ws" => ws_latencies(addr, concurrency, duration).await.0.ok,
            "gateway" => {
                http_latencies(by_hand, &request, concurrency, duration)
                    .await
                    .0
                    .ok
            }
            _ => baseline_load(&baseline, concurrency, duration).await.0.ok,
        };
        let (b1, s1) = (cpu(&beam), cpu("self"));
        println!(
            "{only}: {calls} calls; per call: beam {:.1} us, this process {:.1} us",
            (b1 - b0) as f64 * 10_000.0 / calls as f64,
            (s1 - s0) as f64 * 10_000.0 / calls as f64
        );
        return;
    }

    println!(
        "forwarded add, HTTP clients: {concurrency} concurrent callers, {round_count} rounds of {} ms a side",
        duration.as_millis()
    );
    let request = &request;
    let mut sides = alternate(
        round_count,
        &mut [
            (
                "framework",
                load(|| http_latencies(addr, request, concurrency, duration)),
            ),
            (
                "hand-written lapin",
                load(|| baseline_load(&baseline, concurrency, duration)),
            ),
            (
                "hand-written gateway",
                load(|| http_latencies(by_hand, request, concurrency, duration)),
            ),
        ],
        true,
    )
    .await;
    let [framework, lapin, by_hand_side] = &mut sides[..] else {
        unreachable!("three loads")
    };
    report("HTTP", framework, lapin);
    let (p50, p99) = framework.latency_ratios(by_hand_side);
    println!(
        "RESULT broker HTTP throughput framework/hand-written gateway = {:.3}; p50 ratio {p50:.3}, p99 ratio {p99:.3}",
        framework.ratio(by_hand_side)
    );
    let (p50, _) = by_hand_side.latency_ratios(lapin);
    println!(
        "RESULT broker HTTP throughput hand-written gateway/hand-written lapin = {:.3}; p50 ratio {p50:.3}",
        by_hand_side.ratio(lapin)
    );

    println!(
        "forwarded add, WebSocket clients: {concurrency} concurrent callers, {round_count} rounds of {} ms a side",
        duration.as_millis()
    );
    let mut sides = alternate(
        round_count,
        &mut [
            (
                "framework",
                load(|| ws_latencies(addr, concurrency, duration)),
            ),
            (
                "hand-written lapin",
                load(|| baseline_load(&baseline, concurrency, duration)),
            ),
        ],
        true,
    )
    .await;
    let [framework, lapin] = &mut sides[..] else {
        unreachable!("two loads")
    };
    report("WebSocket", framework, lapin);

    // Unloaded: one caller at a time. A server hosting `add` itself, with
    // no broker, shows what the HTTP leg alone takes.
    let local = framework_server(Server::builder().name("bench-local")).await;
    let local_addr = local.http_addr().expect("addr");
    let single = duration / 2;
    let mut sides = alternate(
        round_count,
        &mut [
            (
                "framework",
                load(|| http_latencies(addr, request, 1, single)),
            ),
            ("lapin", load(|| baseline_load(&baseline, 1, single))),
            (
                "gateway by hand",
                load(|| http_latencies(by_hand, request, 1, single)),
            ),
            ("framework ws", load(|| ws_latencies(addr, 1, single))),
            (
                "local",
                load(|| http_latencies(local_addr, request, 1, single / 2)),
            ),
            (
                "local paced",
                load(|| async {
                    let latencies = paced_latencies(local_addr, request, single / 2).await;
                    (Tally::default(), latencies)
                }),
            ),
        ],
        false,
    )
    .await;
    let [
        framework,
        lapin,
        by_hand_side,
        ws,
        local_single,
        local_paced,
    ] = &mut sides[..]
    else {
        unreachable!("six loads")
    };
    println!(
        "single caller: framework p50 {:?} p99 {:?} | hand-written p50 {:?} p99 {:?}",
        framework.p(0.5),
        framework.p(0.99),
        lapin.p(0.5),
        lapin.p(0.99)
    );
    let (p50, p99) = framework.latency_ratios(lapin);
    println!(
        "RESULT broker single-caller p50 framework/hand-written = {p50:.3}; p99 ratio {p99:.3}"
    );
    let (p50, p99) = framework.latency_ratios(by_hand_side);
    let (by_hand_p50, _) = by_hand_side.latency_ratios(lapin);
    println!(
        "RESULT broker single-caller p50 framework/hand-written gateway = {p50:.3}; p99 ratio {p99:.3}; hand-written gateway/hand-written lapin p50 {by_hand_p50:.3} (p50 {:?})",
        by_hand_side.p(0.5)
    );
    let (p50, _) = ws.latency_ratios(lapin);
    println!(
        "single caller over one WebSocket connection: framework p50 {:?} p99 {:?}; p50 ratio to hand-written {p50:.3}",
        ws.p(0.5),
        ws.p(0.99),
    );
    println!(
        "single caller, add hosted by the HTTP server itself (the HTTP leg alone): p50 {:?} p99 {:?}",
        local_single.p(0.5),
        local_single.p(0.99)
    );
    println!(
        "the same, the workers idle 1 ms before each call (as between forwarded calls): p50 {:?} p99 {:?}",
        local_paced.p(0.5),
        local_paced.p(0.99)
    );
    let _ = local.shutdown().await;
    let _ = gateway.shutdown().await;
    let _ = handler.shutdown().await;
}

/// Prints the loaded rows of one kind of client against the loop.
fn report(client: &str, framework: &mut Side, lapin: &mut Side) {
    println!(
        "latency ({client}): framework p50 {:?} p99 {:?} | hand-written p50 {:?} p99 {:?}",
        framework.p(0.5),
        framework.p(0.99),
        lapin.p(0.5),
        lapin.p(0.99)
    );
    println!(
        "RESULT broker {client} throughput framework/hand-written = {:.3} (median of rounds; target >= 0.80)",
        framework.ratio(lapin)
    );
    let (p50, p99) = framework.latency_ratios(lapin);
    println!(
        "RESULT broker {client} p50 framework/hand-written = {p50:.3} (target <= 1.25); p99 ratio {p99:.3}"
    );
}
