//! The call pipeline as applications plug into it, over real HTTP,
//! WebSocket and RabbitMQ: application state, errors of any type and
//! error data, request metadata, middleware (order, refusal, changes, the
//! rate limit), the drain timeout and SIGTERM.

use futures_util::StreamExt;
use rpc_runtime::middleware::{CallService, Quota, RateLimit, from_fn};
use rpc_runtime::{Address, Call, Error, Server, ServerBuilder};
use rpc_tests::{Http, eventually, rabbitmq_uri, raw};
use serde_json::{Value, json};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::ServiceExt;

mod procs {
    use rpc_runtime::{Context, JsonSchema, RpcError, State, rpc};
    use serde::{Deserialize, Serialize};
    use serde_json::{Value, json};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    /// A stand-in for a database pool: a shared table of counters.
    #[derive(Clone, Default)]
    pub struct Db(pub Arc<Mutex<HashMap<String, u64>>>);

    /// A second state type.
    #[derive(Clone)]
    pub struct Greeting(pub &'static str);

    #[derive(Deserialize, Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Key {
        pub key: String,
    }

    /// Counts calls per key in the server's `Db`.
    #[rpc(procedure = "count", scope = "pipe-state")]
    pub async fn count(db: State<Db>, ctx: Context, args: Key) -> Value {
        let mut table =
            db.0.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = table.entry(args.key).or_default();
        *count += 1;
        json!({ "count": *count, "server": ctx.server().map(|s| s.name().to_owned()) })
    }

    /// Takes both state types.
    #[rpc(procedure = "greet", scope = "pipe-state")]
    pub async fn greet(State(greeting): State<Greeting>, _db: State<Db>) -> String {
        greeting.0.to_owned()
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct Which {
        pub which: String,
    }

    /// Fails with an error of another type than `RpcError`.
    #[rpc(procedure = "fail", scope = "pipe-errors")]
    pub async fn fail(args: Which) -> anyhow::Result<u8> {
        match args.which.as_str() {
            "io" => {
                let read = std::fs::read("/nonexistent/the-secret-file")?;
                Ok(read.len() as u8)
            }
            _ => {
                Err(anyhow::anyhow!("the password column is corrupt")
                    .context("loading the user row"))
            }
        }
    }

    /// `?` on a parse error inside a procedure returning `RpcError`.
    #[rpc(procedure = "parse", scope = "pipe-errors")]
    pub async fn parse(args: Which) -> Result<u64, RpcError> {
        Ok(args.which.parse::<u64>()?)
    }

    /// `io::Result`.
    #[rpc(procedure = "io-result", scope = "pipe-errors")]
    pub async fn io_result(args: Which) -> std::io::Result<u64> {
        args.which.parse::<u64>().map_err(std::io::Error::other)
    }

    /// A boxed error.
    #[rpc(procedure = "boxed", scope = "pipe-errors")]
    pub async fn boxed(args: Which) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        Ok(args.which.parse::<u64>()?)
    }

    /// An error type of the application's own.
    #[derive(Debug)]
    pub struct NotANumber;

