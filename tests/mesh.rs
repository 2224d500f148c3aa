//! The mesh over the real RabbitMQ: two gateways with WebSocket clients
//! and a handler server without connections. Pushes and closes from the
//! handler server (and from a gateway) reach the connections on every
//! gateway, a push to a user reaches only the gateways that hold that user
//! (counted in AMQP messages received), presence counts the mesh's
//! connections and forgets a gateway that stops, and client messages and
//! connection events reach the handler server's hook, which answers with a
//! push to that connection.

use futures_util::SinkExt;
use rpc_runtime::{MeshEvent, MeshEventKind, RpcError, RunningServer, Server, ServerBuilder};
use rpc_tests::raw::{self, Socket};
use rpc_tests::{Http, eventually, rabbitmq_uri};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

mod procs {
    use rpc_runtime::{Context, JsonSchema, rpc};
    use serde::{Deserialize, Serialize};

    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct Notify {
        pub user: String,
        pub text: String,
    }

    /// Pushes to a user's connections, wherever they are; returns what
    /// this (handler) server counts of them.
    #[rpc(procedure = "notify", scope = "mesh")]
    pub async fn notify(args: Notify, ctx: Context) -> usize {
        ctx.server().map_or(0, |server| {
            server.send_to_user(&args.user, serde_json::json!({"text": args.text}))
        })
    }
}

