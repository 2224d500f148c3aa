//! Load generators shared by the benchmarks. They are lean on purpose (raw
//! HTTP/1.1 over keep-alive TCP, pre-encoded requests) so that the servers,
//! not the client, take most of the CPU, and both sides of a comparison run
//! under the same client in the same process.

use rpc_runtime::{JsonSchema, rpc};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
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

/// Adds two integers; served by the framework side of every benchmark.
#[rpc(procedure = "add", scope = "math")]
pub async fn add(args: AddArgs) -> i64 {
    args.a.wrapping_add(args.b)
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

/// Starts a framework server on an ephemeral loopback port.
pub async fn framework_server(builder: rpc_runtime::ServerBuilder) -> rpc_runtime::RunningServer {
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
/// small buffers (tungstenite zeroes as much of its read buffer as one read
/// may fill, 128 KiB by default, before every read: a cost that would be
/// charged to the side measured; and ten thousand connections stay cheap)
/// and without Nagle's algorithm, like the HTTP load generator.
pub async fn ws_connect(addr: SocketAddr) -> WsStream {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
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

/// Runs `rounds` alternating measurements of two targets (ABBA order, so
/// that drift in the machine's load favours neither), prints each round,
/// and returns the median of the per-round ratios (`a` over `b`), which a
/// noisy neighbour skews least. The ratio of the totals is printed too.
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
    A: std::future::Future<Output = Tally>,
    B: std::future::Future<Output = Tally>,
{
    let (mut sum_a, mut sum_b) = (0.0, 0.0);
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let (ta, tb) = if round % 2 == 1 {
            let ta = a().await;
            (ta, b().await)
        } else {
            let tb = b().await;
            (a().await, tb)
        };
        let ratio = ta.rate() / tb.rate();
        println!(
            "round {round:>2}: {label_a} {:>9.0}/s ({} failed) | {label_b} {:>9.0}/s ({} failed) | ratio {ratio:.3}",
            ta.rate(),
            ta.failed,
            tb.rate(),
            tb.failed,
        );
        sum_a += ta.rate();
        sum_b += tb.rate();
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "mean: {label_a} {:.0}/s, {label_b} {:.0}/s; ratio of means {:.3}, median ratio {median:.3}",
        sum_a / rounds as f64,
        sum_b / rounds as f64,
        sum_a / sum_b
    );
    median
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
