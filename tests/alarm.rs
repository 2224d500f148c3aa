//! A broker that stops taking messages (a memory alarm: RabbitMQ blocks
//! every publishing connection) leaves callers with 504 at their deadline,
//! not waiting for the alarm to clear, and forwarding resumes after it.
//!
//! The alarm is broker-wide, so this test has a binary of its own: test
//! binaries run one after another, and nothing else runs beside it.

use rpc_runtime::{Address, BrokerState, Server, rpc};
use rpc_tests::{Http, eventually, rabbitmq_uri};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

/// Answers at once; its deadline is one second.
#[rpc(procedure = "ping", scope = "alarm", timeout = "1s")]
async fn ping() -> &'static str {
    "pong"
}

fn rabbitmqctl(args: &[&str]) -> String {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs (it comes with rabbitmq-server)");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn memory_alarm_on() -> bool {
    rabbitmqctl(&["eval", "rabbit_alarm:get_alarms()."]).contains("memory")
}

/// A memory alarm, raised by setting the high watermark to 0 (which blocks
/// all publishing); the watermark is set back when dropped, also when the
/// test fails.
struct MemoryAlarm {
    previous: Vec<String>,
}

impl MemoryAlarm {
    fn raise() -> Self {
        // `0.4`, or `{absolute,1073741824}` when configured in bytes.
        let current = rabbitmqctl(&["eval", "vm_memory_monitor:get_vm_memory_high_watermark()."]);
        let previous = match current.strip_prefix("{absolute,") {
            Some(bytes) => vec![
                "absolute".to_owned(),
                bytes.trim_end_matches('}').to_owned(),
            ],
            None => vec![current],
        };
        rabbitmqctl(&["set_vm_memory_high_watermark", "0"]);
        MemoryAlarm { previous }
    }
}

impl Drop for MemoryAlarm {
    fn drop(&mut self) {
        let mut args = vec!["set_vm_memory_high_watermark"];
        args.extend(self.previous.iter().map(String::as_str));
        rabbitmqctl(&args);
    }
}

async fn start(builder: rpc_runtime::ServerBuilder) -> rpc_runtime::RunningServer {
    builder
        .broker(rabbitmq_uri())
        .build()
        .expect("build")
        .start()
        .await
        .expect("the server starts")
}

#[tokio::test]
async fn a_blocked_broker_still_ends_calls_at_their_deadline() {
    let gateway = start(
        Server::builder()
            .name("gw-alarm")
            .http("127.0.0.1:0")
            .host_none(),
    )
    .await;
    let _handler = start(Server::builder().name("alarm-1")).await;
    let http = Http::new(gateway.http_addr().expect("http"));
    eventually("the gateway to learn of alarm/ping", || {
        gateway
            .procedures()
            .iter()
            .any(|p| p.address == Address::new("alarm", "ping", "1"))
    })
    .await;
    let ping = json!({"procedure": "ping", "scope": "alarm"});
    assert_eq!(http.call(ping.clone()).await.0, 200);

    let alarm = MemoryAlarm::raise();
    eventually("RabbitMQ to raise the memory alarm", memory_alarm_on).await;
    // The first publish is taken into the socket and waits for its answer
    // until the deadline (504), or finds the connection blocked already
    // (503); then the gateway knows, and refuses calls at once.
    let mut codes = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(10), http.call(ping.clone())).await;
        let (status, body) = answer.expect("the call ends by its deadline, not by the alarm's end");
        assert!(matches!(status, 503 | 504), "{status} {body}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        codes.push(status);
    }
    assert_eq!(codes.last(), Some(&503), "{codes:?}");
    let telemetry: serde_json::Value = http.get_json("/telemetry").await;
    assert_eq!(telemetry["broker"]["blocked"], json!(true), "{telemetry}");
    drop(alarm);
    eventually("RabbitMQ to clear the memory alarm", || !memory_alarm_on()).await;

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = http.call(ping.clone()).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "forwarding did not resume: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(gateway.broker_state(), Some(BrokerState::Connected));
}
