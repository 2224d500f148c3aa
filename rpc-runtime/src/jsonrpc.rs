//! JSON-RPC 2.0 beside the envelope: reading requests and batches, naming
//! procedures by method, and writing responses, error objects and
//! notifications. A body or frame is JSON-RPC when it is an array (a
//! batch) or an object with a `jsonrpc` member; everything else is an
//! envelope (see `envelope.rs`).
//!
//! Method names are `scope/procedure@version` (the OpenRPC name), with the
//! envelope's defaults for what is left out: `scope/procedure` is version
//! `1`, `procedure@version` and `procedure` are in scope `global`.
//!
//! Errors: the JSON-RPC codes where the meaning is the same, documented
//! codes for the framework's other outcomes, and a handler's own code
//! otherwise; `data` always holds the envelope's `code`, and the
//! `errors` and `data` of the [`RpcError`] when it has them.

// Servers read requests; the codes are shared with the docs.
#![cfg_attr(not(feature = "server"), allow(dead_code))]

use crate::reader::Reader;
use crate::{Address, Args, Data, RpcError};
use serde::Serialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The method under which WebSocket pushes reach JSON-RPC clients, as
/// notifications with params `{"message": ...}`.
pub(crate) const SERVER_MESSAGE: &str = "rpc.serverMessage";
/// The method a JSON-RPC WebSocket client sets its identity with; params:
/// the identity object (`{"authorization": "Bearer ..."}`).
pub(crate) const SET_IDENTITY: &str = "rpc.setIdentity";
/// The method (best sent as a notification) that carries a client message
/// to the server's hooks; params `{"message": ...}`.
pub(crate) const CLIENT_MESSAGE: &str = "rpc.clientMessage";

/// Requests a batch may hold, by default.
pub(crate) const MAX_BATCH: usize = 100;

pub(crate) const PARSE_ERROR: i64 = -32700;
pub(crate) const INVALID_REQUEST: i64 = -32600;
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
pub(crate) const INVALID_PARAMS: i64 = -32602;
pub(crate) const INTERNAL_ERROR: i64 = -32603;

/// The JSON-RPC code of each outcome the framework produces, beside the
/// five of the specification; a handler's other codes are sent as they are.
pub(crate) const FRAMEWORK_CODES: &[(u16, i64)] = &[
    (401, -32001),
    (403, -32003),
    (408, -32008),
    (413, -32013),
    (429, -32029),
    (503, -32053),
    (504, -32054),
];

/// Whether a parsed body or frame is JSON-RPC rather than an envelope.
pub(crate) fn is_jsonrpc(value: &Value) -> bool {
    match value {
        Value::Array(_) => true,
        Value::Object(object) => object.contains_key("jsonrpc"),
        _ => false,
    }
}

/// Whether bytes that are not valid JSON were meant as JSON-RPC (they are
/// answered with a parse error rather than an envelope 400).
pub(crate) fn looks_like(bytes: &[u8]) -> bool {
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    first == Some(&b'[') || bytes.windows(9).any(|window| window == b"\"jsonrpc\"")
}

/// Whether a request starts with its `"jsonrpc"` member, as JSON-RPC
/// clients write it.
pub(crate) fn named_first(bytes: &[u8]) -> bool {
    let mut rest = bytes.trim_ascii_start();
    match rest.split_first() {
        Some((b'{', after)) => rest = after.trim_ascii_start(),
        _ => return false,
    }
    rest.starts_with(b"\"jsonrpc\"")
}

/// One request of a body, frame or batch.
#[derive(Debug)]
pub(crate) struct Request {
    /// `None` for a notification, which gets no reply.
    pub(crate) id: Option<Value>,
    pub(crate) method: String,
    /// The procedure's args.
    pub(crate) args: Args,
    pub(crate) traceparent: Option<String>,
    pub(crate) tracestate: Option<String>,
}

/// A request that cannot run: the error to answer, with its id (`null`
/// when it could not be read) unless it was a notification.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) id: Option<Value>,
    pub(crate) error: ErrorObject,
}

/// What a body or frame holds.
pub(crate) enum Incoming {
    Single(Result<Request, Refused>),
    Batch(Vec<Result<Request, Refused>>),
}

