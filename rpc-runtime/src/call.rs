//! One call on its way to a handler, wherever it came from.

use crate::procedure::BoxFuture;
use crate::{Address, Identity, RpcError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Instant;

/// A call: what the dispatcher routes, what event hooks see, and what
/// travels through the broker.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Call {
    /// The procedure called.
    pub address: Address,
    /// The args, `{}` when the envelope had none.
    pub args: Value,
    /// The caller's identity.
    pub identity: Option<Identity>,
    /// True only for calls made by other procedures; a gateway always
    /// forwards outside calls with `false`.
    pub internal: bool,
    /// Who made the call.
    pub caller: Caller,
    /// Shared by a call and every call it makes, for tracing.
    pub trace_id: String,
    /// When the caller stops waiting.
    pub deadline: Option<Instant>,
}

/// Who made a call.
///
/// On the wire an object tagged by `kind`: `{"kind": "client", "transport":
/// "http", "server": "gateway-1"}`. It is read in one pass over a struct of
/// every kind's fields, without the buffering that serde's internally
/// tagged enums do (every call message carries one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", try_from = "CallerFields")]
#[non_exhaustive]
pub enum Caller {
    /// A client of a gateway transport.
    #[serde(rename_all = "camelCase")]
    Client {
        /// `"http"` or `"websocket"`.
        transport: std::borrow::Cow<'static, str>,
        /// The WebSocket connection, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection_id: Option<String>,
        /// The client's IP address (`X-Real-IP` first).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<std::net::IpAddr>,
        /// The name of the gateway server.
        server: String,
    },
    /// Another procedure.
    #[serde(rename_all = "camelCase")]
    Procedure {
        /// The calling procedure.
        address: Address,
        /// The name of the server it ran on.
        server: String,
    },
    /// Code outside any server, such as a unit test.
    Detached,
}

/// Every field any kind of [`Caller`] has, read in one pass.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallerFields {
    kind: CallerKind,
    transport: Option<std::borrow::Cow<'static, str>>,
    connection_id: Option<String>,
    ip: Option<std::net::IpAddr>,
    server: Option<String>,
    address: Option<Address>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum CallerKind {
    Client,
    Procedure,
    Detached,
}

impl TryFrom<CallerFields> for Caller {
    type Error = String;

    fn try_from(fields: CallerFields) -> Result<Self, String> {
        let missing = |field: &str| format!("missing field `{field}`");
        Ok(match fields.kind {
            CallerKind::Client => Caller::Client {
                transport: fields.transport.ok_or_else(|| missing("transport"))?,
                connection_id: fields.connection_id,
                ip: fields.ip,
                server: fields.server.ok_or_else(|| missing("server"))?,
            },
            CallerKind::Procedure => Caller::Procedure {
                address: fields.address.ok_or_else(|| missing("address"))?,
                server: fields.server.ok_or_else(|| missing("server"))?,
            },
            CallerKind::Detached => Caller::Detached,
        })
    }
}

/// Something that can run calls: a server's dispatcher.
pub(crate) trait Invoke: Send + Sync {
    fn invoke(&self, call: Call) -> BoxFuture<Result<Value, RpcError>>;

    /// The server the calls run on.
    #[cfg(feature = "server")]
    fn server(&self) -> &crate::ServerHandle;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn callers_round_trip_through_their_wire_form() {
        let callers = [
            Caller::Client {
                transport: "websocket".into(),
                connection_id: Some("c-1".into()),
                ip: Some("203.0.113.9".parse().unwrap()),
                server: "gateway-1".into(),
            },
            Caller::Client {
                transport: "http".into(),
                connection_id: None,
                ip: None,
                server: "gateway-1".into(),
            },
            Caller::Procedure {
                address: Address::new("geo", "all-locations", "1"),
                server: "shelf-1".into(),
            },
            Caller::Detached,
        ];
        for caller in callers {
            let wire = serde_json::to_value(&caller).unwrap();
            assert_eq!(serde_json::from_value::<Caller>(wire).unwrap(), caller);
        }
        assert_eq!(
            serde_json::to_value(Caller::Detached).unwrap(),
            json!({"kind": "detached"})
        );
    }

    #[test]
    fn callers_missing_what_their_kind_needs_are_refused() {
        for (wire, error) in [
            (json!({"kind": "client", "server": "g"}), "`transport`"),
            (json!({"kind": "client", "transport": "http"}), "`server`"),
            (json!({"kind": "procedure", "server": "s"}), "`address`"),
            (json!({"kind": "robot"}), "unknown variant"),
            (json!({"server": "s"}), "`kind`"),
        ] {
            let refused = serde_json::from_value::<Caller>(wire).unwrap_err();
            assert!(refused.to_string().contains(error), "{refused}");
        }
    }
}
