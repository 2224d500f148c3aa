//! Calls over real HTTP on loopback: every status the framework produces
//! for HTTP, the envelope's defaults and synonyms, identity and `auth`,
//! internal calls, panics, deadlines, events, tracing, and procedures linked
//! in from another crate.

use rpc_runtime::{Context, Cors, EventKind, Identity, RpcError, Server};
use rpc_tests::{Http, start};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// Naming the crate links it in, and with it its registrations.
use catalog as _;

mod procs {
    use rpc_runtime::{Address, Caller, Context, JsonSchema, RpcError, rpc};
    use serde::{Deserialize, Serialize};
    use serde_json::{Value, json};

    #[derive(Deserialize, Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct AddArgs {
        pub a: i64,
        pub b: i64,
    }

    /// Adds two integers.
    #[rpc(procedure = "add", scope = "math")]
    pub async fn add(args: AddArgs) -> i64 {
        args.a + args.b
    }

    /// Version 2 of add, answering a string.
    #[rpc(procedure = "add", scope = "math", version = 2)]
    pub async fn add_v2(args: AddArgs) -> String {
        format!("v2:{}", args.a + args.b)
    }

    /// Reports what the handler sees of its call.
    #[rpc(procedure = "echo-identity", scope = "test")]
    pub async fn echo_identity(ctx: Context) -> Value {
        json!({ "identity": ctx.identity(), "caller": ctx.caller(), "traceId": ctx.trace_id() })
    }

    /// Needs an authenticated identity.
    #[rpc(procedure = "whoami", scope = "test", auth)]
    pub async fn whoami(ctx: Context) -> Option<String> {
        ctx.user_id().map(str::to_owned)
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct SecretArgs {
        pub n: u32,
    }

    /// Only callable by other procedures.
    #[rpc(procedure = "secret", scope = "test", internal)]
    pub async fn secret(args: SecretArgs, ctx: Context) -> Value {
        json!({ "double": args.n * 2, "identity": ctx.identity(), "caller": ctx.caller() })
    }

    /// Calls `secret` typed and untyped.
    #[rpc(procedure = "reveal", scope = "test")]
    pub async fn reveal(ctx: Context) -> Result<Value, RpcError> {
        let typed = ctx.call::<secret>(SecretArgs { n: 21 }).await?;
        let untyped = ctx
            .call_json(Address::new("test", "secret", "1"), json!({ "n": 5 }))
            .await?;
        let invalid = ctx
            .call_json(Address::new("test", "secret", "1"), json!({ "n": -1 }))
            .await
            .map_err(|e| e.code());
        Ok(json!({ "typed": typed, "untyped": untyped, "invalid": invalid.err() }))
    }

    /// Names the thread the handler runs on.
    #[rpc(procedure = "thread", scope = "test")]
    pub async fn thread() -> Option<String> {
        std::thread::current().name().map(str::to_owned)
    }

    /// Always panics, with a message that must not reach the caller.
    #[rpc(procedure = "panics", scope = "test")]
    pub async fn panics() -> i32 {
        panic!("secret detail of the panic")
    }

    /// Chooses its own status.
    #[rpc(procedure = "conflict", scope = "test")]
    pub async fn conflict() -> Result<(), RpcError> {
        Err(RpcError::conflict("that name is taken"))
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct Sleep {
        pub ms: u64,
    }

    /// Sleeps past its own 100 ms deadline when asked to.
    #[rpc(procedure = "slow", scope = "test", timeout = "100ms")]
    pub async fn slow(args: Sleep) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(args.ms)).await;
        args.ms
    }

    /// Sleeps under the server's default deadline.
    #[rpc(procedure = "wait", scope = "test")]
    pub async fn wait(args: Sleep) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(args.ms)).await;
        args.ms
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub enum Colour {
        Red,
        Green,
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Item {
        #[schemars(range(min = 1))]
        pub qty: u32,
        pub colour: Colour,
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Order {
        #[schemars(email)]
        pub email: String,
        pub items: Vec<Item>,
    }

    /// Validates nested args.
    #[rpc(procedure = "order", scope = "test")]
    pub async fn order(args: Order) -> usize {
        args.items.len()
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct Page {
        #[serde(default)]
        pub limit: Option<u32>,
    }

    /// All args fields are optional, so missing args are fine.
    #[rpc(procedure = "page", scope = "test")]
    pub async fn page(args: Page) -> Option<u32> {
        args.limit
    }

    /// Takes no args.
    #[rpc(procedure = "nothing", scope = "test")]
    pub async fn nothing() -> &'static str {
        "nothing"
    }

    pub fn is_procedure_caller(caller: &Caller) -> bool {
        matches!(caller, Caller::Procedure { .. })
    }
}

async fn server() -> (rpc_runtime::RunningServer, Http) {
    let running = start(Server::builder().name("http-test")).await;
    let http = Http::new(running.http_addr().expect("http"));
    (running, http)
}

#[tokio::test]
async fn success_echoes_correlation_id_and_status() {
    let (_server, http) = server().await;
    let (status, body) = http
        .call(json!({"procedure": "add", "scope": "math", "args": {"a": 2, "b": 3}, "correlationId": "c-17"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"code": 200, "success": true, "data": 5, "correlationId": "c-17"})
    );
    let (_, body) = http
        .call(json!({"procedure": "add", "scope": "math", "args": {"a": 1, "b": 1}, "correlationId": 42}))
        .await;
    assert_eq!(body["correlationId"], json!(42));
}

/// Connections are accepted on a thread of their own, and served on the
/// runtime the server was started on: on its workers, or on the test's
/// own thread with a single-threaded runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_run_on_the_servers_runtime_not_the_accept_thread() {
    let (_server, http) = server().await;
    for _ in 0..8 {
        let (status, body) = http
            .call(json!({"procedure": "thread", "scope": "test"}))
            .await;
        assert_eq!(status, 200, "{body}");
        let thread = body["data"].as_str().unwrap_or_default();
        // tokio names its workers `tokio-rt-worker`.
        assert!(thread.starts_with("tokio-"), "{thread}");
    }
}

