//! The WebSocket gateway over real sockets on loopback: every frame kind,
//! concurrency, the authorization guard, pushes, closes, hooks, the
//! authenticator, every limit, the typed client's reconnect, and a thousand
//! connections at once.

use rpc_runtime::{ConnectionInfo, Identity, RpcError, Server, ServerBuilder, WsClient};
use rpc_tests::raw::{self, Socket};

async fn identify(socket: &mut Socket, user: &str) {
    raw::send(
        socket,
        json!({"identity": {"authorization": format!("Bearer t-{user}")}}),
    )
    .await;
    assert_eq!(raw::recv(socket).await["code"], json!(200));
}
use rpc_tests::{eventually, start};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

mod procs {
    use rpc_runtime::{Caller, Context, JsonSchema, RpcError, rpc};
    use serde::{Deserialize, Serialize};
    use serde_json::{Value, json};

    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct Sleep {
        pub ms: u64,
    }

    /// Sleeps, then answers how long.
    #[rpc(procedure = "sleep", scope = "ws")]
    pub async fn sleep(args: Sleep) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(args.ms)).await;
        args.ms
    }

    /// What the handler sees of its call.
    #[rpc(procedure = "whoami", scope = "ws")]
    pub async fn whoami(ctx: Context) -> Value {
        json!({ "identity": ctx.identity(), "userId": ctx.user_id(), "caller": ctx.caller() })
    }

    /// Pushes a message to the caller's own connection through the
    /// server handle of its context.
    #[rpc(procedure = "push-me", scope = "ws")]
    pub async fn push_me(ctx: Context) -> Result<bool, RpcError> {
        let Caller::Client {
            connection_id: Some(id),
            ..
        } = ctx.caller()
        else {
            return Err(RpcError::bad_request("call over WebSocket"));
        };
        let server = ctx.server().ok_or_else(RpcError::internal)?;
        Ok(server.send_to_connection(id, json!({ "hello": id })))
    }

    /// Needs an authenticated identity.
    #[rpc(procedure = "private", scope = "ws", auth)]
    pub async fn private(ctx: Context) -> Option<String> {
        ctx.user_id().map(str::to_owned)
    }
}

/// Tokens `t-<user>` belong to `<user>`; everything else is refused.
fn with_users(builder: ServerBuilder) -> ServerBuilder {
    builder.authenticator(|token: String| async move {
        token
            .strip_prefix("t-")
            .map(str::to_owned)
            .ok_or_else(|| RpcError::unauthorized("unknown token"))
    })
}

fn url(server: &rpc_runtime::RunningServer) -> String {
    format!("ws://{}/", server.http_addr().expect("http"))
}

#[tokio::test]
async fn identity_frames_are_acknowledged_and_held() {
    let server = start(Server::builder()).await;
    let mut socket = raw::connect(server.http_addr().expect("http")).await;
    raw::send(&mut socket, json!({"identity": {"authorization": "Bearer a", "deviceName": "ios"}, "correlationId": "id-1"})).await;
    assert_eq!(
        raw::recv(&mut socket).await,
        json!({"code": 200, "success": true, "correlationId": "id-1"})
    );
    raw::send(
        &mut socket,
        json!({"procedure": "whoami", "scope": "ws", "correlationId": 2}),
    )
    .await;
    let response = raw::recv(&mut socket).await;
    assert_eq!(response["correlationId"], json!(2));
    assert_eq!(
        response["data"]["identity"],
        json!({"authorization": "Bearer a", "deviceName": "ios"})
    );
    assert_eq!(response["data"]["caller"]["transport"], json!("websocket"));
    // A call that carries its own identity replaces the held one (same authorization).
    raw::send(&mut socket, json!({"procedure": "whoami", "scope": "ws", "identity": {"authorization": "Bearer a", "deviceName": "web"}})).await;
    assert_eq!(
        raw::recv(&mut socket).await["data"]["identity"]["deviceName"],
        json!("web")
    );
    raw::send(&mut socket, json!({"procedure": "whoami", "scope": "ws"})).await;
    assert_eq!(
        raw::recv(&mut socket).await["data"]["identity"]["deviceName"],
        json!("web")
    );
}

