//! Gateways and handler servers through the real RabbitMQ on
//! 127.0.0.1:5672: load spread with each call run once, 404 for what nobody
//! serves (also while other servers come and go), deadlines, edge checks,
//! calls between handler servers, identity, a broker connection closed
//! under load, a handler server killed mid-call, graceful shutdown of
//! handler servers and of gateways, a busy handler server leaving the
//! backlog in the broker, and malformed messages on the broker itself.
//! Each test uses scopes of its own, so that tests running at once do not
//! share queues.

use rpc_runtime::{Address, BrokerState, EventKind, Server, ServerBuilder};
use rpc_tests::{Http, close_broker_connections, eventually, rabbitmq_uri};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod procs {
    use rpc_runtime::{Context, JsonSchema, RpcError, rpc};
    use serde::{Deserialize, Serialize};
    use serde_json::{Value, json};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// How many times `spread/work` ran, over every server in this process.
    pub static WORK_RUNS: AtomicU64 = AtomicU64::new(0);

    #[derive(Deserialize, Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Job {
        pub id: u64,
    }

    /// Takes a little time and names the server that ran it.
    #[rpc(procedure = "work", scope = "spread")]
    pub async fn work(args: Job, ctx: Context) -> Value {
        WORK_RUNS.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        json!({ "id": args.id, "server": ctx.server().map(|s| s.name().to_owned()) })
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct Sleep {
        pub ms: u64,
    }

    /// Sleeps; its deadline is 300 ms.
    #[rpc(procedure = "sleepy", scope = "deadline", timeout = "300ms")]
    pub async fn sleepy(args: Sleep) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(args.ms)).await;
        args.ms
    }

    /// Only other procedures may call it.
    #[rpc(procedure = "hidden", scope = "edge", internal)]
    pub async fn hidden() -> &'static str {
        "hidden"
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Strict {
        #[schemars(range(min = 1, max = 10))]
        pub n: u8,
        #[schemars(email)]
        pub email: String,
    }

    /// Has args worth validating.
    #[rpc(procedure = "strict", scope = "edge")]
    pub async fn strict(args: Strict) -> u8 {
        args.n
    }

    /// Runs on one handler server and calls `inner` on another.
    #[rpc(procedure = "outer", scope = "chain-a")]
    pub async fn outer(ctx: Context) -> Result<Value, RpcError> {
        let inner = ctx.call::<inner>(rpc_runtime::NoArgs).await?;
        Ok(json!({ "outer": ctx.server().map(|s| s.name().to_owned()), "inner": inner }))
    }

    /// Internal, and hosted elsewhere than `outer`.
    #[rpc(procedure = "inner", scope = "chain-b", internal)]
    pub async fn inner(ctx: Context) -> Value {
        json!({
            "server": ctx.server().map(|s| s.name().to_owned()),
            "identity": ctx.identity(),
            "caller": ctx.caller(),
            "traceId": ctx.trace_id(),
        })
    }

    /// What a handler server sees of a forwarded call.
    #[rpc(procedure = "whoami", scope = "ident")]
    pub async fn whoami(ctx: Context) -> Value {
        json!({
            "identity": ctx.identity(),
            "caller": ctx.caller(),
            "traceId": ctx.trace_id(),
            "server": ctx.server().map(|s| s.name().to_owned()),
        })
    }

    /// Answers at once.
    #[rpc(procedure = "quick", scope = "load")]
    pub async fn quick(args: Job) -> u64 {
        args.id
    }

    /// Echoes its id; for the hostile messages test.
    #[rpc(procedure = "echo", scope = "hostile")]
    pub async fn echo(args: Job) -> u64 {
        args.id
    }

    /// A deadline longer than any message expiration RabbitMQ accepts.
    #[rpc(
        procedure = "patient",
        scope = "long",
        timeout = "18446744073709551615ms"
    )]
    pub async fn patient() -> &'static str {
        "done"
    }

    /// How many `busy/crawl` calls run now, and the most that ran at once.
    pub static CRAWLING: AtomicU64 = AtomicU64::new(0);
    pub static MOST_CRAWLING: AtomicU64 = AtomicU64::new(0);

    /// Sleeps, counting the calls that run at once.
    #[rpc(procedure = "crawl", scope = "busy")]
    pub async fn crawl(args: Sleep) -> u64 {
        let now = CRAWLING.fetch_add(1, Ordering::SeqCst) + 1;
        MOST_CRAWLING.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(args.ms)).await;
        CRAWLING.fetch_sub(1, Ordering::SeqCst);
        args.ms
    }

    /// Sleeps, for shutdown tests.
    #[rpc(procedure = "linger", scope = "drain")]
    pub async fn linger(args: Sleep) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(args.ms)).await;
        args.ms
    }

    /// Sleeps, for the test of a gateway that shuts down.
    #[rpc(procedure = "linger", scope = "leaving")]
    pub async fn linger_on(args: Sleep) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(args.ms)).await;
        args.ms
    }
}

