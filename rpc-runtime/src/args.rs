//! A call's args: the JSON text as it arrived, parsed into a
//! [`serde_json::Value`] only when something reads them as one (a
//! middleware, the schema validator, a log), and decoded into the
//! procedure's args type straight from the text otherwise; or, where the
//! transport decoded them into that type while it read the request, that
//! value, which the handler takes.

use crate::json::{Json, reads_as_value};
use bytes::Bytes;
use serde_json::Value;
use std::any::Any;

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
#[derive(Clone)]
pub struct Args(Json, Decoded);

reads_as_value!(Args, Decoded(None));

/// The args decoded into their procedure's type while the request was
/// read (`reader.rs`), for its handler to take. A copy of the args, or
/// args changed as a value, have none.
#[derive(Default)]
pub(crate) struct Decoded(Option<sync_wrapper::SyncWrapper<Box<dyn Any + Send>>>);

impl Clone for Decoded {
    fn clone(&self) -> Self {
        Decoded(None)
    }
}

impl Args {
    /// Args whose text is `buffer[span]` (sharing the buffer); `None` for
    /// text that nests deeper than kept text may (the transport reads such
    /// a request the general way, which has its own limit).
    pub(crate) fn kept_in(buffer: &Bytes, span: std::ops::Range<usize>) -> Option<Args> {
        Json::kept(buffer.slice(span)).map(|json| Args(json, Decoded(None)))
    }

    /// Args whose text is `buffer[span]`, already decoded into `value`;
    /// `None` as for [`Args::kept_in`].
    pub(crate) fn decoded_in(
        buffer: &Bytes,
        span: std::ops::Range<usize>,
        value: Box<dyn Any + Send>,
    ) -> Option<Args> {
        let Args(json, _) = Args::kept_in(buffer, span)?;
        Some(Args(
            json,
            Decoded(Some(sync_wrapper::SyncWrapper::new(value))),
        ))
    }

    /// The args decoded while the request was read, if they are a `T`.
    pub(crate) fn take_decoded<T: 'static>(&mut self) -> Option<T> {
        let value = self.1.0.take()?.into_inner();
        value.downcast().ok().map(|value| *value)
    }

    /// What stays in a call whose args its handler took: no text, and a
    /// value (`null`) only when read. Unlike [`Args::default`], costs
    /// nothing to make.
    #[cfg_attr(not(feature = "server"), allow(dead_code, reason = "the pipeline's"))]
    pub(crate) fn taken() -> Args {
        Args(Json::empty(), Decoded(None))
    }

    /// The JSON text they arrived as, while the value is unchanged.
    pub(crate) fn text(&self) -> Option<&str> {
        self.0.text()
    }

    /// The args as a value, parsed if they were text.
    pub fn into_value(self) -> Value {
        self.0.into_value()
    }
}

/// An empty object: the args of an envelope that has none.
impl Default for Args {
    fn default() -> Self {
        Args::from(Value::Object(serde_json::Map::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    fn text(json: &str) -> Args {
        serde_json::from_str(json).expect("args")
    }

    #[test]
    fn shares_the_buffer_the_text_is_in() {
        let buffer = Bytes::from_static(br#"{"args": {"x": [1]}}"#);
        let args = Args::kept_in(&buffer, 9..19).expect("kept");
        assert_eq!(args.text(), Some(r#"{"x": [1]}"#));
        assert_eq!(args.text().map(str::as_ptr), Some(buffer[9..].as_ptr()));
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
    fn text_nesting_deeper_than_kept_text_may_is_not_kept() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let buffer = Bytes::from(deep.clone());
        assert!(Args::kept_in(&buffer, 0..buffer.len()).is_none());
        assert!(serde_json::from_str::<Args>(&deep).is_err());
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
