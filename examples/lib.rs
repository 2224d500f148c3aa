//! Examples of rpc-runtime live in this package's `[[example]]` targets; see
//! the `//! Run with:` block at the top of each. This library holds what
//! they share: reading their options.

/// What the mesh examples take from flags (`--http`, `--name`,
/// `--broker`) or, failing those, the environment (`RPC_HTTP`, `RPC_NAME`,
/// `AMQP_URI`). Several broker URIs (a cluster's nodes) are separated by
/// commas. Other arguments are left in `rest`.
#[derive(Debug)]
pub struct Options {
    /// Where to serve HTTP and WebSocket.
    pub http: String,
    /// The server's name.
    pub name: String,
    /// The broker's URIs, if any.
    pub broker: Vec<String>,
    /// The arguments that are not these flags.
    pub rest: Vec<String>,
}

impl Options {
    /// Reads the process's arguments; `http`, `name` and `broker` are the
    /// defaults (an empty `broker` for none).
    pub fn read(http: &str, name: &str, broker: &str) -> Options {
        Options::parse(
            std::env::args().skip(1),
            |key| std::env::var(key).ok(),
            http,
            name,
            broker,
        )
    }

    fn parse(
        args: impl Iterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
        http: &str,
        name: &str,
        broker: &str,
    ) -> Options {
        let mut flags = std::collections::HashMap::new();
        let mut rest = Vec::new();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--http" | "--name" | "--broker" => {
                    if let Some(value) = args.next() {
                        flags.insert(arg, value);
                    }
                }
                _ => rest.push(arg),
            }
        }
        let pick = |flag: &str, key: &str, default: &str| {
            flags
                .get(flag)
                .cloned()
                .or_else(|| env(key))
                .unwrap_or_else(|| default.to_owned())
        };
        let broker = pick("--broker", "AMQP_URI", broker)
            .split(',')
            .map(str::trim)
            .filter(|uri| !uri.is_empty())
            .map(str::to_owned)
            .collect();
        Options {
            http: pick("--http", "RPC_HTTP", http),
            name: pick("--name", "RPC_NAME", name),
            broker,
            rest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Options;

    #[test]
    fn flags_win_over_the_environment_and_defaults() {
        let args = [
            "alice",
            "--http",
            "0.0.0.0:1",
            "--broker",
            "amqp://a, amqp://b",
        ];
        let options = Options::parse(
            args.iter().map(|a| (*a).to_owned()),
            |key| (key == "RPC_NAME").then(|| "from-env".to_owned()),
            "127.0.0.1:9876",
            "gateway-1",
            "",
        );
        assert_eq!(options.http, "0.0.0.0:1");
        assert_eq!(options.name, "from-env");
        assert_eq!(options.broker, ["amqp://a", "amqp://b"]);
        assert_eq!(options.rest, ["alice"]);
    }
}
