//! Hostile clients against a real server on loopback, each bounded in time
//! and in the server's memory: a pipelining client that never reads, more
//! connections than the server takes, request bodies that together pass
//! the server's budget, and a flood of stalled bodies measured in a server
//! process of its own through `/proc`. Small limits keep each case to
//! seconds. (Slow heads and bodies, oversized and deeply nested bodies and
//! frames, invalid UTF-8 and non-reading WebSocket clients are in
//! `http.rs` and `websocket.rs`.)

use rpc_runtime::Server;
use rpc_tests::Http;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn call_request(body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads what the server sends until it closes, for at most `limit`.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut got)).await;
    got
}

#[tokio::test]
async fn a_client_that_pipelines_and_never_reads_is_closed() {
    let server = rpc_tests::start(
        Server::builder()
            .write_timeout(Duration::from_millis(500))
            .http_read_ahead(16 * 1024),
    )
    .await;
    let addr = server.http_addr().expect("http");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let mut stream = socket.connect(addr).await.expect("connects");
    let request = call_request(r#"{"procedure":"rpc.discover"}"#);
    let started = Instant::now();
    // Writes until the server, which stops reading while its answers wait,
    // gives up on the connection; a write then fails.
    let writing = async {
        for _ in 0..200_000 {
            stream.write_all(&request).await?;
        }
        std::io::Result::Ok(())
    };
    let outcome = tokio::time::timeout(Duration::from_secs(10), writing).await;
    assert!(
        matches!(outcome, Ok(Err(_))),
        "the server should have closed the connection: {outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // The server is still up for others.
    let (status, _) = Http::new(addr)
        .call(json!({"procedure": "rpc.discover"}))
        .await;
    assert_eq!(status, 200);
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn over_the_connection_limit_new_connections_get_503_at_once() {
    let server = rpc_tests::start(Server::builder().max_connections(3)).await;
    let addr = server.http_addr().expect("http");
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        // Each connection is served, so it has its place.
        stream
            .write_all(&call_request(r#"{"procedure":"rpc.discover"}"#))
            .await
            .expect("write");
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.expect("an answer");
        assert_eq!(&head, b"HTTP/1.1 200");
        held.push(stream);
    }
    let mut refused = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let answer = read_until_closed(&mut refused, Duration::from_secs(3)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default())
        .expect("an envelope body");
    assert_eq!(body["code"], 503);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("3 connections"),
        "{body}"
    );
    // A place freed is a place taken.
    drop(held.pop());
    let mut status = 0;
    for _ in 0..50 {
        status = Http::new(addr)
            .client()
            .post(format!("http://{addr}/"))
            .json(&json!({"procedure": "rpc.discover"}))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
    drop(held);
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn request_bodies_share_the_servers_budget() {
    let server = rpc_tests::start(
        Server::builder()
            .max_buffered_body_bytes(10_000)
            .http_header_timeout(Duration::from_secs(5)),
    )
    .await;
    let addr = server.http_addr().expect("http");
    // A client announces 8,000 bytes and sends ten.
    let mut stalled = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    stalled
        .write_all(
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 8000\r\n\r\n{\"procedu",
        )
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Another body of 4,000 bytes does not fit beside it.
    let padded = format!(
        r#"{{"procedure":"rpc.discover","pad":"{}"}}"#,
        "x".repeat(4000)
    );
    let http = Http::new(addr);
    let (status, body) = http.post("/", padded.clone().into_bytes()).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("request bodies"),
        "{body}"
    );
    // Small calls still fit, and once the stalled client goes, so does it.
    let (status, _) = http.call(json!({"procedure": "rpc.discover"})).await;
    assert_eq!(status, 200);
    drop(stalled);
    let mut status = 0;
    for _ in 0..50 {
        status = http.post("/", padded.clone().into_bytes()).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
    server.shutdown().await.expect("stops");
}

fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .expect("the server's resident memory")
}

#[tokio::test]
async fn a_flood_of_stalled_bodies_stays_within_the_budget_and_memory_comes_back() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rpc-test-serve"))
        .env("RPC_TEST_BODY_BUDGET", (8 * 1024 * 1024).to_string())
        .env("RPC_TEST_HEADER_TIMEOUT_MS", "1500")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the server process starts");
    let pid = child.id().expect("pid");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = lines.next_line().await.ok().flatten().expect("a line");
    let addr: std::net::SocketAddr = line
        .strip_prefix("listening ")
        .and_then(|addr| addr.parse().ok())
        .expect("listening <addr>");
    // Warm the server's allocator and runtime.
    let http = Http::new(addr);
    for _ in 0..20 {
        http.call(json!({"procedure": "slow", "scope": "pipe-drain", "args": {"ms": 0}}))
            .await;
    }
    let before = resident_kib(pid);
    // 200 clients each announce a body of 1 MiB - 1, send it all but its
    // last byte, and stall.
    let body = vec![b' '; 1024 * 1024 - 2];
    let mut clients = Vec::new();
    for _ in 0..200 {
        let body = body.clone();
        clients.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
            let head = format!(
                "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len() + 1
            );
            stream.write_all(head.as_bytes()).await.ok()?;
            let _ = stream.write_all(&body).await;
            let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
            Some(String::from_utf8_lossy(&answer).into_owned())
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let during = resident_kib(pid);
    let mut refused = 0;
    let mut timed_out = 0;
    for client in clients {
        match client.await.ok().flatten() {
            Some(answer) if answer.starts_with("HTTP/1.1 503") => refused += 1,
            Some(answer) if answer.starts_with("HTTP/1.1 408") => timed_out += 1,
            _ => {}
        }
    }
    // At most 8 bodies of 1 MiB fit in the budget at once.
    assert!(refused >= 150, "refused {refused}, timed out {timed_out}");
    assert!(timed_out >= 1, "refused {refused}, timed out {timed_out}");
    let grown_mib = during.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "the server grew by {grown_mib} MiB under the flood (from {before} KiB)"
    );
    // The attack is over: the memory comes back (within an allowance for
    // what the allocator keeps).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = resident_kib(pid);
    assert!(
        after.saturating_sub(before) / 1024 < 32,
        "before {before} KiB, during {during} KiB, after {after} KiB"
    );
    eprintln!(
        "resident: before {before} KiB, during {during} KiB, after {after} KiB; {refused} refused, {timed_out} timed out"
    );
    let (status, _) = http
        .call(json!({"procedure": "slow", "scope": "pipe-drain", "args": {"ms": 0}}))
        .await;
    assert_eq!(status, 200);
    let _ = child.kill().await;
}

#[tokio::test]
async fn an_unfinished_websocket_message_is_closed_whatever_pings_arrive() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
    let server = rpc_tests::start(
        Server::builder()
            .ws_keep_alive(Duration::from_millis(300), Duration::from_secs(30))
            .ws_message_timeout(Duration::from_secs(1)),
    )
    .await;
    let addr = server.http_addr().expect("http");
    let (mut honest_sink, mut honest) = rpc_tests::raw::connect(addr).await.split();
    let (mut sink, mut stream) = rpc_tests::raw::connect(addr).await.split();
    // The first fragment of a text message, never finished; then pings
    // from both clients every 200 ms.
    sink.send(Message::Frame(Frame::message(
        vec![b'a'; 64 * 1024],
        OpCode::Data(Data::Text),
        false,
    )))
    .await
    .expect("send");
    let started = Instant::now();
    let pinging = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let attacker = sink.send(Message::Ping(Default::default())).await;
            if honest_sink
                .send(Message::Ping(Default::default()))
                .await
                .is_err()
            {
                return;
            }
            if attacker.is_err() && started.elapsed() > Duration::from_secs(6) {
                let _ = honest_sink
                    .send(Message::Text(
                        json!({"procedure": "rpc.discover"}).to_string().into(),
                    ))
                    .await;
                return;
            }
        }
    });
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = stream.next().await {
            if let Ok(Message::Close(frame)) = message {
                return frame.map(|f| f.code);
            }
        }
        None
    })
    .await
    .expect("closed within 10 s");
    let waited = started.elapsed();
    assert_eq!(close, Some(CloseCode::Policy));
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "closed after {waited:?}"
    );
    // The client that only pinged is still served.
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(message)) = honest.next().await {
            if let Message::Text(text) = message {
                return Some(serde_json::from_str::<Value>(text.as_str()).expect("json"));
            }
        }
        None
    })
    .await
    .expect("an answer within 10 s")
    .expect("the honest connection is open");
    assert_eq!(answer["code"], 200);
    pinging.abort();
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn requests_that_are_not_http_get_envelope_answers() {
    let server = rpc_tests::start(Server::builder()).await;
    let addr = server.http_addr().expect("http");
    let long_target = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(100_000));
    let large_fields = format!(
        "POST / HTTP/1.1\r\nhost: x\r\n{}\r\n",
        (0..2_000)
            .map(|i| format!("x-field-{i}: {}\r\n", "v".repeat(400)))
            .collect::<String>()
    );
    for (request, status) in [
        (b"NOT HTTP AT ALL\r\n\r\n".to_vec(), 400),
        (
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n".to_vec(),
            400,
        ),
        (long_target.into_bytes(), 414),
        (large_fields.into_bytes(), 431),
    ] {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        let _ = stream.write_all(&request).await;
        let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let body: Value = serde_json::from_str(body).expect("an envelope body");
        assert_eq!(body["code"], status, "{body}");
        assert_eq!(body["success"], false);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The server goes on.
    let (status, _) = Http::new(addr)
        .call(json!({"procedure": "rpc.discover"}))
        .await;
    assert_eq!(status, 200);
    server.shutdown().await.expect("stops");
}
