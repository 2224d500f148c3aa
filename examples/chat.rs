//! Run with:
//!
//! ```sh
//! cargo run --example chat            # the server, on 127.0.0.1:9877
//! cargo run --example chat -- alice   # a client named alice (in another terminal)
//! cargo run --example chat -- bob     # and another
//! ```
//!
//! A chat over WebSocket: clients call `chat/send`, and the server pushes
//! every message to every connection; `/who` lists who is connected and
//! `/me <text>` pushes only to your own connections.

use rpc_runtime::{Context, Identity, JsonSchema, NoArgs, RpcError, Server, WsClient, rpc};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;

const ADDR: &str = "127.0.0.1:9877";

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Say {
    /// What to say.
    #[schemars(length(min = 1, max = 500))]
    text: String,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Said {
    from: String,
    text: String,
}

/// Says something to everyone connected.
#[rpc(procedure = "send", scope = "chat", auth)]
async fn send(args: Say, ctx: Context) -> Result<usize, RpcError> {
    let from = ctx.user_id().unwrap_or("someone").to_owned();
    let server = ctx.server().ok_or_else(RpcError::internal)?;
    // One push, encoded once, queued on every connection.
    Ok(server.broadcast(Said {
        from,
        text: args.text,
    }))
}

/// Says something to your own connections only.
#[rpc(procedure = "note-to-self", scope = "chat", auth)]
async fn note_to_self(args: Say, ctx: Context) -> Result<usize, RpcError> {
    let me = ctx
        .user_id()
        .ok_or_else(|| RpcError::unauthorized("who are you?"))?
        .to_owned();
    let server = ctx.server().ok_or_else(RpcError::internal)?;
    Ok(server.send_to_user(
        &me,
        Said {
            from: "you".into(),
            text: args.text,
        },
    ))
}

/// Who is connected.
#[rpc(procedure = "who", scope = "chat")]
async fn who(ctx: Context) -> Vec<String> {
    let mut users: Vec<String> = ctx
        .server()
        .map(|s| {
            s.connections()
                .into_iter()
                .filter_map(|c| c.user_id)
                .collect()
        })
        .unwrap_or_default();
    users.sort();
    users.dedup();
    users
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match std::env::args().nth(1) {
        Some(name) => client(name).await,
        None => server().await,
    }
}

async fn server() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // A toy authenticator: the token is the user's name.
    let server = Server::builder()
        .name("chat")
        .http(ADDR)
        .authenticator(|token: String| async move {
            if !token.is_empty() && token.len() <= 32 && token.chars().all(char::is_alphanumeric) {
                Ok(token)
            } else {
                Err(RpcError::unauthorized(
                    "names are 1 to 32 letters or digits",
                ))
            }
        })
        .on_connect(|c| println!("connected: {} from {}", c.id, c.ip))
        .on_disconnect(|c| println!("disconnected: {} ({:?})", c.id, c.user_id))
        .build()?;
    println!("chat server on ws://{ADDR}/ ; join with: cargo run --example chat -- <name>");
    server.serve().await?;
    Ok(())
}

async fn client(name: String) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The identity is sent on connect and again after every reconnect.
    let client = WsClient::builder(format!("ws://{ADDR}/"))
        .identity(Identity::with_authorization(format!("Bearer {name}")).device_name("terminal"))
        .connect()
        .await
        .map_err(RpcError::into_std)?;
    let mut pushes = client.server_messages();
    tokio::spawn(async move {
        while let Some(message) = pushes.next().await {
            match serde_json::from_value::<Said>(message) {
                Ok(said) => println!("[{}] {}", said.from, said.text),
                Err(_) => println!("(a push of another shape)"),
            }
        }
    });
    println!("joined as {name}; type a line to say it, /who, /me <text>, Ctrl-D to leave");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let outcome = if line == "/who" {
            client
                .call::<who>(NoArgs)
                .await
                .map(|users| println!("here: {}", users.join(", ")))
        } else if let Some(text) = line.strip_prefix("/me ") {
            client
                .call::<note_to_self>(Say { text: text.into() })
                .await
                .map(drop)
        } else {
            client.call::<send>(Say { text: line }).await.map(drop)
        };
        if let Err(error) = outcome {
            println!("! {error}");
        }
    }
    Ok(())
}
