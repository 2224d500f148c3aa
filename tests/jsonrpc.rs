//! JSON-RPC 2.0 beside the envelope, over real HTTP and WebSocket on
//! loopback: jsonrpsee's client (a third-party client, as users run it)
//! and raw requests for every error code, batches, notifications, ids,
//! identity, pushes and the limits the envelope has.

use jsonrpsee::core::client::{ClientT, SubscriptionClientT};
use jsonrpsee::core::params::{BatchRequestBuilder, ObjectParams};
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::ws_client::WsClientBuilder;
use rpc_runtime::{RpcError, Server, ServerBuilder};
use rpc_tests::raw as ws;
use rpc_tests::{Http, start};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_tungstenite::tungstenite::Message;

static NOTIFIED: AtomicUsize = AtomicUsize::new(0);

mod procs {
    use super::NOTIFIED;
    use rpc_runtime::{Context, JsonSchema, RpcError, rpc};
    use serde::{Deserialize, Serialize};
    use serde_json::{Value, json};
    use std::sync::atomic::Ordering;

    #[derive(Deserialize, Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct AddArgs {
        pub a: i64,
        pub b: i64,
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct Sum {
        pub sum: i64,
    }

    /// Adds two integers.
    #[rpc(procedure = "add", scope = "jr")]
    pub async fn add(args: AddArgs) -> Sum {
        Sum {
            sum: args.a + args.b,
        }
    }

    /// Version 2 of add.
    #[rpc(procedure = "add", scope = "jr", version = 2)]
    pub async fn add_v2(args: AddArgs) -> String {
        format!("v2:{}", args.a + args.b)
    }