#[tokio::test]
async fn a_changed_authorization_disconnects() {
    let server = start(Server::builder()).await;
    let mut socket = raw::connect(server.http_addr().expect("http")).await;
    raw::send(
        &mut socket,
        json!({"identity": {"authorization": "Bearer a"}}),
    )
    .await;
    assert_eq!(raw::recv(&mut socket).await["code"], json!(200));
    raw::send(
        &mut socket,
        json!({"identity": {"authorization": "Bearer b"}, "correlationId": "x"}),
    )
    .await;
    let response = raw::recv(&mut socket).await;
    assert_eq!(
        response,
        json!({"code": 400, "success": false, "correlationId": "x",
               "message": "identity.authorization has changed - disconnecting websocket connection"})
    );
    assert_eq!(raw::closed(&mut socket).await, Some(CloseCode::Policy));
    eventually("the connection to be dropped", || {
        server.handle().connection_count() == 0
    })
    .await;
}

#[tokio::test]
async fn calls_run_concurrently_and_answer_out_of_order() {
    let server = start(Server::builder()).await;
    let mut socket = raw::connect(server.http_addr().expect("http")).await;
    raw::send(
        &mut socket,
        json!({"procedure": "sleep", "scope": "ws", "args": {"ms": 400}, "correlationId": "slow"}),
    )
    .await;
    raw::send(
        &mut socket,
        json!({"procedure": "sleep", "scope": "ws", "args": {"ms": 1}, "correlationId": "fast"}),
    )
    .await;
    let first = raw::recv(&mut socket).await;
    let second = raw::recv(&mut socket).await;
    assert_eq!(
        (first["correlationId"].clone(), first["data"].clone()),
        (json!("fast"), json!(1))
    );
    assert_eq!(
        (second["correlationId"].clone(), second["data"].clone()),
        (json!("slow"), json!(400))
    );

    // Through the typed client: 20 concurrent calls on one connection take
    // about as long as one.
    let client = WsClient::connect(url(&server)).await.expect("client");
    let started = std::time::Instant::now();
    let calls = (0..20).map(|_| client.call::<procs::sleep>(procs::Sleep { ms: 300 }));
    let results = futures_util::future::join_all(calls).await;
    assert!(
        results.iter().all(|r| r.as_ref().ok() == Some(&300)),
        "{results:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(3_000),
        "calls ran one after another"
    );
}

#[tokio::test]
async fn malformed_frames_get_400_and_the_connection_stays() {
    let server = start(Server::builder()).await;
    let mut socket = raw::connect(server.http_addr().expect("http")).await;
    for (frame, expected) in [
        (Message::Text("not json".into()), "not valid JSON"),
        (Message::Text("\"text\"".into()), "must be a JSON object"),
        (Message::Text("{}".into()), "procedure is required"),
        (
            Message::Binary(vec![1u8, 2, 3].into()),
            "binary frames are not supported",
        ),
    ] {
        raw::send_message(&mut socket, frame).await;
        let response = raw::recv(&mut socket).await;
        assert_eq!(response["code"], json!(400));
        assert!(
            response["message"]
                .as_str()
                .unwrap_or_default()
                .contains(expected),
            "{response}"
        );
    }
    raw::send(&mut socket, json!({"procedure": 5, "correlationId": "bad"})).await;
    assert_eq!(raw::recv(&mut socket).await["correlationId"], json!("bad"));
    raw::send(
        &mut socket,
        json!({"procedure": "missing", "correlationId": 1}),
    )
    .await;
    assert_eq!(raw::recv(&mut socket).await["code"], json!(404));
    raw::send(
        &mut socket,
        json!({"procedure": "sleep", "scope": "ws", "args": {"ms": "x"}}),
    )
    .await;
    assert_eq!(raw::recv(&mut socket).await["code"], json!(422));
    raw::send(
        &mut socket,
        json!({"procedure": "sleep", "scope": "ws", "args": {"ms": 1}}),
    )
    .await;
    assert_eq!(raw::recv(&mut socket).await["data"], json!(1));
}

