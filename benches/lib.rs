//! Load generators shared by the benchmarks. They are lean on purpose (raw
//! HTTP/1.1 over keep-alive TCP, pre-encoded requests) so that the servers,
//! not the client, take most of the CPU, and both sides of a comparison run
//! under the same client in the same process.

use rpc_runtime::{JsonSchema, State, rpc};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The args of the `math/add` procedure every benchmark calls.
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddArgs {
    /// The first term.
    pub a: i64,
    /// The second term.
    pub b: i64,
}

/// The application state the benchmarked procedure takes, as a real one
/// takes a pool.
#[derive(Clone, Default)]
pub struct Offset(pub std::sync::Arc<i64>);

/// Adds two integers (and the state's offset, zero); served by the
/// framework side of every benchmark.
#[rpc(procedure = "add", scope = "math")]
pub async fn add(args: AddArgs, State(offset): State<Offset>) -> i64 {
    args.a.wrapping_add(args.b).wrapping_add(*offset.0)
}

/// What every framework server of the benchmarks runs with, as an
/// application would: the state `add` takes, and one middleware (one that
/// passes every call on, so that what is measured is the cost of having
/// one).
///
/// `BENCH_NO_MIDDLEWARE=1` leaves the middleware out, to measure its cost.
pub fn application(builder: rpc_runtime::ServerBuilder) -> rpc_runtime::ServerBuilder {
    use rpc_runtime::middleware::{CallService, from_fn};
    let builder = builder.state(Offset::default());
    if std::env::var_os("BENCH_NO_MIDDLEWARE").is_some() {
        return builder;
    }
    builder.layer(from_fn(|call, next: CallService| {
        tower::ServiceExt::oneshot(next, call)
    }))
}

/// The JSON-RPC 2.0 form of a call to `math/add`, which the framework and
/// [`jsonrpsee_server`] both answer with `{"jsonrpc":"2.0","result":42,"id":1}`.
pub const JSONRPC_ADD: &str =
    r#"{"jsonrpc":"2.0","method":"math/add@1","params":{"a":40,"b":2},"id":1}"#;

/// jsonrpsee's server (0.26, default settings: HTTP and WebSocket on one
/// port), serving `math/add@1` as the framework serves `add` (params by
/// name, decoded into [`AddArgs`], the sum as the result), on an
/// ephemeral loopback port: the peer the framework's JSON-RPC is
/// measured against. Keep the handle: dropping it stops the server.
pub async fn jsonrpsee_server() -> (SocketAddr, jsonrpsee::server::ServerHandle) {
    use jsonrpsee::server::{RpcModule, Server};
    use jsonrpsee::types::ErrorObjectOwned;
    let mut module = RpcModule::new(());
    module
        .register_method("math/add@1", |params, _, _| {
            let args: AddArgs = params.parse()?;
            Ok::<i64, ErrorObjectOwned>(args.a.wrapping_add(args.b))
        })
        .expect("a new name");
    let server = Server::builder().build("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().expect("bound");
    (addr, server.start(module))
}

/// The hand-written baselines' envelope handler, as strong as the reference
/// kit's `axum-baseline`: the envelope read by a borrowed parse (args kept
/// as raw text), dispatched on (scope, procedure), the args deserialized
/// straight into their struct, and the response written from typed
/// structs. No validation beyond serde's: the least a server can do for
/// this protocol. Gives the HTTP status and the response body.
pub fn baseline_envelope(body: &[u8]) -> (u16, Vec<u8>) {
    use serde_json::value::RawValue;

    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        procedure: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        scope: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        args: Option<&'a RawValue>,
        #[serde(borrow, rename = "correlationId")]
        correlation_id: Option<&'a RawValue>,
    }

    #[derive(Serialize)]
    struct Reply<'a, D> {
        code: u16,
        success: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<D>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<&'a str>,
        #[serde(rename = "correlationId", skip_serializing_if = "Option::is_none")]
        correlation_id: Option<&'a RawValue>,
    }

    fn reply<D: Serialize>(
        code: u16,
        data: Option<D>,
        message: Option<&str>,
        correlation_id: Option<&RawValue>,
    ) -> (u16, Vec<u8>) {
        let reply = Reply {
            code,
            success: code == 200,
            data,
            message,
            correlation_id,
        };
        (code, serde_json::to_vec(&reply).unwrap_or_default())
    }

    let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(body) else {
        return reply::<()>(400, None, Some("bad envelope"), None);
    };
    let id = envelope.correlation_id;
    if (envelope.scope.as_deref(), &*envelope.procedure) != (Some("math"), "add") {
        return reply::<()>(404, None, Some("not found"), id);
    }
    let args = envelope
        .args
        .map(|args| serde_json::from_str::<AddArgs>(args.get()));
    match args {
        Some(Ok(args)) => reply(200, Some(args.a.wrapping_add(args.b)), None, id),
        Some(Err(error)) => reply::<()>(422, None, Some(&error.to_string()), id),
        None => reply::<()>(422, None, Some("no args"), id),
    }
}

