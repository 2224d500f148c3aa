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

#[rpc(procedure = "double", scope = "math")]
async fn double(args: Args) -> Result<Out, RpcError> {
    Ok(Out { y: args.x * 2 })
}

fn main() {
    let _future = double(Args { x: 1 });
    let _ = (NoArgs, Context::default());
}