#[tokio::test]
async fn client_messages_reach_the_hook_without_a_reply() {
    let seen: Arc<Mutex<Vec<(ConnectionInfo, Value)>>> = Arc::default();
    let sink = seen.clone();
    let server = start(
        Server::builder().on_client_message(move |connection, message| {
            sink.lock()
                .expect("lock")
                .push((connection.clone(), message.clone()));
        }),
    )
    .await;
    let mut socket = raw::connect(server.http_addr().expect("http")).await;
    raw::send(
        &mut socket,
        json!({"identity": {"authorization": "Bearer m"}}),
    )
    .await;
    raw::recv(&mut socket).await;
    raw::send(&mut socket, json!({"clientMessage": {"typing": true}})).await;
    raw::send(
        &mut socket,
        json!({"procedure": "sleep", "scope": "ws", "args": {"ms": 0}, "correlationId": "after"}),
    )
    .await;
    // The next frame is the call's answer: the client message got none.
    assert_eq!(
        raw::recv(&mut socket).await["correlationId"],
        json!("after")
    );
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, json!({"typing": true}));
    assert_eq!(
        seen[0].0.identity,
        Some(Identity::with_authorization("Bearer m"))
    );
    assert_eq!(seen[0].0.ip.to_string(), "127.0.0.1");
    assert_eq!(seen[0].0.id.len(), 36);
}

#[tokio::test]
async fn pushes_reach_one_connection_a_user_or_everyone() {
    let server = start(with_users(Server::builder())).await;
    let handle = server.handle();
    let connect = |user: &str| {
        WsClient::builder(url(&server))
            .identity(Identity::with_authorization(format!("Bearer t-{user}")))
            .connect()
    };
    let ann_phone = connect("ann").await.expect("ann 1");
    let ann_laptop = connect("ann").await.expect("ann 2");
    let bob = connect("bob").await.expect("bob");
    let (mut ann1, mut ann2, mut bob_rx) = (
        ann_phone.server_messages(),
        ann_laptop.server_messages(),
        bob.server_messages(),
    );
    assert_eq!(handle.connection_count(), 3);

    assert_eq!(handle.send_to_user("ann", json!({"n": 1})), 2);
    assert_eq!(ann1.next().await, Some(json!({"n": 1})));
    assert_eq!(ann2.next().await, Some(json!({"n": 1})));

    assert_eq!(
        handle.send_to_users(["ann", "bob", "nobody"], json!({"n": 2})),
        3
    );
    assert_eq!(handle.broadcast(json!({"n": 3})), 3);
    let bob_id = handle
        .connections()
        .into_iter()
        .find(|c| c.user_id.as_deref() == Some("bob"))
        .expect("bob is listed")
        .id;
    assert!(handle.send_to_connection(&bob_id, json!({"n": 4})));
    assert!(!handle.send_to_connection("no-such-connection", json!({"n": 5})));
    for expected in [2, 3, 4] {
        assert_eq!(bob_rx.next().await, Some(json!({"n": expected})));
    }
    for expected in [2, 3] {
        assert_eq!(ann1.next().await, Some(json!({"n": expected})));
    }

    // From a handler, through its context.
    let mut own = bob.server_messages();
    assert_eq!(
        bob.call::<procs::push_me>(rpc_runtime::NoArgs).await,
        Ok(true)
    );
    assert_eq!(own.next().await, Some(json!({"hello": bob_id})));
}

#[tokio::test]
async fn the_server_closes_one_a_user_or_all() {
    let server = start(with_users(Server::builder())).await;
    let handle = server.handle();
    let addr = server.http_addr().expect("http");
    let mut sockets = Vec::new();
    for user in ["ann", "ann", "bob", "cy"] {
        let mut socket = raw::connect(addr).await;
        identify(&mut socket, user).await;
        sockets.push(socket);
    }
    let cy = handle
        .connections()
        .into_iter()
        .find(|c| c.user_id.as_deref() == Some("cy"))
        .expect("cy");
    assert!(handle.close_connection(&cy.id));
    assert_eq!(raw::closed(&mut sockets[3]).await, Some(CloseCode::Normal));
    assert_eq!(handle.close_user("ann"), 2);
    assert_eq!(raw::closed(&mut sockets[0]).await, Some(CloseCode::Normal));
    assert_eq!(raw::closed(&mut sockets[1]).await, Some(CloseCode::Normal));
    eventually("one connection left", || handle.connection_count() == 1).await;
    assert_eq!(handle.close_all(), 1);
    assert_eq!(raw::closed(&mut sockets[2]).await, Some(CloseCode::Away));
    eventually("no connection left", || handle.connection_count() == 0).await;
}