/// Reads a request or a batch of at most `max_batch` requests. An empty or
/// oversized batch is one error, as the specification has it.
pub(crate) fn parse(value: Value, max_batch: usize) -> Result<Incoming, Refused> {
    match value {
        Value::Array(items) if items.is_empty() => Err(Refused {
            id: Some(Value::Null),
            error: ErrorObject::new(INVALID_REQUEST, "a batch must hold at least one request"),
        }),
        Value::Array(items) if items.len() > max_batch => Err(Refused {
            id: Some(Value::Null),
            error: ErrorObject::new(
                INVALID_REQUEST,
                format!(
                    "a batch of {} requests is more than the limit of {max_batch}",
                    items.len()
                ),
            ),
        }),
        Value::Array(items) => Ok(Incoming::Batch(
            items.into_iter().map(parse_request).collect(),
        )),
        value => Ok(Incoming::Single(parse_request(value))),
    }
}

/// Reads one request object.
pub(crate) fn parse_request(value: Value) -> Result<Request, Refused> {
    let Value::Object(mut object) = value else {
        return Err(invalid(Value::Null, "a request must be a JSON object"));
    };
    let id = match object.remove("id") {
        None => None,
        Some(id @ (Value::Null | Value::String(_) | Value::Number(_))) => Some(id),
        Some(_) => {
            return Err(invalid(
                Value::Null,
                "id must be a string, a number or null",
            ));
        }
    };
    let refuse = |message: &str| match &id {
        Some(id) => invalid(id.clone(), message),
        // A malformed notification is still answered, with a null id.
        None => invalid(Value::Null, message),
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(refuse("jsonrpc must be \"2.0\""));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) if !method.is_empty() => method,
        Some(Value::String(_)) => return Err(refuse("method must not be empty")),
        Some(_) => return Err(refuse("method must be a string")),
        None => return Err(refuse("method is required")),
    };
    let args = match object.remove("params") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(params @ Value::Object(_)) => params,
        Some(Value::Array(mut items)) => match items.len() {
            0 => Value::Object(Map::new()),
            1 => items.pop().unwrap_or_default(),
            n => {
                return Err(Refused {
                    id: id.clone(),
                    error: ErrorObject::new(
                        INVALID_PARAMS,
                        format!(
                            "by-position params hold one element, the args; this request has {n}"
                        ),
                    ),
                });
            }
        },
        Some(_) => return Err(refuse("params must be an object or an array")),
    };
    let mut text = |key: &str| match object.remove(key) {
        Some(Value::String(text)) => Some(text),
        _ => None,
    };
    let (traceparent, tracestate) = (text("traceparent"), text("tracestate"));
    Ok(Request {
        id,
        method,
        args: args.into(),
        traceparent,
        tracestate,
    })
}

/// Reads a single request in the shape nearly every client sends
/// (`"jsonrpc": "2.0"`, a non-empty `method`, `params` by name, absent or
/// null, an `id` that is a string, a number or null, or none for a
/// notification; no key twice) straight from the bytes, member by member
/// (`reader.rs`): the params stay text, decoded into the args type as
/// they are read where `decoder` has the method's decoder and the method
/// comes first (as an envelope's args are). Anything else is `None`, for
/// [`parse`] to read (and refuse) exactly as before.
pub(crate) fn parse_common_request(
    bytes: &bytes::Bytes,
    decoder: impl Fn(&str) -> Option<crate::descriptor::DecodePrefixFn>,
) -> Option<Request> {
    let mut request = Common::default();
    Reader::new(bytes)?.object(|reader, key| {
        match key {
            Some(Member::Jsonrpc) => request.jsonrpc = reader.text(|text| text)?,
            Some(Member::Method) => request.method = reader.text(|text| text)?,
            // By name (an object), or null.
            Some(Member::Params) => {
                request.params = match reader.peek() {
                    Some(b'{') => reader.args(|| decoder(request.method.as_deref()?))?,
                    _ => reader
                        .value::<Option<IgnoredAny>>()?
                        .is_none()
                        .then_some(None)?,
                }
            }
            Some(Member::Id) => {
                request.id = Some(match reader.plain_string() {
                    Some(id) => Some(Value::String(id.to_owned())),
                    None => reader.value()?,
                });
            }
            Some(Member::Traceparent) => request.traceparent = reader.text(Cow::into_owned)?,
            Some(Member::Tracestate) => request.tracestate = reader.text(Cow::into_owned)?,
            None => reader.nested_value::<IgnoredAny>().map(drop)?,
        }
        Some(())
    })?;
    if request.jsonrpc.as_deref() != Some("2.0") {
        return None;
    }
    let method = request.method.filter(|method| !method.is_empty())?;
    let id = match request.id {
        None => None,
        Some(Some(id @ (Value::String(_) | Value::Number(_)))) => Some(id),
        Some(None) => Some(Value::Null),
        Some(Some(_)) => return None,
    };
    Some(Request {
        id,
        method: method.into_owned(),
        args: request.params.unwrap_or_default(),
        traceparent: request.traceparent,
        tracestate: request.tracestate,
    })
}

