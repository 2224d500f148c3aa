//! The data a call answers with: written as JSON text once, by the
//! handler that produced it (or as it came from another server), and
//! copied as it is into the response; a [`serde_json::Value`] only for
//! what reads it as one (a middleware, an event hook).

use crate::json::{Json, reads_as_value};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The data of a successful call: reads as a [`Value`] (it dereferences
/// to one, parsed on first read), and keeps the JSON text its procedure's
/// output was written as, which transports copy into the response.
///
/// ```
/// use rpc_runtime::Data;
/// use serde_json::json;
///
/// let data = Data::encode(&[1, 2]).expect("serializes");
/// assert_eq!(data[1], 2);
/// assert!(!data.is_null() && Data::default().is_null());
/// let mut data = Data::from(json!({"a": 1}));
/// data["b"] = json!(2);
/// assert_eq!(*data, json!({"a": 1, "b": 2}));
/// ```
#[derive(Clone)]
pub struct Data(Json);

reads_as_value!(Data);

impl Data {
    /// Writes `output` as JSON text (or, for output nested deeper than text
    /// is kept, as a value).
    pub fn encode<T: Serialize + ?Sized>(output: &T) -> serde_json::Result<Data> {
        let text = serde_json::to_vec(output)?;
        match Json::kept(Bytes::from(text)) {
            Some(json) => Ok(Data(json)),
            None => serde_json::to_value(output).map(Data::from),
        }
    }

    /// Decodes the data into `T`, from its text when it has one.
    pub fn decode<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        match self.0.bytes() {
            Some(text) => serde_json::from_slice(text),
            None => T::deserialize(&**self),
        }
    }

    /// The data as a value, parsed if it was text.
    pub fn into_value(self) -> Value {
        self.0.into_value()
    }

    /// The JSON text, while the value is unchanged: valid JSON, written
    /// into responses as it is.
    pub(crate) fn text(&self) -> Option<&[u8]> {
        self.0.bytes()
    }

    /// Whether the data is `null` (which responses leave out), without
    /// parsing its text (the same answer as the value's `is_null`, which
    /// this method would otherwise hide from callers).
    pub fn is_null(&self) -> bool {
        match self.text() {
            Some(text) => text == b"null",
            None => (**self).is_null(),
        }
    }

    /// Appends the data as JSON: its text as it is, else its value.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        match self.text() {
            Some(text) => out.extend_from_slice(text),
            // Serializing a Value into a Vec cannot fail.
            None => {
                let _ = serde_json::to_writer(out, &**self);
            }
        }
    }
}

/// `null`: the data of a call that answers nothing.
impl Default for Data {
    fn default() -> Self {
        Data::from(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Sum {
        sum: i64,
        note: Option<String>,
    }

    #[test]
    fn is_written_once_and_read_as_a_value_or_a_type() {
        let sum = Sum {
            sum: 3,
            note: Some("\"quoted\"".into()),
        };
        let mut data = Data::encode(&sum).expect("serializes");
        assert_eq!(
            data.text(),
            Some(br#"{"sum":3,"note":"\"quoted\""}"#.as_slice())
        );
        assert_eq!(data.decode::<Sum>().expect("decodes"), sum);
        assert_eq!(data["sum"], 3);
        assert!(data.text().is_some(), "reading keeps the text");
        assert_eq!(
            serde_json::to_string(&data).expect("json"),
            r#"{"sum":3,"note":"\"quoted\""}"#
        );
        data["sum"] = json!(4);
        assert_eq!(data.text(), None, "changing forgets it");
        assert_eq!(data.decode::<Sum>().expect("decodes").sum, 4);
        assert_eq!(data.clone().into_value(), *data);
    }

    #[test]
    fn output_nested_deeper_than_kept_text_is_kept_as_a_value() {
        let mut deep = json!(1);
        for _ in 0..200 {
            deep = json!([deep]);
        }
        let data = Data::encode(&deep).expect("serializes");
        assert_eq!(data.text(), None);
        assert_eq!(*data, deep);
    }
}
