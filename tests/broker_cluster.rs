//! A three-node RabbitMQ cluster on this machine (nodes of the test's own,
//! beside the system broker): a gateway and two handler servers given the
//! three nodes' URIs serve calls under load; the node they are connected
//! to is killed; every call still gets an answer (200, or 503/504 while
//! the servers move), and calls succeed again within seconds, on the other
//! nodes, without a restart. The outcome counts and the time to recover
//! are printed.

use rpc_runtime::{Address, Server};
use rpc_tests::rabbit::{Node, free_port};
use rpc_tests::{Http, eventually};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod procs {
    use rpc_runtime::{JsonSchema, rpc};
    use serde::{Deserialize, Serialize};

    #[derive(Deserialize, Serialize, JsonSchema)]
    pub struct Work {
        pub n: u64,
    }

    /// Doubles a number, after a short wait.
    #[rpc(procedure = "work", scope = "cl", timeout = "2s")]
    pub async fn work(args: Work) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        args.n * 2
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_lost_under_load_is_survived_without_a_restart() {
    const COOKIE: &str = "RPCCLUSTERCOOKIE";
    let ports = [free_port(), free_port(), free_port()];
    let nodes: Vec<Node> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let config = format!("listeners.tcp.default = {port}\nloopback_users = none\n");
            Node::spawn(&format!("rpcct{}", i + 1), *port, COOKIE, &config)
        })
        .collect();
    for node in &nodes {
        node.wait_running(Duration::from_secs(120));
    }
    nodes[1].join(&nodes[0]);
    nodes[2].join(&nodes[0]);
    let status = nodes[0].ctl(&["cluster_status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    for node in &nodes {
        assert!(
            status.contains(&node.name),
            "{} is in the cluster: {status}",
            node.name
        );
    }

    let uris: Vec<String> = ports
        .iter()
        .map(|port| format!("amqp://guest:guest@127.0.0.1:{port}/%2f"))
        .collect();
    let handler = |name: &str| {
        Server::builder()
            .name(name)
            .broker_nodes(uris.clone())
            .announce_interval(Duration::from_millis(500))
            .host(|address| address.scope == "cl")
            .build()
            .expect("builds")
    };
    let handlers = [
        handler("cl-handler-1").start().await.expect("starts"),
        handler("cl-handler-2").start().await.expect("starts"),
    ];
    let gateway = Server::builder()
        .name("cl-gateway")
        .http("127.0.0.1:0")
        .broker_nodes(uris.clone())
        .host_none()
        .build()
        .expect("builds")
        .start()
        .await
        .expect("starts");
    let work = Address::new("cl", "work", "1");
    eventually("the gateway to hear of cl/work", || {
        gateway.procedures().iter().any(|spec| spec.address == work)
    })
    .await;

    // Eight callers for twelve seconds; the node is killed after three.
    let http = Http::new(gateway.http_addr().expect("http"));
    let outcomes: Arc<Mutex<Vec<(Duration, u16)>>> = Arc::default();
    let begin = Instant::now();
    let callers: Vec<_> = (0..8)
        .map(|caller| {
            let (http, outcomes) = (http.clone(), outcomes.clone());
            tokio::spawn(async move {
                let mut n = caller * 1_000_000;
                while begin.elapsed() < Duration::from_secs(12) {
                    n += 1;
                    let call =
                        http.call(json!({"scope": "cl", "procedure": "work", "args": {"n": n}}));
                    // A call the servers lost must still be answered
                    // within its deadline (2 s) and some slack.
                    let status = match tokio::time::timeout(Duration::from_secs(5), call).await {
                        Ok((status, body)) => {
                            if status == 200 {
                                assert_eq!(body["data"], json!(n * 2));
                            }
                            status
                        }
                        Err(_) => 0,
                    };
                    outcomes
                        .lock()
                        .expect("lock")
                        .push((begin.elapsed(), status));
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed_at = begin.elapsed();
    nodes[0].kill();
    for caller in callers {
        caller.await.expect("caller");
    }

    let outcomes = outcomes.lock().expect("lock").clone();
    let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
    for (_, status) in &outcomes {
        *counts.entry(*status).or_default() += 1;
    }
    let failed_after: Vec<Duration> = outcomes
        .iter()
        .filter(|(at, status)| *at > killed_at && *status != 200)
        .map(|(at, _)| *at)
        .collect();
    let recovered = failed_after
        .iter()
        .max()
        .map_or(Duration::ZERO, |last| *last - killed_at);
    println!(
        "outcomes by status (0 = no answer within 5 s): {counts:?}; \
         the last failure came {recovered:?} after the node was killed"
    );
    assert_eq!(counts.get(&0), None, "no call hung: {counts:?}");
    assert!(
        counts.keys().all(|status| [200, 503, 504].contains(status)),
        "{counts:?}"
    );
    assert!(
        recovered < Duration::from_secs(8),
        "recovered in {recovered:?}"
    );
    let late_successes = outcomes
        .iter()
        .filter(|(at, status)| *at > killed_at + recovered && *status == 200)
        .count();
    assert!(
        late_successes > 100,
        "calls succeed again: {late_successes}"
    );

    gateway.shutdown().await.expect("gateway stops");
    for handler in handlers {
        handler.shutdown().await.expect("handler stops");
    }
    drop(nodes);
}