    impl std::fmt::Display for NotANumber {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("not a number")
        }
    }

    impl std::error::Error for NotANumber {}

    /// `Result<T, E>` with `E: std::error::Error`.
    #[rpc(procedure = "own-error", scope = "pipe-errors")]
    pub async fn own_error(args: Which) -> Result<u64, NotANumber> {
        args.which.parse::<u64>().map_err(|_| NotANumber)
    }

    /// A plain value.
    #[rpc(procedure = "plain", scope = "pipe-errors")]
    pub async fn plain(args: Which) -> String {
        args.which
    }

    /// Nothing: the call answers without data.
    #[rpc(procedure = "nothing", scope = "pipe-errors")]
    pub async fn nothing(_args: Which) {}

    /// An error with data for the client.
    #[rpc(procedure = "taken", scope = "pipe-errors")]
    pub async fn taken() -> Result<u8, RpcError> {
        Err(RpcError::conflict("that name is taken")
            .with_data(json!({ "suggestions": ["ada2", "ada3"] })))
    }

    /// What the procedure sees of its request.
    #[rpc(procedure = "meta", scope = "pipe-meta")]
    pub async fn meta(ctx: Context) -> Value {
        let header = |name: &str| {
            ctx.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        json!({
            "transport": ctx.transport(),
            "ip": ctx.client_ip().map(|ip| ip.to_string()),
            "connectionId": ctx.connection_id(),
            "requestId": header("x-request-id"),
            "other": header("x-other"),
            "authorization": header("authorization"),
            "userId": ctx.user_id(),
        })
    }

    /// What the procedure sees of its trace, and of a call it makes.
    #[rpc(procedure = "traced", scope = "pipe-trace")]
    pub async fn traced(ctx: Context) -> Result<Value, RpcError> {
        let nested = ctx
            .call_json(
                rpc_runtime::Address::new("pipe-trace", "nested", "1"),
                json!({}),
            )
            .await?;
        Ok(json!({
            "traceId": ctx.trace_id(),
            "spanId": ctx.span_id(),
            "parent": ctx.trace().and_then(|t| t.parent_span_id),
            "state": ctx.trace().and_then(|t| t.state.clone()),
            "nested": nested,
        }))
    }

    /// Called by `traced`.
    #[rpc(procedure = "nested", scope = "pipe-trace", internal)]
    pub async fn nested(ctx: Context) -> Value {
        json!({
            "traceId": ctx.trace_id(),
            "parent": ctx.trace().and_then(|t| t.parent_span_id),
        })
    }

    /// Echoes its args.
    #[rpc(procedure = "echo", scope = "pipe-mw")]
    pub async fn echo(args: Value) -> Value {
        args
    }

    /// Needs an authenticated user.
    #[rpc(procedure = "mine", scope = "pipe-mw", auth)]
    pub async fn mine(ctx: Context) -> Option<String> {
        ctx.user_id().map(str::to_owned)
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct Sleep {
        pub ms: u64,
    }

    /// Calls of `one-at-a-time` running now, and the most that ever ran
    /// at once.
    pub static RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    pub static MOST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// Sleeps, counting the calls that run at once.
    #[rpc(procedure = "one-at-a-time", scope = "pipe-limit")]
    pub async fn one_at_a_time(args: Sleep) -> u64 {
        use std::sync::atomic::Ordering::SeqCst;
        let running = RUNNING.fetch_add(1, SeqCst) + 1;
        MOST.fetch_max(running, SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(args.ms)).await;
        RUNNING.fetch_sub(1, SeqCst);
        args.ms
    }

    /// Sleeps.
    #[rpc(procedure = "slow", scope = "pipe-drain")]
    pub async fn slow(args: Sleep) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(args.ms)).await;
        args.ms
    }
}

use procs::{Db, Greeting};

fn scope(scope: &'static str) -> impl Fn(&Address) -> bool + Send + Sync + 'static {
    move |address| address.scope == scope
}

async fn start(builder: ServerBuilder) -> rpc_runtime::RunningServer {
    rpc_tests::start(builder).await
}

fn envelope(scope: &str, procedure: &str, args: Value) -> Value {
    json!({ "scope": scope, "procedure": procedure, "args": args })
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", std::process::id())
}

/// Log output, captured from every test of this binary.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        #[derive(Clone)]
        struct Writer;
        impl std::io::Write for Writer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                logs()
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| Writer)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        Mutex::new(Vec::new())
    })
}

