//! The topology and the messages on it, in one place; `docs/BROKER.md`
//! describes the same for people.
//!
//! - Calls go to the direct exchange `rpc.calls` with the routing key of
//!   the procedure's queue, `rpc|<scope>|<procedure>|<version>`, which is
//!   bound to it under that key. Every handler server of a procedure
//!   consumes that one queue (competing consumers); the queue is
//!   `auto_delete`, so it exists exactly while some server consumes it.
//! - A call no queue takes goes to the exchange's alternate exchange,
//!   `rpc.unroutable`, and from there to the queue of the same name that
//!   every server reads; whichever reads it answers 404 to its reply-to.
//! - Replies go to direct reply-to (`amq.rabbitmq.reply-to`), correlated by
//!   an id the gateway generates.
//! - Announcements go to the fanout exchange `rpc.announce`, which every
//!   server with a broker reads through an exclusive queue of its own.

use crate::{Address, Caller, Data, Identity, ProcedureSpec, RpcError};
use lapin::types::{AMQPValue, FieldTable};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The direct exchange calls are published to.
pub(crate) const CALL_EXCHANGE: &str = "rpc.calls";
/// The alternate exchange of `rpc.calls` (fanout), and its one queue.
pub(crate) const UNROUTABLE_EXCHANGE: &str = "rpc.unroutable";
pub(crate) const UNROUTABLE_QUEUE: &str = "rpc.unroutable";
/// The fanout exchange of announcements.
pub(crate) const ANNOUNCE_EXCHANGE: &str = "rpc.announce";
/// The pseudo-queue of direct reply-to.
pub(crate) const REPLY_TO: &str = "amq.rabbitmq.reply-to";
/// The content type of every message.
pub(crate) const CONTENT_TYPE: &str = "application/json";

/// The longest expiration a call carries: 2^32 - 1 ms, about 49.7 days.
/// RabbitMQ closes the channel of a publish whose expiration it finds too
/// large; a call with a longer deadline still waits for it in full.
const MAX_EXPIRATION_MS: u128 = u32::MAX as u128;

/// The `expiration` property of a call with `remaining` to its deadline.
pub(crate) fn expiration(remaining: std::time::Duration) -> lapin::types::ShortString {
    remaining
        .as_millis()
        .min(MAX_EXPIRATION_MS)
        .to_string()
        .into()
}

/// The `correlation_id` of the call a gateway numbered `id`: its counter
/// in hex.
pub(crate) fn correlation_id(id: u64) -> lapin::types::ShortString {
    format!("{id:x}").into()
}

/// The number back from a reply's `correlation_id`; `None` for an id no
/// gateway generated (which matches no waiting call).
pub(crate) fn parse_correlation_id(id: &str) -> Option<u64> {
    // `from_str_radix` alone would also take a leading `+`.
    id.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| u64::from_str_radix(id, 16).ok())
        .flatten()
}

/// The arguments `rpc.calls` is declared with: unroutable calls go to
/// `rpc.unroutable`.
pub(crate) fn call_exchange_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "alternate-exchange".into(),
        AMQPValue::LongString(UNROUTABLE_EXCHANGE.into()),
    );
    arguments
}

/// The queue (and routing key) of a procedure. Names cannot contain `|`,
/// so the parts cannot run into each other; a name too long for AMQP's 255
/// bytes is replaced by a hash of it.
pub(crate) fn queue_name(address: &Address) -> String {
    let name = format!(
        "rpc|{}|{}|{}",
        address.scope, address.procedure, address.version
    );
    if name.len() <= 255 {
        return name;
    }
    // FNV-1a, stable across builds and platforms.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("rpc|hashed|{hash:016x}")
}

/// The AMQP headers of a call: the W3C trace context of the gateway's
/// span, `traceparent` and (if any) `tracestate`.
pub(crate) fn trace_headers(
    trace_id: &crate::TraceId,
    span_id: Option<crate::SpanId>,
    trace: &crate::trace::TraceContext,
) -> FieldTable {
    let mut headers = FieldTable::default();
    // A call always has a span once the pipeline ran it; one that has
    // none yet names its caller's, if any.
    if let Some(span_id) = span_id.or(trace.parent_span_id) {
        headers.insert(
            "traceparent".into(),
            AMQPValue::LongString(
                crate::trace::traceparent(trace_id, &span_id, trace.sampled).into(),
            ),
        );
    }
    if let Some(state) = &trace.state {
        headers.insert(
            "tracestate".into(),
            AMQPValue::LongString(state.as_str().into()),
        );
    }
    headers
}