#[tokio::test]
async fn calls_run_on_a_single_threaded_runtime_s_own_thread() {
    let (_server, http) = server().await;
    let (status, body) = http
        .call(json!({"procedure": "thread", "scope": "test"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!(
            std::thread::current()
                .name()
                .expect("a test's thread is named")
        )
    );
}

#[tokio::test]
async fn synonyms_and_defaults() {
    let (_server, http) = server().await;
    // `method` and `params` stand for `procedure` and `args`.
    let (status, body) = http
        .call(json!({"method": "add", "scope": "math", "params": {"a": 1, "b": 2}}))
        .await;
    assert_eq!((status, body["data"].clone()), (200, json!(3)));
    // Integer and string versions are the same version.
    for version in [json!(2), json!("2")] {
        let (_, body) = http
            .call(json!({"procedure": "add", "scope": "math", "version": version, "args": {"a": 1, "b": 2}}))
            .await;
        assert_eq!(body["data"], json!("v2:3"));
    }
    // The default version is "1".
    let (_, body) = http
        .call(json!({"procedure": "add", "scope": "math", "args": {"a": 1, "b": 2}}))
        .await;
    assert_eq!(body["data"], json!(3));
    // The default scope is "global": `add` lives in "math", so this is 404.
    let (status, _) = http
        .call(json!({"procedure": "add", "args": {"a": 1, "b": 2}}))
        .await;
    assert_eq!(status, 404);
    // Missing or null args validate as {}.
    let (_, body) = http
        .call(json!({"procedure": "page", "scope": "test"}))
        .await;
    assert_eq!(body, json!({"code": 200, "success": true}));
    let (_, body) = http
        .call(json!({"procedure": "nothing", "scope": "test", "args": null}))
        .await;
    assert_eq!(body["data"], json!("nothing"));
    let (status, body) = http
        .call(json!({"procedure": "nothing", "scope": "test", "args": {"x": 1}}))
        .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn malformed_bodies_get_400_saying_what_is_wrong() {
    let (_server, http) = server().await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), "not valid JSON"),
        (b"".to_vec(), "not valid JSON"),
        (vec![0xff, 0xfe, 0x00], "not valid JSON"),
        // (An array is a JSON-RPC batch: see tests/jsonrpc.rs.)
        (b"\"text\"".to_vec(), "must be a JSON object, not a string"),
        (b"\"call\"".to_vec(), "must be a JSON object, not a string"),
        (b"{}".to_vec(), "procedure is required"),
        (
            br#"{"procedure": 7}"#.to_vec(),
            "procedure must be a string",
        ),
        (
            br#"{"procedure": ""}"#.to_vec(),
            "procedure must not be empty",
        ),
        (
            br#"{"procedure": "p", "scope": 1}"#.to_vec(),
            "scope must be a string",
        ),
        (
            br#"{"procedure": "p", "version": 1.5}"#.to_vec(),
            "version must be a string or an integer",
        ),
        (
            br#"{"procedure": "p", "version": true}"#.to_vec(),
            "version must be a string or an integer",
        ),
        (
            br#"{"procedure": "p", "identity": []}"#.to_vec(),
            "identity must be an object",
        ),
        (
            br#"{"procedure": "p", "identity": {"authorization": 5}}"#.to_vec(),
            "identity is malformed",
        ),
        (
            br#"{"procedure": "p", "identity": {"metadata": "x"}}"#.to_vec(),
            "identity is malformed",
        ),
        (
            br#"{"procedure": "p", "correlationId": [1]}"#.to_vec(),
            "correlationId must be a string or a number",
        ),
        (
            format!(r#"{{"args": {}"#, "[".repeat(100_000)).into_bytes(),
            "deeper than 128 levels",
        ),
        (
            format!(
                r#"{{"procedure": "p", "args": {}{}}}"#,
                "[".repeat(200),
                "]".repeat(200)
            )
            .into_bytes(),
            "deeper than 128 levels",
        ),
        (
            "{\"procedure\": \"p\"".as_bytes().to_vec(),
            "not valid JSON",
        ),
    ];
    for (body, expected) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let (status, response) = http.post("/", body).await;
        assert_eq!(status, 400, "{shown}: {response}");
        assert_eq!(response["success"], json!(false));
        let message = response["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{shown}: {message}");
    }
    // Pages and /health answer other methods with an envelope 405.
    for path in ["/health", "/telemetry", "/docs"] {
        let (status, response) = http.post(path, b"{}".to_vec()).await;
        assert_eq!(status, 405, "{path}");
        assert_eq!(response["code"], json!(405), "{path}: {response}");
    }
    // A correlation id that could be read is echoed on a 400.
    let (_, response) = http
        .call(json!({"procedure": 1, "correlationId": "c-9"}))
        .await;
    assert_eq!(response["correlationId"], json!("c-9"));
    // The server is still up.
    let (status, _) = http
        .call(json!({"procedure": "nothing", "scope": "test"}))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_procedure_is_404() {
    let (_server, http) = server().await;
    for envelope in [
        json!({"procedure": "missing"}),
        json!({"procedure": "add", "scope": "nope"}),
        json!({"procedure": "add", "scope": "math", "version": "3"}),
    ] {
        let (status, body) = http.call(envelope).await;
        assert_eq!(status, 404);
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("no procedure")
        );
    }
}

