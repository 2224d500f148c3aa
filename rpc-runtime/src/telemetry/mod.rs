//! What a server has been doing: per-procedure calls, errors by code and
//! latency percentiles, for `GET /telemetry` (JSON and an HTML view) and
//! `GET /metrics` (Prometheus text, through `metrics-exporter-prometheus`
//! with a recorder of the server's own, so no global recorder is taken).

use crate::Address;
use metrics::{Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub(crate) const PAGE: &str = include_str!("page.html");

/// At most this many forwarded procedures get statistics of their own;
/// the rest are counted together, so unknown names cannot grow memory.
const MAX_REMOTE: usize = 1_000;

const METADATA: Metadata<'static> = Metadata::new(
    "rpc_runtime",
    metrics::Level::INFO,
    Some("rpc_runtime::telemetry"),
);

/// Status codes are 100 to 599; one counter each.
const CODES: usize = 500;

/// Latencies in microseconds, in log-linear buckets: exact below 32, then
/// 32 buckets per power of two (about 3% wide), up to about 71 minutes.
/// Every call of every thread records here, so recording is one atomic
/// add and no lock; percentiles are read from the buckets.
struct Latencies {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

const SUB: u32 = 5;
const LINEAR: u64 = 1 << SUB;
const BUCKETS: usize = (LINEAR as usize) * (64 - SUB as usize + 1);

impl Latencies {
    fn new() -> Self {
        Latencies {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    fn index(micros: u64) -> usize {
        if micros < LINEAR {
            return micros as usize;
        }
        let exponent = 63 - micros.leading_zeros();
        let mantissa = (micros >> (exponent - SUB)) & (LINEAR - 1);
        (LINEAR + u64::from(exponent - SUB) * LINEAR + mantissa) as usize
    }

    /// The middle of a bucket, in microseconds.
    fn value(index: usize) -> f64 {
        let index = index as u64;
        if index < LINEAR {
            return index as f64;
        }
        let exponent = (index - LINEAR) / LINEAR + u64::from(SUB);
        let mantissa = (index - LINEAR) % LINEAR;
        let low = (LINEAR + mantissa) << (exponent - u64::from(SUB));
        let width = 1u64 << (exponent - u64::from(SUB));
        low as f64 + width as f64 / 2.0
    }

    fn record(&self, micros: u64) {
        let index = Self::index(micros).min(BUCKETS - 1);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
    }

    /// The `q` quantiles, in milliseconds.
    fn quantiles(&self, qs: &[f64]) -> Vec<f64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        qs.iter()
            .map(|q| {
                if total == 0 {
                    return 0.0;
                }
                let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
                let mut seen = 0;
                for (index, count) in counts.iter().enumerate() {
                    seen += count;
                    if seen >= rank {
                        let max = self.max.load(Ordering::Relaxed) as f64;
                        return Self::value(index).min(max) / 1000.0;
                    }
                }
                0.0
            })
            .collect()
    }
}

/// Statistics of one procedure.
pub(crate) struct Stats {
    labels: Vec<Label>,
    codes: Box<[AtomicU64]>,
    latency: Latencies,
}

impl Stats {
    fn new(address: &Address) -> Self {
        Stats {
            labels: vec![
                Label::new("scope", address.scope.clone()),
                Label::new("procedure", address.procedure.clone()),
                Label::new("version", address.version.clone()),
            ],
            codes: (0..CODES).map(|_| AtomicU64::new(0)).collect(),
            latency: Latencies::new(),
        }
    }

    fn record(&self, code: u16, elapsed: Duration) {
        let slot = usize::from(code.clamp(100, 599) - 100);
        self.codes[slot].fetch_add(1, Ordering::Relaxed);
        self.latency
            .record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    fn codes(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.codes.iter().enumerate().filter_map(|(slot, count)| {
            let count = count.load(Ordering::Relaxed);
            (count > 0).then(|| (slot as u16 + 100, count))
        })
    }

    /// Hands the numbers to the Prometheus recorder, which renders them.
    fn publish(&self, recorder: &PrometheusRecorder) {
        for (code, count) in self.codes() {
            let mut labels = self.labels.clone();
            labels.push(Label::new("code", code.to_string()));
            recorder
                .register_counter(&Key::from_parts("rpc_calls_total", labels), &METADATA)
                .absolute(count);
        }
        let quantiles = [0.5, 0.9, 0.99];
        for (q, ms) in quantiles.iter().zip(self.latency.quantiles(&quantiles)) {
            let mut labels = self.labels.clone();
            labels.push(Label::new("quantile", q.to_string()));
            recorder
                .register_gauge(
                    &Key::from_parts("rpc_call_duration_seconds", labels),
                    &METADATA,
                )
                .set(ms / 1000.0);
        }
    }
}

/// A server's telemetry.
pub(crate) struct Telemetry {
    recorder: PrometheusRecorder,
    by_address: RwLock<HashMap<Address, Arc<Stats>>>,
    other: Arc<Stats>,
}

fn other_address() -> Address {
    Address::new("(other)", "(other)", "(other)")
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            recorder: PrometheusBuilder::new().build_recorder(),
            by_address: RwLock::new(HashMap::new()),
            other: Arc::new(Stats::new(&other_address())),
        }
    }
}

impl Telemetry {
    /// The statistics of a hosted procedure, made at startup.
    pub(crate) fn local(&self, address: &Address) -> Arc<Stats> {
        let stats = Arc::new(Stats::new(address));
        self.by_address
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(address.clone(), stats.clone());
        stats
    }