/// The members [`parse_common_request`] reads (null `params` reads as
/// absent; `id` keeps null apart from absent).
#[derive(Default)]
struct Common<'a> {
    jsonrpc: Option<Cow<'a, str>>,
    method: Option<Cow<'a, str>>,
    params: Option<Args>,
    id: Option<Option<Value>>,
    traceparent: Option<String>,
    tracestate: Option<String>,
}

/// The members [`parse_common_request`] reads.
#[derive(Clone, Copy)]
enum Member {
    Jsonrpc,
    Method,
    Params,
    Id,
    Traceparent,
    Tracestate,
}

impl crate::reader::Key for Member {
    fn of(key: &str) -> Option<Member> {
        Some(match key {
            "jsonrpc" => Member::Jsonrpc,
            "method" => Member::Method,
            "params" => Member::Params,
            "id" => Member::Id,
            "traceparent" => Member::Traceparent,
            "tracestate" => Member::Tracestate,
            _ => return None,
        })
    }

    fn index(self) -> u32 {
        self as u32
    }
}

fn invalid(id: Value, message: &str) -> Refused {
    Refused {
        id: Some(id),
        error: ErrorObject::new(INVALID_REQUEST, message.to_owned()),
    }
}

/// The longest scope or procedure name the `#[rpc]` attribute accepts.
const MAX_NAME: usize = 128;

/// The procedure a method names. A name with several `/` could split in
/// more than one place: the first split that `known` accepts wins (a
/// procedure in scope `global` whose own name holds a `/` included), else
/// the first. Only names short enough to hold a scope and a procedure are
/// tried more than once, so that a long hostile name costs one pass.
pub(crate) fn address(method: &str, known: impl Fn(&Address) -> bool) -> Address {
    let (name, version) = match method.rsplit_once('@') {
        Some((name, version)) => (name, version),
        None => (method, "1"),
    };
    let at = |scope: &str, procedure: &str| Address::read(scope, procedure, version);
    let mut splits = name
        .match_indices('/')
        .map(|(index, _)| at(&name[..index], &name[index + 1..]));
    let Some(first) = splits.next() else {
        return at("global", name);
    };
    if name.len() > 2 * MAX_NAME + 1 || known(&first) {
        return first;
    }
    splits
        .chain(std::iter::once(at("global", name)))
        .find(|address| known(address))
        .unwrap_or(first)
}

/// A JSON-RPC error object.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorObject {
    code: i64,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

