//! The wire envelope of section 1 of the protocol: reading calls and
//! frames, and writing responses. Every malformed input becomes a 400 whose
//! message says what is wrong.

// Servers read calls and write responses; clients only read responses.
#![cfg_attr(not(feature = "server"), allow(dead_code))]

use crate::descriptor::DecodePrefixFn;
use crate::reader::Reader;
use crate::{Address, Args, Data, FieldError, Identity, RpcError};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// A call read from an HTTP body or a WebSocket frame.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) address: Address,
    pub(crate) args: Args,
    pub(crate) identity: Option<Identity>,
    pub(crate) correlation_id: Option<Value>,
    /// A per-call W3C `traceparent` (and `tracestate`), for clients that
    /// cannot set headers per call (WebSocket).
    pub(crate) traceparent: Option<String>,
    pub(crate) tracestate: Option<String>,
}

/// What a WebSocket frame asks for (protocol section 4).
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every frame is a call, matched as soon as it is read"
)]
pub(crate) enum Frame {
    Call(Envelope),
    SetIdentity {
        identity: Identity,
        correlation_id: Option<Value>,
    },
    ClientMessage(Value),
}

/// A malformed envelope: the 400 to answer, with the correlation id if one
/// could be read.
#[derive(Debug)]
pub(crate) struct Malformed {
    pub(crate) error: RpcError,
    pub(crate) correlation_id: Option<Value>,
}

impl Malformed {
    fn new(message: impl Into<String>, correlation_id: Option<Value>) -> Self {
        Malformed {
            error: RpcError::bad_request(message.into()),
            correlation_id,
        }
    }
}

/// How deep arrays and objects may nest in an envelope: serde_json's
/// recursion limit, which keeps parsing from exhausting the stack.
pub(crate) const MAX_DEPTH: usize = 128;

/// Parses bytes that must hold JSON (an envelope, or JSON-RPC).
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, Malformed> {
    serde_json::from_slice::<Value>(bytes).map_err(|error| {
        if error.to_string().starts_with("recursion limit exceeded") {
            Malformed::new(
                format!(
                    "the envelope nests arrays and objects deeper than {MAX_DEPTH} levels, the limit"
                ),
                None,
            )
        } else {
            Malformed::new(format!("the envelope is not valid JSON: {error}"), None)
        }
    })
}

/// Reads a call in the shape nearly every client sends (`procedure` a
/// non-empty string; `scope`, `version`, `args`, `identity`,
/// `correlationId`, `traceparent` and `tracestate` each absent, null or of
/// their type; no key twice; no `jsonrpc`) straight from the bytes, key by
/// key. Anything else is `None`, for [`parse_json`] and [`parse_call`] (or
/// [`parse_frame`]) to read, and answer when malformed, exactly as before.
///
/// The args are read once: where the call names its procedure before its
/// args (as clients write them) and `decoder` has the procedure's (its
/// type enforces its schema), they are decoded into their type here, and
/// kept as text beside the value; otherwise they are only skimmed, and
/// stay text for the procedure to decode. Args that do not decode are
/// skimmed after all and kept as text, as every other call's are: the
/// pipeline answers them in its order (a 404 or 403 before a 422), and
/// the handler's decode and the validator say what is wrong.
pub(crate) fn parse_common_call(
    bytes: &bytes::Bytes,
    decoder: impl Fn(&Address) -> Option<DecodePrefixFn>,
) -> Option<Envelope> {
    let mut fields = CommonFields::default();
    Reader::new(bytes)?.object(|reader, key| {
        if let Some(Key::Procedure | Key::Scope | Key::Version) = key {
            fields.address = None;
        }
        match key {
            Some(Key::Procedure) => fields.procedure = reader.text(Text)?,
            Some(Key::Scope) => fields.scope = reader.text(Text)?,
            Some(Key::Version) => fields.version = reader.text(Version)?,
            Some(Key::Args) => {
                fields.address = address(&fields.procedure, &fields.scope, &fields.version);
                let address = fields.address.as_ref();
                fields.args = Some(reader.args(|| decoder(address?))?);
            }
            Some(Key::Params) => {
                fields.params = reader.nested_value::<Option<IgnoredAny>>()?.is_some();
            }
            Some(Key::Identity) => fields.identity = reader.nested_value()?,
            Some(Key::CorrelationId) => {
                fields.correlation_id = match reader.plain_string() {
                    Some(id) => Some(Value::String(id.to_owned())),
                    None => reader.value()?,
                }
            }
            Some(Key::Traceparent) => fields.traceparent = reader.text(Cow::into_owned)?,
            Some(Key::Tracestate) => fields.tracestate = reader.text(Cow::into_owned)?,
            Some(Key::Jsonrpc) => {
                fields.jsonrpc = reader.nested_value::<Option<IgnoredAny>>()?.is_some();
            }
            None => reader.nested_value::<IgnoredAny>().map(drop)?,
        }
        Some(())
    })?;
    fields.envelope()
}

