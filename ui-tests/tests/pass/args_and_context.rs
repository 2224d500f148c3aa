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

#[rpc(procedure = "a-then-c")]
async fn args_then_context(args: Args, ctx: Context) -> Result<Out, RpcError> {
    let _ = ctx.trace_id();
    Ok(Out { y: args.x })
}

/// The context may come first.
#[rpc(procedure = "c-then-a")]
async fn context_then_args(ctx: rpc_runtime::Context, args: Args) -> Result<Out, RpcError> {
    let _ = ctx.caller();
    Ok(Out { y: args.x })
}

fn main() {
    let _ = args_then_context(Args { x: 1 }, Context::default());
    let _ = context_then_args(Context::default(), Args { x: 1 });
    let _ = NoArgs;
}
