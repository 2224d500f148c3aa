//! A call's args: the JSON text as it arrived, parsed into a
//! [`serde_json::Value`] only when something reads them as one (a
//! middleware, the schema validator, a log), and decoded into the
//! procedure's args type straight from the text otherwise.

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

/// The args of a [`Call`](crate::Call): reads as a [`Value`] (it
/// dereferences to one), and keeps the text it arrived as, so that a
/// procedure decodes its typed args without building the `Value` first.
///
/// ```
/// use rpc_runtime::Args;
/// use serde_json::json;
///
/// let mut args = Args::from(json!({"a": 1}));
/// assert_eq!(args["a"], 1);
/// args["b"] = json!(2);
/// assert_eq!(*args, json!({"a": 1, "b": 2}));
/// ```
pub struct Args {
    /// The JSON text as it arrived (a slice of the request's own buffer,
    /// not a copy); gone once the value is changed.
    text: Option<Bytes>,
    /// The value: given, or parsed from the text on first read.
    value: OnceLock<Value>,
}

/// How deep the text may nest for it to be kept: parsing it later must not
/// meet serde_json's recursion limit (128) when the text was only skimmed,
/// nor take args the envelope's own limit (the same 128, its own level
/// included) would refuse.
const MAX_TEXT_DEPTH: usize = 126;

impl Args {
    /// Args from JSON text that `buffer` holds (so that they share it);
    /// `None` for text that nests deeper than kept text may (the transport
    /// reads such a request the general way, which has its own limit).
    pub(crate) fn from_json_in(buffer: &Bytes, json: &RawValue) -> Option<Args> {
        let text = json.get().as_bytes();
        let start = (text.as_ptr() as usize).wrapping_sub(buffer.as_ptr() as usize);
        let shared = match buffer.get(start..start.wrapping_add(text.len())) {
            Some(within) if within.as_ptr() == text.as_ptr() => {
                buffer.slice(start..start + text.len())
            }
            _ => Bytes::copy_from_slice(text),
        };
        nests_within(&shared, MAX_TEXT_DEPTH).then(|| Args::kept(shared))
    }

    /// Args from JSON text of their own (a broker message's). Text that
    /// nests deeper than kept text may is parsed now, or refused.
    pub(crate) fn from_text(text: Box<RawValue>) -> serde_json::Result<Args> {
        let text = Bytes::from(Box::<str>::from(text).into_boxed_bytes());
        if nests_within(&text, MAX_TEXT_DEPTH) {
            Ok(Args::kept(text))
        } else {
            serde_json::from_slice::<Value>(&text).map(Args::from)
        }
    }

    /// `text` is valid JSON, nested no deeper than [`MAX_TEXT_DEPTH`].
    fn kept(text: Bytes) -> Args {
        Args {
            text: Some(text),
            value: OnceLock::new(),
        }
    }

    /// What stays in a call whose args its handler took: no text, and a
    /// value (`null`) only when read. Unlike [`Args::default`], costs
    /// nothing to make.
    #[cfg_attr(not(feature = "server"), allow(dead_code, reason = "the pipeline's"))]
    pub(crate) fn taken() -> Args {
        Args {
            text: None,
            value: OnceLock::new(),
        }
    }

    /// The JSON text they arrived as, while the value is unchanged.
    pub(crate) fn text(&self) -> Option<&str> {
        // Checked whole (faster than string by string as serde_json's
        // slice reader would).
        std::str::from_utf8(self.text.as_deref()?).ok()
    }

    /// The args as a value, parsed if they were text.
    pub fn into_value(mut self) -> Value {
        self.value.take().unwrap_or_else(|| parse(self.text()))
    }
}

/// Text kept by [`Args::kept`] parses; `Null` stands in for the
/// impossible failure.
fn parse(text: Option<&str>) -> Value {
    text.and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null)
}

/// Whether arrays and objects in JSON text nest at most `limit` deep
/// (brackets inside strings do not count). Text with no more opening
/// brackets than that is let through without reading it byte by byte.
pub(crate) fn nests_within(text: &[u8], limit: usize) -> bool {
    if opening_brackets_within(text, limit) {
        return true;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Whether `text` holds at most `limit` opening brackets. Counted a
/// block at a time into a byte, a loop the compiler turns into vector
/// instructions: searching bracket by bracket cost eight times as much
/// on a 4 KB text with a hundred of them.
fn opening_brackets_within(text: &[u8], limit: usize) -> bool {
    let mut opening = 0;
    for block in text.chunks(u8::MAX as usize) {
        let in_block = block.iter().fold(0u8, |count, &byte| {
            count + u8::from(byte == b'[' || byte == b'{')
        });
        opening += usize::from(in_block);
        if opening > limit {
            return false;
        }
    }
    true
}

impl From<Value> for Args {
    fn from(value: Value) -> Self {
        Args {
            text: None,
            value: OnceLock::from(value),
        }
    }
}

impl From<Args> for Value {
    fn from(args: Args) -> Value {
        args.into_value()
    }
}

/// An empty object: the args of an envelope that has none.
impl Default for Args {
    fn default() -> Self {
        Args::from(Value::Object(serde_json::Map::new()))
    }
}

impl Deref for Args {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value.get_or_init(|| parse(self.text()))
    }
}

/// Changing the value forgets the text.
impl DerefMut for Args {
    fn deref_mut(&mut self) -> &mut Value {
        if self.value.get().is_none() {
            let _ = self.value.set(parse(self.text()));
        }
        self.text = None;
        self.value.get_mut().expect("set above")
    }
}

impl Clone for Args {
    fn clone(&self) -> Self {
        Args {
            text: self.text.clone(),
            value: self.value.clone(),
        }
    }
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.value.get(), self.text()) {
            (Some(value), _) => fmt::Debug::fmt(value, f),
            (None, Some(text)) => f.write_str(text),
            (None, None) => f.write_str("null"),
        }
    }
}