/// The keys [`parse_common_call`] reads.
#[derive(Clone, Copy)]
enum Key {
    Procedure,
    Scope,
    Version,
    Args,
    Params,
    Identity,
    CorrelationId,
    Traceparent,
    Tracestate,
    Jsonrpc,
}

impl crate::reader::Key for Key {
    fn of(key: &str) -> Option<Key> {
        Some(match key {
            "procedure" => Key::Procedure,
            "scope" => Key::Scope,
            "version" => Key::Version,
            "args" => Key::Args,
            "params" => Key::Params,
            "identity" => Key::Identity,
            "correlationId" => Key::CorrelationId,
            "traceparent" => Key::Traceparent,
            "tracestate" => Key::Tracestate,
            "jsonrpc" => Key::Jsonrpc,
            _ => return None,
        })
    }

    fn index(self) -> u32 {
        self as u32
    }
}

/// The fields [`parse_common_call`] reads (null reads as absent).
#[derive(Default)]
struct CommonFields<'a> {
    procedure: Option<Text<'a>>,
    scope: Option<Text<'a>>,
    version: Option<Version<'a>>,
    /// The address the three name, once read for the args (and until one
    /// of them comes after them).
    address: Option<Address>,
    /// Present (`Some`), and null (`None`) or not.
    args: Option<Option<Args>>,
    params: bool,
    identity: Option<Identity>,
    correlation_id: Option<Value>,
    traceparent: Option<String>,
    tracestate: Option<String>,
    jsonrpc: bool,
}

impl CommonFields<'_> {
    fn envelope(self) -> Option<Envelope> {
        if self.jsonrpc || (matches!(self.args, None | Some(None)) && self.params) {
            return None;
        }
        let correlation_id = match self.correlation_id {
            None => None,
            Some(id @ (Value::String(_) | Value::Number(_))) => Some(id),
            Some(_) => return None,
        };
        let address = match self.address {
            Some(address) => address,
            None => address(&self.procedure, &self.scope, &self.version)?,
        };
        let args = self.args.flatten().unwrap_or_default();
        Some(Envelope {
            address,
            args,
            identity: self.identity,
            correlation_id,
            traceparent: self.traceparent,
            tracestate: self.tracestate,
        })
    }
}

/// The address a call's fields name (the defaults for a scope and a
/// version not given), if it names a procedure.
fn address(
    procedure: &Option<Text<'_>>,
    scope: &Option<Text<'_>>,
    version: &Option<Version<'_>>,
) -> Option<Address> {
    let procedure = procedure.as_ref().filter(|name| !name.0.is_empty())?;
    Some(Address::read(
        scope.as_ref().map_or("global", |scope| &scope.0),
        &procedure.0,
        version.as_ref().map_or("1", |version| &version.0),
    ))
}

/// Panics unless the two readings of one call agree (for tests and the
/// fuzz target).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn assert_same(common: &Envelope, general: &Envelope) {
    let parts = |e: &Envelope| {
        (
            e.address.clone(),
            (*e.args).clone(),
            e.identity.clone(),
            e.correlation_id.clone(),
            e.traceparent.clone(),
            e.tracestate.clone(),
        )
    };
    assert_eq!(parts(common), parts(general));
}

