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

/// Takes nothing, returns a value.
#[rpc(procedure = "ping")]
async fn ping() -> Result<Out, RpcError> {
    Ok(Out { y: 1 })
}

/// Names the empty args explicitly.
#[rpc(procedure = "ping2")]
async fn ping2(_args: NoArgs) -> Out {
    Out { y: 2 }
}

fn main() {
    let _ = (ping(), ping2(NoArgs));
    let _: Option<Args> = None;
    // A detached context, as unit tests use.
    let _ = Context::default();
}
