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

#[rpc(procedure = "who", scope = "auth")]
async fn who(ctx: Context) -> Result<Out, RpcError> {
    Ok(Out { y: ctx.identity().map_or(0, |_| 1) })
}

fn main() {
    let _ = who(Context::default());
    let _: Option<Args> = None;
    let _ = NoArgs;
}