/// A string, borrowed from the bytes unless it has escapes (serde's own
/// `Cow` inside an `Option` always copies).
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = TextVisitor { integers: false };
        deserializer.deserialize_str(text).map(Text)
    }
}

/// A version: a string, or an integer written as one.
struct Version<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Version<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let version = TextVisitor { integers: true };
        deserializer.deserialize_any(version).map(Version)
    }
}

/// Reads [`Text`] and [`Version`]: a string, borrowed where it can be,
/// and (where `integers`) an integer as its digits.
struct TextVisitor {
    integers: bool,
}

impl<'de> serde::de::Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.integers {
            "a string or an integer"
        } else {
            "a string"
        })
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(text))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(text.to_owned()))
    }

    fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<Self::Value, E> {
        self.integer(number, serde::de::Unexpected::Unsigned(number))
    }

    fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<Self::Value, E> {
        self.integer(number, serde::de::Unexpected::Signed(number))
    }
}

impl TextVisitor {
    fn integer<'de, E: serde::de::Error>(
        self,
        number: impl std::fmt::Display,
        unexpected: serde::de::Unexpected<'_>,
    ) -> Result<Cow<'de, str>, E> {
        if self.integers {
            Ok(Cow::Owned(number.to_string()))
        } else {
            Err(E::invalid_type(unexpected, &self))
        }
    }
}

/// The envelope that parsed JSON must be: an object.
pub(crate) fn object(value: Value) -> Result<Map<String, Value>, Malformed> {
    match value {
        Value::Object(object) => Ok(object),
        other => Err(Malformed::new(
            format!("the envelope must be a JSON object, not {}", kind(&other)),
            None,
        )),
    }
}

/// Reads a call: every field but `procedure` (or `method`) is optional.
pub(crate) fn parse_call(mut object: Map<String, Value>) -> Result<Envelope, Malformed> {
    let correlation_id = correlation_id(&mut object)?;
    let mut text = |key: &str| match object.remove(key) {
        Some(Value::String(text)) => Some(text),
        _ => None,
    };
    let (traceparent, tracestate) = (text("traceparent"), text("tracestate"));
    match read_call(&mut object) {
        Ok((address, args, identity)) => Ok(Envelope {
            address,
            args: args.into(),
            identity,
            correlation_id,
            traceparent,
            tracestate,
        }),
        Err(message) => Err(Malformed::new(message, correlation_id)),
    }
}

/// Reads a WebSocket frame, deciding in the protocol's order: identity
/// only, client message, call.
pub(crate) fn parse_frame(mut object: Map<String, Value>) -> Result<Frame, Malformed> {
    let has_procedure = object.contains_key("procedure") || object.contains_key("method");
    if !has_procedure && object.contains_key("identity") {
        let correlation_id = correlation_id(&mut object)?;
        return match read_identity(object.remove("identity")) {
            Ok(Some(identity)) => Ok(Frame::SetIdentity {
                identity,
                correlation_id,
            }),
            Ok(None) => Ok(Frame::SetIdentity {
                identity: Identity::default(),
                correlation_id,
            }),
            Err(message) => Err(Malformed::new(message, correlation_id)),
        };
    }
    if !has_procedure && let Some(message) = object.remove("clientMessage") {
        return Ok(Frame::ClientMessage(message));
    }
    parse_call(object).map(Frame::Call)
}

fn correlation_id(object: &mut Map<String, Value>) -> Result<Option<Value>, Malformed> {
    match object.remove("correlationId") {
        None | Some(Value::Null) => Ok(None),
        Some(id @ (Value::String(_) | Value::Number(_))) => Ok(Some(id)),
        Some(other) => Err(Malformed::new(
            format!(
                "correlationId must be a string or a number, not {}",
                kind(&other)
            ),
            None,
        )),
    }
}

type CallParts = (Address, Value, Option<Identity>);