fn logged() -> String {
    String::from_utf8_lossy(
        &logs()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned()
}

#[tokio::test]
async fn state_reaches_procedures_over_http_websocket_and_the_broker() {
    let db = Db::default();
    let server = start(
        Server::builder()
            .host(scope("pipe-state"))
            .state(db.clone())
            .state(Greeting("hello")),
    )
    .await;
    let addr = server.http_addr().expect("http");
    let http = Http::new(addr);
    let (status, body) = http
        .call(envelope("pipe-state", "count", json!({"key": "a"})))
        .await;
    assert_eq!(
        (status, body["data"]["count"].clone()),
        (200, json!(1)),
        "{body}"
    );
    let mut socket = raw::connect(addr).await;
    raw::send(
        &mut socket,
        json!({"scope": "pipe-state", "procedure": "count", "args": {"key": "a"}, "correlationId": 1}),
    )
    .await;
    assert_eq!(raw::recv(&mut socket).await["data"]["count"], 2);
    let (_, body) = http.call(envelope("pipe-state", "greet", json!({}))).await;
    assert_eq!(body["data"], "hello");
    assert_eq!(
        db.0.lock().expect("lock")["a"],
        2,
        "the builder's value was used"
    );

    // Behind the broker: the handler server has the state, the gateway none.
    let handler_db = Db::default();
    let handler = start_broker(
        on_broker("state-handler")
            .host(scope("pipe-state"))
            .state(handler_db.clone())
            .state(Greeting("from the handler server")),
    )
    .await;
    let gateway = start(on_broker("state-gateway").host_none()).await;
    let through = Http::new(gateway.http_addr().expect("http"));
    let (status, body) = through
        .call(envelope("pipe-state", "count", json!({"key": "b"})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["count"], 1);
    assert_eq!(handler_db.0.lock().expect("lock")["b"], 1);
    gateway.shutdown().await.expect("gateway stops");
    handler.shutdown().await.expect("handler stops");
    server.shutdown().await.expect("server stops");
}

/// A server on the test broker, named uniquely for this process.
fn on_broker(name: &str) -> ServerBuilder {
    Server::builder().name(unique(name)).broker(rabbitmq_uri())
}

/// Starts a server without HTTP (a handler server).
async fn start_broker(builder: ServerBuilder) -> rpc_runtime::RunningServer {
    builder
        .build()
        .expect("builds")
        .start()
        .await
        .expect("starts")
}

#[test]
fn build_names_every_procedure_and_missing_state_type() {
    let error = Server::builder()
        .host(scope("pipe-state"))
        .state(Greeting("only this one"))
        .build()
        .err()
        .expect("build fails");
    let Error::MissingState(lines) = &error else {
        panic!("expected MissingState, got {error}");
    };
    let text = error.to_string();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        text.contains("pipe-state/count@1 needs State<pipeline::procs::Db>"),
        "{text}"
    );
    assert!(
        text.contains("pipe-state/greet@1 needs State<pipeline::procs::Db>"),
        "{text}"
    );
    assert!(!text.contains("Greeting"), "{text}");
    // A server that does not host them needs none of it.
    Server::builder()
        .host(scope("pipe-errors"))
        .build()
        .expect("builds without state");
}

#[tokio::test]
async fn errors_of_other_types_answer_500_and_are_logged_with_cause_and_trace_id() {
    logs();
    let trace_ids = Arc::new(Mutex::new(Vec::new()));
    let seen = trace_ids.clone();
    let server = start(
        Server::builder()
            .host(scope("pipe-errors"))
            .on_event(move |event| seen.lock().expect("lock").push(event.call.trace_id)),
    )
    .await;
    let http = Http::new(server.http_addr().expect("http"));
    for (which, cause) in [
        (
            "anyhow",
            "loading the user row: the password column is corrupt",
        ),
        ("io", "No such file or directory"),
    ] {
        let (status, body) = http
            .call(envelope("pipe-errors", "fail", json!({"which": which})))
            .await;
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["message"], "internal server error", "{body}");
        let text = body.to_string();
        assert!(
            !text.contains("password") && !text.contains("secret-file"),
            "{text}"
        );
        let trace_id = trace_ids.lock().expect("lock").pop().expect("an event");
        eventually("the log line", || {
            logged()
                .lines()
                .any(|line| line.contains(cause) && line.contains(trace_id.as_str()))
        })
        .await;
    }
    let (status, body) = http
        .call(envelope("pipe-errors", "parse", json!({"which": "x"})))
        .await;
    assert_eq!(
        (status, &body["message"]),
        (500, &json!("internal server error"))
    );
    let (status, body) = http
        .call(envelope("pipe-errors", "parse", json!({"which": "42"})))
        .await;
    assert_eq!((status, &body["data"]), (200, &json!(42)));
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn every_return_form_answers_as_documented() {
    let server = start(Server::builder().host(scope("pipe-errors"))).await;
    let http = Http::new(server.http_addr().expect("http"));
    for procedure in ["fail", "parse", "io-result", "boxed", "own-error"] {
        if procedure != "fail" {
            let (status, body) = http
                .call(envelope("pipe-errors", procedure, json!({"which": "7"})))
                .await;
            assert_eq!(
                (status, &body["data"]),
                (200, &json!(7)),
                "{procedure}: {body}"
            );
        }
        let (status, body) = http
            .call(envelope("pipe-errors", procedure, json!({"which": "x"})))
            .await;
        assert_eq!(
            (status, &body["message"]),
            (500, &json!("internal server error")),
            "{procedure}: {body}"
        );
    }
    let (status, body) = http
        .call(envelope("pipe-errors", "plain", json!({"which": "w"})))
        .await;
    assert_eq!((status, &body["data"]), (200, &json!("w")));
    let (status, body) = http
        .call(envelope("pipe-errors", "nothing", json!({"which": "w"})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("data").is_none(), "{body}");
    let (status, _) = http.call(envelope("pipe-errors", "taken", json!({}))).await;
    assert_eq!(status, 409);
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn error_data_reaches_clients_over_http_websocket_and_the_broker() {
    let expected = json!({ "suggestions": ["ada2", "ada3"] });
    let server = start(Server::builder().host(scope("pipe-errors"))).await;
    let addr = server.http_addr().expect("http");
    let (status, body) = Http::new(addr)
        .call(envelope("pipe-errors", "taken", json!({})))
        .await;
    assert_eq!((status, &body["data"]), (409, &expected), "{body}");
    assert_eq!(body["message"], "that name is taken");
    let mut socket = raw::connect(addr).await;
    raw::send(
        &mut socket,
        json!({"scope": "pipe-errors", "procedure": "taken", "correlationId": "t"}),
    )
    .await;
    let frame = raw::recv(&mut socket).await;
    assert_eq!(
        (frame["code"].clone(), frame["data"].clone()),
        (json!(409), expected.clone())
    );
    // The typed client gives it back too.
    let client = rpc_runtime::HttpClient::new(format!("http://{addr}"));
    let error = client
        .call_json(Address::new("pipe-errors", "taken", "1"), json!({}))
        .await
        .expect_err("409");
    assert_eq!(error.data(), Some(&expected));

    let handler = start_broker(on_broker("data-handler").host(scope("pipe-errors"))).await;
    let gateway = start(on_broker("data-gateway").host_none()).await;
    let (status, body) = Http::new(gateway.http_addr().expect("http"))
        .call(envelope("pipe-errors", "taken", json!({})))
        .await;
    assert_eq!((status, &body["data"]), (409, &expected), "{body}");
    gateway.shutdown().await.expect("gateway stops");
    handler.shutdown().await.expect("handler stops");
    server.shutdown().await.expect("server stops");
}

#[tokio::test]
async fn procedures_read_request_metadata_on_every_path() {
    let server = start(
        Server::builder()
            .host(scope("pipe-meta"))
            .authenticator(|token: String| async move { Ok(format!("user:{token}")) }),
    )
    .await;
    let addr = server.http_addr().expect("http");
    let http = Http::new(addr);
    let response = http
        .client()
        .post(format!("{}/", http.url()))
        .header("x-request-id", "req-1")
        .header("x-other", "o")
        .json(&envelope("pipe-meta", "meta", json!({})))
        .send()
        .await
        .expect("answered");
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["data"],
        json!({"transport": "http", "ip": "127.0.0.1", "connectionId": null,
               "requestId": "req-1", "other": "o", "authorization": null, "userId": null})
    );

    // WebSocket: the upgrade's headers, the connection's id and user.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{addr}/"
        ))
        .expect("request");
    request
        .headers_mut()
        .insert("x-request-id", "upgrade-1".parse().expect("value"));
    request
        .headers_mut()
        .insert("authorization", "Bearer ws-token".parse().expect("value"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    raw::send(
        &mut socket,
        json!({"scope": "pipe-meta", "procedure": "meta", "correlationId": 1}),
    )
    .await;
    let frame = raw::recv(&mut socket).await;
    let connections = server.handle().connections();
    assert_eq!(connections.len(), 1);
    assert_eq!(frame["data"]["transport"], "websocket");
    assert_eq!(frame["data"]["connectionId"], json!(connections[0].id));
    assert_eq!(frame["data"]["requestId"], "upgrade-1");
    assert_eq!(frame["data"]["userId"], "user:ws-token");
    assert_eq!(frame["data"]["ip"], "127.0.0.1");

    // Through the broker: only the headers the gateway forwards.
    let handler = start_broker(on_broker("meta-handler").host(scope("pipe-meta"))).await;
    let gateway = start(
        on_broker("meta-gateway")
            .broker_forward_headers(["x-request-id"])
            .host_none(),
    )
    .await;
    let through = Http::new(gateway.http_addr().expect("http"));
    let response = through
        .client()
        .post(format!("{}/", through.url()))
        .header("x-request-id", "req-2")
        .header("x-other", "not forwarded")
        .header("authorization", "Bearer not-forwarded")
        .header("x-real-ip", "203.0.113.7")
        .json(&envelope("pipe-meta", "meta", json!({})))
        .send()
        .await
        .expect("answered");
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["data"],
        json!({"transport": "http", "ip": "203.0.113.7", "connectionId": null,
               "requestId": "req-2", "other": null, "authorization": null, "userId": null}),
        "{body}"
    );
    gateway.shutdown().await.expect("gateway stops");
    handler.shutdown().await.expect("handler stops");
    server.shutdown().await.expect("server stops");
}

/// A middleware that records when it sees the call and the answer.
fn recording(
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
) -> rpc_runtime::middleware::FromFnLayer<
    impl Fn(
        Call,
        CallService,
    ) -> rpc_runtime::__private::BoxFuture<Result<rpc_runtime::Data, rpc_runtime::RpcError>>
    + Clone
    + Send
    + Sync
    + 'static,
> {
    from_fn(move |call: Call, next: CallService| {
        let log = log.clone();
        Box::pin(async move {
            log.lock()
                .expect("lock")
                .push(format!("{name} in {} {:?}", call.address, call.user_id));
            let answer = next.oneshot(call).await;
            log.lock().expect("lock").push(format!("{name} out"));
            answer
        }) as rpc_runtime::__private::BoxFuture<_>
    })
}

#[tokio::test]
async fn middleware_wraps_every_call_in_the_order_added() {
    let log = Arc::new(Mutex::new(Vec::new()));
    // Refuses `refuse: true`, adds a field to the args, wraps the answer.
    let rewrite = from_fn(|mut call: Call, next: CallService| async move {
        if call.args.get("refuse").is_some() {
            return Err(rpc_runtime::RpcError::forbidden("refused by a middleware"));
        }
        // Validation comes after middleware: what it adds is checked too.
        if call.address.procedure == "echo"
            && let Some(args) = call.args.as_object_mut()
        {
            args.insert("added".into(), json!(true));
        }
        let answer = next.oneshot(call).await?;
        Ok(json!({ "wrapped": answer }).into())
    });
    let server = start(
        Server::builder()
            .host(scope("pipe-mw"))
            .authenticator(|token: String| async move { Ok(format!("user:{token}")) })
            .layer(recording("first", log.clone()))
            .layer(recording("second", log.clone()))
            .layer(rewrite),
    )
    .await;
    let addr = server.http_addr().expect("http");
    let http = Http::new(addr);
    let (status, body) = http
        .call(envelope("pipe-mw", "echo", json!({"x": 1})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({"wrapped": {"x": 1, "added": true}}));
    assert_eq!(
        std::mem::take(&mut *log.lock().expect("lock")),
        [
            "first in pipe-mw/echo@1 None",
            "second in pipe-mw/echo@1 None",
            "second out",
            "first out"
        ]
    );
    let (status, body) = http
        .call(envelope("pipe-mw", "echo", json!({"refuse": true})))
        .await;
    assert_eq!(
        (status, &body["message"]),
        (403, &json!("refused by a middleware"))
    );
    log.lock().expect("lock").clear();

    // Authentication comes before middleware: it sees the user id.
    let mut socket = raw::connect(addr).await;
    raw::send(
        &mut socket,
        json!({"scope": "pipe-mw", "procedure": "mine", "correlationId": 1,
               "identity": {"authorization": "Bearer ada"}}),
    )
    .await;
    let frame = raw::recv(&mut socket).await;
    assert_eq!(frame["data"], json!({"wrapped": "user:ada"}), "{frame}");
    assert_eq!(
        log.lock().expect("lock")[0],
        "first in pipe-mw/mine@1 Some(\"user:ada\")"
    );
    // An unauthenticated call never reaches the middleware.
    log.lock().expect("lock").clear();
    let (status, _) = http.call(envelope("pipe-mw", "mine", json!({}))).await;
    assert_eq!(status, 401);
    assert!(log.lock().expect("lock").is_empty());

    // A gateway's middleware wraps the calls it forwards.
    let handler = start_broker(on_broker("mw-handler").host(scope("pipe-mw"))).await;
    let gateway_log = Arc::new(Mutex::new(Vec::new()));
    let gateway = start(
        on_broker("mw-gateway")
            .host_none()
            .layer(recording("gateway", gateway_log.clone())),
    )
    .await;
    let (status, body) = Http::new(gateway.http_addr().expect("http"))
        .call(envelope("pipe-mw", "echo", json!({"y": 2})))
        .await;
    assert_eq!((status, &body["data"]), (200, &json!({"y": 2})), "{body}");
    // (The handler server has no middleware: the answer is not wrapped.)
    assert_eq!(
        *gateway_log.lock().expect("lock"),
        ["gateway in pipe-mw/echo@1 None", "gateway out"]
    );
    gateway.shutdown().await.expect("gateway stops");
    handler.shutdown().await.expect("handler stops");
    server.shutdown().await.expect("server stops");
}

/// A layer that is not always ready (a concurrency limit of one) holds
/// calls back until it is: every call is answered, one at a time.
#[tokio::test]
async fn a_layer_that_waits_for_room_holds_calls_until_it_has_it() {
    use std::sync::atomic::Ordering::SeqCst;
    let server = start(
        Server::builder()
            .host(scope("pipe-limit"))
            .layer(tower::limit::ConcurrencyLimitLayer::new(1)),
    )
    .await;
    let http = Http::new(server.http_addr().expect("http"));
    let calls =
        (0..4).map(|_| http.call(envelope("pipe-limit", "one-at-a-time", json!({"ms": 50}))));
    for (status, body) in futures_util::future::join_all(calls).await {
        assert_eq!((status, &body["data"]), (200, &json!(50)), "{body}");
    }
    assert_eq!(
        procs::MOST.load(SeqCst),
        1,
        "calls ran at once past the limit"
    );
    server.shutdown().await.expect("server stops");
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_a_retry_hint() {
    let quota = Quota::per_minute(NonZeroU32::new(2).expect("2"));
    let server = start(
        Server::builder()
            .host(scope("pipe-mw"))
            .layer(RateLimit::per_ip(quota)),
    )
    .await;
    let addr = server.http_addr().expect("http");
    let http = Http::new(addr);
    for _ in 0..2 {
        let (status, body) = http.call(envelope("pipe-mw", "echo", json!({}))).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = http.call(envelope("pipe-mw", "echo", json!({}))).await;
    assert_eq!(status, 429, "{body}");
    let retry = body["data"]["retryAfterMs"].as_u64().expect("a retry hint");
    assert!((1..=30_000).contains(&retry), "{body}");
    // The same budget holds over WebSocket from the same address.
    let mut socket = raw::connect(addr).await;
    raw::send(
        &mut socket,
        json!({"scope": "pipe-mw", "procedure": "echo", "correlationId": 1}),
    )
    .await;
    assert_eq!(raw::recv(&mut socket).await["code"], 429);
    // Another address (as a proxy reports it) has its own.
    let response = http
        .client()
        .post(format!("{}/", http.url()))
        .header("x-real-ip", "198.51.100.4")
        .json(&envelope("pipe-mw", "echo", json!({})))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn the_drain_timeout_answers_calls_still_running_with_503() {
    let server = start(
        Server::builder()
            .host(scope("pipe-drain"))
            .drain_timeout(Duration::from_millis(300)),
    )
    .await;
    let addr = server.http_addr().expect("http");
    let http = Http::new(addr);
    let slow = tokio::spawn({
        let http = http.clone();
        async move {
            http.call(envelope("pipe-drain", "slow", json!({"ms": 10_000})))
                .await
        }
    });
    let mut socket = raw::connect(addr).await;
    raw::send(
        &mut socket,
        json!({"scope": "pipe-drain", "procedure": "slow", "args": {"ms": 10_000}, "correlationId": 7}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let stopping = tokio::spawn(server.shutdown());
    let (status, body) = slow.await.expect("joined");
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["message"],
        "the server stopped before the call finished"
    );
    let frame = raw::recv(&mut socket).await;
    assert_eq!(
        (frame["code"].clone(), frame["correlationId"].clone()),
        (json!(503), json!(7))
    );
    stopping.await.expect("joined").expect("shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn serve_drains_on_sigterm() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rpc-test-serve"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the server process starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio_util_lines(stdout);
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next())
        .await
        .expect("the server says where it listens")
        .expect("a line");
    let addr: std::net::SocketAddr = line
        .strip_prefix("listening ")
        .expect("listening <addr>")
        .parse()
        .expect("an address");
    let http = Http::new(addr);
    let call = tokio::spawn({
        let http = http.clone();
        async move {
            http.call(envelope("pipe-drain", "slow", json!({"ms": 600})))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = child.id().expect("a pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let (status, body) = call.await.expect("joined");
    assert_eq!(
        (status, &body["data"]),
        (200, &json!(600)),
        "the call in flight finished"
    );
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the process ends after draining")
        .expect("exit status");
    assert!(exit.success(), "{exit:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens any more"
    );
}

/// The lines a child process prints.
fn tokio_util_lines(
    stdout: tokio::process::ChildStdout,
) -> impl futures_util::Stream<Item = String> + Unpin {
    use tokio::io::AsyncBufReadExt;
    let lines = tokio::io::BufReader::new(stdout).lines();
    Box::pin(futures_util::stream::unfold(
        lines,
        |mut lines| async move {
            lines
                .next_line()
                .await
                .ok()
                .flatten()
                .map(|line| (line, lines))
        },
    ))
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn w3c_trace_context_is_read_started_continued_and_carried_through_the_broker() {
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let check = |data: &Value, parent: Option<&str>| {
        assert_eq!(data["traceId"], TRACE, "{data}");
        if let Some(parent) = parent {
            assert_eq!(data["parent"], parent, "{data}");
        }
        let span = data["spanId"].as_str().expect("a span id");
        assert!(is_hex(span, 16), "{data}");
        assert_eq!(data["nested"]["traceId"], TRACE, "{data}");
        assert_eq!(data["nested"]["parent"], span, "nested calls are children");
    };
    let server = start(Server::builder().host(scope("pipe-trace"))).await;
    let addr = server.http_addr().expect("http");
    let http = Http::new(addr);
    // HTTP: the headers.
    let body: Value = http
        .client()
        .post(format!("{}/", http.url()))
        .header("traceparent", &traceparent)
        .header("tracestate", "vendor=x")
        .json(&envelope("pipe-trace", "traced", json!({})))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    check(&body["data"], Some(PARENT));
    assert_eq!(body["data"]["state"], "vendor=x");
    // Started when absent (or malformed).
    let (_, body) = http.call(envelope("pipe-trace", "traced", json!({}))).await;
    let fresh = body["data"]["traceId"].as_str().expect("a trace id");
    assert!(is_hex(fresh, 32) && fresh != TRACE, "{body}");
    assert_eq!(body["data"]["parent"], Value::Null);
    // WebSocket: the per-call field.
    let mut socket = raw::connect(addr).await;
    raw::send(
        &mut socket,
        json!({"scope": "pipe-trace", "procedure": "traced", "correlationId": 1,
               "traceparent": traceparent}),
    )
    .await;
    check(&raw::recv(&mut socket).await["data"], Some(PARENT));
    // WebSocket: the upgrade request's headers, for every call on the
    // connection.
    let mut upgrade =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{addr}/"
        ))
        .expect("request");
    let headers = upgrade.headers_mut();
    headers.insert("traceparent", traceparent.parse().expect("header"));
    headers.insert("tracestate", "vendor=ws".parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(upgrade)
        .await
        .expect("websocket connects");
    for id in 1..=2 {
        raw::send(
            &mut socket,
            json!({"scope": "pipe-trace", "procedure": "traced", "correlationId": id}),
        )
        .await;
        let body = raw::recv(&mut socket).await;
        check(&body["data"], Some(PARENT));
        assert_eq!(body["data"]["state"], "vendor=ws");
    }

    // Through RabbitMQ: the handler server's call is the gateway's child.
    let handler = start_broker(on_broker("trace-handler").host(scope("pipe-trace"))).await;
    let spans = Arc::new(Mutex::new(Vec::new()));
    let seen = spans.clone();
    let gateway = start(on_broker("trace-gateway").host_none().layer(from_fn(
        move |call: Call, next: CallService| {
            seen.lock().expect("lock").push(call.span_id);
            next.oneshot(call)
        },
    )))
    .await;
    let through = Http::new(gateway.http_addr().expect("http"));
    let body: Value = through
        .client()
        .post(format!("{}/", through.url()))
        .header("traceparent", &traceparent)
        .json(&envelope("pipe-trace", "traced", json!({})))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let gateway_span = spans
        .lock()
        .expect("lock")
        .pop()
        .expect("the gateway's span")
        .expect("the pipeline gave the call a span");
    check(&body["data"], Some(&gateway_span));
    gateway.shutdown().await.expect("gateway stops");
    handler.shutdown().await.expect("handler stops");
    server.shutdown().await.expect("server stops");
}

#[tokio::test]
async fn addresses_read_from_requests_borrow_the_linked_procedures_strings() {
    use std::borrow::Cow;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let server = start(Server::builder().host(scope("pipe-trace")).layer(from_fn(
        move |call: Call, next: CallService| {
            let address = &call.address;
            let borrowed = [&address.scope, &address.procedure, &address.version]
                .iter()
                .all(|part| matches!(part, Cow::Borrowed(_)));
            record
                .lock()
                .expect("lock")
                .push((address.to_string(), borrowed));
            next.oneshot(call)
        },
    )))
    .await;
    let http = Http::new(server.http_addr().expect("http"));
    // The envelope read straight from the bytes, one whose procedure has an
    // escape (read the general way), and JSON-RPC.
    let (status, _) = http.call(envelope("pipe-trace", "traced", json!({}))).await;
    assert_eq!(status, 200);
    let (status, _) = http
        .post(
            "/",
            br#"{"procedure":"\u0074raced","scope":"pipe-trace","version":1}"#.to_vec(),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = http
        .call(json!({"jsonrpc": "2.0", "method": "pipe-trace/traced", "params": {}, "id": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    // Each call, and the one it makes with an address of literals.
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 6, "{seen:?}");
    for (address, borrowed) in &seen {
        assert!(borrowed, "{address} owns its strings");
    }
    server.shutdown().await.expect("server stops");
}

/// The value of a sample in a Prometheus exposition, if present.
use rpc_tests::metric as sample;

#[tokio::test]
async fn metrics_count_pushes_closes_and_the_broker() {
    let server = start(
        on_broker("metrics")
            .host(scope("pipe-state"))
            .state(Db::default())
            .state(Greeting("hi"))
            .authenticator(|token: String| async move { Ok(token) }),
    )
    .await;
    let addr = server.http_addr().expect("http");
    let http = Http::new(addr);
    let metrics = || http.get_text("/metrics");
    let mut socket = raw::connect(addr).await;
    raw::send(
        &mut socket,
        json!({"identity": {"authorization": "Bearer ada"}}),
    )
    .await;
    assert_eq!(raw::recv(&mut socket).await["code"], 200);
    let handle = server.handle();
    assert_eq!(handle.send_to_user("ada", json!({"hello": 1})), 1);
    // On a broker, a push to a connection this server does not hold goes
    // to the other gateways: handed over, not dropped.
    assert!(handle.send_to_connection("no-such-connection", json!(1)));
    assert!(raw::recv(&mut socket).await.get("serverMessage").is_some());
    let text = metrics().await;
    assert_eq!(
        sample(&text, "rpc_websocket_connections"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "rpc_websocket_pushes_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "rpc_websocket_pushes_dropped_total"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(sample(&text, "rpc_broker_connected"), Some(1.0), "{text}");
    // Without a broker, the same push has nowhere to go: dropped.
    let alone = start(Server::builder().host(scope("pipe-none"))).await;
    assert!(
        !alone
            .handle()
            .send_to_connection("no-such-connection", json!(1))
    );
    let alone_text = Http::new(alone.http_addr().expect("http"))
        .get_text("/metrics")
        .await;
    assert_eq!(
        sample(&alone_text, "rpc_websocket_pushes_dropped_total"),
        Some(1.0),
        "{alone_text}"
    );
    assert_eq!(
        sample(&text, "rpc_broker_forwarded_in_flight"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "rpc_broker_reconnects_total"),
        Some(0.0),
        "{text}"
    );
    // Another server's announcements are heard and counted.
    let other = start_broker(
        on_broker("metrics-other")
            .announce_interval(Duration::from_millis(200))
            .host(scope("pipe-errors")),
    )
    .await;
    let mut heard = 0.0;
    for _ in 0..50 {
        heard = sample(&metrics().await, "rpc_broker_announcements_total").unwrap_or(0.0);
        if heard > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(heard > 0.0);
    assert_eq!(handle.close_all(), 1);
    let _ = raw::closed(&mut socket).await;
    let mut closes = None;
    for _ in 0..50 {
        closes = sample(
            &metrics().await,
            r#"rpc_websocket_closes_total{code="1001"}"#,
        );
        if closes.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(closes, Some(1.0));
    other.shutdown().await.expect("stops");
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn credentials_never_reach_the_logs() {
    logs();
    let server = start(
        Server::builder()
            .host(scope("pipe-mw"))
            .authenticator(|_token: String| async move { Ok("someone".to_owned()) })
            .on_event(|event| tracing::info!(call = ?event.call, "event")),
    )
    .await;
    let http = Http::new(server.http_addr().expect("http"));
    let response = http
        .client()
        .post(format!("{}/", http.url()))
        .header("authorization", "Bearer header-credential-77")
        .header("cookie", "session=cookie-credential-77")
        .json(&json!({"scope": "pipe-mw", "procedure": "mine",
                      "identity": {"authorization": "Bearer envelope-credential-77"}}))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
    eventually("the event's log line", || {
        logged().contains("pipe-mw") && logged().contains("<redacted>")
    })
    .await;
    let text = logged();
    assert!(!text.contains("credential-77"), "{text}");
    // The call's log line carries what an operator filters on.
    let line = text
        .lines()
        .find(|line| line.contains("call answered") && line.contains("pipe-mw"))
        .expect("a log line for the call");
    for field in [
        "rpc.scope=pipe-mw",
        "rpc.procedure=mine",
        "rpc.version=1",
        "rpc.transport=http",
        "rpc.user_id=\"someone\"",
        "rpc.code=200",
        "rpc.duration_us=",
        "rpc.trace_id=",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    server.shutdown().await.expect("stops");
}