#[tokio::test]
async fn invalid_args_list_every_pointer() {
    let (_server, http) = server().await;
    let (status, body) = http
        .call(json!({"procedure": "order", "scope": "test", "correlationId": "v",
            "args": {"email": "x", "items": [{"qty": 0, "colour": "red"}, {"qty": 1, "colour": "blue", "extra": 1}]}}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["correlationId"], json!("v"));
    let paths: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["path"].as_str().unwrap_or_default())
        .collect();
    for expected in ["/email", "/items/0/qty", "/items/1/colour", "/items/1"] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("args failed validation")
    );
    // Thousands of failures are capped, not echoed without bound.
    let items: Vec<Value> = (0..5_000)
        .map(|_| json!({"qty": 0, "colour": "red"}))
        .collect();
    let (status, body) = http
        .call(json!({"procedure": "order", "scope": "test", "args": {"email": "a@b.c", "items": items}}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(100));
}

#[tokio::test]
async fn handler_codes_pass_through_and_panics_are_500() {
    let (_server, http) = server().await;
    let (status, body) = http
        .call(json!({"procedure": "conflict", "scope": "test"}))
        .await;
    assert_eq!(
        (status, body["message"].clone()),
        (409, json!("that name is taken"))
    );
    for _ in 0..3 {
        let (status, body) = http
            .call(json!({"procedure": "panics", "scope": "test"}))
            .await;
        assert_eq!(status, 500);
        assert_eq!(body["message"], json!("internal server error"));
        assert!(!body.to_string().contains("secret detail"));
    }
    let (status, _) = http
        .call(json!({"procedure": "add", "scope": "math", "args": {"a": 1, "b": 1}}))
        .await;
    assert_eq!(status, 200, "the server lives on after panics");
}