#[tokio::test]
async fn every_hook_gets_its_payload() {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log.clone());
    let describe = |c: &ConnectionInfo| {
        format!(
            "{}|{:?}|{:?}|{}",
            c.id.len(),
            c.user_id,
            c.identity.as_ref().and_then(|i| i.device_name.clone()),
            c.ip
        )
    };
    let server = start(
        with_users(Server::builder())
            .on_connect(move |c| {
                a.lock()
                    .expect("lock")
                    .push(format!("connect {}", describe(c)))
            })
            .on_identity_change(move |c| {
                b.lock()
                    .expect("lock")
                    .push(format!("identity {}", describe(c)))
            })
            .on_client_message(move |c_info, message| {
                c.lock()
                    .expect("lock")
                    .push(format!("message {} {message}", describe(c_info)));
            })
            .on_disconnect(move |c| {
                d.lock()
                    .expect("lock")
                    .push(format!("disconnect {}", describe(c)))
            }),
    )
    .await;
    let mut socket = raw::connect(server.http_addr().expect("http")).await;
    raw::send(
        &mut socket,
        json!({"identity": {"authorization": "Bearer t-ann", "deviceName": "ios"}}),
    )
    .await;
    raw::recv(&mut socket).await;
    raw::send(&mut socket, json!({"clientMessage": "hi"})).await;
    socket.close(None).await.expect("close");
    eventually("the disconnect hook", || {
        log.lock().expect("lock").len() == 4
    })
    .await;
    let log = log.lock().expect("lock").clone();
    assert_eq!(
        log,
        vec![
            "connect 36|None|None|127.0.0.1".to_owned(),
            "identity 36|Some(\"ann\")|Some(\"ios\")|127.0.0.1".to_owned(),
            "message 36|Some(\"ann\")|Some(\"ios\")|127.0.0.1 \"hi\"".to_owned(),
            "disconnect 36|Some(\"ann\")|Some(\"ios\")|127.0.0.1".to_owned(),
        ]
    );
}

#[tokio::test]
async fn the_authenticator_guards_upgrades_and_identity_frames() {
    let server = start(with_users(Server::builder())).await;
    let addr = server.http_addr().expect("http");
    // Refused at upgrade: header or query token.
    let refused = WsClient::builder(url(&server))
        .token("bad")
        .connect()
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), 401);
    let refused = WsClient::connect(format!("ws://{addr}/?token=bad"))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), 401);
    // Accepted at upgrade: the user id reaches handlers.
    let ann = WsClient::builder(url(&server))
        .token("t-ann")
        .connect()
        .await
        .expect("accepted");
    assert_eq!(
        ann.call::<procs::private>(rpc_runtime::NoArgs).await,
        Ok(Some("ann".into()))
    );
    let query = WsClient::connect(format!("ws://{addr}/?token=t-bob"))
        .await
        .expect("accepted");
    let seen = query
        .call::<procs::whoami>(rpc_runtime::NoArgs)
        .await
        .expect("whoami");
    assert_eq!(seen["identity"]["authorization"], json!("Bearer t-bob"));
    // Identity frames are checked too: 401, and the connection stays open.
    let mut socket = raw::connect(addr).await;
    raw::send(
        &mut socket,
        json!({"identity": {"authorization": "Bearer nope"}, "correlationId": 1}),
    )
    .await;
    let response = raw::recv(&mut socket).await;
    assert_eq!(
        (response["code"].clone(), response["message"].clone()),
        (json!(401), json!("unknown token"))
    );
    raw::send(&mut socket, json!({"procedure": "whoami", "scope": "ws"})).await;
    assert_eq!(
        raw::recv(&mut socket).await["data"]["identity"],
        Value::Null
    );

    // A server may require a token to connect at all.
    let strict = start(with_users(Server::builder()).ws_require_token(true)).await;
    assert_eq!(
        WsClient::connect(url(&strict))
            .await
            .expect_err("no token")
            .code(),
        401
    );
    assert!(
        WsClient::builder(url(&strict))
            .token("t-cy")
            .connect()
            .await
            .is_ok()
    );

    // And may restrict origins.
    let guarded = start(Server::builder().ws_allowed_origins(["https://app.example"])).await;
    let request = |origin: &'static str| {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url(&guarded).into_client_request().expect("request");
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("header"));
        tokio_tungstenite::connect_async(request)
    };
    assert!(request("https://app.example").await.is_ok());
    assert!(request("https://evil.example").await.is_err());
}