fn base(name: &str) -> ServerBuilder {
    Server::builder()
        .name(name)
        .broker(rabbitmq_uri())
        .announce_interval(Duration::from_millis(500))
}

/// Builds and starts a server, or fails the test saying which.
async fn start(builder: ServerBuilder, what: &str) -> rpc_runtime::RunningServer {
    builder
        .build()
        .expect("build")
        .start()
        .await
        .unwrap_or_else(|error| panic!("{what} does not start: {error}"))
}

/// A gateway that hosts nothing and forwards everything.
async fn gateway(name: &str) -> (rpc_runtime::RunningServer, Http) {
    let server = start(base(name).http("127.0.0.1:0").host_none(), "the gateway").await;
    let http = Http::new(server.http_addr().expect("http"));
    (server, http)
}

/// A handler server (no HTTP) hosting the given scopes.
async fn handler(name: &str, scopes: &'static [&'static str]) -> rpc_runtime::RunningServer {
    start(
        base(name).host(move |address| scopes.contains(&&*address.scope)),
        "the handler server",
    )
    .await
}

async fn knows(gateway: &rpc_runtime::RunningServer, address: Address) {
    eventually(&format!("the gateway to learn of {address}"), || {
        gateway.procedures().iter().any(|p| p.address == address)
    })
    .await;
}

/// Makes the calls at once; each task ends with its status and body.
fn side_by_side(
    http: &Arc<Http>,
    envelopes: impl IntoIterator<Item = Value>,
) -> Vec<tokio::task::JoinHandle<(u16, Value)>> {
    envelopes
        .into_iter()
        .map(|envelope| {
            let http = http.clone();
            tokio::spawn(async move { http.call(envelope).await })
        })
        .collect()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", std::process::id())
}

