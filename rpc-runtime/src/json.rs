//! JSON text kept as it came (or as it was written), read as a
//! [`serde_json::Value`] only when something asks: what a call's
//! [`Args`](crate::Args) and its answer's [`Data`](crate::Data) are made
//! of. The text goes on as it is (into a typed decode, a response, a
//! broker message) when nothing reads the value.

use bytes::Bytes;
use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;
use std::sync::OnceLock;

/// JSON text and the value it reads as, either or both.
#[derive(Clone)]
pub(crate) struct Json {
    /// Valid JSON, nested no deeper than [`MAX_TEXT_DEPTH`]; gone once the
    /// value is changed.
    text: Option<Bytes>,
    /// The value: given, or parsed from the text on first read.
    value: OnceLock<Value>,
}

/// How deep the text may nest for it to be kept: parsing it later must not
/// meet serde_json's recursion limit (128) when the text was only skimmed,
/// nor take args the envelope's own limit (the same 128, its own level
/// included) would refuse.
pub(crate) const MAX_TEXT_DEPTH: usize = 126;

impl Json {
    /// `text` must be valid JSON; `None` when it nests deeper than kept
    /// text may.
    pub(crate) fn kept(text: Bytes) -> Option<Json> {
        nests_within(&text, MAX_TEXT_DEPTH).then(|| Json {
            text: Some(text),
            value: OnceLock::new(),
        })
    }

    /// JSON text of its own (a broker message's). Text that nests deeper
    /// than kept text may is parsed now, or refused.
    pub(crate) fn from_text(text: Box<RawValue>) -> serde_json::Result<Json> {
        let text = Bytes::from(Box::<str>::from(text).into_boxed_bytes());
        if nests_within(&text, MAX_TEXT_DEPTH) {
            Ok(Json {
                text: Some(text),
                value: OnceLock::new(),
            })
        } else {
            serde_json::from_slice::<Value>(&text).map(Json::from)
        }
    }

    /// No text, and a value (`null`) only when read: costs nothing to make.
    pub(crate) const fn empty() -> Json {
        Json {
            text: None,
            value: OnceLock::new(),
        }
    }

    /// The text, while the value is unchanged.
    pub(crate) fn text(&self) -> Option<&str> {
        // Checked whole (faster than string by string as serde_json's
        // slice reader would).
        std::str::from_utf8(self.text.as_deref()?).ok()
    }

    /// The text's bytes, while the value is unchanged.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        self.text.as_deref()
    }

    pub(crate) fn value(&self) -> &Value {
        self.value.get_or_init(|| parse(self.text()))
    }

    /// Changing the value forgets the text.
    pub(crate) fn value_mut(&mut self) -> &mut Value {
        if self.value.get().is_none() {
            let _ = self.value.set(parse(self.text()));
        }
        self.text = None;
        self.value.get_mut().expect("set above")
    }

    pub(crate) fn into_value(mut self) -> Value {
        self.value.take().unwrap_or_else(|| parse(self.text()))
    }
}

/// Kept text parses; `Null` stands in for the impossible failure.
fn parse(text: Option<&str>) -> Value {
    text.and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null)
}

impl From<Value> for Json {
    fn from(value: Value) -> Self {
        Json {
            text: None,
            value: OnceLock::from(value),
        }
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.value.get(), self.text()) {
            (Some(value), _) => fmt::Debug::fmt(value, f),
            (None, Some(text)) => f.write_str(text),
            (None, None) => f.write_str("null"),
        }
    }
}

/// The text as it is, else the value.
impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self
            .text()
            .and_then(|text| serde_json::from_str::<&RawValue>(text).ok());
        match text {
            Some(text) => text.serialize(serializer),
            None => self.value().serialize(serializer),
        }
    }
}

/// What [`Json`] gives the public types made of it: they read as a
/// [`Value`] and change as one (forgetting the text), convert from and
/// into one, compare by value, serialize as their text, and deserialize
/// (from serde_json's own deserializers) keeping the text. A type with a
/// second field names the value it holds while it has no more than its
/// [`Json`]; changing the value resets that field to it.
macro_rules! reads_as_value {
    ($name:ident $(, $plain:expr)?) => {
        impl From<serde_json::Value> for $name {
            fn from(value: serde_json::Value) -> Self {
                $name(crate::json::Json::from(value) $(, $plain)?)
            }
        }

        impl From<$name> for serde_json::Value {
            fn from(json: $name) -> serde_json::Value {
                json.0.into_value()
            }
        }

        impl std::ops::Deref for $name {
            type Target = serde_json::Value;

            fn deref(&self) -> &serde_json::Value {
                self.0.value()
            }
        }

        /// Changing the value forgets the text.
        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut serde_json::Value {
                $(self.1 = $plain;)?
                self.0.value_mut()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.0, f)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                **self == **other
            }
        }

        impl PartialEq<serde_json::Value> for $name {
            fn eq(&self, other: &serde_json::Value) -> bool {
                **self == *other
            }
        }

        /// The text as it is, else the value.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }

        /// Kept as text (from serde_json's own deserializers).
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
                crate::json::Json::from_text(text)
                    .map(|json| $name(json $(, $plain)?))
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use reads_as_value;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_nesting_deeper_than_a_value_may_is_refused() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let raw = RawValue::from_string(deep).expect("skimmed without a limit");
        assert!(Json::from_text(raw).is_err());
        let kept = format!(
            "{}{}",
            "[".repeat(MAX_TEXT_DEPTH),
            "]".repeat(MAX_TEXT_DEPTH)
        );
        let kept = Json::from_text(RawValue::from_string(kept).expect("json")).expect("kept");
        assert!(kept.text().is_some());
        assert!(kept.value().is_array());
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
}