fn read_call(object: &mut Map<String, Value>) -> Result<CallParts, String> {
    let procedure = match object
        .remove("procedure")
        .or_else(|| object.remove("method"))
    {
        Some(Value::String(name)) if !name.is_empty() => name,
        Some(Value::String(_)) => return Err("procedure must not be empty".into()),
        Some(other) => return Err(format!("procedure must be a string, not {}", kind(&other))),
        None => return Err("procedure is required (or its synonym method)".into()),
    };
    let scope = match object.remove("scope") {
        None | Some(Value::Null) => "global".to_owned(),
        Some(Value::String(scope)) => scope,
        Some(other) => return Err(format!("scope must be a string, not {}", kind(&other))),
    };
    let version = match object.remove("version") {
        None | Some(Value::Null) => "1".to_owned(),
        Some(Value::String(version)) => version,
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(other) => {
            return Err(format!(
                "version must be a string or an integer, not {}",
                kind(&other)
            ));
        }
    };
    let args = match object.remove("args").or_else(|| object.remove("params")) {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(args) => args,
    };
    let identity = read_identity(object.remove("identity"))?;
    Ok((Address::read(&scope, &procedure, &version), args, identity))
}

fn read_identity(value: Option<Value>) -> Result<Option<Identity>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value @ Value::Object(_)) => serde_json::from_value(value)
            .map(Some)
            .map_err(|error| format!("identity is malformed: {error}")),
        Some(other) => Err(format!("identity must be an object, not {}", kind(&other))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A response as written on the wire.
#[derive(Serialize)]
struct WireOut<'a> {
    code: u16,
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
    #[serde(rename = "correlationId", skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a Value>,
}

/// [`encode_response`] as text, for WebSocket frames.
pub(crate) fn encode_response_text(
    result: &Result<Data, RpcError>,
    correlation_id: Option<&Value>,
) -> String {
    // serde_json writes UTF-8, data kept as text is UTF-8, and so is what
    // `encode_response` writes around them.
    String::from_utf8(encode_response(result, correlation_id)).unwrap_or_default()
}

/// Writes the response to a call. A success is written field by field
/// (its fixed parts as they are, its data as the text it was written as,
/// else by serde, like its correlation id); an error through
/// [`WireOut`]. Both write what `WireOut` would.
pub(crate) fn encode_response(
    result: &Result<Data, RpcError>,
    correlation_id: Option<&Value>,
) -> Vec<u8> {
    // Serializing Values (and a Value-based struct) to a Vec cannot fail.
    match result {
        Ok(data) => {
            let mut out = Vec::with_capacity(64 + data.text().map_or(192, <[u8]>::len));
            out.extend_from_slice(br#"{"code":200,"success":true"#);
            if !data.is_null() {
                out.extend_from_slice(br#","data":"#);
                data.write_to(&mut out);
            }
            if let Some(id) = correlation_id {
                out.extend_from_slice(br#","correlationId":"#);
                let _ = serde_json::to_writer(&mut out, id);
            }
            out.push(b'}');
            out
        }
        Err(error) => {
            let mut out = Vec::with_capacity(256);
            let _ = serde_json::to_writer(&mut out, &wire_error(error, correlation_id));
            out
        }
    }
}

fn wire_error<'a>(error: &'a RpcError, correlation_id: Option<&'a Value>) -> WireOut<'a> {
    WireOut {
        code: error.code(),
        success: false,
        data: error.data(),
        message: Some(error.message()),
        errors: (!error.errors().is_empty()).then_some(error.errors()),
        correlation_id,
    }
}

/// A frame as read by clients: a response, or (over WebSocket) a server
/// message, which has no code.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub(crate) struct WireIn {
    pub(crate) code: Option<u16>,
    #[serde(default)]
    pub(crate) data: Value,
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default)]
    pub(crate) errors: Vec<FieldError>,
    #[serde(default)]
    pub(crate) correlation_id: Option<Value>,
    /// Present, even as `null`, only in a server message.
    #[serde(default, deserialize_with = "present")]
    pub(crate) server_message: Option<Value>,
}

#[cfg_attr(not(feature = "client"), allow(dead_code))]
fn present<'de, D: serde::Deserializer<'de>>(value: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(value).map(Some)
}