#[tokio::test]
async fn deadline_passing_is_504() {
    let (_server, http) = server().await;
    let started = std::time::Instant::now();
    let (status, body) = http
        .call(json!({"procedure": "slow", "scope": "test", "args": {"ms": 5_000}}))
        .await;
    assert_eq!(status, 504, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered at the deadline, not after the sleep"
    );
    let (status, _) = http
        .call(json!({"procedure": "slow", "scope": "test", "args": {"ms": 1}}))
        .await;
    assert_eq!(status, 200);
    // The server's default deadline applies to procedures without one.
    let short = start(Server::builder().timeout(Duration::from_millis(50))).await;
    let http = Http::new(short.http_addr().expect("http"));
    let (status, _) = http
        .call(json!({"procedure": "wait", "scope": "test", "args": {"ms": 3_000}}))
        .await;
    assert_eq!(status, 504);
    // A deadline too far for the clock is as good as none.
    let endless = start(Server::builder().timeout(Duration::MAX)).await;
    let http = Http::new(endless.http_addr().expect("http"));
    let (status, body) = http
        .call(json!({"procedure": "wait", "scope": "test", "args": {"ms": 1}}))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn internal_procedures_are_403_from_outside_and_callable_inside() {
    let (_server, http) = server().await;
    let (status, body) = http
        .call(json!({"procedure": "secret", "scope": "test", "args": {"n": 1}}))
        .await;
    assert_eq!(status, 403, "{body}");
    let identity =
        json!({"authorization": "Bearer t", "deviceName": "ios", "metadata": {"tz": "UTC"}});
    let (status, body) = http
        .call(json!({"procedure": "reveal", "scope": "test", "identity": identity}))
        .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["typed"]["double"], json!(42));
    assert_eq!(data["untyped"]["double"], json!(10));
    // Internal calls are validated too.
    assert_eq!(data["invalid"], json!(422));
    // They carry the caller's identity and name the calling procedure.
    assert_eq!(data["typed"]["identity"], identity);
    let caller: rpc_runtime::Caller =
        serde_json::from_value(data["typed"]["caller"].clone()).expect("caller");
    assert!(procs::is_procedure_caller(&caller), "{caller:?}");
    assert_eq!(
        data["typed"]["caller"]["address"]["procedure"],
        json!("reveal")
    );
}