#[tokio::test]
async fn calls_spread_over_handler_servers_and_run_once() {
    let (gateway, http) = gateway(&unique("gw-spread")).await;
    let one = handler("spread-1", &["spread"]).await;
    let two = handler("spread-2", &["spread"]).await;
    let http = Arc::new(http);
    let before = procs::WORK_RUNS.load(std::sync::atomic::Ordering::SeqCst);
    let calls = side_by_side(
        &http,
        (0..200u64).map(|id| json!({"procedure": "work", "scope": "spread", "args": {"id": id}})),
    );
    let mut by_server: HashMap<String, u64> = HashMap::new();
    let mut ids = Vec::new();
    for call in calls {
        let (status, body) = call.await.expect("joined");
        assert_eq!(status, 200, "{body}");
        *by_server
            .entry(
                body["data"]["server"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
            .or_default() += 1;
        ids.push(body["data"]["id"].as_u64().unwrap_or(u64::MAX));
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..200).collect::<Vec<_>>());
    let runs = procs::WORK_RUNS.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert_eq!(runs, 200, "each call ran exactly once");
    let (a, b) = (
        by_server.get("spread-1").copied().unwrap_or(0),
        by_server.get("spread-2").copied().unwrap_or(0),
    );
    assert_eq!(a + b, 200, "{by_server:?}");
    assert!(a >= 40 && b >= 40, "the load is spread: {by_server:?}");
    for server in [one, two, gateway] {
        server.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn a_procedure_nobody_serves_is_404_at_once() {
    let (_gateway, http) = gateway(&unique("gw-404")).await;
    let started = Instant::now();
    let (status, body) = http
        .call(json!({"procedure": "none", "scope": "nobody-serves-this"}))
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered without waiting for the deadline"
    );
}

#[tokio::test]
async fn calls_nobody_serves_are_404_while_other_servers_come_and_go() {
    // Every server reads the shared queue of calls nobody serves, so the
    // 404 for a call may come from any of them: one that stops while the
    // broker hands it such calls must not drop them.
    let gateway = start(
        base(&unique("gw-churn"))
            .http("127.0.0.1:0")
            .host_none()
            .timeout(Duration::from_secs(3)),
        "the gateway",
    )
    .await;
    let http = Arc::new(Http::new(gateway.http_addr().expect("http")));
    let churning = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let (http, churning) = (http.clone(), churning.clone());
            tokio::spawn(async move {
                let mut statuses = HashMap::<u16, u64>::new();
                while churning.load(std::sync::atomic::Ordering::SeqCst) {
                    let envelope = json!({"procedure": "none", "scope": "churn-unserved"});
                    *statuses.entry(http.call(envelope).await.0).or_default() += 1;
                }
                statuses
            })
        })
        .collect();
    for round in 0..12 {
        let passing = start(
            base(&unique(&format!("churn-{round}"))).host_none(),
            "a passing server",
        )
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        passing.shutdown().await.expect("shutdown");
    }
    churning.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut statuses = HashMap::<u16, u64>::new();
    for caller in callers {
        for (status, count) in caller.await.expect("joined") {
            *statuses.entry(status).or_default() += count;
        }
    }
    assert!(
        statuses.len() == 1 && statuses.get(&404).is_some_and(|&n| n > 100),
        "every call is 404: {statuses:?}"
    );
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_deadline_passing_is_504() {
    let (gateway, http) = gateway(&unique("gw-deadline")).await;
    let _handler = handler("deadline-1", &["deadline"]).await;
    knows(&gateway, Address::new("deadline", "sleepy", "1")).await;
    let started = Instant::now();
    let (status, body) = http
        .call(json!({"procedure": "sleepy", "scope": "deadline", "args": {"ms": 3000}}))
        .await;
    assert_eq!(status, 504, "{body}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(2500),
        "{waited:?}"
    );
    let (status, body) = http
        .call(json!({"procedure": "sleepy", "scope": "deadline", "args": {"ms": 5}}))
        .await;
    assert_eq!((status, body["data"].clone()), (200, json!(5)));
}

#[tokio::test]
async fn the_gateway_rejects_internal_and_invalid_calls_itself() {
    let (gateway, http) = gateway(&unique("gw-edge")).await;
    let hops: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = hops.clone();
    let builder = base("edge-1")
        .host(|a| a.scope == "edge")
        .on_event(move |event| {
            seen.lock()
                .expect("lock")
                .push(event.call.address.to_string())
        });
    let _handler = start(builder, "the handler server").await;
    knows(&gateway, Address::new("edge", "strict", "1")).await;
    let (status, body) = http
        .call(json!({"procedure": "hidden", "scope": "edge"}))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = http
        .call(json!({"procedure": "strict", "scope": "edge", "args": {"n": 99, "email": "nope", "x": 1}}))
        .await;
    assert_eq!(status, 422, "{body}");
    let paths: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert!(
        paths.contains(&"/n") && paths.contains(&"/email") && paths.contains(&""),
        "{paths:?}"
    );
    assert!(
        hops.lock().expect("lock").is_empty(),
        "no call reached the handler server"
    );
    let (status, body) = http
        .call(json!({"procedure": "strict", "scope": "edge", "args": {"n": 3, "email": "a@b.c"}}))
        .await;
    assert_eq!((status, body["data"].clone()), (200, json!(3)));
    assert_eq!(
        hops.lock().expect("lock").clone(),
        vec!["edge/strict@1".to_owned()]
    );
}

#[tokio::test]
async fn a_handler_calls_a_procedure_on_another_handler_server_with_identity_intact() {
    let (gateway, http) = gateway(&unique("gw-chain")).await;
    let _a = handler("chain-a-1", &["chain-a"]).await;
    let _b = handler("chain-b-1", &["chain-b"]).await;
    knows(&gateway, Address::new("chain-a", "outer", "1")).await;
    // The handler server that hosts `outer` must know where `inner` is, too;
    // unknown procedures are still routed, so no wait is needed.
    let identity =
        json!({"authorization": "Bearer abc", "deviceName": "ios", "metadata": {"tz": "UTC"}});
    let (status, body) = http
        .call(json!({"procedure": "outer", "scope": "chain-a", "identity": identity, "correlationId": "c"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["outer"], json!("chain-a-1"));
    assert_eq!(data["inner"]["server"], json!("chain-b-1"));
    assert_eq!(data["inner"]["identity"], identity);
    assert_eq!(data["inner"]["caller"]["kind"], json!("procedure"));
    assert_eq!(data["inner"]["caller"]["server"], json!("chain-a-1"));
    assert_eq!(
        data["inner"]["caller"]["address"]["procedure"],
        json!("outer")
    );
    // Directly from outside, the internal procedure is refused.
    let (status, _) = http
        .call(json!({"procedure": "inner", "scope": "chain-b"}))
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn identity_caller_and_trace_id_travel_with_the_call() {
    let (_gateway, http) = gateway(&unique("gw-ident")).await;
    let _handler = handler("ident-1", &["ident"]).await;
    let identity =
        json!({"authorization": "Bearer t", "deviceName": "android", "metadata": {"a": [1, 2]}});
    let (status, body) = http
        .client()
        .post(http.url())
        .header("x-real-ip", "198.51.100.7")
        .json(&json!({"procedure": "whoami", "scope": "ident", "identity": identity}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .expect("answer");
    let body: Value = body.json().await.expect("json");
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["identity"], identity);
    assert_eq!(data["server"], json!("ident-1"));
    assert_eq!(data["caller"]["kind"], json!("client"));
    assert_eq!(data["caller"]["transport"], json!("http"));
    assert_eq!(data["caller"]["ip"], json!("198.51.100.7"));
    assert!(
        data["caller"]["server"]
            .as_str()
            .unwrap_or_default()
            .starts_with("gw-ident")
    );
    assert_eq!(data["traceId"].as_str().map(str::len), Some(32));
}

#[tokio::test]
async fn losing_the_broker_connection_fails_calls_with_503_then_recovers() {
    let name = unique("gw-lossy");
    let (gateway, http) = gateway(&name).await;
    let _handler = handler("load-1", &["load"]).await;
    let http = Arc::new(http);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..16u64)
        .map(|worker| {
            let (http, stop) = (http.clone(), stop.clone());
            tokio::spawn(async move {
                let mut codes: HashMap<u16, u64> = HashMap::new();
                let mut id = worker * 1_000_000;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    id += 1;
                    let call = http
                        .call(json!({"procedure": "quick", "scope": "load", "args": {"id": id}}));
                    // No call may hang: each answers well within the 30 s deadline.
                    let (status, _) = tokio::time::timeout(Duration::from_secs(10), call)
                        .await
                        .expect("answered");
                    *codes.entry(status).or_default() += 1;
                }
                codes
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let closed = tokio::task::spawn_blocking(move || close_broker_connections(&name))
        .await
        .expect("joined");
    assert!(closed >= 1, "the gateway's connection was found and closed");
    // Recovery: the gateway reconnects and serves again without a restart.
    let recovered = async {
        loop {
            if gateway.broker_state() == Some(BrokerState::Connected) {
                let (status, _) = http
                    .call(json!({"procedure": "quick", "scope": "load", "args": {"id": 1}}))
                    .await;
                if status == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), recovered)
        .await
        .expect("recovered within 15 s");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut codes: HashMap<u16, u64> = HashMap::new();
    for worker in workers {
        for (code, n) in worker.await.expect("joined") {
            *codes.entry(code).or_default() += n;
        }
    }
    assert!(
        codes.get(&503).copied().unwrap_or(0) > 0,
        "calls failed with 503 during the loss: {codes:?}"
    );
    assert!(codes.get(&200).copied().unwrap_or(0) > 0, "{codes:?}");
    let others: u64 = codes
        .iter()
        .filter(|(c, _)| ![200u16, 503].contains(c))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(others, 0, "only 200 and 503: {codes:?}");
}

#[tokio::test]
async fn a_busy_handler_server_holds_its_prefetch_and_the_broker_keeps_the_rest() {
    use std::sync::atomic::Ordering::SeqCst;
    const PREFETCH: u16 = 4;
    const CALLS: u64 = 48;
    let (gateway, http) = gateway(&unique("gw-busy")).await;
    let builder = base("busy-1")
        .host(|a| a.scope == "busy")
        .broker_prefetch(PREFETCH);
    let handler = start(builder, "the handler server").await;
    knows(&gateway, Address::new("busy", "crawl", "1")).await;
    let http = Arc::new(http);
    let calls = side_by_side(
        &http,
        (0..CALLS).map(|_| json!({"procedure": "crawl", "scope": "busy", "args": {"ms": 200}})),
    );
    // While the server works through the calls, the rest wait in the
    // broker's queue, not in the server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let raw = Raw::connect().await;
    let waiting = raw.waiting("rpc|busy|crawl|1").await;
    assert!(waiting > 0, "the broker holds the backlog");
    for call in calls {
        let (status, body) = call.await.expect("joined");
        assert_eq!((status, &body["data"]), (200, &json!(200)), "{body}");
    }
    let most = procs::MOST_CRAWLING.load(SeqCst);
    println!("{waiting} calls waited in the broker; at most {most} ran at once");
    assert!(most <= u64::from(PREFETCH), "{most} calls ran at once");
    assert!(most >= 2, "calls that wait run side by side: {most}");
    handler.shutdown().await.expect("shutdown");
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_stopped_handler_server_never_runs_calls_whose_deadline_passed() {
    use tokio::io::AsyncBufReadExt;
    let (gateway, http) = gateway(&unique("gw-stopped")).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rpc-test-handler"))
        .arg(rabbitmq_uri())
        .arg("mark")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the handler server process starts");
    let pid = child.id().expect("pid").to_string();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("a line within 10 s")
            .expect("read")
    };
    assert_eq!(next_line().await.as_deref(), Some("ready"));
    knows(&gateway, Address::new("killed", "mark", "1")).await;
    let mark = |n: u64| {
        let http = http.clone();
        async move {
            http.call(json!({"procedure": "mark", "scope": "killed", "args": {"n": n}}))
                .await
        }
    };
    assert_eq!(mark(0).await.0, 200);
    assert_eq!(next_line().await.as_deref(), Some("ran 0"));

    // Stopped, the server holds the calls RabbitMQ delivers to it; their
    // callers get 504 at the deadline (800 ms).
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {name}");
    };
    signal("-STOP");
    let held = futures_util::future::join_all((1..=5).map(mark)).await;
    for (status, body) in held {
        assert_eq!(status, 504, "{body}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal("-CONT");

    // Resumed, it reads the held calls first and runs none of them; the
    // next call runs.
    let (status, body) = mark(99).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(next_line().await.as_deref(), Some("ran 99"));
    let more = tokio::time::timeout(Duration::from_millis(500), lines.next_line()).await;
    assert!(more.is_err(), "nothing else ran: {more:?}");
    child.kill().await.expect("killed");
}

#[tokio::test]
async fn a_handler_server_killed_mid_call_leaves_504_by_the_deadline() {
    use tokio::io::AsyncBufReadExt;
    let (gateway, http) = gateway(&unique("gw-killed")).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rpc-test-handler"))
        .arg(rabbitmq_uri())
        .arg("hang")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the handler server process starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(
        lines.next_line().await.expect("read").as_deref(),
        Some("ready")
    );
    knows(&gateway, Address::new("killed", "hang", "1")).await;
    let started = Instant::now();
    let caller = http.clone();
    let call = tokio::spawn(async move {
        caller
            .call(json!({"procedure": "hang", "scope": "killed", "args": {"ms": 10000}}))
            .await
    });
    assert_eq!(
        lines.next_line().await.expect("read").as_deref(),
        Some("started")
    );
    child.kill().await.expect("killed");
    let (status, body) = call.await.expect("joined");
    assert_eq!(status, 504, "{body}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // Its queue went with its connection: while the gateway still knows the
    // procedure, calls are 503 at once (its servers are away); once the
    // server has been silent long enough to be forgotten, 404.
    let started = Instant::now();
    let (status, body) = http
        .call(json!({"procedure": "hang", "scope": "killed", "args": {"ms": 1}}))
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() < Duration::from_secs(1));
    eventually("the gateway to forget the killed server", || {
        !gateway
            .procedures()
            .iter()
            .any(|p| p.address.scope == "killed")
            && gateway.remote_servers().iter().all(|s| s.name != "doomed")
    })
    .await;
    let (status, body) = http
        .call(json!({"procedure": "hang", "scope": "killed", "args": {"ms": 1}}))
        .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn an_unreachable_broker_is_a_clear_error_or_retried() {
    let error = Server::builder()
        .broker("amqp://guest:guest@127.0.0.1:1/%2f")
        .build()
        .expect("build")
        .start()
        .await
        .err()
        .expect("start fails");
    let message = error.to_string();
    assert!(
        message.contains("cannot connect to amqp://guest:***@127.0.0.1:1"),
        "{message}"
    );
    assert!(
        message.contains("rabbitmq-server"),
        "it says how to start RabbitMQ: {message}"
    );

    let builder = Server::builder()
        .http("127.0.0.1:0")
        .host_none()
        .broker("amqp://guest:guest@127.0.0.1:1/%2f")
        .broker_retry_at_start(true);
    let patient = start(builder, "a server retrying at start").await;
    assert_eq!(patient.broker_state(), Some(BrokerState::Connecting));
    let http = Http::new(patient.http_addr().expect("http"));
    let (status, body) = http.call(json!({"procedure": "anything"})).await;
    assert_eq!(status, 503, "{body}");
}

#[tokio::test]
async fn a_handler_server_finishes_the_calls_it_holds_when_it_shuts_down() {
    let (gateway, http) = gateway(&unique("gw-drain")).await;
    let events: Arc<Mutex<Vec<EventKind>>> = Arc::default();
    let seen = events.clone();
    let builder = base("drain-1")
        .host(|a| a.scope == "drain")
        .on_event(move |e| seen.lock().expect("lock").push(e.kind));
    let handler = start(builder, "the handler server").await;
    knows(&gateway, Address::new("drain", "linger", "1")).await;
    let http = Arc::new(http);
    let started = std::time::Instant::now();
    let calls = side_by_side(
        &http,
        (0..5).map(|_| json!({"procedure": "linger", "scope": "drain", "args": {"ms": 400}})),
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    handler.shutdown().await.expect("clean shutdown");
    for call in calls {
        let (status, body) = call.await.expect("joined");
        assert_eq!((status, body["data"].clone()), (200, json!(400)));
    }
    // Calls that wait run side by side, not one after another (which
    // would take 2 s).
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(1600), "{elapsed:?}");
    assert_eq!(events.lock().expect("lock").len(), 5);
    // Gone now: the gateway answers 404 at once.
    let (status, _) = http
        .call(json!({"procedure": "linger", "scope": "drain", "args": {"ms": 1}}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_gateway_finishes_the_calls_it_forwarded_when_it_shuts_down() {
    let (gateway, http) = gateway(&unique("gw-leaving")).await;
    let handler = handler("leaving-1", &["leaving"]).await;
    knows(&gateway, Address::new("leaving", "linger", "1")).await;
    let http = Arc::new(http);
    let calls = side_by_side(
        &http,
        (0..5).map(|_| json!({"procedure": "linger", "scope": "leaving", "args": {"ms": 400}})),
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    gateway.shutdown().await.expect("clean shutdown");
    for call in calls {
        let (status, body) = call.await.expect("joined");
        assert_eq!((status, body["data"].clone()), (200, json!(400)), "{body}");
    }
    handler.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_gateway_documents_remote_procedures_and_reports_handler_servers() {
    let (gateway, http) = gateway(&unique("gw-docs")).await;
    let _handler = handler("docs-1", &["edge"]).await;
    knows(&gateway, Address::new("edge", "strict", "1")).await;
    let docs: Value = http.get_json("/docs.json").await;
    let strict = docs["procedures"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|p| p["scope"] == "edge" && p["procedure"] == "strict")
                .cloned()
        })
        .expect("the remote procedure is documented");
    assert_eq!(strict["description"], json!("Has args worth validating."));
    assert_eq!(
        strict["argsSchema"]["properties"]["n"]["maximum"],
        json!(10)
    );
    let listed = |name: &str| {
        docs["procedures"]
            .as_array()
            .is_some_and(|all| all.iter().any(|p| p["procedure"] == name))
    };
    assert!(
        !listed("hidden"),
        "remote internal procedures are hidden too"
    );

    // The first call gives the procedure its row; the second finds it.
    for _ in 0..2 {
        let (status, _) = http
            .call(
                json!({"procedure": "strict", "scope": "edge", "args": {"n": 2, "email": "a@b.c"}}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let telemetry: Value = http.get_json("/telemetry").await;
    assert_eq!(telemetry["broker"]["state"], json!("connected"));
    assert_eq!(telemetry["transports"]["broker"], json!(true));
    let servers = telemetry["broker"]["servers"].as_array().expect("servers");
    let docs_1 = servers
        .iter()
        .find(|s| s["name"] == "docs-1")
        .expect("the handler server is known");
    assert!(
        docs_1["lastSeen"]["secs_since_epoch"].as_u64().is_some(),
        "{docs_1}"
    );
    let forwarded = telemetry["procedures"]
        .as_array()
        .and_then(|rows| {
            rows.iter()
                .find(|r| r["scope"] == "edge" && r["procedure"] == "strict")
                .cloned()
        })
        .expect("forwarded calls are counted");
    assert_eq!(forwarded["calls"], json!(2));
}

#[tokio::test]
async fn a_deadline_longer_than_rabbitmq_accepts_still_forwards() {
    let (gateway, http) = gateway(&unique("gw-long")).await;
    let _handler = handler("long-1", &["long"]).await;
    knows(&gateway, Address::new("long", "patient", "1")).await;
    for _ in 0..2 {
        let (status, body) = http
            .call(json!({"procedure": "patient", "scope": "long"}))
            .await;
        assert_eq!((status, &body["data"]), (200, &json!("done")), "{body}");
    }
    assert_eq!(gateway.broker_state(), Some(BrokerState::Connected));
}

/// A client of the broker itself, publishing what it likes to `rpc.calls`
/// and reading the replies.
struct Raw {
    channel: lapin::Channel,
    replies: lapin::Consumer,
    _connection: lapin::Connection,
}

impl Raw {
    async fn connect() -> Self {
        let connection =
            lapin::Connection::connect(&rabbitmq_uri(), lapin::ConnectionProperties::default())
                .await
                .expect(
                    "RabbitMQ answers on 127.0.0.1:5672 (`rabbitmq-server -detached` starts it)",
                );
        let channel = connection.create_channel().await.expect("a channel");
        let replies = consume(&channel, "amq.rabbitmq.reply-to").await;
        Raw {
            channel,
            replies,
            _connection: connection,
        }
    }

    /// Consumes a queue of `rpc.calls` of its own, as a handler server would.
    async fn serve(&self, queue: &str) -> lapin::Consumer {
        use lapin::options::{QueueBindOptions, QueueDeclareOptions};
        let arguments = lapin::types::FieldTable::default;
        let declare = QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        };
        self.channel
            .queue_declare(queue.into(), declare, arguments())
            .await
            .expect("declare");
        self.channel
            .queue_bind(
                queue.into(),
                "rpc.calls".into(),
                queue.into(),
                QueueBindOptions::default(),
                arguments(),
            )
            .await
            .expect("bind");
        consume(&self.channel, queue).await
    }

    /// How many messages wait in a queue.
    async fn waiting(&self, queue: &str) -> u32 {
        let passive = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        self.channel
            .queue_declare(queue.into(), passive, lapin::types::FieldTable::default())
            .await
            .expect("the queue exists")
            .message_count()
    }

    async fn publish(&self, key: &str, body: &[u8], correlation_id: Option<&str>) {
        let mut properties = lapin::BasicProperties::default();
        if let Some(id) = correlation_id {
            properties = properties
                .with_correlation_id(id.into())
                .with_reply_to("amq.rabbitmq.reply-to".into());
        }
        self.channel
            .basic_publish(
                "rpc.calls".into(),
                key.into(),
                lapin::options::BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .expect("published");
    }

    /// The next reply: its correlation id and body.
    async fn reply(&mut self) -> (String, Value) {
        use futures_util::StreamExt;
        let delivery = tokio::time::timeout(Duration::from_secs(5), self.replies.next())
            .await
            .expect("a reply within 5 s")
            .expect("the reply stream is open")
            .expect("a delivery");
        let id = delivery
            .properties
            .correlation_id()
            .as_ref()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let body = serde_json::from_slice(&delivery.data).expect("a JSON reply");
        (id, body)
    }
}

async fn consume(channel: &lapin::Channel, queue: &str) -> lapin::Consumer {
    let options = lapin::options::BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    let arguments = lapin::types::FieldTable::default();
    channel
        .basic_consume(queue.into(), "".into(), options, arguments)
        .await
        .expect("consume")
}

#[tokio::test]
async fn malformed_messages_on_the_broker_are_answered_and_break_nothing() {
    let (gateway, http) = gateway(&unique("gw-hostile")).await;
    let handler = handler("hostile-1", &["hostile"]).await;
    knows(&gateway, Address::new("hostile", "echo", "1")).await;
    let mut raw = Raw::connect().await;
    let queue = "rpc|hostile|echo|1";

    let deep = "[".repeat(100_000);
    let call = |args: Value, timeout_ms: u64| {
        json!({
            "address": {"scope": "hostile", "procedure": "echo", "version": "1"},
            "args": args,
            "internal": false,
            "caller": {"kind": "detached"},
            "traceId": "t",
            "timeoutMs": timeout_ms,
        })
        .to_string()
    };
    // No reply-to: nothing to answer, and nothing breaks.
    raw.publish(queue, b"not json", None).await;
    let cases: Vec<(&str, String, u64)> = vec![
        ("text", "not json".into(), 400),
        ("deep", deep, 400),
        ("shape", r#"{"address": 1}"#.into(), 400),
        ("args", call(json!({"id": "x"}), 5_000), 422),
        ("huge-deadline", call(json!({"id": 7}), u64::MAX), 200),
        ("ok", call(json!({"id": 8}), 5_000), 200),
    ];
    for (id, body, _) in &cases {
        raw.publish(queue, body.as_bytes(), Some(id)).await;
    }
    // Nobody serves this key: the unroutable reader answers, whatever the body.
    raw.publish("rpc|nobody|none|1", b"\xff\xfe", Some("unroutable"))
        .await;
    let mut codes = HashMap::new();
    for _ in 0..cases.len() + 1 {
        let (id, body) = raw.reply().await;
        codes.insert(id, (body["code"].as_u64().unwrap_or(0), body));
    }
    for (id, _, code) in &cases {
        let (got, body) = &codes[*id];
        assert_eq!(got, code, "{id}: {body}");
    }
    assert_eq!(codes["unroutable"].0, 404, "{:?}", codes["unroutable"]);
    assert_eq!(codes["ok"].1["data"], json!(8));
    assert!(
        codes["text"].1["message"]
            .as_str()
            .is_some_and(|m| m.contains("malformed call message")),
        "{:?}",
        codes["text"]
    );

    // The handler server and the gateway serve on.
    let (status, body) = http
        .call(json!({"procedure": "echo", "scope": "hostile", "args": {"id": 9}}))
        .await;
    assert_eq!((status, &body["data"]), (200, &json!(9)), "{body}");
    assert_eq!(handler.broker_state(), Some(BrokerState::Connected));
}

#[tokio::test]
async fn a_malformed_reply_is_502_and_stray_replies_are_ignored() {
    use futures_util::StreamExt;
    let (_gateway, http) = gateway(&unique("gw-badreply")).await;
    // A handler server of no framework: it answers every call with a stray
    // reply, then a malformed one, then a second, well-formed one.
    let raw = Raw::connect().await;
    let mut calls = raw.serve("rpc|fake|bad|1").await;
    let channel = raw.channel.clone();
    tokio::spawn(async move {
        while let Some(Ok(call)) = calls.next().await {
            let (Some(to), Some(id)) =
                (call.properties.reply_to(), call.properties.correlation_id())
            else {
                continue;
            };
            for (id, body) in [
                ("no-such-call", &br#"{"code":200,"data":1}"#[..]),
                (id.as_str(), b"{{{"),
                (id.as_str(), br#"{"code":200,"data":2}"#),
            ] {
                let properties = lapin::BasicProperties::default().with_correlation_id(id.into());
                let _ = channel
                    .basic_publish(
                        "".into(),
                        to.as_str().into(),
                        lapin::options::BasicPublishOptions::default(),
                        body,
                        properties,
                    )
                    .await;
            }
        }
    });
    for _ in 0..3 {
        let (status, body) = http
            .call(json!({"procedure": "bad", "scope": "fake"}))
            .await;
        assert_eq!(status, 502, "{body}");
    }
}
