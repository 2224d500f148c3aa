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

#[rpc(procedure = "p", method = "GET")]
async fn p(args: Args) -> Out {
    Out { y: args.x }
}

fn main() {
    let _ = (NoArgs, Context::default());
    let _: Option<(Args, Out, RpcError)> = None;
}