#[tokio::test]
async fn identity_reaches_the_handler() {
    let (_server, http) = server().await;
    let identity = json!({"authorization": "Bearer abc", "deviceName": "android", "metadata": {"tz": "UTC", "n": [1]}});
    let (_, body) = http
        .client()
        .post(http.url())
        .header("x-real-ip", "203.0.113.9")
        .json(&json!({"procedure": "echo-identity", "scope": "test", "identity": identity}))
        .send()
        .await
        .map(|r| (0, r))
        .expect("answer");
    let body: Value = body.json().await.expect("json");
    assert_eq!(body["data"]["identity"], identity);
    assert_eq!(body["data"]["caller"]["transport"], json!("http"));
    assert_eq!(body["data"]["caller"]["ip"], json!("203.0.113.9"));
    assert_eq!(body["data"]["caller"]["server"], json!("http-test"));
    assert_eq!(body["data"]["traceId"].as_str().map(str::len), Some(32));
    // Without an identity the handler sees none.
    let (_, body) = http
        .call(json!({"procedure": "echo-identity", "scope": "test"}))
        .await;
    assert_eq!(body["data"]["identity"], Value::Null);
    assert_eq!(body["data"]["caller"]["ip"], json!("127.0.0.1"));
}

#[tokio::test]
async fn auth_procedures_need_an_identity_and_pass_the_authenticator() {
    // Without an authenticator, any authorization will do.
    let (_server, http) = server().await;
    let (status, _) = http
        .call(json!({"procedure": "whoami", "scope": "test"}))
        .await;
    assert_eq!(status, 401);
    let (status, _) = http
        .call(json!({"procedure": "whoami", "scope": "test", "identity": {"deviceName": "x"}}))
        .await;
    assert_eq!(status, 401);
    // A scheme without a token, or only spaces, is no authorization.
    for empty in ["", "   ", "Bearer", "Bearer   ", "bearer \t"] {
        let (status, _) = http
            .call(json!({"procedure": "whoami", "scope": "test", "identity": {"authorization": empty}}))
            .await;
        assert_eq!(status, 401, "{empty:?}");
    }
    let (status, body) = http
        .call(json!({"procedure": "whoami", "scope": "test", "identity": {"authorization": "Bearer x"}}))
        .await;
    assert_eq!((status, body["data"].clone()), (200, Value::Null));

    // With one, its verdict decides and its user id reaches the handler.
    let guarded = start(Server::builder().authenticator(|token: String| async move {
        match token.as_str() {
            "good" => Ok("user-7".to_owned()),
            _ => Err(RpcError::unauthorized("token rejected")),
        }
    }))
    .await;
    let http = Http::new(guarded.http_addr().expect("http"));
    let (status, body) = http
        .call(json!({"procedure": "whoami", "scope": "test", "identity": {"authorization": "Bearer good"}}))
        .await;
    assert_eq!((status, body["data"].clone()), (200, json!("user-7")));
    let (status, body) = http
        .call(json!({"procedure": "whoami", "scope": "test", "identity": {"authorization": "Bearer bad"}}))
        .await;
    assert_eq!(
        (status, body["message"].clone()),
        (401, json!("token rejected"))
    );
    // Procedures without `auth` do not consult it.
    let (status, _) = http
        .call(json!({"procedure": "nothing", "scope": "test"}))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let running = start(Server::builder().body_limit(1024)).await;
    let addr = running.http_addr().expect("http");
    let http = Http::new(addr);
    let big = json!({"procedure": "nothing", "scope": "test", "args": {"pad": "x".repeat(2048)}});
    let (status, body) = http.call(big).await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], json!(413));

    // A chunked body with no declared length is cut off at the limit too.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request =
        b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            .to_vec();
    for _ in 0..4 {
        request.extend_from_slice(format!("400\r\n{}\r\n", "a".repeat(1024)).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).await.expect("write");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");

    let (status, _) = http
        .call(json!({"procedure": "nothing", "scope": "test"}))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn always_200_keeps_the_code_in_the_body() {
    let running = start(Server::builder().always_200(true)).await;
    let http = Http::new(running.http_addr().expect("http"));
    let (status, body) = http.call(json!({"procedure": "missing"})).await;
    assert_eq!(
        (status, body["code"].clone(), body["success"].clone()),
        (200, json!(404), json!(false))
    );
    let (status, body) = http.post("/", b"{".to_vec()).await;
    assert_eq!((status, body["code"].clone()), (200, json!(400)));
}

#[tokio::test]
async fn health_other_paths_and_methods() {
    let (_server, http) = server().await;
    let health = http
        .client()
        .get(format!("{}/health", http.url()))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().await.expect("text"), "ok");
    // Any other path behaves like `/`.
    let (status, body) = http
        .post(
            "/api/v1/rpc",
            br#"{"procedure":"add","scope":"math","args":{"a":1,"b":2}}"#.to_vec(),
        )
        .await;
    assert_eq!((status, body["data"].clone()), (200, json!(3)));
    let get = http.client().get(http.url()).send().await.expect("get");
    assert_eq!(get.status().as_u16(), 405);
}