    /// A procedure in scope global.
    #[rpc(procedure = "ping")]
    pub async fn ping() -> &'static str {
        "pong"
    }

    /// The caller's user id.
    #[rpc(procedure = "whoami", scope = "jr", auth)]
    pub async fn whoami(ctx: Context) -> Option<String> {
        ctx.user_id().map(str::to_owned)
    }

    /// A handler's own error, with data.
    #[rpc(procedure = "taken", scope = "jr")]
    pub async fn taken() -> Result<(), RpcError> {
        Err(RpcError::conflict("the name is taken").with_data(json!({"field": "name"})))
    }

    /// Only for other procedures.
    #[rpc(procedure = "secret", scope = "jr", internal)]
    pub async fn secret() -> u32 {
        7
    }

    /// Counts its calls (notifications run too).
    #[rpc(procedure = "count", scope = "jr")]
    pub async fn count() -> usize {
        NOTIFIED.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Waits, to hold a place among the calls in flight.
    #[rpc(procedure = "slow", scope = "jr")]
    pub async fn slow() -> u8 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        1
    }

    /// Pushes a server message to the calling connection.
    #[rpc(procedure = "push", scope = "jr")]
    pub async fn push(ctx: Context) -> bool {
        let (Some(server), Some(id)) = (ctx.server(), ctx.connection_id()) else {
            return false;
        };
        server.send_to_connection(id, json!({"hello": id}))
    }

    /// A node of a tree, with its children.
    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct Node {
        /// The node's name.
        pub name: String,
        pub kind: Kind,
        pub size: u64,
        pub children: Vec<Node>,
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum Kind {
        File,
        Folder,
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct TreeArgs {
        pub root: Node,
        pub depth: Option<u8>,
    }

    /// Counts the nodes of a tree (nested, recursive and enum types).
    #[rpc(procedure = "tree", scope = "jr")]
    pub async fn tree(args: TreeArgs) -> usize {
        fn count(node: &Node) -> usize {
            1 + node.children.iter().map(count).sum::<usize>()
        }
        count(&args.root)
    }

    /// Echoes its args.
    #[rpc(procedure = "echo", scope = "jr")]
    pub async fn echo(args: Value) -> Value {
        args
    }
}

fn builder() -> ServerBuilder {
    Server::builder().authenticator(|token: String| async move {
        match token.as_str() {
            "good" => Ok("alice".to_owned()),
            _ => Err(RpcError::unauthorized("token rejected")),
        }
    })
}

fn params(value: Value) -> ObjectParams {
    let mut params = ObjectParams::new();
    for (name, value) in value.as_object().expect("an object") {
        params.insert(name, value).expect("serializable");
    }
    params
}

/// The `data` of a jsonrpsee call error, with its code.
fn call_error(error: jsonrpsee::core::ClientError) -> (i32, String, Value) {
    match error {
        jsonrpsee::core::ClientError::Call(error) => (
            error.code(),
            error.message().to_owned(),
            error
                .data()
                .map(|data| serde_json::from_str(data.get()).expect("json data"))
                .unwrap_or_default(),
        ),
        other => panic!("expected a call error, got {other}"),
    }
}

#[tokio::test]
async fn jsonrpsee_calls_over_http() {
    let server = start(builder()).await;
    let url = format!("http://{}", server.http_addr().expect("http"));
    let client = HttpClientBuilder::default().build(&url).expect("client");

    // The OpenRPC name, and the shorter forms with the envelope's defaults.
    let sum: Value = client
        .request("jr/add@1", params(json!({"a": 2, "b": 3})))
        .await
        .expect("call");
    assert_eq!(sum, json!({"sum": 5}));
    let v2: String = client
        .request("jr/add@2", params(json!({"a": 2, "b": 3})))
        .await
        .expect("call");
    assert_eq!(v2, "v2:5");
    let sum: Value = client
        .request("jr/add", params(json!({"a": 1, "b": 1})))
        .await
        .expect("call");
    assert_eq!(sum, json!({"sum": 2}));
    let pong: String = client
        .request("ping", ObjectParams::new())
        .await
        .expect("call");
    assert_eq!(pong, "pong");
    // By position: one element, the args.
    let sum: Value = client
        .request("jr/add", jsonrpsee::rpc_params![json!({"a": 4, "b": 4})])
        .await
        .expect("call");
    assert_eq!(sum, json!({"sum": 8}));

    // Bad params: -32602 with every failing pointer.
    let error = client
        .request::<Value, _>("jr/add", params(json!({"a": "x", "c": 1})))
        .await
        .expect_err("invalid params");
    let (code, _, data) = call_error(error);
    assert_eq!(code, -32602);
    assert_eq!(data["code"], 422);
    let pointers: Vec<&str> = data["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["path"].as_str().expect("path"))
        .collect();
    assert!(pointers.contains(&"/a"), "{data}");
    assert!(pointers.contains(&""), "{data}");

    // No such method; the framework's outcomes; a handler's own code.
    let (code, _, data) = call_error(
        client
            .request::<Value, _>("jr/nope@1", ObjectParams::new())
            .await
            .expect_err("missing"),
    );
    assert_eq!((code, data["code"].clone()), (-32601, json!(404)));
    let (code, _, data) = call_error(
        client
            .request::<Value, _>("jr/whoami", ObjectParams::new())
            .await
            .expect_err("no identity"),
    );
    assert_eq!((code, data["code"].clone()), (-32001, json!(401)));
    let (code, _, _) = call_error(
        client
            .request::<Value, _>("jr/secret", ObjectParams::new())
            .await
            .expect_err("internal"),
    );
    assert_eq!(code, -32003);
    let (code, message, data) = call_error(
        client
            .request::<Value, _>("jr/taken", ObjectParams::new())
            .await
            .expect_err("handler error"),
    );
    assert_eq!(code, 409);
    assert_eq!(message, "the name is taken");
    assert_eq!(data, json!({"code": 409, "data": {"field": "name"}}));

    // A batch, answered in order by jsonrpsee whatever order it arrives in.
    let mut batch = BatchRequestBuilder::new();
    batch
        .insert("jr/add", params(json!({"a": 1, "b": 2})))
        .expect("batch");
    batch.insert("jr/nope", ObjectParams::new()).expect("batch");
    batch
        .insert("jr/add@2", params(json!({"a": 1, "b": 1})))
        .expect("batch");
    let answers = client.batch_request::<Value>(batch).await.expect("batch");
    let answers: Vec<Result<Value, i32>> = answers
        .into_iter()
        .map(|answer| answer.map_err(|error| error.code()))
        .collect();
    assert_eq!(
        answers,
        vec![Ok(json!({"sum": 3})), Err(-32601), Ok(json!("v2:2"))]
    );

    // Identity: the Authorization header.
    let mut headers = jsonrpsee::http_client::HeaderMap::new();
    headers.insert("authorization", "Bearer good".parse().expect("header"));
    let authed = HttpClientBuilder::default()
        .set_headers(headers)
        .build(&url)
        .expect("client");
    let user: Option<String> = authed
        .request("jr/whoami", ObjectParams::new())
        .await
        .expect("call");
    assert_eq!(user.as_deref(), Some("alice"));

    // A notification runs and gets no reply.
    let before = NOTIFIED.load(Ordering::SeqCst);
    client
        .notification("jr/count", ObjectParams::new())
        .await
        .expect("notification");
    rpc_tests::eventually("the notification ran", || {
        NOTIFIED.load(Ordering::SeqCst) > before
    })
    .await;

    // The envelope still works beside it.
    let http = Http::new(server.http_addr().expect("http"));
    let (status, body) = http
        .call(json!({"scope": "jr", "procedure": "add", "args": {"a": 1, "b": 2}}))
        .await;
    assert_eq!((status, body["data"].clone()), (200, json!({"sum": 3})));
}

#[tokio::test]
async fn jsonrpsee_calls_over_websocket_with_identity_and_pushes() {
    let server = start(builder()).await;
    let addr = server.http_addr().expect("http");
    let mut headers = jsonrpsee::http_client::HeaderMap::new();
    headers.insert("authorization", "Bearer good".parse().expect("header"));
    let client = WsClientBuilder::default()
        .set_headers(headers)
        .build(format!("ws://{addr}/"))
        .await
        .expect("websocket client");

    // Concurrent calls on one connection.
    let calls = (0..20).map(|i| {
        let client = &client;
        async move {
            client
                .request::<Value, _>("jr/add", params(json!({"a": i, "b": 1})))
                .await
        }
    });
    let sums = futures_util::future::join_all(calls).await;
    for (i, sum) in sums.into_iter().enumerate() {
        assert_eq!(sum.expect("call"), json!({"sum": i as i64 + 1}));
    }
    // The upgrade's token is the connection's identity.
    let user: Option<String> = client
        .request("jr/whoami", ObjectParams::new())
        .await
        .expect("call");
    assert_eq!(user.as_deref(), Some("alice"));
    let (code, _, data) = call_error(
        client
            .request::<Value, _>("jr/add", params(json!({"a": []})))
            .await
            .expect_err("invalid"),
    );
    assert_eq!((code, data["code"].clone()), (-32602, json!(422)));

    // Pushes arrive as rpc.serverMessage notifications.
    let mut pushes = client
        .subscribe_to_method::<Value>("rpc.serverMessage")
        .await
        .expect("subscription");
    let pushed: bool = client
        .request("jr/push", ObjectParams::new())
        .await
        .expect("call");
    assert!(pushed);
    let push = tokio::time::timeout(std::time::Duration::from_secs(5), pushes.next())
        .await
        .expect("a push within 5 s")
        .expect("open")
        .expect("valid");
    assert!(push["message"]["hello"].is_string(), "{push}");

    // A batch over WebSocket.
    let mut batch = BatchRequestBuilder::new();
    batch
        .insert("jr/add", params(json!({"a": 5, "b": 5})))
        .expect("batch");
    batch
        .insert("jr/whoami", ObjectParams::new())
        .expect("batch");
    let answers = client.batch_request::<Value>(batch).await.expect("batch");
    let answers: Vec<Value> = answers.into_iter().map(|a| a.expect("ok")).collect();
    assert_eq!(answers, vec![json!({"sum": 10}), json!("alice")]);
}

async fn post(http: &Http, body: &str) -> (u16, Value) {
    http.post("/", body.as_bytes().to_vec()).await
}

#[tokio::test]
async fn raw_http_requests_get_the_specified_answers() {
    let server = start(builder().jsonrpc_max_batch(3)).await;
    let http = Http::new(server.http_addr().expect("http"));

    // Ids are echoed with their type; null ids too.
    for id in [json!(7), json!("seven"), Value::Null, json!(1.5)] {
        let request = json!({"jsonrpc": "2.0", "method": "ping", "id": id});
        let (status, body) = post(&http, &request.to_string()).await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"jsonrpc": "2.0", "result": "pong", "id": id}));
    }

    // Parse error, invalid requests, garbage batches, the batch limit.
    let (status, body) = post(&http, r#"{"jsonrpc":"2.0","method":"ping","id":1"#).await;
    assert_eq!(
        (status, body["error"]["code"].clone(), body["id"].clone()),
        (200, json!(-32700), Value::Null)
    );
    let (_, body) = post(&http, "[1,").await;
    assert_eq!(body["error"]["code"], -32700);
    let (_, body) = post(&http, r#"{"jsonrpc":"2.0","method":1,"id":4}"#).await;
    assert_eq!(
        (body["error"]["code"].clone(), body["id"].clone()),
        (json!(-32600), json!(4))
    );
    let (_, body) = post(&http, r#"{"jsonrpc":"1.0","method":"ping","id":4}"#).await;
    assert_eq!(body["error"]["code"], -32600);
    let (_, body) = post(&http, "[]").await;
    assert_eq!(body["error"]["code"], -32600);
    let (_, body) = post(&http, "[1,true,null]").await;
    let codes: Vec<&Value> = body
        .as_array()
        .expect("array")
        .iter()
        .map(|a| &a["error"]["code"])
        .collect();
    assert_eq!(codes, vec![&json!(-32600); 3]);
    let four = Value::Array(vec![
        json!({"jsonrpc": "2.0", "method": "ping", "id": 1});
        4
    ])
    .to_string();
    let (_, body) = post(&http, &four).await;
    assert!(body.is_object(), "one error for an oversized batch: {body}");
    assert_eq!(body["error"]["code"], -32600);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("limit of 3")
    );

    // A batch with a notification: answers for the others only, by id.
    let before = NOTIFIED.load(Ordering::SeqCst);
    let batch = json!([
        {"jsonrpc": "2.0", "method": "jr/add", "params": {"a": 1, "b": 1}, "id": "a"},
        {"jsonrpc": "2.0", "method": "jr/count"},
        {"jsonrpc": "2.0", "method": "jr/add", "params": {"a": "x"}, "id": "b"},
    ]);
    let (status, body) = post(&http, &batch.to_string()).await;
    assert_eq!(status, 200);
    let answers = body.as_array().expect("array");
    assert_eq!(answers.len(), 2);
    let by_id = |id: &str| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .expect("answered")
            .clone()
    };
    assert_eq!(by_id("a")["result"], json!({"sum": 2}));
    assert_eq!(by_id("b")["error"]["code"], -32602);
    let errors = by_id("b")["error"]["data"]["errors"].clone();
    assert!(
        errors
            .as_array()
            .expect("errors")
            .iter()
            .any(|e| e["path"] == "/a"),
        "{errors}"
    );
    assert!(NOTIFIED.load(Ordering::SeqCst) > before);

    // Notifications only: 204 and no body.
    let response = http
        .client()
        .post(http.url())
        .body(json!([{"jsonrpc": "2.0", "method": "jr/count"}]).to_string())
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 204);
    assert!(response.bytes().await.expect("body").is_empty());

    // Too deep, and too large: the envelope's limits hold.
    let deep = format!(
        r#"{{"jsonrpc":"2.0","method":"jr/echo","params":{{"x":{}{}}},"id":1}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let (_, body) = post(&http, &deep).await;
    assert_eq!(body["error"]["code"], -32700);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("128")
    );
    let large = format!(
        r#"{{"jsonrpc":"2.0","method":"jr/echo","params":{{"x":"{}"}},"id":1}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    let (status, _) = post(&http, &large).await;
    assert_eq!(status, 413);

    // Scope and procedure names with a `/`: the one the server knows wins.
    let (_, body) = post(&http, r#"{"jsonrpc":"2.0","method":"jr/add@9","id":1}"#).await;
    assert_eq!(body["error"]["code"], -32601);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("\"9\"")
    );
}

