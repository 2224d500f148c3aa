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
//!
//! Across two gateways, through RabbitMQ: each server joins the mesh, and
//! every message reaches the clients of both.
//!
//! ```sh
//! cargo run --example chat -- --serve --broker amqp://guest:guest@127.0.0.1:5672/%2f
//! cargo run --example chat -- --serve --broker amqp://guest:guest@127.0.0.1:5672/%2f --http 127.0.0.1:9878 --name chat-2
//! cargo run --example chat -- alice                            # on the first
//! cargo run --example chat -- bob --url ws://127.0.0.1:9878/   # on the second
//! ```

use rpc_examples::Options;
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

#[derive(Deserialize, Serialize, JsonSchema)]
struct Who {
    /// The users connected to this server.
    here: Vec<String>,
    /// Connections on every server of the mesh (this one's, and the
    /// others' as they last reported).
    connections: usize,
}

/// Who is connected.
#[rpc(procedure = "who", scope = "chat")]
async fn who(ctx: Context) -> Result<Who, RpcError> {
    let server = ctx.server().ok_or_else(RpcError::internal)?;
    let mut here: Vec<String> = server
        .connections()
        .into_iter()
        .filter_map(|c| c.user_id)
        .collect();
    here.sort();
    here.dedup();
    Ok(Who {
        here,
        connections: server.mesh_connection_count(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let options = Options::read(ADDR, "chat-1", "");
    match options.rest.first().map(String::as_str) {
        None | Some("--serve") => server(options).await,
        Some(name) => {
            let url = options
                .rest
                .iter()
                .position(|arg| arg == "--url")
                .and_then(|at| options.rest.get(at + 1).cloned())
                .unwrap_or_else(|| format!("ws://{ADDR}/"));
            client(name.to_owned(), url).await
        }
    }
}

async fn server(options: Options) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let server = chat_server(&options)
        .on_connect(|c| println!("connected: {} from {}", c.id, c.ip))
        .on_disconnect(|c| println!("disconnected: {} ({:?})", c.id, c.user_id))
        .build()?;
    println!(
        "chat server {} on ws://{}/ ; join with: cargo run --example chat -- <name> --url ws://{}/",
        options.name, options.http, options.http
    );
    server.serve().await?;
    Ok(())
}

/// A chat server: on the mesh when given a broker.
fn chat_server(options: &Options) -> rpc_runtime::ServerBuilder {
    let mut builder = Server::builder()
        .name(options.name.clone())
        .http(options.http.clone());
    if !options.broker.is_empty() {
        builder = builder.broker_nodes(options.broker.clone());
    }
    // A toy authenticator: the token is the user's name.
    builder.authenticator(|token: String| async move {
        if !token.is_empty() && token.len() <= 32 && token.chars().all(char::is_alphanumeric) {
            Ok(token)
        } else {
            Err(RpcError::unauthorized(
                "names are 1 to 32 letters or digits",
            ))
        }
    })
}

async fn client(name: String, url: String) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The identity is sent on connect and again after every reconnect.
    let client = WsClient::builder(url)
        .identity(Identity::with_authorization(format!("Bearer {name}")).device_name("terminal"))
        .connect()
        .await
        .map_err(RpcError::into_std)?;
    let mut pushes = client.server_messages();
    tokio::spawn(async move {
        while let Some(message) = pushes.next().await {
            match serde_json::from_value::<Said>(message.clone()) {
                Ok(said) => println!("[{}] {}", said.from, said.text),
                Err(_) => println!("(pushed) {message}"),
            }
        }
    });
    println!("joined as {name}; type a line to say it, /who, /me <text>, Ctrl-D to leave");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let outcome = if line == "/who" {
            client.call::<who>(NoArgs).await.map(|who| {
                println!(
                    "here: {} ({} connections in all)",
                    who.here.join(", "),
                    who.connections
                )
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn next(stream: &mut rpc_runtime::ServerMessages) -> Said {
        let message = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
            .await
            .expect("a push within 5 s")
            .expect("open");
        serde_json::from_value::<Said>(message).expect("a chat message")
    }

    /// Two chat servers on the local RabbitMQ, a client on each: what one
    /// says reaches the other, and `/me` reaches only the sender's own
    /// connections, on both servers.
    #[tokio::test]
    async fn the_chat_works_across_two_gateways() {
        let broker = std::env::var("AMQP_URI")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        assert!(
            std::net::TcpStream::connect("127.0.0.1:5672").is_ok()
                || std::env::var("AMQP_URI").is_ok(),
            "RabbitMQ is not reachable on 127.0.0.1:5672: start it with `rabbitmq-server -detached`, or run .ci/test"
        );
        let mut servers = Vec::new();
        for name in ["chat-test-1", "chat-test-2"] {
            let options = Options {
                http: "127.0.0.1:0".into(),
                name: format!("{name}-{}", std::process::id()),
                broker: vec![broker.clone()],
                rest: Vec::new(),
            };
            let running = chat_server(&options)
                .announce_interval(std::time::Duration::from_millis(200))
                .build()
                .expect("builds")
                .start()
                .await
                .expect("starts");
            servers.push(running);
        }
        let url = |i: usize| format!("ws://{}/", servers[i].http_addr().expect("http"));
        let join = |url: String, name: &str| {
            WsClient::builder(url)
                .identity(Identity::with_authorization(format!("Bearer {name}")))
                .connect()
        };
        let alice = join(url(0), "alice").await.expect("alice joins");
        let bob = join(url(1), "bob").await.expect("bob joins");
        let alice_too = join(url(1), "alice").await.expect("alice joins twice");
        let (mut to_alice, mut to_bob, mut to_alice_too) = (
            alice.server_messages(),
            bob.server_messages(),
            alice_too.server_messages(),
        );
        // Each server has heard the other's presence.
        for _ in 0..100 {
            let who = bob.call::<who>(NoArgs).await.expect("who");
            if who.connections == 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        alice
            .call::<send>(Say {
                text: "hello bob".into(),
            })
            .await
            .expect("sent");
        for stream in [&mut to_alice, &mut to_bob, &mut to_alice_too] {
            let said = next(stream).await;
            assert_eq!(
                (said.from.as_str(), said.text.as_str()),
                ("alice", "hello bob")
            );
        }
        bob.call::<note_to_self>(Say {
            text: "milk".into(),
        })
        .await
        .expect("noted");
        assert_eq!(next(&mut to_bob).await.text, "milk");
        alice
            .call::<note_to_self>(Say {
                text: "eggs".into(),
            })
            .await
            .expect("noted");
        assert_eq!(next(&mut to_alice).await.text, "eggs");
        assert_eq!(
            next(&mut to_alice_too).await.text,
            "eggs",
            "alice's connection on the other server"
        );
        for server in servers {
            server.shutdown().await.expect("stops");
        }
    }
}
