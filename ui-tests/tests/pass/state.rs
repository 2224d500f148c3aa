use rpc_runtime::{rpc, Context, JsonSchema, State};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize, Serialize, JsonSchema)]
struct Args {
    x: i32,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Out {
    y: i32,
}

#[derive(Clone)]
struct Db(Arc<Vec<i32>>);

#[derive(Clone)]
struct Config {
    factor: i32,
}

/// State before the args, the context in the middle.
#[rpc(procedure = "first")]
async fn first(db: State<Db>, ctx: Context, args: Args) -> Out {
    let _ = ctx;
    Out { y: args.x + db.0.0.len() as i32 }
}

/// Two state types, written with the full path.
#[rpc(procedure = "second")]
async fn second(args: Args, db: rpc_runtime::State<Db>, State(config): State<Config>) -> Out {
    Out { y: args.x * config.factor + db.0.0.len() as i32 }
}

/// State alone.
#[rpc(procedure = "third")]
async fn third(State(config): State<Config>) -> i32 {
    config.factor
}

fn main() {
    // Directly callable with state values, as in a unit test.
    let db = State(Db(Arc::new(vec![1, 2])));
    let config = State(Config { factor: 3 });
    let _ = first(db.clone(), Context::default(), Args { x: 1 });
    let _ = second(Args { x: 1 }, db, config.clone());
    let _ = third(config);
}