#[tokio::test]
async fn raw_websocket_frames_get_the_specified_answers() {
    let server = start(builder().ws_max_in_flight(2).jsonrpc_max_batch(5)).await;
    let addr = server.http_addr().expect("http");
    let mut socket = ws::connect(addr).await;

    // Identity by message, then calls that need it.
    ws::send(
        &mut socket,
        json!({"jsonrpc": "2.0", "method": "jr/whoami", "id": 1}),
    )
    .await;
    assert_eq!(ws::recv(&mut socket).await["error"]["code"], -32001);
    ws::send(
        &mut socket,
        json!({"jsonrpc": "2.0", "method": "rpc.setIdentity", "params": {"authorization": "Bearer bad"}, "id": 2}),
    )
    .await;
    assert_eq!(ws::recv(&mut socket).await["error"]["code"], -32001);
    ws::send(
        &mut socket,
        json!({"jsonrpc": "2.0", "method": "rpc.setIdentity", "params": {"authorization": "Bearer good"}, "id": 3}),
    )
    .await;
    assert_eq!(
        ws::recv(&mut socket).await,
        json!({"jsonrpc": "2.0", "result": null, "id": 3})
    );
    ws::send(
        &mut socket,
        json!({"jsonrpc": "2.0", "method": "jr/whoami", "id": 4}),
    )
    .await;
    assert_eq!(ws::recv(&mut socket).await["result"], "alice");

    // The in-flight limit counts each call of a batch.
    let batch = json!([
        {"jsonrpc": "2.0", "method": "jr/slow", "id": 1},
        {"jsonrpc": "2.0", "method": "jr/slow", "id": 2},
        {"jsonrpc": "2.0", "method": "jr/slow", "id": 3},
    ]);
    ws::send(&mut socket, batch).await;
    let refused = ws::recv(&mut socket).await;
    assert_eq!(refused["error"]["code"], -32029, "{refused}");
    ws::send(
        &mut socket,
        json!([{"jsonrpc": "2.0", "method": "jr/slow", "id": 5}, {"jsonrpc": "2.0", "method": "jr/slow", "id": 6}]),
    )
    .await;
    ws::send(
        &mut socket,
        json!({"jsonrpc": "2.0", "method": "ping", "id": 7}),
    )
    .await;
    assert_eq!(ws::recv(&mut socket).await["error"]["code"], -32029);
    let answers = ws::recv(&mut socket).await;
    assert_eq!(answers.as_array().expect("array").len(), 2);

    // Garbage, a parse error and an envelope on the same connection.
    ws::send(&mut socket, json!(["x", {"jsonrpc": "2.0"}])).await;
    let answers = ws::recv(&mut socket).await;
    assert_eq!(answers.as_array().expect("array").len(), 2);
    ws::send_message(&mut socket, Message::Text("[{".into())).await;
    assert_eq!(ws::recv(&mut socket).await["error"]["code"], -32700);
    ws::send(
        &mut socket,
        json!({"procedure": "ping", "correlationId": 9}),
    )
    .await;
    assert_eq!(ws::recv(&mut socket).await["data"], "pong");

    // A notification gets no reply: the next frame answers the next call.
    ws::send(&mut socket, json!({"jsonrpc": "2.0", "method": "jr/count"})).await;
    ws::send(
        &mut socket,
        json!({"jsonrpc": "2.0", "method": "ping", "id": 10}),
    )
    .await;
    assert_eq!(ws::recv(&mut socket).await["id"], 10);

    // A client message, then a push as a notification.
    ws::send(
        &mut socket,
        json!({"jsonrpc": "2.0", "method": "rpc.clientMessage", "params": {"message": "hi"}}),
    )
    .await;
    ws::send(
        &mut socket,
        json!({"jsonrpc": "2.0", "method": "jr/push", "id": 11}),
    )
    .await;
    let first = ws::recv(&mut socket).await;
    let second = ws::recv(&mut socket).await;
    let (push, answer) = if first.get("method").is_some() {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(push["method"], "rpc.serverMessage");
    assert!(push.get("id").is_none());
    assert_eq!(answer["result"], true);

    // Invalid UTF-8: an error in the client's protocol, then close 1007.
    ws::send_message(&mut socket, Message::Binary(vec![0xff].into())).await;
    assert_eq!(ws::recv(&mut socket).await["error"]["code"], -32600);
    let mut raw = ws::connect(addr).await;
    ws::send(
        &mut raw,
        json!({"jsonrpc": "2.0", "method": "ping", "id": 1}),
    )
    .await;
    ws::recv(&mut raw).await;
    use futures_util::SinkExt;
    raw.send(Message::Frame(
        tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
            vec![b'"', 0xc3, 0x28, b'"'],
            tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
                tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
            ),
            true,
        ),
    ))
    .await
    .expect("send");
    let refused = ws::recv(&mut raw).await;
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    assert_eq!(
        ws::closed(&mut raw).await,
        Some(tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Invalid)
    );
}

