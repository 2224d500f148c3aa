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

/// A plain value.
#[rpc(procedure = "plain")]
async fn plain(args: Args) -> Out {
    Out { y: args.x }
}

/// No return type: answers `null`.
#[rpc(procedure = "unit")]
async fn unit(_args: Args) {}

/// A collection of a standard type.
#[rpc(procedure = "list")]
async fn list() -> Vec<String> {
    Vec::new()
}

mod app {
    pub type Result<T> = std::result::Result<T, rpc_runtime::RpcError>;
}

/// A one-parameter alias named `Result`, as `io::Result` is.
#[rpc(procedure = "alias")]
async fn alias(args: Args) -> app::Result<Out> {
    Ok(Out { y: args.x })
}

/// An error type of the handler's own, convertible into `RpcError`.
#[derive(Debug)]
enum ShopError {
    SoldOut,
}

impl From<ShopError> for RpcError {
    fn from(error: ShopError) -> Self {
        match error {
            ShopError::SoldOut => RpcError::conflict("sold out"),
        }
    }
}

#[rpc(procedure = "buy")]
async fn buy(_args: Args) -> Result<Out, ShopError> {
    Err(ShopError::SoldOut)
}

fn main() {
    let _ = (plain(Args { x: 1 }), unit(Args { x: 1 }), list(), alias(Args { x: 1 }), buy(Args { x: 1 }));
    let _ = (NoArgs, Context::default());
}
