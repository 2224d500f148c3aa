//! Validation on both paths: a table of args types, with and without
//! constraints, called over HTTP on a server that runs the schema
//! validator only where the type does not enforce the schema (the
//! default) and on one that always runs it. Every case must get the same
//! answer from both, byte for byte, and the expected code and pointers,
//! whether its args come after the procedure's address (then they are
//! decoded while the request is read) or before it; and as JSON-RPC, with
//! the params after the method or before it.

use rpc_runtime::Server;
use rpc_tests::Http;
use serde_json::{Value, json};

mod procs {
    use rpc_runtime::{JsonSchema, rpc};
    use serde::{Deserialize, Serialize};
    use std::collections::HashMap;

    #[derive(Deserialize, Serialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum Kind {
        Small,
        Large,
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct Inner {
        pub depth: u8,
    }

    /// Only what the type itself says: serde enforces all of it.
    #[derive(Deserialize, Serialize, JsonSchema)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Typed {
        pub a: i64,
        pub count: u32,
        pub ratio: f64,
        pub note: Option<String>,
        pub tags: Vec<String>,
        pub kind: Kind,
        pub flags: HashMap<String, bool>,
        pub inner: Option<Inner>,
        #[serde(default)]
        pub defaulted: u16,
    }

    /// Rules the type cannot say: the validator enforces them.
    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct Constrained {
        #[schemars(email)]
        pub email: String,
        #[schemars(length(min = 2, max = 5))]
        pub name: String,
        #[schemars(range(min = 1, max = 10))]
        pub count: u8,
        #[schemars(regex(pattern = r"^[a-z]+$"))]
        pub slug: String,
        #[schemars(length(max = 2))]
        pub items: Vec<u8>,
    }

    /// An enum with data: `oneOf`, whose semantics serde does not share.
    #[derive(Deserialize, Serialize, JsonSchema)]
    #[serde(tag = "shape", rename_all = "lowercase")]
    pub enum Shape {
        Circle { r: f64 },
        Square { side: f64 },
    }

    #[rpc(procedure = "typed", scope = "valid")]
    pub async fn typed(args: Typed) -> i64 {
        args.a
    }

    #[rpc(procedure = "constrained", scope = "valid")]
    pub async fn constrained(args: Constrained) -> String {
        args.name
    }

    #[rpc(procedure = "shape", scope = "valid")]
    pub async fn shape(args: Shape) -> f64 {
        match args {
            Shape::Circle { r } => r,
            Shape::Square { side } => side,
        }
    }

    #[rpc(procedure = "none", scope = "valid")]
    pub async fn none() -> bool {
        true
    }
}

fn typed_args() -> Value {
    json!({"a": 1, "count": 2, "ratio": 0.5, "note": null, "tags": ["x"], "kind": "small",
           "flags": {"f": true}, "inner": {"depth": 3}})
}

fn with(mut base: Value, pointer: &str, value: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let object = base
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("an object");
    match value {
        Some(value) => object.insert(key.to_owned(), value),
        None => object.remove(key),
    };
    base
}

fn constrained_args() -> Value {
    json!({"email": "ada@example.com", "name": "ada", "count": 3, "slug": "abc", "items": [1]})
}