#[tokio::test]
async fn cors_is_any_origin_by_default_and_configurable() {
    let (_server, http) = server().await;
    let preflight = http
        .client()
        .request(reqwest::Method::OPTIONS, http.url())
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    let running =
        start(Server::builder().cors(Cors::Origins(vec!["https://good.example".into()]))).await;
    let http = Http::new(running.http_addr().expect("http"));
    let origin = |origin: &'static str| {
        http.client()
            .post(http.url())
            .header("origin", origin)
            .json(&json!({"procedure": "nothing", "scope": "test"}))
            .send()
    };
    let good = origin("https://good.example").await.expect("good");
    assert_eq!(
        good.headers()["access-control-allow-origin"],
        "https://good.example"
    );
    let bad = origin("https://evil.example").await.expect("bad");
    assert!(bad.headers().get("access-control-allow-origin").is_none());

    let running = start(Server::builder().cors(Cors::Disabled)).await;
    let http = Http::new(running.http_addr().expect("http"));
    let response = http
        .client()
        .post(http.url())
        .header("origin", "https://app.example")
        .json(&json!({"procedure": "nothing", "scope": "test"}))
        .send()
        .await
        .expect("post");
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn event_hooks_see_request_and_response() {
    type Seen = Vec<(EventKind, String, u16, Value)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let sink = seen.clone();
    let running = start(Server::builder().on_event(move |event| {
        let code = event.result.as_ref().map_or_else(RpcError::code, |_| 200);
        if let Ok(mut seen) = sink.lock() {
            seen.push((
                event.kind,
                event.call.address.to_string(),
                code,
                event.call.args.clone().into_value(),
            ));
        }
    }))
    .await;
    let http = Http::new(running.http_addr().expect("http"));
    http.call(json!({"procedure": "add", "scope": "math", "args": {"a": 1, "b": 2}}))
        .await;
    http.call(json!({"procedure": "conflict", "scope": "test"}))
        .await;
    http.call(json!({"procedure": "panics", "scope": "test"}))
        .await;
    http.call(json!({"procedure": "missing"})).await;
    http.call(json!({"procedure": "slow", "scope": "test", "args": {"ms": 1000}}))
        .await;
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(
        seen,
        vec![
            (
                EventKind::Success,
                "math/add@1".into(),
                200,
                json!({"a": 1, "b": 2})
            ),
            (
                EventKind::HandlerError,
                "test/conflict@1".into(),
                409,
                json!({})
            ),
            (
                EventKind::HandlerError,
                "test/panics@1".into(),
                500,
                json!({})
            ),
            (
                EventKind::Rejected,
                "global/missing@1".into(),
                404,
                json!({})
            ),
            (
                EventKind::ServerError,
                "test/slow@1".into(),
                504,
                json!({"ms": 1000})
            ),
        ]
    );
}

#[tokio::test]
async fn every_call_has_a_tracing_span() {
    let spans = capture::install();
    let (_server, http) = server().await;
    http.call(json!({"procedure": "add", "scope": "math", "args": {"a": 1, "b": 2}}))
        .await;
    http.call(json!({"procedure": "conflict", "scope": "test"}))
        .await;
    let found = |procedure: &str| {
        spans
            .lock()
            .map(|all| {
                all.iter()
                    .find(|f| f.get("rpc.procedure").map(String::as_str) == Some(procedure))
                    .cloned()
            })
            .ok()
            .flatten()
    };
    let add = found("add").expect("a span for add");
    assert_eq!(add.get("rpc.scope").map(String::as_str), Some("math"));
    assert_eq!(add.get("rpc.version").map(String::as_str), Some("1"));
    assert_eq!(add.get("rpc.code").map(String::as_str), Some("200"));
    assert!(
        add.get("rpc.duration_us")
            .is_some_and(|d| d.parse::<u64>().is_ok())
    );
    let conflict = found("conflict").expect("a span for conflict");
    assert_eq!(conflict.get("rpc.code").map(String::as_str), Some("409"));
}

