//! W3C trace context (`traceparent`, `tracestate`): read from requests,
//! started when absent, carried through RabbitMQ as AMQP headers of the
//! same names, and continued by every call a call makes.
//!
//! A call's trace id is the 32 hex digits of its `traceparent`; each call
//! also has a span id of its own (16 hex digits), which the calls it makes,
//! and the handler server it is forwarded to, name as their parent. With
//! the `otel` feature and a `tracing-opentelemetry` layer installed, the
//! ids are OpenTelemetry's, so that the exported spans link up.

// Servers read and continue traces; without them only fresh ids are made.
#![cfg_attr(not(feature = "server"), allow(dead_code))]

use std::cell::Cell;

/// The trace a call belongs to, and the span that called it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceContext {
    /// The span of the caller (a client's, a gateway's, the calling
    /// procedure's), if the call came with one.
    pub parent_span_id: Option<SpanId>,
    /// The `sampled` flag of the incoming `traceparent` (true when none
    /// came).
    pub sampled: bool,
    /// The incoming `tracestate`, passed on unchanged.
    pub state: Option<String>,
}

/// Defines an id held as its lower-case hex digits, in place: made,
/// copied and compared without an allocation, read as a `&str`.
macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $digits:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $digits]);

        impl $name {
            /// The id from its hex digits: exactly as many as the W3C
            /// gives it, lower-case, not all zeros.
            pub fn parse(digits: &str) -> Option<Self> {
                let bytes: [u8; $digits] = digits.as_bytes().try_into().ok()?;
                (is_hex(digits) && bytes.iter().any(|&b| b != b'0')).then_some($name(bytes))
            }

            /// The hex digits.
            pub fn as_str(&self) -> &str {
                // Only hex digits are ever stored: ASCII.
                std::str::from_utf8(&self.0).unwrap_or_default()
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(digits: &str) -> Result<Self, String> {
                $name::parse(digits).ok_or_else(|| {
                    format!(concat!("a ", $what, " is ", stringify!($digits), " lower-case hex digits, not all zeros: {:?}"), digits)
                })
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let digits = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                digits.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_id!(
    /// A W3C trace id: the 32 hex digits a call shares with every call it
    /// makes (`4bf92f3577b34da6a3ce929d0e0e4736`).
    TraceId,
    32,
    "trace id"
);

hex_id!(
    /// A W3C span id: 16 hex digits (`00f067aa0ba902b7`).
    SpanId,
    16,
    "span id"
);

/// A parsed `traceparent`: version `00`, a trace id and a parent id that
/// are not all zeros, and the flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TraceParent {
    pub(crate) trace_id: TraceId,
    pub(crate) parent_id: SpanId,
    pub(crate) sampled: bool,
}

impl TraceParent {
    pub(crate) fn parse(header: &str) -> Option<TraceParent> {
        let mut parts = header.trim().split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // Version 00 has exactly four parts; a later version may add more,
        // and its first four are read as 00's.
        if version.len() != 2 || !is_hex(version) || version == "ff" {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id = TraceId::parse(trace_id)?;
        let parent_id = SpanId::parse(parent_id)?;
        if flags.len() != 2 || !is_hex(flags) {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(TraceParent {
            trace_id,
            parent_id,
            sampled: flags & 1 == 1,
        })
    }
}

/// The `traceparent` of a call's own span, for what it calls.
pub(crate) fn traceparent(trace_id: &TraceId, span_id: &SpanId, sampled: bool) -> String {
    format!(
        "00-{trace_id}-{span_id}-{}",
        if sampled { "01" } else { "00" }
    )
}

fn is_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A fresh trace id: 32 hex digits that look random, from a random seed
/// per thread and a counter, so that making one costs no system call and
/// no shared atomic.
pub(crate) fn new_trace_id() -> TraceId {
    let (seed, count) = next();
    TraceId(hex([mix(seed ^ count), mix(seed.wrapping_add(count)) | 1]))
}

/// A fresh span id: 16 hex digits, never all zeros.
pub(crate) fn new_span_id() -> SpanId {
    let (seed, count) = next();
    SpanId(hex([mix(seed.rotate_left(29) ^ count) | 1]))
}

/// SplitMix64's finalizer: distinct inputs give distinct, well-spread
/// outputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn next() -> (u64, u64) {
    thread_local! {
        static NEXT: Cell<(u64, u64)> = Cell::new((random_u64(), 0));
    }
    NEXT.with(|next| {
        let (prefix, count) = next.get();
        next.set((prefix, count.wrapping_add(1)));
        (prefix, count)
    })
}

/// A random seed: std's hasher keys come from the operating system.
fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::thread::current().id())
}

/// The hex digits of `words`, each big-endian: `D` is `16 * N`.
fn hex<const N: usize, const D: usize>(words: [u64; N]) -> [u8; D] {
    // Two digits per byte, from a table of every byte's pair.
    const PAIRS: [[u8; 2]; 256] = {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut pairs = [[0u8; 2]; 256];
        let mut byte = 0;
        while byte < 256 {
            pairs[byte] = [HEX[byte >> 4], HEX[byte & 0xf]];
            byte += 1;
        }
        pairs
    };
    let mut digits = [0u8; D];
    let mut at = 0;
    for word in words {
        for byte in word.to_be_bytes() {
            if let Some(pair) = digits.get_mut(at..at + 2) {
                pair.copy_from_slice(&PAIRS[byte as usize]);
            }
            at += 2;
        }
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_read_as_the_w3c_specifies() {
        let good = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(good.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(good.parent_id, "00f067aa0ba902b7");
        assert!(good.sampled);
        assert!(
            !TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .expect("valid")
                .sampled
        );
        // A later version with more parts is read as version 00.
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")
                .is_some()
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn ids_are_written_as_lower_case_hex_with_leading_zeros() {
        assert_eq!(&hex::<1, 16>([0x0123_4567_89ab_cdef]), b"0123456789abcdef");
        assert_eq!(
            &hex::<2, 32>([0xfe, u64::MAX]),
            b"00000000000000feffffffffffffffff"
        );
    }

    #[test]
    fn ids_are_read_only_when_well_formed_and_written_as_their_digits() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let trace_id: TraceId = id.parse().expect("valid");
        assert_eq!(trace_id, id);
        assert_eq!(trace_id.to_string(), id);
        assert_eq!(serde_json::to_value(trace_id).unwrap(), id);
        assert_eq!(
            serde_json::from_value::<TraceId>(id.into()).unwrap(),
            trace_id
        );
        assert_eq!(
            SpanId::parse("00f067aa0ba902b7").unwrap(),
            "00f067aa0ba902b7"
        );
        for bad in [
            "",
            "4bf92f3577b34da6a3ce929d0e0e473",
            "4bf92f3577b34da6a3ce929d0e0e47361",
            "4BF92F3577B34DA6A3CE929D0E0E4736",
            "4bf92f3577b34da6a3ce929d0e0e473g",
            "00000000000000000000000000000000",
            "4bf92f3577b34da6a3ce929d0e0e473é",
        ] {
            assert!(TraceId::parse(bad).is_none(), "{bad}");
            let refused = serde_json::from_value::<TraceId>(bad.into()).unwrap_err();
            assert!(
                refused.to_string().contains("32 lower-case hex digits"),
                "{refused}"
            );
        }
        for bad in ["0000000000000000", "00f067aa0ba902b", "00f067aa0ba902b7a"] {
            assert!(SpanId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn fresh_ids_are_well_formed_and_distinct() {
        let (a, b) = (new_trace_id(), new_trace_id());
        assert_ne!(a, b);
        assert_eq!(TraceId::parse(&a), Some(a));
        let (x, y) = (new_span_id(), new_span_id());
        assert_ne!(x, y);
        assert_eq!(SpanId::parse(&x), Some(x));
        let header = traceparent(&a, &x, true);
        assert_eq!(
            TraceParent::parse(&header).map(|p| (p.trace_id, p.parent_id)),
            Some((a, x))
        );
    }
}