/// The packages `.ci/test` installs with npm for the node clients.
fn node_modules() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/node/node_modules");
    assert!(
        dir.join("@open-rpc/client-js").is_dir() && dir.join("ajv-formats").is_dir(),
        "{} lacks the npm packages: run .ci/test, which installs them (npm install --prefix \
         target/node @open-rpc/client-js@2.1.0 ajv@8.20.0 ajv-formats@3.0.1)",
        dir.display()
    );
    dir
}

#[tokio::test]
async fn open_rpc_client_js_calls_and_ajv_compiles_every_schema() {
    let server = start(builder()).await;
    let base = format!("http://{}", server.http_addr().expect("http"));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("js/jsonrpc-clients.mjs");
    let output = tokio::process::Command::new("node")
        .arg(script)
        .arg(node_modules())
        .arg(&base)
        .output()
        .await
        .expect("node runs (install it with apt-get install -y nodejs npm, or run .ci/test)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "node failed:\n{stdout}\n{stderr}");
    assert!(stdout.starts_with("ok: "), "{stdout}");

    // The TypeScript client of these procedures (recursive, enum, nullable
    // and untyped args among them) passes tsc --strict.
    let module = Http::new(server.http_addr().expect("http"))
        .client()
        .get(format!("{base}/client.ts"))
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("text");
    assert!(
        module.contains("export interface Node {") && module.contains("children: Array<Node>;"),
        "{module}"
    );
    assert!(
        module.contains("export type Kind = \"file\" | \"folder\";"),
        "{module}"
    );
    let dir = std::env::temp_dir().join(format!("rpc-jr-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("client.ts"), &module).expect("write");
    let output = tokio::process::Command::new("node")
        .arg(node_modules().join("typescript/bin/tsc"))
        .args([
            "--strict",
            "--noEmit",
            "--target",
            "es2022",
            "--lib",
            "es2022,dom",
        ])
        .arg(dir.join("client.ts"))
        .output()
        .await
        .expect("tsc runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "tsc: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[tokio::test]
async fn the_openrpc_document_is_callable_as_written() {
    let server = start(builder()).await;
    let addr = server.http_addr().expect("http");
    let http = Http::new(addr);
    let document = http.get_json("/openrpc.json").await;
    assert_eq!(document["servers"][0]["url"], format!("http://{addr}/"));

    // Every method answers under its name, with params as documented.
    let methods = document["methods"].as_array().expect("methods");
    assert!(methods.len() >= 8, "{methods:?}");
    for method in methods {
        let name = method["name"].as_str().expect("name");
        let request = json!({"jsonrpc": "2.0", "method": name, "params": {}, "id": 1});
        let (_, body) = post(&http, &request.to_string()).await;
        assert_ne!(body["error"]["code"], -32601, "{name}: {body}");
    }
    let add = methods
        .iter()
        .find(|m| m["name"] == "jr/add@1")
        .expect("jr/add@1");
    assert_eq!(add["paramStructure"], "by-name");
    let names: Vec<&Value> = add["params"]
        .as_array()
        .expect("params")
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(names, vec!["a", "b"]);
    assert_eq!(add["params"][0]["required"], true);
    assert_eq!(
        add["result"]["schema"]["properties"]["sum"]["type"],
        "integer"
    );
    let echo = methods
        .iter()
        .find(|m| m["name"] == "jr/echo@1")
        .expect("echo");
    assert_eq!(echo["paramStructure"], "by-position");
    assert!(
        !document.to_string().contains("int64"),
        "formats validators refuse are left out"
    );
    // Nested types are shared components, referred to from the params.
    let tree = methods
        .iter()
        .find(|m| m["name"] == "jr/tree@1")
        .expect("tree");
    let root = tree["params"]
        .as_array()
        .expect("params")
        .iter()
        .find(|p| p["name"] == "root");
    assert_eq!(
        root.expect("root")["schema"]["$ref"],
        "#/components/schemas/Node",
        "{tree}"
    );
    assert!(
        document["components"]["schemas"]["Kind"].is_object(),
        "{document}"
    );
    let request = json!({"jsonrpc": "2.0", "method": "jr/tree", "id": 1,
        "params": {"root": {"name": "r", "kind": "folder", "size": 0,
            "children": [{"name": "c", "kind": "file", "size": 1, "children": []}]}}});
    assert_eq!(post(&http, &request.to_string()).await.1["result"], 2);

    // rpc.discover answers the same document over JSON-RPC.
    let (_, discovered) = post(&http, r#"{"jsonrpc":"2.0","method":"rpc.discover","id":1}"#).await;
    assert_eq!(discovered["result"], document);

    // Behind a proxy, and mounted under a prefix in an application.
    let proxied = http
        .client()
        .get(format!("{}/openrpc.json", http.url()))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "api.example.com")
        .header("x-forwarded-prefix", "/edge")
        .send()
        .await
        .expect("answered")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(proxied["servers"][0]["url"], "https://api.example.com/edge");
    let mounted = Server::builder().build().expect("builds");
    let running = mounted.start().await.expect("starts");
    let app = axum::Router::new().nest("/rpc", running.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let app_addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let app_http = Http::new(app_addr);
    let document = app_http.get_json("/rpc/openrpc.json").await;
    let url = document["servers"][0]["url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_eq!(url, format!("http://{app_addr}/rpc"));
    let request =
        json!({"jsonrpc": "2.0", "method": "jr/add", "params": {"a": 1, "b": 2}, "id": 1});
    let answer = app_http
        .client()
        .post(&url)
        .body(request.to_string())
        .send()
        .await
        .expect("answered");
    assert_eq!(
        answer.json::<Value>().await.expect("json")["result"],
        json!({"sum": 3})
    );

    // A configured public URL wins.
    let configured = start(builder().public_url("https://rpc.example.com/v1/")).await;
    let document = Http::new(configured.http_addr().expect("http"))
        .get_json("/openrpc.json")
        .await;
    assert_eq!(document["servers"][0]["url"], "https://rpc.example.com/v1/");
}