/// The trace a delivered call continues, from its AMQP headers.
pub(crate) fn trace_from_headers(
    headers: Option<&FieldTable>,
) -> Option<(crate::TraceId, crate::trace::TraceContext)> {
    let text = |name: &str| match headers?.inner().get(name)? {
        AMQPValue::LongString(value) => std::str::from_utf8(value.as_bytes()).ok(),
        AMQPValue::ShortString(value) => Some(value.as_str()),
        _ => None,
    };
    let parent = crate::trace::TraceParent::parse(text("traceparent")?)?;
    Some((
        parent.trace_id,
        crate::trace::TraceContext {
            parent_span_id: Some(parent.parent_id),
            sampled: parent.sampled,
            state: text("tracestate").map(str::to_owned),
        },
    ))
}

fn trace_id_or_new<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<crate::TraceId, D::Error> {
    let digits = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    Ok(crate::TraceId::parse(&digits).unwrap_or_else(crate::trace::new_trace_id))
}

/// The body of a call message.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallMessage {
    pub(crate) address: Address,
    /// Written as the gateway received them, and kept as text for the
    /// handler to decode.
    pub(crate) args: crate::Args,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) identity: Option<Identity>,
    pub(crate) internal: bool,
    pub(crate) caller: Caller,
    /// A trace id not in the W3C's form starts a new trace rather than
    /// refusing the call.
    #[serde(deserialize_with = "trace_id_or_new")]
    pub(crate) trace_id: crate::TraceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_id: Option<String>,
    /// The request metadata, with only the headers the gateway forwards.
    #[serde(default)]
    pub(crate) metadata: crate::call::Metadata,
    /// Milliseconds the caller still waited when it published.
    pub(crate) timeout_ms: u64,
    /// The call's deadline on the wall clock, in milliseconds since the Unix
    /// epoch: a handler server that received the call long ago (held in
    /// its prefetch buffer, or stopped) still knows when it expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deadline_unix_ms: Option<u64>,
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

impl CallMessage {
    /// What is left of the call's time: the least of what the caller had
    /// left when it published (counted from now, when the message is read)
    /// and what its wall-clock deadline leaves. Zero when it passed.
    pub(crate) fn remaining(&self, now_unix_ms: u64) -> std::time::Duration {
        let relative = self.timeout_ms;
        let absolute = self
            .deadline_unix_ms
            .map_or(u64::MAX, |deadline| deadline.saturating_sub(now_unix_ms));
        std::time::Duration::from_millis(relative.min(absolute))
    }
}

/// The body of a reply: the response envelope without correlation id.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ReplyMessage {
    pub(crate) code: u16,
    /// A success's data as the handler wrote it, carried as text.
    #[serde(default, skip_serializing_if = "Data::is_null")]
    pub(crate) data: Data,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) errors: Vec<crate::FieldError>,
    /// Set on the 404 answering a call no queue took.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) unroutable: bool,
}

impl ReplyMessage {
    pub(crate) fn from_result(result: Result<Data, RpcError>) -> Self {
        match result {
            Ok(data) => ReplyMessage {
                code: 200,
                data,
                message: None,
                errors: Vec::new(),
                unroutable: false,
            },
            Err(error) => ReplyMessage {
                code: error.code(),
                data: error.data().cloned().unwrap_or(Value::Null).into(),
                message: Some(error.message().to_owned()),
                errors: error.errors().to_vec(),
                unroutable: false,
            },
        }
    }

    pub(crate) fn into_result(self) -> Result<Data, RpcError> {
        if (200..300).contains(&self.code) {
            return Ok(self.data);
        }
        let message = self.message.unwrap_or_default();
        let error = if self.errors.is_empty() {
            RpcError::new(self.code, message)
        } else {
            RpcError::invalid_args(self.errors).with_message(message)
        };
        Err(if self.data.is_null() {
            error
        } else {
            error.with_data(self.data.into_value())
        })
    }
}