    /// The statistics of a procedure that has its own row already.
    pub(crate) fn known(&self, address: &Address) -> Option<Arc<Stats>> {
        self.by_address
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(address)
            .cloned()
    }

    /// Records a call that no local procedure ran: forwarded, or not found.
    pub(crate) fn record_other(&self, address: &Address, code: u16, elapsed: Duration) {
        let stats = match self.known(address) {
            Some(stats) => stats,
            // A 404 names nothing real: it is not given a row of its own.
            None if code == 404 => self.other.clone(),
            None => {
                let mut map = self
                    .by_address
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if map.len() >= MAX_REMOTE {
                    self.other.clone()
                } else {
                    map.entry(address.clone())
                        .or_insert_with(|| Arc::new(Stats::new(address)))
                        .clone()
                }
            }
        };
        stats.record(code, elapsed);
    }

    pub(crate) fn record(&self, stats: &Stats, code: u16, elapsed: Duration) {
        stats.record(code, elapsed);
    }

    /// Every procedure with its numbers, sorted by address.
    pub(crate) fn procedures(&self) -> Vec<ProcedureNumbers> {
        let map = self
            .by_address
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rows: Vec<ProcedureNumbers> = map
            .iter()
            .map(|(address, stats)| numbers(address.clone(), stats))
            .chain(std::iter::once(numbers(other_address(), &self.other)))
            .filter(|row| row.calls > 0 || row.address.scope != "(other)")
            .collect();
        rows.sort_by(|a, b| a.address.cmp(&b.address));
        rows
    }

    /// The Prometheus exposition, rendered by the exporter from the
    /// numbers as they are now.
    pub(crate) fn prometheus(&self, uptime: Duration, connections: usize) -> String {
        let gauge = |name: &'static str| {
            self.recorder
                .register_gauge(&Key::from_name(name), &METADATA)
        };
        gauge("rpc_uptime_seconds").set(uptime.as_secs_f64());
        gauge("rpc_websocket_connections").set(connections as f64);
        for stats in self
            .by_address
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
        {
            stats.publish(&self.recorder);
        }
        self.other.publish(&self.recorder);
        self.recorder.handle().render()
    }
}

/// One row of the telemetry's procedure table.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProcedureNumbers {
    #[serde(flatten)]
    address: Address,
    calls: u64,
    errors: BTreeMap<String, u64>,
    latency_ms: Latency,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn numbers(address: Address, stats: &Stats) -> ProcedureNumbers {
    let mut calls = 0;
    let mut errors = BTreeMap::new();
    for (code, count) in stats.codes() {
        calls += count;
        if !(200..300).contains(&code) {
            errors.insert(code.to_string(), count);
        }
    }
    let quantiles = stats.latency.quantiles(&[0.5, 0.9, 0.99]);
    ProcedureNumbers {
        address,
        calls,
        errors,
        latency_ms: Latency {
            p50: quantiles[0],
            p90: quantiles[1],
            p99: quantiles[2],
            max: stats.latency.max.load(Ordering::Relaxed) as f64 / 1000.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_then_within_three_percent() {
        for micros in [
            0u64,
            1,
            31,
            32,
            33,
            100,
            1_000,
            12_345,
            1_000_000,
            3_600_000_000,
        ] {
            let middle = Latencies::value(Latencies::index(micros));
            let error = (middle - micros as f64).abs() / (micros.max(1) as f64);
            assert!(error <= 0.032, "{micros}: {middle}");
        }
        assert!(Latencies::index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_follow_the_samples() {
        let latencies = Latencies::new();
        for micros in 1..=1000 {
            latencies.record(micros * 10);
        }
        let [p50, p99] = latencies.quantiles(&[0.5, 0.99])[..] else {
            panic!()
        };
        assert!((p50 - 5.0).abs() < 0.2, "{p50}");
        assert!((p99 - 9.9).abs() < 0.35, "{p99}");
        assert_eq!(Latencies::new().quantiles(&[0.5]), vec![0.0]);
    }
}
