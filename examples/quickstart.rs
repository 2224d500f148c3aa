//! Run with:
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! Serves a few procedures over HTTP and WebSocket on 127.0.0.1:9876, with
//! no broker, and prints curl commands to try them.

use rpc_runtime::{Context, JsonSchema, NoArgs, RpcError, Server, rpc};
use serde::{Deserialize, Serialize};

// Args and results derive `Deserialize`/`Serialize` and `JsonSchema`; the
// schema is what every call is validated against.
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddArgs {
    /// The first term.
    a: i64,
    /// The second term.
    b: i64,
}

/// Adds two integers.
#[rpc(procedure = "add", scope = "math")]
async fn add(args: AddArgs) -> Result<i64, RpcError> {
    args.a
        .checked_add(args.b)
        .ok_or_else(|| RpcError::new(422, "the sum overflows a 64-bit integer"))
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LoginArgs {
    /// The account's e-mail address.
    #[schemars(email)]
    email: String,
    /// The account's password.
    #[schemars(length(min = 1))]
    password: String,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Session {
    /// The signed-in user.
    user: User,
    /// Send it as `identity.authorization` in later calls.
    token: String,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct User {
    name: String,
}

/// Signs a user in and returns the session. Try `test@test.com` / `secret`.
#[rpc(procedure = "login", scope = "auth", version = "1")]
async fn login(args: LoginArgs) -> Result<Session, RpcError> {
    if args.email == "test@test.com" && args.password == "secret" {
        Ok(Session {
            user: User {
                name: "Test".into(),
            },
            token: "Bearer demo-token".into(),
        })
    } else {
        Err(RpcError::forbidden("Auth failed"))
    }
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Me {
    user_id: Option<String>,
    device_name: Option<String>,
}

/// Who the caller is; needs an identity with an authorization.
#[rpc(procedure = "me", scope = "auth", auth)]
async fn me(ctx: Context) -> Me {
    Me {
        user_id: ctx.user_id().map(str::to_owned),
        device_name: ctx
            .identity()
            .and_then(|identity| identity.device_name.clone()),
    }
}

#[derive(Deserialize, Serialize, JsonSchema, Clone)]
struct Location {
    id: u32,
    name: String,
}

/// Every location; only other procedures may call this.
#[rpc(procedure = "all-locations", scope = "geo", internal)]
async fn all_locations() -> Vec<Location> {
    vec![
        Location {
            id: 1,
            name: "Lisbon".into(),
        },
        Location {
            id: 2,
            name: "Oslo".into(),
        },
    ]
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListLocations {
    /// Keep only names that contain this text.
    #[serde(default)]
    contains: Option<String>,
}

/// Public locations, filtered; calls the internal `all-locations`.
#[rpc(procedure = "list-locations", scope = "geo")]
async fn list_locations(args: ListLocations, ctx: Context) -> Result<Vec<Location>, RpcError> {
    // A typed call: the marker `all_locations` carries address and types.
    let all = ctx.call::<all_locations>(NoArgs).await?;
    Ok(all
        .into_iter()
        .filter(|l| {
            args.contains
                .as_ref()
                .is_none_or(|c| l.name.contains(c.as_str()))
        })
        .collect())
}

#[tokio::main]
async fn main() -> Result<(), rpc_runtime::Error> {
    // The authenticator checks bearer tokens for `auth` procedures.
    let server = Server::builder()
        .name("quickstart")
        .http("127.0.0.1:9876")
        .authenticator(|token: String| async move {
            if token == "demo-token" {
                Ok("user-1".to_owned())
            } else {
                Err(RpcError::unauthorized("unknown token"))
            }
        })
        .build()?;
    let running = server.start().await?;
    let url = format!(
        "http://{}",
        running
            .http_addr()
            .map_or_else(String::new, |a| a.to_string())
    );
    println!("serving on {url} (Ctrl-C stops)\n\ntry:");
    for body in [
        r#"{"procedure":"add","scope":"math","args":{"a":2,"b":3}}"#,
        r#"{"procedure":"add","scope":"math","args":{"a":"2"}}"#,
        r#"{"procedure":"login","scope":"auth","args":{"email":"test@test.com","password":"secret"},"correlationId":"c-1"}"#,
        r#"{"procedure":"me","scope":"auth","identity":{"authorization":"Bearer demo-token","deviceName":"curl"}}"#,
        r#"{"procedure":"list-locations","scope":"geo","args":{"contains":"o"}}"#,
        r#"{"procedure":"all-locations","scope":"geo"}"#,
    ] {
        println!("  curl -s {url}/ -H 'content-type: application/json' -d '{body}'");
    }
    println!("  curl -s {url}/health");
    // Ctrl-C stops taking calls and lets the ones in flight finish.
    let _ = tokio::signal::ctrl_c().await;
    running.shutdown().await
}