impl PartialEq for Args {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl PartialEq<Value> for Args {
    fn eq(&self, other: &Value) -> bool {
        **self == *other
    }
}

/// The text as it arrived, else the value.
impl Serialize for Args {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self
            .text()
            .and_then(|text| serde_json::from_str::<&RawValue>(text).ok());
        match text {
            Some(text) => text.serialize(serializer),
            None => (**self).serialize(serializer),
        }
    }
}

/// Kept as text (from serde_json's own deserializers).
impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Box::<RawValue>::deserialize(deserializer)?;
        Args::from_text(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(json: &str) -> Args {
        Args::from_text(RawValue::from_string(json.into()).expect("json")).expect("args")
    }

    #[test]
    fn shares_the_buffer_the_text_is_in() {
        let buffer = Bytes::from_static(br#"{"args": {"x": [1]}}"#);
        let json: &RawValue =
            serde_json::from_slice::<std::collections::HashMap<&str, &RawValue>>(&buffer)
                .expect("json")["args"];
        let args = Args::from_json_in(&buffer, json).expect("kept");
        assert_eq!(args.text(), Some(r#"{"x": [1]}"#));
        assert_eq!(args.text().map(str::as_ptr), Some(buffer[9..].as_ptr()));
        // Text from elsewhere is copied.
        let other = Args::from_json_in(&Bytes::from_static(b"{}"), json).expect("kept");
        assert_eq!(other, args);
    }

    #[test]
    fn reads_as_a_value_and_keeps_the_text_until_changed() {
        let mut args = text(r#"{"a": [1, {"b": "]"}]}"#);
        assert_eq!(args.text(), Some(r#"{"a": [1, {"b": "]"}]}"#));
        assert_eq!(args["a"][1]["b"], "]");
        assert!(args.text().is_some(), "reading keeps the text");
        assert_eq!(
            serde_json::to_string(&args).expect("json"),
            r#"{"a": [1, {"b": "]"}]}"#
        );
        args["c"] = json!(true);
        assert_eq!(args.text(), None, "changing forgets it");
        assert_eq!(
            serde_json::to_string(&args).expect("json"),
            r#"{"a":[1,{"b":"]"}],"c":true}"#
        );
        assert_eq!(args.clone().into_value(), *args);
    }

    #[test]
    fn text_nesting_deeper_than_a_value_may_is_refused() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let raw = RawValue::from_string(deep).expect("skimmed without a limit");
        assert!(Args::from_text(raw).is_err());
        let kept = format!(
            "{}{}",
            "[".repeat(MAX_TEXT_DEPTH),
            "]".repeat(MAX_TEXT_DEPTH)
        );
        let kept = text(&kept);
        assert!(kept.text().is_some());
        assert!(kept.is_array());
        // Brackets in strings, escaped quotes included, do not nest.
        assert!(nests_within(br#"["\"[[[[", "{{{{"]"#, 1));
        assert!(!nests_within(br#"[["\\"]]"#, 1));
    }

    #[test]
    fn opening_brackets_are_counted_across_blocks() {
        let mut text = vec![b' '; 1000];
        for at in [0, 254, 255, 509, 510, 999] {
            text[at] = if at % 2 == 0 { b'[' } else { b'{' };
        }
        assert!(opening_brackets_within(&text, 6));
        assert!(!opening_brackets_within(&text, 5));
        assert!(opening_brackets_within(&[b'['; 255], 255));
        assert!(!opening_brackets_within(&[b'{'; 256], 255));
    }

    #[test]
    fn deserializes_as_text() {
        #[derive(Deserialize)]
        struct Message {
            args: Args,
        }
        let message: Message = serde_json::from_str(r#"{"args": {"x": 1}}"#).expect("parses");
        assert_eq!(message.args.text(), Some(r#"{"x": 1}"#));
        assert_eq!(message.args, json!({"x": 1}));
    }
}
