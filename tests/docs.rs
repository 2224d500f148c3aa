//! Generated docs, specs and telemetry of a real server: the quickstart's
//! `docs.json` against its golden file, the OpenRPC document against the
//! OpenRPC meta-schema, the `/docs` page rendered by a real headless
//! Chromium (including a call made through its try-it form), telemetry and
//! Prometheus metrics, and the mount options.
//!
//! This binary links the quickstart example's procedures and nothing else.

#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use rpc_runtime::{Mount, RpcError, Server, ServerBuilder};
use rpc_tests::{Http, start};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn quickstart_server() -> ServerBuilder {
    Server::builder().name("quickstart")
}

async fn get(http: &Http, path: &str) -> (u16, String) {
    let response = http
        .client()
        .get(format!("{}{path}", http.url()))
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn golden_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/quickstart-docs.json")
}

#[tokio::test]
async fn the_quickstart_docs_match_the_golden_file() {
    let server = start(quickstart_server()).await;
    let http = Http::new(server.http_addr().expect("http"));
    let (status, body) = get(&http, "/docs.json").await;
    assert_eq!(status, 200);
    let actual: Value = serde_json::from_str(&body).expect("json");
    let path = golden_path();
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&actual).expect("json") + "\n",
        )
        .expect("write golden");
    }
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect(
        "tests/golden/quickstart-docs.json exists; create or update it with UPDATE_GOLDEN=1 cargo test -p rpc-tests --test docs",
    ))
    .expect("golden json");
    assert!(
        actual == golden,
        "docs.json changed; review the difference and update the golden file with \
         UPDATE_GOLDEN=1 cargo test -p rpc-tests --test docs\nactual:\n{}",
        serde_json::to_string_pretty(&actual).unwrap_or_default()
    );
}

#[tokio::test]
async fn docs_json_lists_procedures_with_schemas_and_examples() {
    let server = start(quickstart_server()).await;
    let http = Http::new(server.http_addr().expect("http"));
    let (_, body) = get(&http, "/docs.json").await;
    let doc: Value = serde_json::from_str(&body).expect("json");
    let procedures = doc["procedures"].as_array().expect("procedures");
    let login = procedures
        .iter()
        .find(|p| p["procedure"] == "login")
        .expect("login");
    assert_eq!(
        login["description"],
        json!("Signs a user in and returns the session. Try `test@test.com` / `secret`.")
    );
    assert_eq!(
        login["argsSchema"]["properties"]["email"]["format"],
        json!("email")
    );
    assert_eq!(
        login["argsSchema"]["required"],
        json!(["email", "password"])
    );
    // The example is a valid call.
    let (status, _) = http
        .call(json!({"procedure": "add", "scope": "math", "args": procedures.iter().find(|p| p["procedure"] == "add").expect("add")["exampleArgs"]}))
        .await;
    assert_eq!(status, 200);
    // Internal procedures are hidden by default...
    assert!(procedures.iter().all(|p| p["procedure"] != "all-locations"));
    // ...and shown, marked internal, when the server opts in.
    let open = start(quickstart_server().docs_show_internal(true)).await;
    let (_, body) = get(&Http::new(open.http_addr().expect("http")), "/docs.json").await;
    let doc: Value = serde_json::from_str(&body).expect("json");
    let internal = doc["procedures"]
        .as_array()
        .expect("procedures")
        .iter()
        .find(|p| p["procedure"] == "all-locations")
        .cloned();
    assert_eq!(internal.map(|p| p["internal"].clone()), Some(json!(true)));
}

/// The OpenRPC meta-schema and the JSON Schema meta-schema it refers to,
/// from their npm packages (`.ci/test` fetches them into `target/openrpc`).
fn meta_schemas() -> (Value, Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/openrpc");
    let read = |name: &str| -> Value {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "{} is missing: run .ci/test, which fetches the OpenRPC meta-schema with npm \
                 (npm pack @open-rpc/meta-schema@1.14.9 @json-schema-tools/meta-schema@1.8.0)",
                path.display()
            )
        });
        serde_json::from_str(&text).expect("meta-schema json")
    };
    (
        read("openrpc-meta-schema.json"),
        read("json-schema-tools-meta-schema.json"),
    )
}