#[tokio::test]
async fn oversized_frames_get_413_and_close_1009() {
    let server = start(Server::builder().ws_frame_limit(1024)).await;
    let mut socket = raw::connect(server.http_addr().expect("http")).await;
    raw::send(
        &mut socket,
        json!({"procedure": "sleep", "scope": "ws", "args": {"pad": "x".repeat(4096)}}),
    )
    .await;
    let response = raw::recv(&mut socket).await;
    assert_eq!(response["code"], json!(413));
    assert_eq!(raw::closed(&mut socket).await, Some(CloseCode::Size));
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_gets_400_then_close_1007() {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let server = start(Server::builder()).await;
    let addr = server.http_addr().expect("http");
    let mut socket = raw::connect(addr).await;
    let frame = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    raw::send_message(&mut socket, Message::Frame(frame)).await;
    let response = raw::recv(&mut socket).await;
    assert_eq!(response["code"], json!(400), "{response}");
    assert_eq!(response["message"], "a text frame must be valid UTF-8");
    assert_eq!(raw::closed(&mut socket).await, Some(CloseCode::Invalid));
    // The server is still up for others.
    let mut other = raw::connect(addr).await;
    raw::send(
        &mut other,
        json!({"procedure": "nothing", "correlationId": 1}),
    )
    .await;
    assert!(raw::recv(&mut other).await["code"].is_number());
}

#[tokio::test]
async fn calls_in_flight_are_capped_with_429() {
    let server = start(Server::builder().ws_max_in_flight(4)).await;
    let mut socket = raw::connect(server.http_addr().expect("http")).await;
    for i in 0..6 {
        raw::send(
            &mut socket,
            json!({"procedure": "sleep", "scope": "ws", "args": {"ms": 300}, "correlationId": i}),
        )
        .await;
    }
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(
            raw::recv(&mut socket).await["code"]
                .as_u64()
                .unwrap_or_default(),
        );
    }
    codes.sort_unstable();
    assert_eq!(codes, vec![200, 200, 200, 200, 429, 429]);
    // Once they finish, calls are accepted again.
    raw::send(
        &mut socket,
        json!({"procedure": "sleep", "scope": "ws", "args": {"ms": 1}}),
    )
    .await;
    assert_eq!(raw::recv(&mut socket).await["code"], json!(200));
}

