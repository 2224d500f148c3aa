use rpc_runtime::{rpc, Context, JsonSchema, RpcError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, JsonSchema)]
struct Args {
    path: String,
}

/// `anyhow::Result`, with `?` on an io error and on an anyhow one.
#[rpc(procedure = "anyhow")]
async fn with_anyhow(args: Args) -> anyhow::Result<usize> {
    let bytes = std::fs::read(&args.path)?;
    anyhow::ensure!(!bytes.is_empty(), "empty file");
    Ok(bytes.len())
}

/// `io::Result`.
#[rpc(procedure = "io")]
async fn with_io(args: Args) -> std::io::Result<usize> {
    Ok(std::fs::read(&args.path)?.len())
}

/// `RpcError`, with `?` on io, anyhow and any other error.
#[rpc(procedure = "rpc-error")]
async fn with_rpc_error(args: Args) -> Result<usize, RpcError> {
    let bytes = std::fs::read(&args.path)?;
    let text = String::from_utf8(bytes)?;
    let number: usize = text.trim().parse()?;
    let checked = Err::<(), _>(anyhow::anyhow!("never")).or_else(|_| Ok::<(), anyhow::Error>(()))?;
    let _ = checked;
    Ok(number)
}

/// A boxed error.
#[rpc(procedure = "boxed")]
async fn boxed(args: Args) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    Ok(args.path.parse::<usize>()?)
}

/// An error type of the application's, implementing `std::error::Error`.
#[derive(Debug)]
struct ShelfEmpty;

impl std::fmt::Display for ShelfEmpty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the shelf is empty")
    }
}

impl std::error::Error for ShelfEmpty {}

#[rpc(procedure = "own")]
async fn own(_args: Args, _ctx: Context) -> Result<u8, ShelfEmpty> {
    Err(ShelfEmpty)
}

fn main() {
    let args = || Args { path: String::new() };
    let _ = (with_anyhow(args()), with_io(args()), with_rpc_error(args()), boxed(args()));
    let _ = own(args(), Context::default());
}
