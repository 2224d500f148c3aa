//! Reading a request's outer JSON object member by member, straight from
//! its text: what the common shapes of an envelope (`envelope.rs`) and of
//! a JSON-RPC request (`jsonrpc.rs`) are read with. Strings without
//! escapes are sliced where they are; every other value is read by
//! serde_json (through [`Strict`](crate::decode::Strict), which reads
//! even what it skips as a `serde_json::Value` would); the args are
//! decoded into their procedure's type as they are met, where the caller
//! has its decoder, so that their text is read once.
//!
//! Anything unexpected is `None`, for the caller's general reading (a
//! `serde_json::Value`) to read, and answer when malformed.

// Servers read requests; clients only read responses.
#![cfg_attr(not(feature = "server"), allow(dead_code))]

use crate::Args;
use crate::descriptor::DecodePrefixFn;
use crate::envelope::MAX_DEPTH;
use serde::de::IgnoredAny;
use std::borrow::Cow;

/// The keys of an object that a reader knows.
pub(crate) trait Key: Copy {
    fn of(key: &str) -> Option<Self>;

    /// Its place among the known keys (under 32).
    fn index(self) -> u32;
}

pub(crate) struct Reader<'a> {
    /// The buffer the text is in, which kept args share.
    bytes: &'a bytes::Bytes,
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader of `bytes`, if they are UTF-8 (checked whole at once,
    /// which costs less than serde_json's check of every string).
    pub(crate) fn new(bytes: &'a bytes::Bytes) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        Some(Reader { bytes, text, at: 0 })
    }

    /// Reads the object that makes up the whole text, calling `member`
    /// with each key (`None` for one it does not know) to read its value.
    /// A key with escapes, or a known key twice, is `None`.
    pub(crate) fn object<K: Key>(
        mut self,
        mut member: impl FnMut(&mut Self, Option<K>) -> Option<()>,
    ) -> Option<()> {
        let mut seen = 0u32;
        self.expect(b'{')?;
        if !self.next_is(b'}') {
            loop {
                let key = K::of(self.plain_string()?);
                if let Some(key) = key {
                    let bit = 1 << key.index();
                    if seen & bit != 0 {
                        return None;
                    }
                    seen |= bit;
                }
                self.expect(b':')?;
                member(&mut self, key)?;
                if !self.next_is(b',') {
                    self.expect(b'}')?;
                    break;
                }
            }
        }
        self.skip_whitespace();
        (self.at == self.text.len()).then_some(())
    }

    fn skip_whitespace(&mut self) {
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.text.as_bytes().get(self.at).copied()
    }

    /// Whether the next byte (after whitespace) is `byte`, taken if so.
    fn next_is(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.next_is(byte).then_some(())
    }

    /// A string without escapes that comes next, borrowed; `None`, having
    /// read nothing, for anything else.
    pub(crate) fn plain_string(&mut self) -> Option<&'a str> {
        self.skip_whitespace();
        let rest = self.text.as_bytes().get(self.at..)?;
        if rest.first() != Some(&b'"') {
            return None;
        }
        let len = rest[1..]
            .iter()
            .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)?;
        if rest[1 + len] != b'"' {
            return None;
        }
        let string = &self.text[self.at + 1..self.at + 1 + len];
        self.at += len + 2;
        Some(string)
    }

    /// A string, or null (`None`), or what else `T` reads (an integer as a
    /// version): strings without escapes are read here, the rest by
    /// serde_json.
    pub(crate) fn text<T: serde::Deserialize<'a>>(
        &mut self,
        borrowed: impl FnOnce(Cow<'a, str>) -> T,
    ) -> Option<Option<T>> {
        match self.plain_string() {
            Some(string) => Some(Some(borrowed(Cow::Borrowed(string)))),
            None => self.value(),
        }
    }

    /// The value that comes next, decoded into `T`.
    pub(crate) fn value<T: serde::Deserialize<'a>>(&mut self) -> Option<T> {
        let (value, len) = crate::decode::prefix(&self.text[self.at..])?;
        self.at += len;
        Some(value)
    }

    /// The value that comes next, refused (as the general reading, which
    /// counts the object's own level, refuses it) when it nests deeper
    /// than a value in a request may.
    pub(crate) fn nested_value<T: serde::Deserialize<'a>>(&mut self) -> Option<T> {
        let start = self.at;
        let value = self.value()?;
        let text = &self.text.as_bytes()[start..self.at];
        crate::json::nests_within(text, MAX_DEPTH - 1).then_some(value)
    }

    /// The args that come next (`None` for null), kept as text (a slice of
    /// the buffer): decoded with the decoder `decoder` gives, where it
    /// gives one, and kept beside the text; else, or when they do not
    /// decode (for the handler to report as it always does), read only to
    /// find their end, as strictly as a `serde_json::Value` reads them.
    pub(crate) fn args(
        &mut self,
        decoder: impl FnOnce() -> Option<DecodePrefixFn>,
    ) -> Option<Option<Args>> {
        if self.peek()? == b'n' {
            return self.value::<()>().map(|()| None);
        }
        let start = self.at;
        if let Some(decode) = decoder()
            && let Some((value, len)) = decode(&self.text[start..])
        {
            self.at += len;
            return Args::decoded_in(self.bytes, start..self.at, value).map(Some);
        }
        self.value::<IgnoredAny>()?;
        Args::kept_in(self.bytes, start..self.at).map(Some)
    }
}