/// Serves the JSON Schema meta-schema the OpenRPC one refers to; nothing
/// is fetched from the network.
struct LocalMetaSchema(Value);

impl jsonschema::Retrieve for LocalMetaSchema {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        if uri.as_str().trim_end_matches('/') == "https://meta.json-schema.tools" {
            Ok(self.0.clone())
        } else {
            Err(format!("{uri} is not available offline").into())
        }
    }
}

#[tokio::test]
async fn the_openrpc_document_is_valid_and_rpc_discover_serves_it() {
    let server = start(quickstart_server()).await;
    let http = Http::new(server.http_addr().expect("http"));
    let (status, body) = get(&http, "/openrpc.json").await;
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&body).expect("json");

    let (mut openrpc, mut json_schema) = meta_schemas();
    // Both declare a meta-schema of their own by URL; validate as draft-07,
    // with the referenced JSON Schema meta-schema served locally.
    for schema in [&mut openrpc, &mut json_schema] {
        if let Some(object) = schema.as_object_mut() {
            object.remove("$schema");
        }
    }
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .with_retriever(LocalMetaSchema(json_schema))
        .build(&openrpc)
        .expect("the meta-schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // A broken document is caught, so the check can fail.
    let mut broken = document.clone();
    broken["methods"][0]["params"] = json!("not a list");
    assert!(!validator.is_valid(&broken));

    let names: Vec<&str> = document["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(
        names.contains(&"math/add@1") && names.contains(&"auth/login@1"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"geo/all-locations@1"),
        "internal procedures are hidden"
    );

    let (status, discovered) = http.call(json!({"procedure": "rpc.discover"})).await;
    assert_eq!(status, 200);
    assert_eq!(discovered["data"], document);
}

