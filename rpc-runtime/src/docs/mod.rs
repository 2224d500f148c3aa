//! Generated API docs: the `/docs` page, `/docs.json`, the OpenRPC
//! document at `/openrpc.json`, and the `rpc.discover` procedure. All of it
//! comes from what the server can route: its own procedures and those
//! announced by other servers.

mod example;
mod openrpc;

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

/// `/openrpc.json` and `rpc.discover`.
pub(crate) fn openrpc_document(
    server: &str,
    routable: Vec<ProcedureSpec>,
    show_internal: bool,
) -> Value {
    openrpc::document(server, &visible(routable, show_internal))
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
    ctx.server()
        .and_then(crate::ServerHandle::openrpc)
        .ok_or_else(|| RpcError::new(503, "this context is not attached to a server"))
}