impl ErrorObject {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> Self {
        ErrorObject {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The JSON-RPC form of a call's failure.
    pub(crate) fn from_rpc(error: &RpcError) -> Self {
        let code = match (error.code(), error.is_from_handler()) {
            (422, _) => INVALID_PARAMS,
            (500, _) => INTERNAL_ERROR,
            (code, true) => i64::from(code),
            (400, false) => INVALID_REQUEST,
            (404, false) => METHOD_NOT_FOUND,
            (code, false) => FRAMEWORK_CODES
                .iter()
                .find(|(http, _)| *http == code)
                .map_or(i64::from(code), |(_, code)| *code),
        };
        let mut data = Map::new();
        data.insert("code".into(), error.code().into());
        if !error.errors().is_empty() {
            data.insert(
                "errors".into(),
                serde_json::to_value(error.errors()).unwrap_or_default(),
            );
        }
        if let Some(extra) = error.data() {
            data.insert("data".into(), extra.clone());
        }
        ErrorObject {
            code,
            message: error.message().to_owned(),
            data: Some(Value::Object(data)),
        }
    }
}

#[derive(Serialize)]
struct Failure<'a> {
    jsonrpc: &'static str,
    error: &'a ErrorObject,
    id: &'a Value,
}

/// The response to a request with `id`; none for a notification.
pub(crate) fn response_to(id: Option<Value>, result: &Result<Data, RpcError>) -> Option<Vec<u8>> {
    id.map(|id| {
        let mut out = Vec::with_capacity(128);
        write_response(&mut out, &id, result);
        out
    })
}

/// Appends the response to request `id` to `out`.
pub(crate) fn write_response(out: &mut Vec<u8>, id: &Value, result: &Result<Data, RpcError>) {
    // Writing Values and Value-based structs into a Vec cannot fail.
    match result {
        Ok(data) => {
            out.extend_from_slice(br#"{"jsonrpc":"2.0","result":"#);
            data.write_to(out);
            out.extend_from_slice(br#","id":"#);
            let _ = serde_json::to_writer(&mut *out, id);
            out.push(b'}');
        }
        Err(error) => {
            let _ = write_error(out, id, &ErrorObject::from_rpc(error));
        }
    }
}

/// Appends an error response to `out`.
pub(crate) fn write_error(
    out: &mut Vec<u8>,
    id: &Value,
    error: &ErrorObject,
) -> serde_json::Result<()> {
    serde_json::to_writer(
        out,
        &Failure {
            jsonrpc: "2.0",
            error,
            id,
        },
    )
}

/// The answers of a batch (those to notifications left out) as one
/// array; `None` when every request was a notification.
pub(crate) fn write_batch(answers: &[Vec<u8>]) -> Option<Vec<u8>> {
    let answers: Vec<&Vec<u8>> = answers.iter().filter(|a| !a.is_empty()).collect();
    if answers.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(answers.iter().map(|a| a.len() + 1).sum::<usize>() + 1);
    out.push(b'[');
    for (i, answer) in answers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(answer);
    }
    out.push(b']');
    Some(out)
}

/// A refusal as a response (or nothing, for a notification).
pub(crate) fn write_refused(refused: &Refused) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(id) = &refused.id {
        let _ = write_error(&mut out, id, &refused.error);
    }
    out
}

/// A WebSocket push (`{"serverMessage":...}`, as the hub encodes it) as a
/// JSON-RPC notification, without parsing the message again.
pub(crate) fn notification_from_push(push: &str) -> Option<String> {
    let message = push
        .strip_prefix("{\"serverMessage\":")?
        .strip_suffix('}')?;
    Some(format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":\"{SERVER_MESSAGE}\",\"params\":{{\"message\":{message}}}}}"
    ))
}

