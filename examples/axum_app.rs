//! Run with:
//!
//! ```sh
//! cargo run --example axum_app
//! ```
//!
//! An existing axum application that mounts the RPC server under `/rpc`:
//! its own routes and state stay as they are, and its tower-http layers
//! (tracing, compression, a timeout) apply to RPC requests too. Calls go to
//! `POST /rpc`, WebSocket clients connect to `ws://127.0.0.1:9877/rpc`, the
//! docs are at `/rpc/docs`. Ctrl-C or SIGTERM stops it gracefully.
//!
//! ```sh
//! curl -s localhost:9877/rpc -d '{"scope":"notes","procedure":"add-note","args":{"text":"hi"}}'
//! curl -s localhost:9877/notes
//! ```

use axum::Router;
use axum::extract::State as AxumState;
use axum::routing::get;
use rpc_runtime::{JsonSchema, RunningServer, Server, State, rpc};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The application's state, shared by its own routes and the procedures
/// (in a real app, a database pool).
#[derive(Clone, Default)]
struct Notes(Arc<Mutex<Vec<String>>>);

impl Notes {
    fn all(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewNote {
    /// What to write down.
    #[schemars(length(min = 1, max = 200))]
    text: String,
}

/// Adds a note; answers how many there are.
#[rpc(procedure = "add-note", scope = "notes")]
async fn add_note(args: NewNote, State(notes): State<Notes>) -> usize {
    let mut all = notes
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    all.push(args.text);
    all.len()
}

/// Takes a while, to show a graceful stop waiting for it.
#[rpc(procedure = "slow-count", scope = "notes")]
async fn slow_count(notes: State<Notes>) -> usize {
    tokio::time::sleep(Duration::from_millis(300)).await;
    notes.all().len()
}

/// The application: its own routes and state, the RPC server under `/rpc`,
/// and the layers it puts around everything.
fn app(notes: Notes, rpc: &RunningServer) -> Router {
    use tower_http::compression::CompressionLayer;
    use tower_http::timeout::TimeoutLayer;
    use tower_http::trace::TraceLayer;
    Router::new()
        .route("/", get(|| async { "the application's own home page" }))
        .route(
            "/notes",
            get(|AxumState(notes): AxumState<Notes>| async move { axum::Json(notes.all()) }),
        )
        .with_state(notes)
        .nest("/rpc", rpc.router())
        .layer(TraceLayer::new_for_http())
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
}

/// Serves the app on `listener` until `stop`, then drains the RPC server.
async fn serve(
    listener: tokio::net::TcpListener,
    notes: Notes,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), rpc_runtime::Error> {
    // No `.http(...)`: the app's own listener serves the routes.
    let rpc = Server::builder()
        .name("notes-app")
        .state(notes.clone())
        .build()?
        .start()
        .await?;
    let service = app(notes, &rpc).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(stop)
        .await?;
    // Closes WebSocket connections once their calls are answered, and
    // drains the broker, if the server has one.
    rpc.shutdown().await
}

#[tokio::main]
async fn main() -> Result<(), rpc_runtime::Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:9877").await?;
    println!("serving the app on http://127.0.0.1:9877, RPC under /rpc");
    serve(listener, Notes::default(), rpc_runtime::stop_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use serde_json::{Value, json};
    use tokio_tungstenite::tungstenite::Message;

    #[tokio::test]
    async fn calls_docs_and_websocket_work_through_the_mounted_router() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("addr");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let notes = Notes::default();
        let serving = tokio::spawn(serve(listener, notes.clone(), async move {
            let _ = stop_rx.await;
        }));
        let client = reqwest::Client::new();
        let base = format!("http://{addr}");

        // A call through the app's layers: the compression layer answers
        // gzip to a client that accepts it.
        let response = client
            .post(format!("{base}/rpc"))
            .header("accept-encoding", "gzip")
            .json(&json!({"scope": "notes", "procedure": "add-note", "args": {"text": "milk"}}))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response
                .headers()
                .get("content-encoding")
                .map(|v| v.as_bytes()),
            Some(&b"gzip"[..]),
            "the app's compression layer applies to RPC answers"
        );
        // Without gzip, the envelope as usual; the state is the app's.
        let body: Value = client
            .post(format!("{base}/rpc"))
            .json(&json!({"scope": "notes", "procedure": "add-note", "args": {"text": "eggs"}}))
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        assert_eq!(body["data"], 2, "{body}");
        let listed: Value = client
            .get(format!("{base}/notes"))
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        assert_eq!(listed, json!(["milk", "eggs"]));
        let invalid: Value = client
            .post(format!("{base}/rpc"))
            .json(&json!({"scope": "notes", "procedure": "add-note", "args": {"text": ""}}))
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        assert_eq!(invalid["code"], 422, "{invalid}");

        // Docs, specs, telemetry and health under the prefix.
        for path in [
            "/rpc/docs",
            "/rpc/openrpc.json",
            "/rpc/telemetry",
            "/rpc/health",
        ] {
            let status = client
                .get(format!("{base}{path}"))
                .send()
                .await
                .expect("answered")
                .status();
            assert_eq!(status.as_u16(), 200, "{path}");
        }
        // The docs page links to its specs and sends calls relative to
        // itself, so that it works under the prefix.
        let page = client
            .get(format!("{base}/rpc/docs"))
            .send()
            .await
            .expect("answered")
            .text()
            .await
            .expect("text");
        assert!(page.contains(r#"const SPECS = "./docs.json";"#), "{page}");
        assert!(page.contains(r#"new URL("./", location.href)"#), "{page}");
        assert_eq!(
            client
                .get(&base)
                .send()
                .await
                .expect("answered")
                .text()
                .await
                .expect("text"),
            "the application's own home page"
        );

        // WebSocket on the mounted path.
        let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/rpc"))
            .await
            .expect("upgrades");
        let call = json!({"scope": "notes", "procedure": "slow-count", "correlationId": 1});
        socket
            .send(Message::Text(call.to_string().into()))
            .await
            .expect("sent");
        // Stop while that call runs: it is answered, then the connection
        // closes with 1001.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = stop_tx.send(());
        let mut answered = None;
        let mut close = None;
        while let Some(Ok(message)) = socket.next().await {
            match message {
                Message::Text(text) => {
                    answered = Some(serde_json::from_str::<Value>(text.as_str()).expect("json"))
                }
                Message::Close(frame) => {
                    close = frame.map(|f| u16::from(f.code));
                    break;
                }
                _ => {}
            }
        }
        let answered = answered.expect("the call in flight was answered");
        assert_eq!(
            (answered["code"].clone(), answered["data"].clone()),
            (json!(200), json!(2))
        );
        assert_eq!(close, Some(1001));
        tokio::time::timeout(Duration::from_secs(10), serving)
            .await
            .expect("the app stops")
            .expect("joined")
            .expect("a clean stop");
    }
}
