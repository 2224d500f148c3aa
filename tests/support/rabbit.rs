//! Extra RabbitMQ nodes a test starts beside the system broker: each with
//! its own node name, ports, data folder and Erlang cookie, stopped (and
//! its folder removed) when dropped. Debian's `rabbitmq-server` package
//! provides the scripts (`.ci/test` installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/// A RabbitMQ node of a test's own.
pub struct Node {
    /// `name@localhost`.
    pub name: String,
    /// The AMQP (or AMQPS) port.
    pub port: u16,
    /// Its data, logs and configuration.
    pub dir: PathBuf,
    cookie: String,
    process: std::process::Child,
}

/// A free loopback port (free when asked; a race with other processes is
/// possible but unlikely).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

impl Node {
    /// Starts a node whose `rabbitmq.conf` is `config` (the AMQP port is
    /// `port`, to be named in `config` as the listener); waits until it
    /// runs.
    pub fn start(prefix: &str, port: u16, cookie: &str, config: &str) -> Node {
        let node = Node::spawn(prefix, port, cookie, config);
        node.wait_running(Duration::from_secs(90));
        node
    }

    /// Starts a node without waiting for it (see [`Node::wait_running`]).
    pub fn spawn(prefix: &str, port: u16, cookie: &str, config: &str) -> Node {
        assert!(
            Path::new(SERVER).exists(),
            "{SERVER} is missing: install RabbitMQ (apt-get install -y rabbitmq-server), or run .ci/test"
        );
        let name = format!("{prefix}{}@localhost", std::process::id());
        let dir = std::env::temp_dir().join(format!("rpc-rabbit-{prefix}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("node folder");
        std::fs::write(dir.join("rabbitmq.conf"), config).expect("rabbitmq.conf");
        std::fs::write(dir.join("plugins"), "[].\n").expect("plugins file");
        let out = std::fs::File::create(dir.join("out.log")).expect("log");
        let process = Command::new(SERVER)
            .env("HOME", &dir)
            .env("RABBITMQ_NODENAME", &name)
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("plugins"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                format!("-setcookie {cookie}"),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("rabbitmq-server starts");
        Node {
            name,
            port,
            dir,
            cookie: cookie.to_owned(),
            process,
        }
    }

    /// Runs `rabbitmqctl` against this node.
    pub fn ctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(CTL)
            .env("HOME", &self.dir)
            .args(["--erlang-cookie", &self.cookie, "-n", &self.name])
            .args(args)
            .output()
            .expect("rabbitmqctl runs")
    }

    /// Waits until the node runs.
    pub fn wait_running(&self, limit: Duration) {
        let started = Instant::now();
        loop {
            if self
                .ctl(&["await_startup", "--timeout", "5"])
                .status
                .success()
            {
                return;
            }
            if started.elapsed() > limit {
                let log = std::fs::read_to_string(self.dir.join("out.log")).unwrap_or_default();
                panic!(
                    "RabbitMQ node {} did not start within {limit:?}:\n{log}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Makes this node join the cluster of `other` (same cookie).
    pub fn join(&self, other: &Node) {
        for args in [
            vec!["stop_app"],
            vec!["join_cluster", other.name.as_str()],
            vec!["start_app"],
        ] {
            let output = self.ctl(&args);
            assert!(
                output.status.success(),
                "rabbitmqctl {args:?} on {}: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// Kills the node's Erlang VM, as a crash would.
    pub fn kill(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) {
            let _ = Command::new("kill")
                .args(["-9", pid.trim()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.ctl(&["stop"]);
        self.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