/// (procedure, args, expected code, pointers that must be listed).
fn cases() -> Vec<(&'static str, Value, u16, Vec<&'static str>)> {
    let t = typed_args;
    let c = constrained_args;
    vec![
        ("typed", t(), 200, vec![]),
        (
            "typed",
            with(t(), "/defaulted", Some(json!(7))),
            200,
            vec![],
        ),
        ("typed", with(t(), "/note", None), 200, vec![]),
        ("typed", with(t(), "/inner", None), 200, vec![]),
        ("typed", with(t(), "/a", Some(json!("1"))), 422, vec!["/a"]),
        ("typed", with(t(), "/a", None), 422, vec![""]),
        (
            "typed",
            with(t(), "/count", Some(json!(-1))),
            422,
            vec!["/count"],
        ),
        (
            "typed",
            with(t(), "/count", Some(json!(1.5))),
            422,
            vec!["/count"],
        ),
        (
            "typed",
            with(t(), "/ratio", Some(json!("x"))),
            422,
            vec!["/ratio"],
        ),
        (
            "typed",
            with(t(), "/note", Some(json!(5))),
            422,
            vec!["/note"],
        ),
        (
            "typed",
            with(t(), "/tags", Some(json!(["x", 1]))),
            422,
            vec!["/tags/1"],
        ),
        (
            "typed",
            with(t(), "/kind", Some(json!("medium"))),
            422,
            vec!["/kind"],
        ),
        (
            "typed",
            with(t(), "/flags", Some(json!({"f": "yes"}))),
            422,
            vec!["/flags/f"],
        ),
        (
            "typed",
            with(t(), "/inner", Some(json!({"depth": 300}))),
            422,
            vec!["/inner"],
        ),
        (
            "typed",
            with(t(), "/unknown", Some(json!(1))),
            422,
            vec![""],
        ),
        (
            "typed",
            with(with(t(), "/a", Some(json!(true))), "/kind", Some(json!(1))),
            422,
            vec!["/a", "/kind"],
        ),
        ("typed", json!([1, 2]), 422, vec![""]),
        // serde would take a struct's fields as an array, and a unit
        // variant as an object of one key; the schema refuses both.
        (
            "typed",
            with(t(), "/inner", Some(json!([3]))),
            422,
            vec!["/inner"],
        ),
        (
            "typed",
            with(t(), "/kind", Some(json!({"small": null}))),
            422,
            vec!["/kind"],
        ),
        // An integer too large for i64 is an integer to the schema: decoding
        // refuses it, on both paths alike.
        ("typed", with(t(), "/a", Some(json!(u64::MAX))), 422, vec![]),
        ("constrained", c(), 200, vec![]),
        (
            "constrained",
            with(c(), "/email", Some(json!("not-an-email"))),
            422,
            vec!["/email"],
        ),
        (
            "constrained",
            with(c(), "/name", Some(json!("a"))),
            422,
            vec!["/name"],
        ),
        (
            "constrained",
            with(c(), "/name", Some(json!("abcdef"))),
            422,
            vec!["/name"],
        ),
        (
            "constrained",
            with(c(), "/count", Some(json!(0))),
            422,
            vec!["/count"],
        ),
        (
            "constrained",
            with(c(), "/count", Some(json!(11))),
            422,
            vec!["/count"],
        ),
        (
            "constrained",
            with(c(), "/slug", Some(json!("ABC"))),
            422,
            vec!["/slug"],
        ),
        (
            "constrained",
            with(c(), "/items", Some(json!([1, 2, 3]))),
            422,
            vec!["/items"],
        ),
        ("shape", json!({"shape": "circle", "r": 1.0}), 200, vec![]),
        ("shape", json!({"shape": "triangle", "r": 1.0}), 422, vec![]),
        ("shape", json!({"shape": "square"}), 422, vec![]),
        ("none", json!({}), 200, vec![]),
        ("none", json!(null), 200, vec![]),
        ("none", json!({"x": 1}), 422, vec![""]),
    ]
}

#[tokio::test]
async fn both_paths_enforce_every_schema_feature_alike() {
    let mut servers = Vec::new();
    for always in [false, true] {
        let server = rpc_tests::start(
            Server::builder()
                .host(|address| address.scope == "valid")
                .always_validate(always),
        )
        .await;
        servers.push(server);
    }
    let fast = Http::new(servers[0].http_addr().expect("http"));
    let full = Http::new(servers[1].http_addr().expect("http"));
    for (procedure, args, code, pointers) in cases() {
        // The args after the address, as clients write them, are decoded
        // while the request is read; before it, they are kept as text and
        // decoded by the handler. Both must answer as the validator does.
        let address_first =
            format!(r#"{{"procedure":"{procedure}","scope":"valid","args":{args}}}"#);
        let args_first = format!(r#"{{"args":{args},"procedure":"{procedure}","scope":"valid"}}"#);
        let (full_status, full_body) = full.post("/", address_first.clone().into_bytes()).await;
        for envelope in [address_first, args_first] {
            let (fast_status, fast_body) = fast.post("/", envelope.clone().into_bytes()).await;
            let case = &envelope;
            assert_eq!(fast_status, code, "{case}: {fast_body}");
            assert_eq!(
                (fast_status, &fast_body),
                (full_status, &full_body),
                "{case}"
            );
            let listed: Vec<&str> = fast_body["errors"]
                .as_array()
                .map(|errors| errors.iter().filter_map(|e| e["path"].as_str()).collect())
                .unwrap_or_default();
            for &pointer in &pointers {
                assert!(
                    listed.contains(&pointer),
                    "{case}: {pointer} not in {fast_body}"
                );
            }
        }
        // As JSON-RPC, with the params after the method and before it.
        let method_first =
            format!(r#"{{"jsonrpc":"2.0","method":"valid/{procedure}","params":{args},"id":1}}"#);
        let params_first =
            format!(r#"{{"params":{args},"jsonrpc":"2.0","method":"valid/{procedure}","id":1}}"#);
        let full_answer = full.post("/", method_first.clone().into_bytes()).await;
        assert_eq!(
            full_answer.1["result"].is_null(),
            code != 200,
            "{method_first}: {full_answer:?}"
        );
        for request in [method_first, params_first] {
            let fast_answer = fast.post("/", request.clone().into_bytes()).await;
            assert_eq!(fast_answer, full_answer, "{request}");
        }
    }
    for server in servers {
        server.shutdown().await.expect("stops");
    }
}