/// The `message` of a `rpc.clientMessage` (or `rpc.serverMessage`)
/// request's args: `{"message": ...}`, else the args themselves.
pub(crate) fn message_param(args: Value) -> Value {
    match args {
        Value::Object(mut object) if object.len() == 1 && object.contains_key("message") => {
            object.remove("message").unwrap_or_default()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_that_name_their_version_first_are_told_at_a_glance() {
        let cases = [
            (r#"{"jsonrpc":"2.0","method":"add","id":1}"#, true),
            (" \n{ \"jsonrpc\" : \"2.0\", \"method\": \"add\"}", true),
            (r#"{"jsonrpc":"1.0"}"#, true),
            (r#"{"method":"add","jsonrpc":"2.0","id":1}"#, false),
            (r#"{"procedure":"add","args":{"jsonrpc":1}}"#, false),
            (r#"[{"jsonrpc":"2.0","method":"add"}]"#, false),
            (r#"{"jsonrpcx":"2.0"}"#, false),
            ("{", false),
            ("", false),
        ];
        for (text, first) in cases {
            assert_eq!(named_first(text.as_bytes()), first, "{text}");
        }
    }
    use serde_json::json;

    fn single(value: Value) -> Result<Request, Refused> {
        match parse(value, MAX_BATCH) {
            Ok(Incoming::Single(request)) => request,
            _ => unreachable!("not a single request"),
        }
    }

    /// The common shape read from bytes, against the general reading:
    /// `Some` exactly where expected, and then the same request.
    #[test]
    fn the_common_shape_reads_as_the_general_way_does() {
        let cases: &[(&str, bool)] = &[
            (
                r#"{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":2},"id":1}"#,
                true,
            ),
            (r#"{"jsonrpc":"2.0","method":"m","id":"x"}"#, true),
            (
                r#"{"jsonrpc":"2.0","method":"m","params":null,"id":null}"#,
                true,
            ),
            (r#"{"jsonrpc":"2.0","method":"m","params":{}}"#, true),
            (
                r#"{"params":{"a":[1]},"jsonrpc":"2.0","method":"m","id":"\u0031"}"#,
                true,
            ),
            (
                r#" {"id":2.5,"method":"s/p@2","jsonrpc":"2.0","traceparent":"t","x":[1]} "#,
                true,
            ),
            // Left to the general reading.
            (
                r#"{"jsonrpc":"2.0","method":"m","params":[{"a":1}],"id":1}"#,
                false,
            ),
            (r#"{"jsonrpc":"2.0","method":"m","params":5,"id":1}"#, false),
            (r#"{"jsonrpc":"2.0","method":"m","id":true}"#, false),
            (r#"{"jsonrpc":"2.0","method":"m","id":1,"id":2}"#, false),
            (r#"{"jsonrpc":"1.0","method":"m","id":1}"#, false),
            (r#"{"jsonrpc":2,"method":"m","id":1}"#, false),
            (r#"{"jsonrpc":"2.0","method":"","id":1}"#, false),
            (r#"{"jsonrpc":"2.0","method":null,"id":1}"#, false),
            (r#"{"jsonrpc":"2.0","id":1}"#, false),
            (r#"{"jsonrpc":"2.0","method":"m","traceparent":5}"#, false),
            (r#"[{"jsonrpc":"2.0","method":"m","id":1}]"#, false),
            (r#"{"procedure":"p"}"#, false),
            (r#"{"jsonrpc":"2.0","method":"m","params":{"a":1]}"#, false),
            (
                r#"{"jsonrpc":"2.0","method":"m","params":{},"params":{}}"#,
                false,
            ),
            // Values a `Value` cannot hold, wherever they are.
            (
                r#"{"jsonrpc":"2.0","method":"m","params":{"a":1},"x":111111111111111111e1110}"#,
                false,
            ),
            (
                r#"{"jsonrpc":"2.0","method":"m","params":{"a":1,"z":1e400}}"#,
                false,
            ),
            (
                r#"{"jsonrpc":"2.0","method":"m","params":{"a":1,"z":["\udc00"]}}"#,
                false,
            ),
            (r#"{"jsonrpc":"2.0","method":"m","id":-1e400}"#, false),
            (
                r#"{"jsonrpc":"2.0","method":"m","params":{"a":1,"z":"\ud83d\ude00"}}"#,
                true,
            ),
        ];
        // The params skimmed, and decoded (into a `Value`, or a type that
        // ignores fields it does not know, as a procedure's type would be)
        // where the method comes first.
        use crate::decode::decoders::{any_json, lenient};
        let decoders: [Option<crate::descriptor::DecodePrefixFn>; 3] =
            [None, Some(any_json), Some(lenient)];
        let runs = decoders
            .iter()
            .flat_map(|decoder| cases.iter().map(move |case| (*decoder, case)));
        for (decoder, &(text, common)) in runs {
            let bytes = bytes::Bytes::from_static(text.as_bytes());
            let read = parse_common_request(&bytes, |_| decoder);
            assert_eq!(read.is_some(), common, "{text}");
            if let Some(read) = read {
                let value = serde_json::from_str(text).expect("json");
                let general = single(value).expect("the general reading takes it");
                let parts = |r: Request| {
                    (
                        r.id,
                        r.method,
                        r.args.into_value(),
                        r.traceparent,
                        r.tracestate,
                    )
                };
                assert_eq!(parts(read), parts(general), "{text}");
            }
        }
    }

    #[test]
    fn method_names_take_the_envelope_defaults() {
        let none = |_: &Address| false;
        assert_eq!(address("a/b@2", none), Address::new("a", "b", "2"));
        assert_eq!(address("a/b", none), Address::new("a", "b", "1"));
        assert_eq!(address("b@3", none), Address::new("global", "b", "3"));
        assert_eq!(
            address("rpc.discover", none),
            Address::new("global", "rpc.discover", "1")
        );
        // A `/` in a name: the split the server knows wins.
        let known = |a: &Address| a.scope == "a/b";
        assert_eq!(address("a/b/c@1", known), Address::new("a/b", "c", "1"));
        let global = |a: &Address| a.scope == "global";
        assert_eq!(address("x/y", global), Address::new("global", "x/y", "1"));
        assert_eq!(address("a/b/c", none), Address::new("a", "b/c", "1"));
        // A long name of slashes is looked up at most once, not once a
        // slash (each lookup copying the name).
        let lookups = std::cell::Cell::new(0);
        let counting = |_: &Address| {
            lookups.set(lookups.get() + 1);
            false
        };
        let long = "/".repeat(100_000);
        assert_eq!(address(&long, counting).scope, "");
        assert!(lookups.get() <= 1, "{} lookups", lookups.get());
    }

    #[test]
    fn params_ids_and_notifications() {
        let request =
            single(json!({"jsonrpc": "2.0", "method": "m", "params": {"a": 1}, "id": "x"}))
                .unwrap();
        assert_eq!(
            (request.id, request.args.into_value()),
            (Some(json!("x")), json!({"a": 1}))
        );
        let request =
            single(json!({"jsonrpc": "2.0", "method": "m", "params": [{"a": 1}]})).unwrap();
        assert_eq!(
            (request.id, request.args.into_value()),
            (None, json!({"a": 1}))
        );
        let request = single(json!({"jsonrpc": "2.0", "method": "m", "id": 7})).unwrap();
        assert_eq!(request.args, json!({}));
        let refused = single(json!({"jsonrpc": "2.0", "method": "m", "params": [1, 2], "id": 1}))
            .unwrap_err();
        assert_eq!(
            (refused.id, refused.error.code),
            (Some(json!(1)), INVALID_PARAMS)
        );
    }

    #[test]
    fn malformed_requests_are_invalid() {
        for (value, id) in [
            (json!({"jsonrpc": "1.0", "method": "m", "id": 1}), json!(1)),
            (json!({"jsonrpc": "2.0", "id": 2}), json!(2)),
            (json!({"jsonrpc": "2.0", "method": 5, "id": 3}), json!(3)),
            (
                json!({"jsonrpc": "2.0", "method": "m", "id": {}}),
                Value::Null,
            ),
            (
                json!({"jsonrpc": "2.0", "method": "m", "params": 1}),
                Value::Null,
            ),
            (json!(1), Value::Null),
        ] {
            let refused = match parse(value.clone(), MAX_BATCH) {
                Ok(Incoming::Single(request)) => request.unwrap_err(),
                _ => unreachable!(),
            };
            assert_eq!(refused.error.code, INVALID_REQUEST, "{value}");
            assert_eq!(refused.id, Some(id), "{value}");
        }
        assert!(parse(json!([]), MAX_BATCH).is_err());
        assert!(parse(json!([1, 2, 3]), 2).is_err());
    }

    #[test]
    fn errors_map_to_documented_codes() {
        let code = |error: RpcError| ErrorObject::from_rpc(&error).code;
        assert_eq!(code(RpcError::not_found("x")), METHOD_NOT_FOUND);
        assert_eq!(code(RpcError::not_found("x").mark_handler()), 404);
        assert_eq!(code(RpcError::invalid_args(vec![])), INVALID_PARAMS);
        assert_eq!(code(RpcError::internal().mark_handler()), INTERNAL_ERROR);
        assert_eq!(code(RpcError::new(504, "late")), -32054);
        assert_eq!(code(RpcError::conflict("x").mark_handler()), 409);
        let object = ErrorObject::from_rpc(
            &RpcError::new(429, "slow down").with_data(json!({"retryAfterMs": 5})),
        );
        assert_eq!(
            object.data,
            Some(json!({"code": 429, "data": {"retryAfterMs": 5}}))
        );
    }

    #[test]
    fn pushes_become_notifications() {
        assert_eq!(
            notification_from_push(r#"{"serverMessage":{"a":[1]}}"#).unwrap(),
            r#"{"jsonrpc":"2.0","method":"rpc.serverMessage","params":{"message":{"a":[1]}}}"#
        );
        let mut out = Vec::new();
        write_response(&mut out, &json!(1), &Ok(Data::default()));
        assert_eq!(out, br#"{"jsonrpc":"2.0","result":null,"id":1}"#);
        // Data as text and as a value, ids of each kind.
        for data in [
            Data::encode(&json!({"sum": 19, "s": "\"é\""})).unwrap(),
            Data::from(json!({"sum": 19, "s": "\"é\""})),
        ] {
            for id in [json!(1), json!("a\u{1}"), Value::Null] {
                let mut out = Vec::new();
                write_response(&mut out, &id, &Ok(data.clone()));
                let expected = json!({"jsonrpc": "2.0", "result": *data, "id": id});
                let written: Value = serde_json::from_slice(&out).expect("json");
                assert_eq!(written, expected);
            }
        }
        assert_eq!(write_batch(&[Vec::new()]), None);
    }
}
