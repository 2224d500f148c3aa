//! One call on its way to a handler, wherever it came from.

use crate::procedure::BoxFuture;
use crate::{Address, Args, Data, Identity, RpcError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// A call: what the pipeline routes, what middleware and event hooks see,
/// and what travels through the broker.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Call {
    /// The procedure called.
    pub address: Address,
    /// The args, `{}` when the envelope had none: a [`Value`](serde_json::Value) to read
    /// (and change), and the text they arrived as.
    pub args: Args,
    /// The caller's identity.
    pub identity: Option<Identity>,
    /// True only for calls made by other procedures; a gateway always
    /// forwards outside calls with `false`.
    pub internal: bool,
    /// Who made the call.
    pub caller: Caller,
    /// The W3C trace id (32 hex digits), shared by a call and every call
    /// it makes: from the request's `traceparent`, else a fresh one.
    pub trace_id: crate::TraceId,
    /// The call's own span id (16 hex digits), given by the pipeline (none
    /// before): the parent of the calls it makes.
    pub span_id: Option<crate::SpanId>,
    /// The caller's span and the incoming `tracestate`.
    pub trace: crate::trace::TraceContext,
    /// When the caller stops waiting.
    pub deadline: Option<Instant>,
    /// The user id the authenticator gave the call's identity: set by the
    /// pipeline's authentication stage (or by the WebSocket connection that
    /// authenticated earlier), so middleware after it sees it.
    pub user_id: Option<String>,
    /// What the client's request said besides the envelope: transport,
    /// address, connection and headers. Calls a procedure makes share the
    /// metadata of the call that made them.
    pub metadata: Arc<Metadata>,
}

impl Call {
    /// A call from code outside any transport (a test, or a middleware that
    /// makes calls of its own): external, detached, no identity.
    pub fn new(address: Address, args: impl Into<Args>) -> Self {
        Call {
            address,
            args: args.into(),
            identity: None,
            internal: false,
            caller: Caller::Detached,
            trace_id: crate::trace::new_trace_id(),
            span_id: None,
            trace: crate::trace::TraceContext {
                sampled: true,
                ..Default::default()
            },
            deadline: None,
            user_id: None,
            metadata: Arc::default(),
        }
    }
}

/// The request metadata of a call: how it reached the server. For a
/// WebSocket call the headers are the upgrade request's; for a call
/// forwarded through the broker, the headers the gateway is configured to
/// forward (none by default).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Metadata {
    /// `"http"`, `"websocket"`, or empty for calls from no transport.
    #[serde(default)]
    pub transport: std::borrow::Cow<'static, str>,
    /// The client's IP address (a valid `X-Real-IP` first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::IpAddr>,
    /// The WebSocket connection the call came on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// The request's headers.
    #[serde(
        default,
        with = "headers",
        skip_serializing_if = "http::HeaderMap::is_empty"
    )]
    pub headers: http::HeaderMap,
}

impl Metadata {
    /// The headers whose values are credentials: never logged.
    pub const SECRET_HEADERS: [http::HeaderName; 3] = [
        http::header::AUTHORIZATION,
        http::header::COOKIE,
        http::header::PROXY_AUTHORIZATION,
    ];

    /// The same metadata with only the headers named in `allowed`
    /// (lower-case names), as a gateway forwards it.
    pub fn only_headers(&self, allowed: &[http::HeaderName]) -> Metadata {
        let mut headers = http::HeaderMap::new();
        for name in allowed {
            for value in self.headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        Metadata {
            transport: self.transport.clone(),
            ip: self.ip,
            connection_id: self.connection_id.clone(),
            headers,
        }
    }
}

/// Headers are listed, credentials redacted.
impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Headers<'a>(&'a http::HeaderMap);
        impl std::fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut map = f.debug_map();
                for (name, value) in self.0 {
                    if Metadata::SECRET_HEADERS.contains(name) {
                        map.entry(name, &"<redacted>");
                    } else {
                        map.entry(name, value);
                    }
                }
                map.finish()
            }
        }
        f.debug_struct("Metadata")
            .field("transport", &self.transport)
            .field("ip", &self.ip)
            .field("connection_id", &self.connection_id)
            .field("headers", &Headers(&self.headers))
            .finish()
    }
}

/// Headers on the wire between servers: a list of `[name, value]` pairs
/// (values that are not UTF-8 are left out).
mod headers {
    use http::{HeaderMap, HeaderName, HeaderValue};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(map: &HeaderMap, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            map.iter()
                .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
        )
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HeaderMap, D::Error> {
        let pairs = Vec::<(String, String)>::deserialize(d)?;
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                map.append(name, value);
            }
        }
        Ok(map)
    }
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
        server: Arc<str>,
    },
    /// Another procedure.
    #[serde(rename_all = "camelCase")]
    Procedure {
        /// The calling procedure.
        address: Address,
        /// The name of the server it ran on.
        server: Arc<str>,
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
    server: Option<Arc<str>>,
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

/// Something that can run calls: a server's pipeline.
pub(crate) trait Invoke: Send + Sync {
    fn invoke(&self, call: Call) -> BoxFuture<Result<Data, RpcError>>;

    /// The server the calls run on.
    #[cfg(feature = "server")]
    fn server(&self) -> &crate::ServerHandle;

    /// The application state of that server.
    fn states(&self) -> &crate::state::States;
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
