//! Generated API docs: the `/docs` page, `/docs.json`, the OpenRPC
//! document at `/openrpc.json`, and the `rpc.discover` procedure. All of it
//! comes from what the server can route: its own procedures and those
//! announced by other servers.

mod definitions;
mod example;
mod openrpc;
mod typescript;

use crate::{Context, ProcedureSpec, RpcError, rpc};
use serde_json::{Value, json};

const PAGE: &str = include_str!("page.html");

/// The procedures to show: internal ones only when the server opts in.
fn visible(routable: Vec<ProcedureSpec>, show_internal: bool) -> Vec<ProcedureSpec> {
    routable
        .into_iter()
        .filter(|spec| show_internal || !spec.internal)
        .collect()
}

/// `/docs.json`: every procedure with its schemas and an example call.
pub(crate) fn document(server: &str, routable: Vec<ProcedureSpec>, show_internal: bool) -> Value {
    let procedures: Vec<Value> = visible(routable, show_internal)
        .into_iter()
        .map(|spec| {
            let example_args = example::example(&spec.args_schema);
            let mut entry = serde_json::to_value(&spec).unwrap_or_default();
            if let Some(object) = entry.as_object_mut() {
                for key in ["argsSchema", "outputSchema"] {
                    if let Some(schema) = object.get_mut(key) {
                        *schema = published(schema);
                    }
                }
                object.insert("exampleArgs".into(), example_args);
            }
            entry
        })
        .collect();
    json!({
        "server": server,
        "framework": concat!("rpc-runtime ", env!("CARGO_PKG_VERSION")),
        "procedures": procedures,
    })
}

/// `/openrpc.json` and `rpc.discover`; `url` is where the server answers.
pub(crate) fn openrpc_document(
    server: &str,
    routable: Vec<ProcedureSpec>,
    show_internal: bool,
    url: Option<&str>,
) -> Value {
    openrpc::document(server, &visible(routable, show_internal), url)
}

/// `/client.ts`: the TypeScript client of the procedures clients can call
/// (internal ones never are).
pub(crate) fn typescript_client(server: &str, routable: Vec<ProcedureSpec>) -> String {
    typescript::module(server, &visible(routable, false))
}

/// The formats of JSON Schema (2020-12, section 7.3) that validators know.
/// schemars also writes formats of its own (`int64`, `uint8`, `double`,
/// ...), which strict validators such as ajv refuse; the published
/// documents leave those out (the server still validates with them, and
/// the ranges they mean are in `minimum` and `maximum`).
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

fn is_standard_format(format: &Value) -> bool {
    format
        .as_str()
        .is_some_and(|format| STANDARD_FORMATS.contains(&format))
}

/// A schema as the published documents show it: without the formats that
/// validators do not know.
fn published(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(key, value)| {
                    !(key.as_str() == "format" && value.is_string() && !is_standard_format(value))
                })
                .map(|(key, value)| (key.clone(), published(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(published).collect()),
        other => other.clone(),
    }
}

/// The URL a client reaches the server's RPC endpoint at: the configured
/// public URL, else the one the request was sent to (`X-Forwarded-Proto`,
/// `X-Forwarded-Host` or `Host`, `X-Forwarded-Prefix`, then the prefix the
/// router is mounted under), else the address the server is bound to.
pub(crate) fn server_url(
    public_url: Option<&str>,
    request: Option<(&axum::http::HeaderMap, &str)>,
    bound: Option<std::net::SocketAddr>,
) -> Option<String> {
    if let Some(url) = public_url {
        return Some(url.to_owned());
    }
    if let Some((headers, mounted_at)) = request {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(',').next())
                .map(str::trim)
                .filter(|value| !value.is_empty())
        };
        if let Some(host) = text("x-forwarded-host").or_else(|| text("host")) {
            let scheme = text("x-forwarded-proto").unwrap_or("http");
            let prefix = text("x-forwarded-prefix").unwrap_or_default();
            // The root of a server, or the path it is mounted at.
            let mut path = format!(
                "{}{}",
                prefix.trim_end_matches('/'),
                mounted_at.trim_end_matches('/')
            );
            if path.is_empty() {
                path.push('/');
            }
            return Some(format!("{scheme}://{host}{path}"));
        }
    }
    bound.map(|addr| format!("http://{addr}/"))
}

/// The `/docs` page; it reads the specs from `specs_url` and sends calls
/// to `rpc_url` (both relative to the page).
pub(crate) fn page(server: &str, specs_url: Option<&str>, rpc_url: &str) -> String {
    use crate::html::escape;
    PAGE.replace("{{TITLE}}", &escape(server))
        .replace("{{SPECS_URL}}", &escape(specs_url.unwrap_or_default()))
        .replace("{{RPC_URL}}", &escape(rpc_url))
}

/// The server's OpenRPC document: every procedure it can route, with its
/// args and result schemas.
#[rpc(procedure = "rpc.discover")]
async fn rpc_discover(ctx: Context) -> Result<Value, RpcError> {
    let headers = &ctx.metadata().headers;
    ctx.server()
        .and_then(|server| server.openrpc_for(Some((headers, ""))))
        .ok_or_else(|| RpcError::new(503, "this context is not attached to a server"))
}
