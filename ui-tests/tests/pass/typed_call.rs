use rpc_runtime::{rpc, Context, JsonSchema, NoArgs, RpcError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, JsonSchema)]
struct Args {
    x: i32,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Out {
    y: i32,
}

mod geo {
    use super::*;

    /// Internal: only other procedures may call it.
    #[rpc(procedure = "all", scope = "geo", internal)]
    pub(crate) async fn all(args: Args) -> Out {
        Out { y: args.x }
    }
}

/// Calls `geo::all` through its typed marker, and untyped by address.
#[rpc(procedure = "public", scope = "geo")]
async fn public(ctx: Context) -> Result<Out, RpcError> {
    let typed: Out = ctx.call::<geo::all>(Args { x: 1 }).await?;
    let untyped = ctx
        .call_json(rpc_runtime::Address::new("geo", "all", "1"), rpc_runtime::__private::serde_json::json!({"x": 2}))
        .await?;
    let _ = (untyped, NoArgs);
    Ok(typed)
}

fn main() {
    let _ = public(Context::default());
}