fn unique(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn with_auth(builder: ServerBuilder) -> ServerBuilder {
    builder.authenticator(|token: String| async move {
        match token.strip_prefix("t-") {
            Some(user) => Ok(user.to_owned()),
            None => Err(RpcError::unauthorized("unknown token")),
        }
    })
}

async fn gateway(name: &str, forward_events: bool) -> RunningServer {
    with_auth(Server::builder())
        .name(unique(name))
        .http("127.0.0.1:0")
        .host_none()
        .broker(rabbitmq_uri())
        .announce_interval(Duration::from_millis(300))
        .mesh_client_messages(forward_events)
        .mesh_connection_events(forward_events)
        .build()
        .expect("builds")
        .start()
        .await
        .expect("starts")
}

async fn connect(server: &RunningServer, user: &str) -> Socket {
    let addr = server.http_addr().expect("http");
    tokio_tungstenite::connect_async(format!("ws://{addr}/?token=t-{user}"))
        .await
        .expect("connects")
        .0
}

/// The next server message, within 5 s.
async fn pushed(socket: &mut Socket) -> Value {
    loop {
        let frame = raw::recv(socket).await;
        if let Some(message) = frame.get("serverMessage") {
            return message.clone();
        }
    }
}

/// Nothing arrives within 300 ms.
async fn quiet(socket: &mut Socket) {
    use futures_util::StreamExt;
    let next = tokio::time::timeout(Duration::from_millis(300), socket.next()).await;
    assert!(
        matches!(
            next,
            Err(_) | Ok(Some(Ok(Message::Ping(_) | Message::Pong(_))))
        ),
        "expected nothing, got {next:?}"
    );
}

async fn orders_received(server: &RunningServer) -> f64 {
    let metrics = Http::new(server.http_addr().expect("http"))
        .get_text("/metrics")
        .await;
    rpc_tests::metric(&metrics, "rpc_mesh_orders_received_total").unwrap_or(0.0)
}

#[tokio::test]
async fn pushes_presence_and_events_cross_every_gateway() {
    let events: Arc<Mutex<Vec<MeshEvent>>> = Arc::default();
    let seen = events.clone();
    let handler = with_auth(Server::builder())
        .name(unique("mesh-handler"))
        .websocket(false)
        .host(|address| address.scope == "mesh")
        .broker(rabbitmq_uri())
        .announce_interval(Duration::from_millis(300))
        .on_mesh_event(move |event, server| {
            seen.lock().expect("lock").push(event.clone());
            if event.kind == MeshEventKind::Message {
                server.send_to_connection(&event.connection_id, json!({"echo": event.message}));
            }
        })
        .build()
        .expect("builds")
        .start()
        .await
        .expect("starts");
    let g1 = gateway("mesh-g1", true).await;
    let g2 = gateway("mesh-g2", false).await;
    // A third gateway, with an anonymous connection only.
    let g3 = gateway("mesh-g3", false).await;
    let mut anonymous = raw::connect(g3.http_addr().expect("http")).await;
    let mut alice1 = connect(&g1, "alice").await;
    let mut alice2 = connect(&g2, "alice").await;
    let mut bob = connect(&g2, "bob").await;
    let server = handler.handle();

    // Presence: the handler server, which holds no connection, counts the
    // mesh's.
    eventually("presence reports from the three gateways", || {
        server.user_connection_count("alice") == 2
            && server.user_connection_count("bob") == 1
            && server.mesh_connection_count() == 4
    })
    .await;
    assert!(server.is_user_connected("bob"));
    assert!(!server.is_user_connected("carol"));

    // A procedure on the handler server pushes to alice, on both gateways.
    let http = Http::new(g1.http_addr().expect("http"));
    eventually("the gateway to hear of mesh/notify", || {
        g1.procedures().iter().any(|p| p.address.scope == "mesh")
    })
    .await;
    let (status, body) = http
        .call(json!({"scope": "mesh", "procedure": "notify", "args": {"user": "alice", "text": "hi"}}))
        .await;
    assert_eq!((status, body["data"].clone()), (200, json!(0)), "{body}");
    assert_eq!(pushed(&mut alice1).await, json!({"text": "hi"}));
    assert_eq!(pushed(&mut alice2).await, json!({"text": "hi"}));
    quiet(&mut bob).await;

    // A push to bob, who is only on g2 of the three gateways, is one AMQP
    // message, delivered to g2 only.
    let before = (
        orders_received(&g1).await,
        orders_received(&g2).await,
        orders_received(&g3).await,
    );
    assert_eq!(server.send_to_user("bob", json!("for bob")), 0);
    assert_eq!(pushed(&mut bob).await, json!("for bob"));
    quiet(&mut alice1).await;
    quiet(&mut anonymous).await;
    assert_eq!(
        orders_received(&g3).await,
        before.2,
        "g3 received no message for bob"
    );
    assert_eq!(
        orders_received(&g1).await,
        before.0,
        "g1 received no message for bob"
    );
    assert_eq!(
        orders_received(&g2).await,
        before.1 + 1.0,
        "g2 received one"
    );

    // A broadcast reaches everyone; a push to a connection reaches it; a
    // gateway's push to its own and the other gateway's connections.
    server.broadcast(json!("all"));
    for socket in [&mut alice1, &mut alice2, &mut bob, &mut anonymous] {
        assert_eq!(pushed(socket).await, json!("all"));
    }
    let bob_id = g2
        .handle()
        .connections()
        .into_iter()
        .find(|c| c.user_id.as_deref() == Some("bob"))
        .expect("bob")
        .id;
    assert!(server.send_to_connection(&bob_id, json!("direct")));
    assert_eq!(pushed(&mut bob).await, json!("direct"));
    assert_eq!(g1.handle().send_to_user("alice", json!("from g1")), 1);
    assert_eq!(pushed(&mut alice1).await, json!("from g1"));
    assert_eq!(pushed(&mut alice2).await, json!("from g1"));

    // A client message on g1 reaches the handler server's hook with who
    // sent it, and its answer comes back to that connection.
    alice1
        .send(Message::Text(
            json!({"clientMessage": {"typing": true}})
                .to_string()
                .into(),
        ))
        .await
        .expect("send");
    assert_eq!(pushed(&mut alice1).await, json!({"echo": {"typing": true}}));
    let message = events
        .lock()
        .expect("lock")
        .iter()
        .find(|e| e.kind == MeshEventKind::Message)
        .cloned()
        .expect("the event");
    assert_eq!(message.user_id.as_deref(), Some("alice"));
    assert_eq!(message.gateway, unique("mesh-g1"));
    assert!(message.ip.is_loopback());
    assert!(
        events
            .lock()
            .expect("lock")
            .iter()
            .any(|e| e.kind == MeshEventKind::Connect),
        "g1 forwards connection events"
    );

    // Closing bob from the handler server closes his connection on g2.
    server.close_user("bob");
    assert_eq!(
        raw::closed(&mut bob).await,
        Some(tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal)
    );

    // A gateway that stops is forgotten at once (its goodbye); alice's
    // connection there no longer counts.
    drop(alice2);
    g2.shutdown().await.expect("g2 stops");
    eventually("g2 to be forgotten", || {
        server.user_connection_count("alice") == 1 && server.mesh_connection_count() == 2
    })
    .await;
    g3.shutdown().await.expect("g3 stops");
    g1.shutdown().await.expect("g1 stops");
    handler.shutdown().await.expect("handler stops");
}

/// A connection is reachable from every server as soon as its handshake
/// (or its identity's answer) arrives: a push sent by another gateway
/// right then is not lost to a routing key the broker has yet to bind.
#[tokio::test]
async fn a_connection_is_reachable_from_the_mesh_once_open() {
    let g1 = gateway("mesh-open-g1", false).await;
    let g2 = gateway("mesh-open-g2", false).await;
    let sender = g1.handle();
    for round in 0..20 {
        // Identified in the handshake.
        let user = format!("open-{round}");
        let mut socket = connect(&g2, &user).await;
        assert_eq!(sender.send_to_user(&user, json!(round)), 0);
        assert_eq!(pushed(&mut socket).await, json!(round), "{user}");

        // Identified by a frame, once the connection is open.
        let user = format!("later-{round}");
        let mut socket = raw::connect(g2.http_addr().expect("http")).await;
        raw::send(
            &mut socket,
            json!({"identity": {"authorization": format!("Bearer t-{user}")}, "correlationId": "who"}),
        )
        .await;
        let answer = raw::recv(&mut socket).await;
        assert_eq!(answer["correlationId"], json!("who"), "{answer}");
        assert_eq!(sender.send_to_user(&user, json!(round)), 0);
        assert_eq!(pushed(&mut socket).await, json!(round), "{user}");
    }
    g1.shutdown().await.expect("g1 stops");
    g2.shutdown().await.expect("g2 stops");
}