#[tokio::test]
async fn silent_clients_are_closed_and_live_ones_kept() {
    let server = start(
        Server::builder().ws_keep_alive(Duration::from_millis(100), Duration::from_millis(400)),
    )
    .await;
    let addr = server.http_addr().expect("http");
    // This one never reads, so it never answers the pings.
    let mut silent = raw::connect(addr).await;
    // This one reads all the time, answering pings with pongs.
    let live = WsClient::connect(url(&server)).await.expect("live");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(raw::closed(&mut silent).await, Some(CloseCode::Away));
    assert_eq!(
        live.call::<procs::sleep>(procs::Sleep { ms: 1 }).await,
        Ok(1)
    );
    assert_eq!(live.connections_made(), 1);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off() {
    let server =
        start(Server::builder().ws_outbound_limit(64 * 1024, Duration::from_millis(500))).await;
    let handle = server.handle();
    let socket = raw::connect(server.http_addr().expect("http")).await;
    eventually("the connection to be listed", || {
        handle.connection_count() == 1
    })
    .await;
    let id = handle.connections()[0].id.clone();
    let chunk = "x".repeat(16 * 1024);
    let mut refused = false;
    // Far more than the socket buffers and the 64 KiB queue can hold.
    for _ in 0..10_000 {
        if !handle.send_to_connection(&id, &chunk) {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "the queue never filled");
    eventually("the slow connection to be dropped", || {
        handle.connection_count() == 0
    })
    .await;
    drop(socket);
}

#[tokio::test]
async fn shutting_down_answers_the_calls_in_flight_then_closes_1001() {
    let server = start(Server::builder()).await;
    let handle = server.handle();
    let mut socket = raw::connect(server.http_addr().expect("http")).await;
    raw::send(
        &mut socket,
        json!({"procedure": "sleep", "scope": "ws", "args": {"ms": 300}, "correlationId": "slow"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopping = tokio::spawn(server.shutdown());
    let answer = raw::recv(&mut socket).await;
    assert_eq!(
        (answer["code"].clone(), answer["correlationId"].clone()),
        (json!(200), json!("slow")),
        "{answer}"
    );
    assert_eq!(raw::closed(&mut socket).await, Some(CloseCode::Away));
    stopping.await.expect("joined").expect("clean shutdown");
    assert_eq!(
        handle.connection_count(),
        0,
        "shutdown waited for the connection"
    );
}

#[tokio::test]
async fn a_panicking_hook_takes_down_neither_the_connection_nor_the_server() {
    let server = start(
        Server::builder()
            .on_connect(|_| panic!("a faulty connect hook"))
            .on_client_message(|_, _| panic!("a faulty message hook"))
            .on_event(|_| panic!("a faulty event hook")),
    )
    .await;
    let mut socket = raw::connect(server.http_addr().expect("http")).await;
    raw::send(&mut socket, json!({"clientMessage": "boom"})).await;
    raw::send(
        &mut socket,
        json!({"procedure": "sleep", "scope": "ws", "args": {"ms": 1}, "correlationId": 1}),
    )
    .await;
    assert_eq!(raw::recv(&mut socket).await["code"], json!(200));
    let http = rpc_tests::Http::new(server.http_addr().expect("http"));
    let (status, _) = http
        .call(json!({"procedure": "sleep", "scope": "ws", "args": {"ms": 1}}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(server.handle().connection_count(), 1);
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown in time")
        .expect("clean shutdown");
    assert_eq!(raw::closed(&mut socket).await, Some(CloseCode::Away));
}

#[tokio::test]
async fn a_panicking_authenticator_answers_500_and_breaks_nothing() {
    let server = start(Server::builder().authenticator(|token: String| async move {
        if token.is_empty() {
            return Ok(token);
        }
        panic!("a faulty authenticator")
    }))
    .await;
    let addr = server.http_addr().expect("http");
    let private =
        json!({"procedure": "private", "scope": "ws", "identity": {"authorization": "Bearer x"}});
    let (status, body) = rpc_tests::Http::new(addr).call(private.clone()).await;
    assert_eq!(status, 500, "{body}");
    let mut socket = raw::connect(addr).await;
    raw::send(
        &mut socket,
        json!({"identity": {"authorization": "Bearer x"}}),
    )
    .await;
    assert_eq!(raw::recv(&mut socket).await["code"], json!(500));
    raw::send(
        &mut socket,
        json!({"procedure": "sleep", "scope": "ws", "args": {"ms": 1}}),
    )
    .await;
    assert_eq!(raw::recv(&mut socket).await["code"], json!(200));
    let (status, _) = rpc_tests::Http::new(addr).call(private).await;
    assert_eq!(status, 500, "the server still answers");
}

#[tokio::test]
async fn the_client_reconnects_and_sets_its_identity_again() {
    let identities: Arc<Mutex<Vec<Option<Identity>>>> = Arc::default();
    let sink = identities.clone();
    let server = start(
        Server::builder()
            .on_identity_change(move |c| sink.lock().expect("lock").push(c.identity.clone())),
    )
    .await;
    let identity = Identity::with_authorization("Bearer keep").device_name("cli");
    let client = WsClient::builder(url(&server))
        .identity(identity.clone())
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect()
        .await
        .expect("connect");
    assert_eq!(client.connections_made(), 1);
    let seen = client
        .call::<procs::whoami>(rpc_runtime::NoArgs)
        .await
        .expect("whoami");
    assert_eq!(seen["identity"]["deviceName"], json!("cli"));

    server.handle().close_all();
    // A call made while reconnecting waits for the identity to be set again.
    let seen = client.call::<procs::whoami>(rpc_runtime::NoArgs).await;
    let seen = match seen {
        Ok(seen) => seen,
        // It may have been sent just before the close was noticed.
        Err(error) if error.code() == 503 => {
            client.wait_for_connections(2).await;
            client
                .call::<procs::whoami>(rpc_runtime::NoArgs)
                .await
                .expect("whoami")
        }
        Err(error) => panic!("{error}"),
    };
    assert_eq!(seen["identity"]["authorization"], json!("Bearer keep"));
    assert_eq!(client.connections_made(), 2);
    assert_eq!(
        identities.lock().expect("lock").clone(),
        vec![Some(identity.clone()), Some(identity)]
    );

    // Setting an identity through the client waits for the server's answer.
    let refused = client
        .set_identity(Identity::with_authorization("Bearer other"))
        .await;
    assert_eq!(refused.map_err(|e| e.code()), Err(400));
}

#[tokio::test]
async fn a_thousand_connections_make_calls_without_error() {
    let server = start(Server::builder()).await;
    let target = url(&server);
    let tasks: Vec<_> = (0..1_000u64)
        .map(|i| {
            let target = target.clone();
            tokio::spawn(async move {
                let client = WsClient::builder(target)
                    .identity(Identity::with_authorization(format!("Bearer user-{i}")))
                    .connect()
                    .await?;
                for n in 0..5 {
                    let slept = client
                        .call::<procs::sleep>(procs::Sleep { ms: (i + n) % 3 })
                        .await?;
                    if slept != (i + n) % 3 {
                        return Err(RpcError::internal());
                    }
                }
                let seen = client.call::<procs::whoami>(rpc_runtime::NoArgs).await?;
                if seen["identity"]["authorization"] != json!(format!("Bearer user-{i}")) {
                    return Err(RpcError::internal());
                }
                Ok::<_, RpcError>(client)
            })
        })
        .collect();
    let mut clients = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        match task.await.expect("joined") {
            Ok(client) => clients.push(client),
            Err(error) => errors.push(error),
        }
    }
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(server.handle().connection_count(), 1_000);
}

#[tokio::test]
async fn the_typed_clients_call_and_send_client_messages() {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = seen.clone();
    let server = start(
        with_users(Server::builder())
            .on_client_message(move |_, message| sink.lock().expect("lock").push(message.clone())),
    )
    .await;
    let addr = server.http_addr().expect("http");

    // Over HTTP: typed output, typed error, identity in every call.
    let http = rpc_runtime::HttpClient::new(format!("http://{addr}"));
    assert_eq!(
        http.call::<procs::sleep>(procs::Sleep { ms: 2 }).await,
        Ok(2)
    );
    let refused = http
        .call::<procs::private>(rpc_runtime::NoArgs)
        .await
        .expect_err("no identity");
    assert_eq!(refused.code(), 401);
    let invalid = http
        .call_json(
            rpc_runtime::Address::new("ws", "sleep", "1"),
            json!({"ms": -1}),
        )
        .await
        .expect_err("invalid");
    assert_eq!(
        (invalid.code(), invalid.errors()[0].path.as_str()),
        (422, "/ms")
    );
    let http = http.with_identity(Identity::with_authorization("Bearer t-dan"));
    assert_eq!(
        http.call::<procs::private>(rpc_runtime::NoArgs).await,
        Ok(Some("dan".into()))
    );

    // Over WebSocket: client messages reach the hook.
    let ws = WsClient::connect(format!("ws://{addr}/"))
        .await
        .expect("ws");
    ws.send_client_message(json!({"typing": true}))
        .expect("sent");
    ws.send_client_message("done").expect("sent");
    eventually("both client messages", || {
        seen.lock().expect("lock").len() == 2
    })
    .await;
    assert_eq!(
        seen.lock().expect("lock").clone(),
        vec![json!({"typing": true}), json!("done")]
    );
    // A server that is gone answers 503.
    ws.close();
    let closed = ws
        .call::<procs::sleep>(procs::Sleep { ms: 1 })
        .await
        .expect_err("closed");
    assert_eq!(closed.code(), 503);
}
