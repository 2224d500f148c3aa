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

/// Every key at once; an integer version equals its string form.
#[rpc(procedure = "all.keys:v/x_1-2", scope = "s.c-o_p:e/1", version = 2, internal, auth, timeout = "250ms")]
async fn all_keys(args: Args) -> Result<Out, RpcError> {
    Ok(Out { y: args.x })
}

/// Flags may be written with a bool.
#[rpc(procedure = "flags", version = "2.1-beta", internal = false, auth = true, timeout = "2m")]
async fn flags() -> Out {
    Out { y: 0 }
}

fn main() {
    use rpc_runtime::Procedure;
    assert_eq!(<all_keys as Procedure>::VERSION, "2");
    assert!(<all_keys as Procedure>::INTERNAL);
    assert_eq!(<flags as Procedure>::SCOPE, "global");
    assert!(!<flags as Procedure>::INTERNAL);
    let _ = (all_keys(Args { x: 1 }), flags(), NoArgs, Context::default());
}
