//! The WebSocket frame handler of a real server on loopback (envelopes and
//! JSON-RPC): each input is sent as one frame (text when it is UTF-8, else a raw text frame that is
//! not, or binary), followed by a sentinel call whose answer proves the
//! server handled the input and is still serving. A closed connection is
//! opened again. A panic anywhere in the server aborts the process, which
//! the fuzzer reports.

#![no_main]

use futures_util::{SinkExt, StreamExt};
use std::sync::{Mutex, OnceLock};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

struct Harness {
    runtime: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    socket: Option<Socket>,
}

/// A client connection without Nagle's algorithm, so that each exchange
/// takes a round trip rather than a delayed acknowledgement.
async fn connect(addr: std::net::SocketAddr) -> Socket {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the server still accepts connections");
    stream.set_nodelay(true).expect("nodelay");
    let (socket, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), stream)
        .await
        .expect("the server still upgrades connections");
    socket
}

fn harness() -> &'static Mutex<Harness> {
    static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // A panic in a server task must not be swallowed by tokio.
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            std::process::abort();
        }));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let addr = runtime.block_on(async {
            let server = rpc_runtime::Server::builder()
                .http("127.0.0.1:0")
                .ws_frame_limit(64 * 1024)
                .build()
                .expect("builds")
                .start()
                .await
                .expect("starts");
            let addr = server.http_addr().expect("http");
            std::mem::forget(server);
            addr
        });
        Mutex::new(Harness {
            runtime,
            addr,
            socket: None,
        })
    })
}

const SENTINEL: &str = r#"{"procedure":"rpc.discover","correlationId":"sentinel"}"#;

async fn exchange(socket: &mut Socket, input: &[u8]) -> Result<(), ()> {
    let message = match std::str::from_utf8(input) {
        Ok(text) => Message::Text(text.to_owned().into()),
        Err(_) if input.first().is_some_and(|b| b % 2 == 0) => Message::Frame(Frame::message(
            input.to_vec(),
            OpCode::Data(Data::Text),
            true,
        )),
        Err(_) => Message::Binary(input.to_vec().into()),
    };
    socket.send(message).await.map_err(|_| ())?;
    socket
        .send(Message::Text(SENTINEL.into()))
        .await
        .map_err(|_| ())?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let answer: serde_json::Value =
                    serde_json::from_str(text.as_str()).expect("every answer is JSON");
                // An envelope answer, a push, or a JSON-RPC response (an
                // array answers a batch).
                assert!(
                    answer["code"].is_u64()
                        || answer.get("serverMessage").is_some()
                        || answer["jsonrpc"] == "2.0"
                        || answer.is_array()
                );
                if answer["correlationId"] == "sentinel" {
                    return Ok(());
                }
            }
            // Closed (an invalid frame may close it): the caller opens
            // another, without waiting for the close to finish.
            Some(Ok(Message::Close(_))) => return Err(()),
            Some(Ok(_)) => {}
            _ => return Err(()),
        }
    }
}

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let mut harness = harness().lock().unwrap_or_else(|e| e.into_inner());
    let Harness {
        runtime,
        addr,
        socket,
    } = &mut *harness;
    runtime.block_on(async {
        // The input, then (if it closed the connection) the sentinel alone
        // on a new connection: the server must still serve.
        for frame in [input, SENTINEL.as_bytes()] {
            if socket.is_none() {
                *socket = Some(connect(*addr).await);
            }
            let Some(open) = socket.as_mut() else { return };
            match tokio::time::timeout(std::time::Duration::from_secs(5), exchange(open, frame))
                .await
            {
                Ok(Ok(())) => return,
                Ok(Err(())) => *socket = None,
                Err(_) => panic!("the server did not answer the sentinel within 5 s"),
            }
        }
        panic!("the server closed a new connection that sent only the sentinel");
    });
});