/// A whole number from the environment, or a default.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An HTTP/1.1 keep-alive POST of `body` to `/`.
pub fn post_request(body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST / HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Reads one HTTP/1.1 response with a content-length; returns its status
/// and body.
pub async fn read_response(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut searched = 0;
    loop {
        if let Some(end) = find(&buffer[searched..], b"\r\n\r\n").map(|i| i + searched) {
            let head = std::str::from_utf8(&buffer[..end]).map_err(std::io::Error::other)?;
            let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let total = end + 4 + length;
            while buffer.len() < total {
                read_more(stream, buffer).await?;
            }
            let body = buffer[end + 4..total].to_vec();
            buffer.drain(..total);
            return Ok((status, body));
        }
        searched = buffer.len().saturating_sub(3);
        read_more(stream, buffer).await?;
    }
}

/// Reads into the buffer's spare room: no zeroing, no copy, so that the
/// load generator takes as little of the CPU it shares with the servers as
/// it can.
async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<()> {
    buffer.reserve(8192);
    if stream.read_buf(buffer).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    (0..haystack.len().saturating_sub(needle.len() - 1))
        .find(|&i| haystack[i] == first && &haystack[i..i + needle.len()] == needle)
}

/// What one measurement saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    /// Calls answered with status 200.
    pub ok: u64,
    /// Calls answered otherwise, or failed.
    pub failed: u64,
    /// Wall time of the measurement.
    pub elapsed: Duration,
}