#[cfg_attr(not(feature = "client"), allow(dead_code))]
impl WireIn {
    pub(crate) fn into_result(self) -> Result<Value, RpcError> {
        let Some(code) = self.code else {
            return Err(RpcError::new(502, "the response has no code"));
        };
        if (200..300).contains(&code) {
            Ok(self.data)
        } else {
            let mut error = RpcError::new(code, self.message.unwrap_or_default());
            if !self.errors.is_empty() {
                let message = error.message().to_owned();
                error = RpcError::invalid_args(self.errors);
                error = error.with_message(message);
            }
            if !self.data.is_null() {
                error = error.with_data(self.data);
            }
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decoders::{any_json, lenient, strict};
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(object) => object,
            _ => unreachable!(),
        }
    }

    #[test]
    fn successes_are_written_as_the_wire_struct_writes_them() {
        let data = [
            json!(null),
            json!(3),
            json!("text with \"quotes\" and é"),
            json!({"sum": 19, "nested": [1, {"a": null}]}),
        ];
        let ids = [
            None,
            Some(json!("c-1")),
            Some(json!(17)),
            Some(json!("\u{1}")),
        ];
        for data in &data {
            for id in &ids {
                let wire = WireOut {
                    code: 200,
                    success: true,
                    data: (!data.is_null()).then_some(data),
                    message: None,
                    errors: None,
                    correlation_id: id.as_ref(),
                };
                let expected = serde_json::to_vec(&wire).unwrap();
                // Data kept as a value, and as text.
                for result in [
                    Ok(Data::from(data.clone())),
                    Ok(Data::encode(data).unwrap()),
                ] {
                    let written = encode_response(&result, id.as_ref());
                    assert_eq!(
                        String::from_utf8_lossy(&written),
                        String::from_utf8_lossy(&expected)
                    );
                    assert_eq!(
                        encode_response_text(&result, id.as_ref()).as_bytes(),
                        &expected[..]
                    );
                }
            }
        }
    }