#[tokio::test]
async fn telemetry_counts_calls_errors_and_latency() {
    let server = start(quickstart_server()).await;
    let http = Http::new(server.http_addr().expect("http"));
    for _ in 0..3 {
        http.call(json!({"procedure": "add", "scope": "math", "args": {"a": 1, "b": 2}}))
            .await;
    }
    http.call(json!({"procedure": "add", "scope": "math", "args": {"a": "x"}}))
        .await;
    http.call(json!({"procedure": "login", "scope": "auth", "args": {"email": "a@b.c", "password": "wrong"}})).await;
    http.call(json!({"procedure": "nowhere"})).await;
    // Runs the internal `geo/all-locations` too.
    http.call(json!({"procedure": "list-locations", "scope": "geo"}))
        .await;
    let (status, body) = get(&http, "/telemetry").await;
    assert_eq!(status, 200);
    let report: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(report["server"], json!("quickstart"));
    assert!(
        report["framework"]
            .as_str()
            .unwrap_or_default()
            .starts_with("rpc-runtime ")
    );
    assert_eq!(report["instanceId"].as_str().map(str::len), Some(36));
    assert!(report["uptimeSeconds"].as_f64().is_some());
    assert_eq!(
        report["transports"]["http"],
        json!(server.http_addr().expect("http").to_string())
    );
    assert_eq!(report["broker"], Value::Null);
    assert_eq!(report["websocket"]["connections"], json!(0));
    let row = |scope: &str, procedure: &str| {
        report["procedures"]
            .as_array()
            .and_then(|rows| {
                rows.iter()
                    .find(|r| r["scope"] == scope && r["procedure"] == procedure)
                    .cloned()
            })
            .unwrap_or_default()
    };
    let add = row("math", "add");
    assert_eq!(add["calls"], json!(4));
    assert_eq!(add["errors"], json!({"422": 1}));
    assert!(add["latencyMs"]["p50"].as_f64().is_some_and(|p| p > 0.0));
    assert!(add["latencyMs"]["p99"].as_f64() >= add["latencyMs"]["p50"].as_f64());
    assert_eq!(row("auth", "login")["errors"], json!({"403": 1}));
    assert_eq!(row("(other)", "(other)")["errors"], json!({"404": 1}));

    let (status, page) = get(&http, "/telemetry.html").await;
    assert_eq!(status, 200);
    assert!(page.contains("<table id=\"procedures\">") && page.contains("\"./telemetry\""));

    let (status, metrics) = get(&http, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("# TYPE rpc_calls_total counter"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"rpc_calls_total{scope="math",procedure="add",version="1",code="200"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"rpc_calls_total{scope="math",procedure="add",version="1",code="422"} 1"#),
        "{metrics}"
    );
    // Durations are histograms per scope, procedure, version and code.
    assert!(
        metrics.contains("# TYPE rpc_call_duration_seconds histogram"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"rpc_call_duration_seconds_bucket{scope="math",procedure="add",version="1",code="200",le="+Inf"} 3"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"rpc_call_duration_seconds_count{scope="math",procedure="add",version="1",code="422"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"rpc_call_duration_seconds_bucket{scope="math",procedure="add",version="1",code="200",le="0.005"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("rpc_websocket_connections 0"), "{metrics}");
    // Internal procedures are hidden, as on /docs.
    assert!(row("geo", "list-locations")["calls"] == json!(1));
    assert!(
        !body.contains("all-locations") && !metrics.contains("all-locations"),
        "{body}\n{metrics}"
    );
    let (_, page) = get(&http, "/telemetry.html").await;
    assert!(!page.contains("all-locations"));
    server.shutdown().await.expect("stops");

    // A server that opts in shows them, with buckets of its choice.
    let server = start(
        quickstart_server()
            .show_internal(true)
            .metrics_buckets([0.001, 0.1]),
    )
    .await;
    let http = Http::new(server.http_addr().expect("http"));
    http.call(json!({"procedure": "list-locations", "scope": "geo"}))
        .await;
    let (_, body) = get(&http, "/telemetry").await;
    assert!(body.contains("all-locations"), "{body}");
    let (_, metrics) = get(&http, "/metrics").await;
    assert!(
        metrics.contains(
            r#"rpc_call_duration_seconds_bucket{scope="geo",procedure="all-locations",version="1",code="200",le="0.1"} 1"#
        ),
        "{metrics}"
    );
    assert!(!metrics.contains(r#"le="0.005""#), "{metrics}");
    server.shutdown().await.expect("stops");

    // The application's own metrics on the same endpoint.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("app_orders_total").increment(2);
    });
    let server = start(quickstart_server().application_metrics(recorder.handle())).await;
    let http = Http::new(server.http_addr().expect("http"));
    let (_, metrics) = get(&http, "/metrics").await;
    assert!(metrics.contains("app_orders_total 2"), "{metrics}");
    assert!(metrics.contains("rpc_uptime_seconds"), "{metrics}");
}

#[tokio::test]
async fn pages_can_be_disabled_moved_and_guarded() {
    let server = start(
        quickstart_server()
            .docs_mount(Mount::disabled())
            .specs_mount(Mount::at("/internal"))
            .telemetry_mount(Mount::at("ops").require_auth())
            .authenticator(|token: String| async move {
                if token == "ops-token" {
                    Ok("ops".to_owned())
                } else {
                    Err(RpcError::unauthorized("no"))
                }
            }),
    )
    .await;
    let http = Http::new(server.http_addr().expect("http"));
    assert_ne!(get(&http, "/docs").await.0, 200, "disabled");
    assert_ne!(get(&http, "/docs.json").await.0, 200, "moved");
    assert_eq!(get(&http, "/internal/docs.json").await.0, 200);
    assert_eq!(get(&http, "/internal/openrpc.json").await.0, 200);
    assert_ne!(get(&http, "/telemetry").await.0, 200, "moved");
    assert_eq!(get(&http, "/ops/telemetry").await.0, 401);
    assert_eq!(get(&http, "/ops/metrics").await.0, 401);
    assert_eq!(get(&http, "/ops/telemetry?token=wrong").await.0, 401);
    assert_eq!(get(&http, "/ops/telemetry?token=ops-token").await.0, 200);
    let with_header = http
        .client()
        .get(format!("{}/ops/metrics", http.url()))
        .header("authorization", "Bearer ops-token")
        .send()
        .await
        .expect("answered");
    assert_eq!(with_header.status().as_u16(), 200);
    // RPC calls are unaffected.
    assert_eq!(
        http.call(json!({"procedure": "add", "scope": "math", "args": {"a": 1, "b": 1}}))
            .await
            .0,
        200
    );
    // A page where it moved answers other methods with 405; where it no
    // longer is, the path is the call endpoint's, like any other.
    let add =
        serde_json::to_vec(&json!({"procedure": "add", "scope": "math", "args": {"a": 2, "b": 2}}))
            .expect("encodes");
    for (path, status) in [
        ("/internal/openrpc.json", 405),
        ("/ops/metrics", 405),
        ("/docs", 200),
        ("/telemetry", 200),
    ] {
        let (answered, response) = http.post(path, add.clone()).await;
        assert_eq!(answered, status, "{path}: {response}");
        if status == 200 {
            assert_eq!(response["data"], json!(4), "{path}");
        }
    }
}

/// Runs Debian's Chromium headless on `url` and returns the DOM after the
/// page's scripts ran (network included).
fn rendered(url: &str) -> String {
    let profile = tempdir();
    let output = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=8000",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            url,
        ])
        .output()
        .unwrap_or_else(|error| {
            panic!("chromium cannot be run ({error}): install it with `apt-get install -y chromium`, or run .ci/test, which does")
        });
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rpc-chromium-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("profile dir");
    dir
}

/// The try-it response shown for one procedure.
fn response_block<'a>(dom: &'a str, address: &str) -> &'a str {
    let marker = format!(r#"<pre class="response" data-address="{address}">"#);
    let start = dom.find(&marker).expect("the response block");
    let end = dom[start..]
        .find("</pre>")
        .map_or(dom.len(), |end| start + end);
    &dom[start..end]
}