/// What goes over `rpc.announce`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub(crate) enum Announcement {
    /// A handler server lists what it serves; sent at start, every
    /// interval, and when asked.
    #[serde(rename_all = "camelCase")]
    Announce {
        instance_id: String,
        server: String,
        interval_ms: u64,
        procedures: Vec<ProcedureSpec>,
    },
    /// A server stops (a handler server withdraws its procedures).
    #[serde(rename_all = "camelCase")]
    Goodbye { instance_id: String },
    /// A server that just connected asks everyone to announce.
    #[serde(rename_all = "camelCase")]
    Query { instance_id: String },
    /// A server that takes WebSocket connections reports them: in all, and
    /// per user. Sent every interval.
    #[serde(rename_all = "camelCase")]
    Presence {
        instance_id: String,
        server: String,
        interval_ms: u64,
        connections: usize,
        users: std::collections::HashMap<String, usize>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_unambiguous_and_bounded() {
        let a = queue_name(&Address::new("a:b", "c", "1"));
        let b = queue_name(&Address::new("a", "b:c", "1"));
        assert_ne!(a, b);
        assert_eq!(a, "rpc|a:b|c|1");
        let long = queue_name(&Address::new(
            "s".repeat(128),
            "p".repeat(128),
            "v".repeat(32),
        ));
        assert!(long.len() <= 255 && long.starts_with("rpc|hashed|"));
    }

    #[test]
    fn the_wall_clock_deadline_bounds_what_is_left() {
        let message = |timeout_ms, deadline_unix_ms| CallMessage {
            address: crate::Address::new("s", "p", "1"),
            args: Value::Null.into(),
            identity: None,
            internal: false,
            caller: crate::Caller::Client {
                transport: "http".into(),
                connection_id: None,
                ip: None,
                server: "".into(),
            },
            trace_id: crate::trace::new_trace_id(),
            user_id: None,
            metadata: Default::default(),
            timeout_ms,
            deadline_unix_ms,
        };
        let ms = std::time::Duration::from_millis;
        assert_eq!(message(500, None).remaining(10_000), ms(500));
        assert_eq!(message(500, Some(10_200)).remaining(10_000), ms(200));
        assert_eq!(message(500, Some(20_000)).remaining(10_000), ms(500));
        assert!(message(500, Some(9_000)).remaining(10_000).is_zero());
    }

    #[test]
    fn expirations_stay_within_what_rabbitmq_accepts() {
        use std::time::Duration;
        assert_eq!(expiration(Duration::from_millis(1500)).as_str(), "1500");
        assert_eq!(expiration(Duration::MAX).as_str(), "4294967295");
    }

    #[test]
    fn correlation_ids_round_trip_and_strangers_match_nothing() {
        for id in [0, 1, 0xabc, u64::MAX] {
            assert_eq!(parse_correlation_id(correlation_id(id).as_str()), Some(id));
        }
        for stranger in ["", "+1", "-1", "x", "1 ", "10000000000000000", "é"] {
            assert_eq!(parse_correlation_id(stranger), None, "{stranger:?}");
        }
    }

    #[test]
    fn replies_round_trip() {
        let error = RpcError::invalid_args(vec![crate::FieldError {
            path: "/x".into(),
            message: "bad".into(),
        }]);
        let back = ReplyMessage::from_result(Err(error.clone())).into_result();
        assert_eq!(back, Err(error));
        // Through the wire: data as the handler wrote it, kept as text.
        let data = Data::encode(&serde_json::json!({"a": [1, "b"]})).unwrap();
        let sent = serde_json::to_vec(&ReplyMessage::from_result(Ok(data.clone()))).unwrap();
        assert_eq!(sent, br#"{"code":200,"data":{"a":[1,"b"]}}"#);
        let back = serde_json::from_slice::<ReplyMessage>(&sent)
            .unwrap()
            .into_result();
        assert_eq!(back.as_ref().ok().and_then(|data| data.text()), data.text());
        assert_eq!(back, Ok(data));
        let null = serde_json::to_vec(&ReplyMessage::from_result(Ok(Data::default())));
        assert_eq!(null.unwrap(), br#"{"code":200}"#);
    }
}