    /// The common shape read from bytes, against the general reading:
    /// `Some` exactly where expected, and then the same call.
    #[test]
    fn the_common_shape_reads_as_the_general_way_does() {
        let cases: &[(&str, bool)] = &[
            (
                r#"{"procedure":"add","scope":"math","args":{"a":1,"b":[2,"]"]}}"#,
                true,
            ),
            (r#"{"procedure":"p"}"#, true),
            (
                r#"{"procedure":"p","args":null,"scope":null,"version":null}"#,
                true,
            ),
            (r#"{"procedure":"p","version":2,"correlationId":7}"#, true),
            (
                r#"{"procedure":"p","version":"v2","correlationId":"x","unknown":[1]}"#,
                true,
            ),
            (
                r#"{"procedure":"p","identity":{"authorization":"Bearer t","deviceName":"d"}}"#,
                true,
            ),
            (
                r#"{"procedure":"p","traceparent":"00-a-b-01","tracestate":"k=v"}"#,
                true,
            ),
            (r#" {"procedure":"p","args":"\u00e9\"{"} "#, true),
            (
                r#"{"procedure":"p","method":"m","params":[1],"args":{}}"#,
                true,
            ),
            // Left to the general reading: other shapes and malformed ones.
            (r#"{"method":"m"}"#, false),
            (r#"{"procedure":"p","params":{"a":1}}"#, false),
            (r#"{"procedure":"p","args":null,"params":{"a":1}}"#, false),
            (r#"{"procedure":null,"method":"m"}"#, false),
            (r#"{"procedure":""}"#, false),
            (r#"{"procedure":"p","procedure":"q"}"#, false),
            (r#"{"procedure":"p","version":1.5}"#, false),
            (r#"{"procedure":"p","correlationId":true}"#, false),
            (r#"{"procedure":"p","identity":["Bearer t"]}"#, false),
            (r#"{"procedure":"p","traceparent":5}"#, false),
            (r#"{"procedure":"p","jsonrpc":"2.0"}"#, false),
            (r#"["p", "s", "1", {}]"#, false),
            (r#"{"procedure":"p"} x"#, false),
            (r#"{"procedure":"p""#, false),
            // Values a `Value` cannot hold (a number out of range, a lone
            // surrogate), wherever they are; what it can hold is read.
            (r#"{"procedure":"p","args":{"a":1e400}}"#, false),
            (r#"{"procedure":"p","args":{"a":1,"z":[-1e400]}}"#, false),
            (r#"{"procedure":"p","args":{"a":1,"z":"\ud800"}}"#, false),
            (r#"{"procedure":"p","args":{"a":1,"\udc00":0}}"#, false),
            (
                r#"{"procedure":"p","unknown":111111111111111111e1110}"#,
                false,
            ),
            (r#"{"procedure":"p","unknown":{"k":"\udc00"}}"#, false),
            (r#"{"procedure":"p","correlationId":1e400}"#, false),
            (r#"{"procedure":"p","identity":{"x":1e400}}"#, false),
            (
                r#"{"procedure":"p","args":{"a":1e-400,"z":"\ud83d\ude00"},"u":0e999}"#,
                true,
            ),
        ];
        // With no decoder the args are skimmed; with one that decodes any
        // JSON (into a `Value`), or a type that ignores fields it does not
        // know, they are decoded where the procedure comes first: either
        // way the call reads as the general way reads it.
        let decoders = [
            None,
            Some(any_json as DecodePrefixFn),
            Some(lenient as DecodePrefixFn),
        ];
        for decoder in decoders {
            for (text, common) in cases {
                let bytes = bytes::Bytes::from_static(text.as_bytes());
                let read = parse_common_call(&bytes, |_| decoder);
                assert_eq!(read.is_some(), *common, "{text}");
                let general = parse_json(text.as_bytes())
                    .and_then(super::object)
                    .and_then(parse_call);
                if let Some(read) = read {
                    assert_same(&read, &general.expect("the general reading takes it"));
                }
            }
            // Args nesting deeper than kept text may are read the general
            // way, which refuses them past the envelope's limit.
            let nested = |depth: usize| {
                format!(
                    r#"{{"procedure":"p","args":{}{}}}"#,
                    "[".repeat(depth),
                    "]".repeat(depth)
                )
            };
            let common = |text: String| parse_common_call(&bytes::Bytes::from(text), |_| decoder);
            let kept = common(nested(126)).expect("read");
            assert!(kept.args.text().is_some() && kept.args.is_array());
            assert!(common(nested(127)).is_none());
            assert!(common(nested(200)).is_none());
            assert!(parse_json(nested(200).as_bytes()).is_err());
            let invalid = bytes::Bytes::from_static(b"{\"procedure\":\"p\",\"args\":\"\xff\"}");
            assert!(parse_common_call(&invalid, |_| decoder).is_none());
            // Values nesting deeper than the envelope allows, under any key.
            for key in ["unknown", "identity", "params"] {
                let deep = format!(
                    r#"{{"procedure":"p","args":{{}},"{key}":{}{}}}"#,
                    "[".repeat(128),
                    "]".repeat(128)
                );
                assert!(parse_json(deep.as_bytes()).is_err());
                assert!(common(deep).is_none(), "{key}");
            }
        }
    }

    #[test]
    fn args_are_decoded_for_the_procedure_named_before_them() {
        let read = |text: &'static str| {
            let bytes = bytes::Bytes::from_static(text.as_bytes());
            let only_p = |address: &Address| {
                (*address == Address::new("s", "p", "1")).then_some(strict as DecodePrefixFn)
            };
            parse_common_call(&bytes, only_p)
        };
        // Decoded, and kept as text beside the value.
        let mut call = read(r#"{"procedure":"p","scope":"s","args": {"a": 7} ,"correlationId":1}"#)
            .expect("read");
        assert_eq!(call.args.text(), Some(r#"{"a": 7}"#));
        assert_eq!(call.args.take_decoded::<i64>(), Some(7));
        assert_eq!(call.args.take_decoded::<i64>(), None, "taken once");
        // A copy, or args changed as a value, have no decoded value.
        let mut call = read(r#"{"procedure":"p","scope":"s","args":{"a":7}}"#).expect("read");
        assert_eq!(call.args.clone().take_decoded::<i64>(), None);
        call.args["a"] = json!(8);
        assert_eq!(call.args.take_decoded::<i64>(), None);
        // Of another type: not taken.
        let mut call = read(r#"{"procedure":"p","scope":"s","args":{"a":7}}"#).expect("read");
        assert_eq!(call.args.take_decoded::<u8>(), None);
        // Args before the procedure, or of another procedure: text only.
        for text in [
            r#"{"args":{"a":7},"procedure":"p","scope":"s"}"#,
            r#"{"procedure":"q","scope":"s","args":{"a":7}}"#,
            r#"{"procedure":"p","scope":"s","args":null}"#,
        ] {
            let mut call = read(text).expect(text);
            assert_eq!(call.args.take_decoded::<i64>(), None, "{text}");
        }
        // A scope after the args: decoded for the address read before
        // them, which only a handler of the same args type takes (and the
        // same type decodes the same text alike).
        let bytes = bytes::Bytes::from_static(br#"{"procedure":"p","args":{"a":7},"scope":"s"}"#);
        let mut call = parse_common_call(&bytes, |_| Some(strict as DecodePrefixFn)).expect("read");
        assert_eq!(call.address, Address::new("s", "p", "1"));
        assert_eq!(call.args.take_decoded::<i64>(), Some(7));
        let mut call = read(r#"{"procedure":"p","args":{"a":7},"scope":"s"}"#).expect("as text");
        assert_eq!(call.args.take_decoded::<i64>(), None);
        // Args that do not decode: kept as text, for the handler to report.
        for text in [
            r#"{"procedure":"p","scope":"s","args":{"a":"7"}}"#,
            r#"{"procedure":"p","scope":"s","args":{"a":7,"b":1}}"#,
            r#"{"procedure":"p","scope":"s","args":[7]}"#,
        ] {
            let mut call = read(text).expect(text);
            assert!(call.args.text().is_some(), "{text}");
            assert_eq!(call.args.take_decoded::<i64>(), None, "{text}");
        }
        assert!(read(r#"{"procedure":"p","scope":"s","args":{"a":7]}"#).is_none());
        // Decoded whatever the scope's default was written as.
        let bytes =
            bytes::Bytes::from_static(br#"{"procedure":"p","args":{"a":7},"scope":"global"}"#);
        let global = |address: &Address| {
            (*address == Address::new("global", "p", "1")).then_some(strict as DecodePrefixFn)
        };
        let mut call = parse_common_call(&bytes, global).expect("read");
        assert_eq!(call.args.take_decoded::<i64>(), Some(7));
    }

    #[test]
    fn synonyms_and_defaults() {
        let call = parse_call(object(json!({"method": "m", "params": [1], "version": 2}))).unwrap();
        assert_eq!(call.address, Address::new("global", "m", "2"));
        assert_eq!(call.args, json!([1]));
        let call = parse_call(object(json!({"procedure": "p"}))).unwrap();
        assert_eq!(call.address, Address::new("global", "p", "1"));
        assert_eq!(call.args, json!({}));
    }

    #[test]
    fn malformed_fields_are_named() {
        let bad = |v: Value| {
            parse_call(object(v))
                .unwrap_err()
                .error
                .message()
                .to_owned()
        };
        assert!(bad(json!({})).contains("procedure is required"));
        assert!(bad(json!({"procedure": 1})).contains("procedure must be a string"));
        assert!(bad(json!({"procedure": "p", "scope": []})).contains("scope must be a string"));
        assert!(bad(json!({"procedure": "p", "version": 1.5})).contains("version must be"));
        assert!(
            bad(json!({"procedure": "p", "identity": "x"})).contains("identity must be an object")
        );
        assert!(
            bad(json!({"procedure": "p", "identity": {"authorization": 3}}))
                .contains("identity is malformed")
        );
        assert!(bad(json!({"procedure": "p", "correlationId": {}})).contains("correlationId"));
    }

    #[test]
    fn frames_follow_protocol_order() {
        assert!(matches!(
            parse_frame(object(json!({"identity": {}, "correlationId": 1}))).unwrap(),
            Frame::SetIdentity { .. }
        ));
        assert!(matches!(
            parse_frame(object(json!({"clientMessage": 5}))).unwrap(),
            Frame::ClientMessage(_)
        ));
        assert!(matches!(
            parse_frame(object(json!({"procedure": "p", "identity": {}}))).unwrap(),
            Frame::Call(_)
        ));
    }
}
