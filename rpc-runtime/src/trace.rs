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
    pub parent_span_id: Option<String>,
    /// The `sampled` flag of the incoming `traceparent` (true when none
    /// came).
    pub sampled: bool,
    /// The incoming `tracestate`, passed on unchanged.
    pub state: Option<String>,
}

/// A parsed `traceparent`: version `00`, a trace id and a parent id that
/// are not all zeros, and the flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TraceParent {
    pub(crate) trace_id: String,
    pub(crate) parent_id: String,
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
        if trace_id.len() != 32 || !is_hex(trace_id) || trace_id.bytes().all(|b| b == b'0') {
            return None;
        }
        if parent_id.len() != 16 || !is_hex(parent_id) || parent_id.bytes().all(|b| b == b'0') {
            return None;
        }
        if flags.len() != 2 || !is_hex(flags) {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(TraceParent {
            trace_id: trace_id.to_owned(),
            parent_id: parent_id.to_owned(),
            sampled: flags & 1 == 1,
        })
    }
}

/// The `traceparent` of a call's own span, for what it calls.
pub(crate) fn traceparent(trace_id: &str, span_id: &str, sampled: bool) -> String {
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
pub(crate) fn new_trace_id() -> String {
    let (seed, count) = next();
    hex([mix(seed ^ count), mix(seed.wrapping_add(count)) | 1])
}

/// A fresh span id: 16 hex digits, never all zeros.
pub(crate) fn new_span_id() -> String {
    let (seed, count) = next();
    hex([mix(seed.rotate_left(29) ^ count) | 1])
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

fn hex<const N: usize>(words: [u64; N]) -> String {
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
    let mut id = String::with_capacity(16 * N);
    for word in words {
        let mut digits = [0u8; 16];
        for (pair, byte) in digits.chunks_exact_mut(2).zip(word.to_be_bytes()) {
            pair.copy_from_slice(&PAIRS[byte as usize]);
        }
        // Hex digits are ASCII.
        id.push_str(std::str::from_utf8(&digits).unwrap_or_default());
    }
    id
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
        assert_eq!(hex([0x0123_4567_89ab_cdef]), "0123456789abcdef");
        assert_eq!(hex([0xfe, u64::MAX]), "00000000000000feffffffffffffffff");
    }

    #[test]
    fn fresh_ids_are_well_formed_and_distinct() {
        let (a, b) = (new_trace_id(), new_trace_id());
        assert_ne!(a, b);
        assert!(a.len() == 32 && is_hex(&a));
        let (x, y) = (new_span_id(), new_span_id());
        assert_ne!(x, y);
        assert!(x.len() == 16 && is_hex(&x) && x != "0000000000000000");
        let header = traceparent(&a, &x, true);
        assert_eq!(
            TraceParent::parse(&header).map(|p| (p.trace_id, p.parent_id)),
            Some((a, x))
        );
    }
}
