use rpc_runtime::{rpc, Context, JsonSchema, NoArgs, RpcError, State};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, JsonSchema)]
struct Args {
    x: i32,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Out {
    y: i32,
}

#[derive(Clone)]
struct Db;

#[rpc(procedure = "p")]
async fn p(args: Args, db: &State<Db>) -> Out {
    let _ = db;
    Out { y: args.x }
}

fn main() {
    let _ = (NoArgs, Context::default(), Db);
    let _: Option<(Args, Out, RpcError)> = None;
}