#[tokio::test]
async fn a_real_browser_renders_the_docs_and_calls_through_the_form() {
    let server = start(quickstart_server()).await;
    let base = format!("http://{}", server.http_addr().expect("http"));

    let url = format!("{base}/docs");
    let dom = tokio::task::spawn_blocking(move || rendered(&url))
        .await
        .expect("joined");
    for expected in [
        r#"data-scope="auth""#,
        r#"data-scope="math""#,
        r#"<article id="proc-"#,
        r#"data-address="auth/login@1""#,
        r#"data-address="geo/list-locations@1""#,
        r#"<tr data-field="email">"#,
        r#"<tr data-field="password">"#,
        "string (email)",
        "The account's e-mail address.",
        "needs auth",
        "Signs a user in and returns the session.",
        "curl -s ",
    ] {
        assert!(
            dom.contains(expected),
            "the rendered page lacks {expected:?}"
        );
    }
    assert!(
        !dom.contains("geo/all-locations@1"),
        "internal procedures are hidden"
    );

    // The try-it form, submitted in the browser, makes a real call.
    let url = format!(r#"{base}/docs?try=math/add@1&args=%7B%22a%22:20,%22b%22:22%7D"#);
    let dom = tokio::task::spawn_blocking(move || rendered(&url))
        .await
        .expect("joined");
    let block = response_block(&dom, "math/add@1");
    assert!(block.contains("\"data\": 42"), "{block}");
    assert!(block.contains("\"code\": 200"), "{block}");

    // The identity field travels with the call: `me` needs an authorization.
    let identity = "%7B%22authorization%22:%22Bearer%20t%22,%22deviceName%22:%22browser%22%7D";
    let url = format!("{base}/docs?try=auth/me@1&args=%7B%7D&identity={identity}");
    let dom = tokio::task::spawn_blocking(move || rendered(&url))
        .await
        .expect("joined");
    let block = response_block(&dom, "auth/me@1");
    assert!(
        block.contains("\"code\": 200") && block.contains("\"device_name\": \"browser\""),
        "{block}"
    );

    // Invalid args typed into the form come back as a 422 with pointers.
    let url = format!(r#"{base}/docs?try=math/add@1&args=%7B%22a%22:%22x%22%7D"#);
    let dom = tokio::task::spawn_blocking(move || rendered(&url))
        .await
        .expect("joined");
    assert!(
        dom.contains("\"code\": 422") && dom.contains("\"path\": \"/a\""),
        "the 422 is shown"
    );
}

/// The packages `.ci/test` installs with npm (typescript, ws).
fn node_modules() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/node/node_modules");
    assert!(
        dir.join("typescript/bin/tsc").is_file() && dir.join("ws").is_dir(),
        "{} lacks typescript or ws: run .ci/test, which installs them \
         (npm install --prefix target/node typescript@5.9.3 ws@8.18.3)",
        dir.display()
    );
    dir
}

/// Runs tsc with `args`; panics with its output when it fails.
fn tsc(modules: &Path, args: &[&str]) {
    let output = std::process::Command::new("node")
        .arg(modules.join("typescript/bin/tsc"))
        .args(args)
        .output()
        .expect("node runs tsc");
    assert!(
        output.status.success(),
        "tsc {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_typescript_client_is_golden_compiles_strict_and_calls_a_live_server() {
    let server = start(
        quickstart_server().authenticator(|token: String| async move {
            if token == "demo-token" {
                Ok("user-1".to_owned())
            } else {
                Err(RpcError::unauthorized("unknown token"))
            }
        }),
    )
    .await;
    let http = Http::new(server.http_addr().expect("http"));
    let (status, module) = get(&http, "/client.ts").await;
    assert_eq!(status, 200);
    assert_eq!(module, server.handle().typescript_client());
    assert!(
        !module.contains("allLocations"),
        "internal procedures are left out"
    );

    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/quickstart-client.ts");
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(&golden, &module).expect("write golden");
    }
    let expected = std::fs::read_to_string(&golden).expect(
        "tests/golden/quickstart-client.ts exists; create or update it with UPDATE_GOLDEN=1 cargo test -p rpc-tests --test docs",
    );
    assert!(
        module == expected,
        "client.ts changed; review the difference and update the golden file with \
         UPDATE_GOLDEN=1 cargo test -p rpc-tests --test docs"
    );

    // tsc --strict accepts it, then compiles it for node.
    let modules = node_modules();
    let dir = std::env::temp_dir().join(format!("rpc-ts-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let source = dir.join("client.ts");
    std::fs::write(&source, &module).expect("write module");
    std::fs::write(dir.join("package.json"), r#"{"type": "module"}"#).expect("package.json");
    let source = source.to_str().expect("utf-8 path");
    let common = [
        "--strict",
        "--target",
        "es2022",
        "--module",
        "es2022",
        "--lib",
        "es2022,dom",
    ];
    tsc(&modules, &[&common[..], &["--noEmit", source]].concat());
    tsc(
        &modules,
        &[
            &common[..],
            &["--outDir", dir.to_str().expect("utf-8"), source],
        ]
        .concat(),
    );

    // The compiled client against the live server.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("js/ts-client.mjs");
    let mut child = tokio::process::Command::new("node")
        .arg(script)
        .arg(dir.join("client.js"))
        .arg(&modules)
        .arg(http.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        child.stdout.take().expect("stdout"),
    ));
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("node reports within 30 s")
        .expect("stdout");
    if first.as_deref() != Some("ready") {
        let output = child.wait_with_output().await.expect("node ends");
        panic!(
            "the client failed before the push: {first:?}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(
        server
            .handle()
            .send_to_user("user-1", json!({"note": "for user-1"})),
        1
    );
    let last = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("node ends within 30 s")
        .expect("stdout");
    let output = child.wait_with_output().await.expect("node ends");
    assert_eq!(
        last.as_deref(),
        Some("ok"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
