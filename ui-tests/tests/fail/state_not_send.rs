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

struct Cache(std::rc::Rc<u8>);

impl Clone for Cache {
    fn clone(&self) -> Self {
        Cache(self.0.clone())
    }
}

#[rpc(procedure = "p")]
async fn p(args: Args, cache: State<Cache>) -> Out {
    let _ = cache;
    Out { y: args.x }
}

fn main() {
    let _ = (NoArgs, Context::default(), Db);
    let _: Option<(Args, Out, RpcError)> = None;
}