#[tokio::test]
async fn procedures_from_another_crate_are_served() {
    let (_server, http) = server().await;
    let (status, body) = http
        .call(json!({"procedure": "list-products", "scope": "catalog"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().map(Vec::len), Some(3));
    // get-product calls the internal warehouse/stock-level through a typed call.
    let (status, body) = http
        .call(json!({"procedure": "get-product", "scope": "catalog", "args": {"id": 2}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["stock"]["counted_by"], json!("http-test"));
    let (status, _) = http
        .call(json!({"procedure": "stock-level", "scope": "warehouse", "args": {"id": 2}}))
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn procedures_are_plain_functions_in_unit_tests() {
    assert_eq!(procs::add(procs::AddArgs { a: 2, b: 40 }).await, 42);
    // A detached context answers calls to other procedures with 503.
    let error = catalog::get_product(catalog::ProductId { id: 1 }, Context::default())
        .await
        .expect_err("no server to call stock-level on");
    assert_eq!(error.code(), 503);
    let ctx = Context::with_identity(Identity::with_authorization("Bearer t"));
    let seen = procs::echo_identity(ctx).await;
    assert_eq!(seen["identity"]["authorization"], json!("Bearer t"));
}

/// Reads from a raw connection until the server closes it; returns what
/// it sent, or `None` if it was still open after `within`.
async fn closed_by_server(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    Some(received)
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed_by_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let running = start(Server::builder().http_header_timeout(Duration::from_millis(400))).await;
    let addr = running.http_addr().expect("http");
    let http = Http::new(addr);

    // Opens and sends nothing.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    // Sends a head a byte at a time, never finishing it (slowloris).
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    // Makes one call, then stays connected without a second request.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    let body = br#"{"procedure":"add","scope":"math","args":{"a":1,"b":2}}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    idle.write_all(request.as_bytes()).await.expect("write");
    idle.write_all(body).await.expect("write");

    let started = std::time::Instant::now();
    let trickle = async {
        for byte in b"POST / HTTP/1.1\r\nhost: test\r\nx-slow: "
            .iter()
            .cycle()
            .take(40)
        {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    trickle.await;
    let within = Duration::from_secs(5);
    assert_eq!(
        closed_by_server(&mut silent, within).await,
        Some(Vec::new())
    );
    let slow_got = closed_by_server(&mut slow, within)
        .await
        .expect("slow closed");
    assert!(
        slow_got.is_empty() || slow_got.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&slow_got)
    );
    let answered = closed_by_server(&mut idle, within)
        .await
        .expect("idle closed");
    let answered = String::from_utf8_lossy(&answered);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(answered.contains(r#""data":3"#), "{answered}");
    assert!(
        started.elapsed() < within,
        "closed by the timeout, not the test's"
    );

    // The server still serves, and a request sent in time is unaffected.
    let (status, body) = http
        .call(json!({"procedure": "add", "scope": "math", "args": {"a": 2, "b": 2}}))
        .await;
    assert_eq!((status, body["data"].clone()), (200, json!(4)));
}

#[tokio::test]
async fn the_header_timeout_spares_requests_being_answered_and_websockets() {
    use rpc_tests::raw;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let timeout = Duration::from_millis(300);
    let running = start(Server::builder().http_header_timeout(timeout)).await;
    let addr = running.http_addr().expect("http");

    // A call that runs for four header timeouts is answered on its
    // connection, and the connection then waits for its next head as
    // long as any other.
    let mut waiting = TcpStream::connect(addr).await.expect("connect");
    let body = br#"{"procedure":"wait","scope":"test","args":{"ms":1200}}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    waiting.write_all(request.as_bytes()).await.expect("write");
    waiting.write_all(body).await.expect("write");
    let started = std::time::Instant::now();
    let answered = closed_by_server(&mut waiting, Duration::from_secs(5))
        .await
        .expect("closed after its answer");
    let answered = String::from_utf8_lossy(&answered);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(answered.contains(r#""data":1200"#), "{answered}");
    // Closed within two timeouts of the answer (the timer is checked
    // lazily), and not before the answer.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1200)
            && elapsed < Duration::from_millis(1200) + 3 * timeout,
        "{elapsed:?}"
    );

    // A WebSocket that stays silent for many header timeouts stays open.
    let mut socket = raw::connect(addr).await;
    tokio::time::sleep(5 * timeout).await;
    raw::send(
        &mut socket,
        json!({"procedure": "add", "scope": "math", "args": {"a": 1, "b": 2}, "correlationId": "late"}),
    )
    .await;
    let reply = raw::recv(&mut socket).await;
    assert_eq!(
        (reply["correlationId"].clone(), reply["data"].clone()),
        (json!("late"), json!(3)),
        "{reply}"
    );
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408_and_closed() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let running = start(Server::builder().http_header_timeout(Duration::from_millis(400))).await;
    let addr = running.http_addr().expect("http");
    // A complete head announcing 100 bytes, then 10 of them, then nothing.
    let mut stalled = TcpStream::connect(addr).await.expect("connect");
    stalled
        .write_all(b"POST / HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"procedur")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let got = closed_by_server(&mut stalled, Duration::from_secs(5))
        .await
        .expect("closed by the server");
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains(r#""code":408"#), "{got}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let (status, body) = Http::new(addr)
        .call(json!({"procedure": "add", "scope": "math", "args": {"a": 2, "b": 2}}))
        .await;
    assert_eq!((status, body["data"].clone()), (200, json!(4)));
}

#[tokio::test]
async fn shutdown_finishes_calls_in_flight() {
    let running = start(Server::builder()).await;
    let http = Arc::new(Http::new(running.http_addr().expect("http")));
    let in_flight = {
        let http = http.clone();
        tokio::spawn(async move {
            http.call(json!({"procedure": "wait", "scope": "test", "args": {"ms": 300}}))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    running.shutdown().await.expect("clean shutdown");
    let (status, body) = in_flight.await.expect("joined");
    assert_eq!((status, body["data"].clone()), (200, json!(300)));
}

/// A minimal tracing subscriber that keeps the fields of `rpc.call` spans.
mod capture {
    use std::collections::HashMap;
    use std::fmt::Debug;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    pub type Fields = HashMap<String, String>;
    type Spans = Arc<Mutex<Vec<Fields>>>;

    struct Capture {
        next: AtomicU64,
        spans: Spans,
    }

    struct Visitor<'a>(&'a mut Fields);

    impl Visit for Visitor<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, attrs: &Attributes<'_>) -> Id {
            let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
            let mut fields = Fields::new();
            fields.insert("#name".into(), attrs.metadata().name().into());
            fields.insert("#id".into(), id.to_string());
            attrs.record(&mut Visitor(&mut fields));
            if let Ok(mut spans) = self.spans.lock() {
                spans.push(fields);
            }
            Id::from_u64(id)
        }
        fn record(&self, span: &Id, values: &Record<'_>) {
            let id = span.into_u64().to_string();
            if let Ok(mut spans) = self.spans.lock()
                && let Some(fields) = spans.iter_mut().find(|f| f.get("#id") == Some(&id))
            {
                values.record(&mut Visitor(fields));
            }
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    pub fn install() -> Spans {
        static SPANS: OnceLock<Spans> = OnceLock::new();
        SPANS
            .get_or_init(|| {
                let spans = Spans::default();
                let capture = Capture {
                    next: AtomicU64::new(0),
                    spans: spans.clone(),
                };
                tracing::subscriber::set_global_default(capture).expect("first subscriber");
                spans
            })
            .clone()
    }
}