impl Tally {
    /// Successful calls per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `request` over `connections` keep-alive connections, one call at a
/// time on each, for `duration`.
pub async fn http_load(
    addr: SocketAddr,
    request: &[u8],
    connections: usize,
    duration: Duration,
) -> Tally {
    http_latencies(addr, request, connections, duration).await.0
}

/// Waits for load-generating tasks and adds up what they saw.
pub async fn gather(
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<(Tally, Vec<Duration>)>>,
) -> (Tally, Vec<Duration>) {
    let mut total = Tally::default();
    let mut all = Vec::new();
    for task in tasks {
        if let Ok((tally, latencies)) = task.await {
            total.ok += tally.ok;
            total.failed += tally.failed;
            all.extend(latencies);
        }
    }
    total.elapsed = started.elapsed();
    (total, all)
}

/// Starts a framework server on an ephemeral loopback port, with the
/// application's state and middleware.
pub async fn framework_server(builder: rpc_runtime::ServerBuilder) -> rpc_runtime::RunningServer {
    start(application(builder)).await
}

/// Starts a framework server with the state `add` takes and no
/// middleware: the work jsonrpsee's server does for the same call, for
/// the JSON-RPC comparison.
pub async fn bare_framework_server(
    builder: rpc_runtime::ServerBuilder,
) -> rpc_runtime::RunningServer {
    start(builder.state(Offset::default())).await
}

async fn start(builder: rpc_runtime::ServerBuilder) -> rpc_runtime::RunningServer {
    builder
        .http("127.0.0.1:0")
        .build()
        .expect("build")
        .start()
        .await
        .expect("start")
}

/// A load generator's WebSocket connection.
pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a load generator's WebSocket connection to `ws://{addr}/`, with
/// a small read buffer (tungstenite zeroes as much of its read buffer as
/// one read may fill, 128 KiB by default, before every read: a cost that
/// would be charged to the side measured; and ten thousand connections
/// stay cheap), frames written when flushed (`send` flushes; `feed` and
/// one `flush` write several at once), and without Nagle's algorithm,
/// like the HTTP load generator.
pub async fn ws_connect(addr: SocketAddr) -> WsStream {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(64 * 1024);
    tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/"), Some(config), true)
        .await
        .expect("connect")
        .0
}

/// Serves a hand-written axum router on an ephemeral loopback port.
/// Like the framework's listener, it sets TCP_NODELAY on every connection:
/// with Nagle's algorithm, answers to calls in flight on one connection
/// would leave in fewer segments, a difference of TCP settings, not of code.
pub async fn baseline_server(router: axum::Router) -> SocketAddr {
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let listener = listener.tap_io(|socket| {
        let _ = socket.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Runs `rounds` alternating measurements of two targets (AB, BA, ...),
/// prints each round, and returns the median of the per-round ratios (`a`
/// over `b`), which a noisy neighbour skews least. The ratio of the mean
/// rates is printed too.
pub async fn compare<FA, FB, A, B>(
    label_a: &str,
    label_b: &str,
    rounds: u64,
    mut a: FA,
    mut b: FB,
) -> f64
where
    FA: FnMut() -> A,
    FB: FnMut() -> B,
    A: Future<Output = Tally>,
    B: Future<Output = Tally>,
{
    let sides = alternate(
        rounds,
        &mut [
            (label_a, load(|| without_latencies(a()))),
            (label_b, load(|| without_latencies(b()))),
        ],
        true,
    )
    .await;
    let mean = |side: &Side| side.rates.iter().sum::<f64>() / side.rates.len() as f64;
    let median = sides[0].ratio(&sides[1]);
    println!(
        "mean: {label_a} {:.0}/s, {label_b} {:.0}/s; ratio of means {:.3}, median ratio {median:.3}",
        mean(&sides[0]),
        mean(&sides[1]),
        mean(&sides[0]) / mean(&sides[1])
    );
    median
}

async fn without_latencies(tally: impl Future<Output = Tally>) -> (Tally, Vec<Duration>) {
    (tally.await, Vec::new())
}

/// A load to measure: one call of it runs for a round and yields what it
/// saw and every call's latency.
pub type Load<'a> =
    Box<dyn FnMut() -> Pin<Box<dyn Future<Output = (Tally, Vec<Duration>)> + 'a>> + 'a>;

/// What one load saw over all rounds.
#[derive(Default)]
pub struct Side {
    /// Calls/s, a value a round.
    pub rates: Vec<f64>,
    /// Every call's latency.
    pub latencies: Vec<Duration>,
}

impl Side {
    /// The median over rounds of this side's rate over `other`'s in the
    /// same round, which a noisy neighbour skews least.
    pub fn ratio(&self, other: &Side) -> f64 {
        let mut ratios: Vec<f64> = self
            .rates
            .iter()
            .zip(&other.rates)
            .map(|(a, b)| a / b)
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN)
    }

    /// The `q`-quantile of this side's latencies.
    pub fn p(&mut self, q: f64) -> Duration {
        percentile(&mut self.latencies, q)
    }

    /// This side's p50 and p99 over `other`'s.
    pub fn latency_ratios(&mut self, other: &mut Side) -> (f64, f64) {
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        (
            ratio(self.p(0.5), other.p(0.5)),
            ratio(self.p(0.99), other.p(0.99)),
        )
    }
}

/// Runs every load once a round, starting each round one load further on
/// (for two loads: AB, BA, ...) so that drift in the machine's load
/// favours none, and prints the rates of each round when `loud`, with the
/// first load's rate over the second's.
pub async fn alternate(rounds: u64, loads: &mut [(&str, Load<'_>)], loud: bool) -> Vec<Side> {
    let mut sides: Vec<Side> = loads.iter().map(|_| Side::default()).collect();
    for round in 0..rounds as usize {
        let mut line = format!("round {}:", round + 1);
        for k in 0..loads.len() {
            let i = (round + k) % loads.len();
            let (tally, latencies) = (loads[i].1)().await;
            sides[i].rates.push(tally.rate());
            sides[i].latencies.extend(latencies);
            line += &format!(
                " {} {:.0}/s ({} failed) |",
                loads[i].0,
                tally.rate(),
                tally.failed
            );
        }
        if loud {
            match &sides[..] {
                [first, second, ..] => println!(
                    "{line} ratio {:.3}",
                    first.rates[round] / second.rates[round]
                ),
                _ => println!("{}", line.trim_end_matches(" |")),
            }
        }
    }
    sides
}

/// Boxes a load for [`alternate`].
pub fn load<'a, F, Fut>(mut f: F) -> Load<'a>
where
    F: FnMut() -> Fut + 'a,
    Fut: Future<Output = (Tally, Vec<Duration>)> + 'a,
{
    Box::new(move || Box::pin(f()))
}

/// Sends `request` over `connections` keep-alive connections for
/// `duration`, keeping every call's latency.
pub async fn http_latencies(
    addr: SocketAddr,
    request: &[u8],
    connections: usize,
    duration: Duration,
) -> (Tally, Vec<Duration>) {
    let request: std::sync::Arc<[u8]> = request.into();
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut latencies = Vec::new();
                let Ok(mut stream) = TcpStream::connect(addr).await else {
                    tally.failed += 1;
                    return (tally, latencies);
                };
                let _ = stream.set_nodelay(true);
                let mut buffer = Vec::with_capacity(16 * 1024);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    if stream.write_all(&request).await.is_err() {
                        tally.failed += 1;
                        break;
                    }
                    match read_response(&mut stream, &mut buffer).await {
                        Ok((200, _)) => {
                            tally.ok += 1;
                            latencies.push(sent.elapsed());
                        }
                        Ok(_) => tally.failed += 1,
                        Err(_) => {
                            tally.failed += 1;
                            break;
                        }
                    }
                }
                (tally, latencies)
            })
        })
        .collect();
    gather(started, tasks).await
}

/// The `q`-quantile (0 to 1) of some latencies.
pub fn percentile(latencies: &mut [Duration], q: f64) -> Duration {
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    latencies.sort_unstable();
    let index = ((latencies.len() - 1) as f64 * q).round() as usize;
    latencies[index]
}
