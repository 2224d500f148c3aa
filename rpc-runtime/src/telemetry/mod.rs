//! What a server has been doing: per-procedure calls, errors by code and
//! latency, for `GET /telemetry` (JSON and an HTML view, with percentiles)
//! and `GET /metrics` (Prometheus text: counters and gauges through
//! `metrics-exporter-prometheus` with a recorder of the server's own, so no
//! global recorder is taken; call durations as histograms per scope,
//! procedure, version and code, with configurable buckets; and, appended,
//! the application's own metrics if it hands its handle to the server).
//!
//! Internal procedures are left out of both unless the server opts in, as
//! on `/docs`.

use crate::Address;
use metrics::{Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
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
        // Read first: the maximum rarely changes, and a read does not take
        // the cache line from the other threads that record.
        if micros > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(micros, Ordering::Relaxed);
        }
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

/// The default histogram buckets, in seconds (Prometheus client
/// libraries' defaults).
pub(crate) const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A Prometheus histogram of call durations: a count per bucket (the last
/// is `+Inf`) and the sum, each one atomic.
struct Histogram {
    counts: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(buckets: usize) -> Self {
        Histogram {
            counts: (0..=buckets).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn record(&self, bounds: &[f64], micros: u64) {
        let seconds = micros as f64 / 1e6;
        let slot = bounds.partition_point(|bound| *bound < seconds);
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// Statistics of one procedure.
pub(crate) struct Stats {
    labels: Vec<Label>,
    codes: Box<[AtomicU64]>,
    latency: Latencies,
    /// Histograms by status code, made on the first call with each code.
    histograms: RwLock<Vec<(u16, Arc<Histogram>)>>,
    /// The histogram of code 200 (also in `histograms`), which most calls
    /// record into: found without taking the lock or counting a reference,
    /// each a write to memory every thread that records shares.
    succeeded: OnceLock<Arc<Histogram>>,
    bounds: Arc<[f64]>,
    /// Shown only where internal procedures are.
    internal: bool,
}

impl Stats {
    fn new(address: &Address, bounds: Arc<[f64]>, internal: bool) -> Self {
        Stats {
            labels: vec![
                Label::new("scope", address.scope.clone()),
                Label::new("procedure", address.procedure.clone()),
                Label::new("version", address.version.clone()),
            ],
            codes: (0..CODES).map(|_| AtomicU64::new(0)).collect(),
            latency: Latencies::new(),
            histograms: RwLock::new(Vec::new()),
            succeeded: OnceLock::new(),
            bounds,
            internal,
        }
    }

    fn record(&self, code: u16, elapsed: Duration) {
        let code = code.clamp(100, 599);
        let slot = usize::from(code - 100);
        self.codes[slot].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency.record(micros);
        if code == 200 {
            self.succeeded
                .get_or_init(|| self.histogram(code))
                .record(&self.bounds, micros);
        } else {
            self.histogram(code).record(&self.bounds, micros);
        }
    }

    fn histogram(&self, code: u16) -> Arc<Histogram> {
        let found = self
            .histograms
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, histogram)| histogram.clone());
        if let Some(histogram) = found {
            return histogram;
        }
        let mut all = self
            .histograms
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, histogram)) = all.iter().find(|(c, _)| *c == code) {
            return histogram.clone();
        }
        let histogram = Arc::new(Histogram::new(self.bounds.len()));
        all.push((code, histogram.clone()));
        histogram
    }

    /// Appends the histograms in the Prometheus text format.
    fn render_histograms(&self, out: &mut String) {
        use std::fmt::Write;
        let mut histograms = self
            .histograms
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        histograms.sort_by_key(|(code, _)| *code);
        let labels: String = self
            .labels
            .iter()
            .map(|label| format!("{}=\"{}\",", label.key(), escape_label(label.value())))
            .collect();
        for (code, histogram) in histograms {
            let mut cumulative = 0;
            for (slot, count) in histogram.counts.iter().enumerate() {
                cumulative += count.load(Ordering::Relaxed);
                let le = match self.bounds.get(slot) {
                    Some(bound) => bound.to_string(),
                    None => "+Inf".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "rpc_call_duration_seconds_bucket{{{labels}code=\"{code}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "rpc_call_duration_seconds_sum{{{labels}code=\"{code}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "rpc_call_duration_seconds_count{{{labels}code=\"{code}\"}} {cumulative}"
            );
        }
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
    }
}

/// A label value in the Prometheus text format.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A server's telemetry.
pub(crate) struct Telemetry {
    recorder: PrometheusRecorder,
    by_address: RwLock<HashMap<Address, Arc<Stats>>>,
    other: Arc<Stats>,
    bounds: Arc<[f64]>,
    show_internal: bool,
    /// The application's own metrics, rendered after the server's.
    application: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Counters and gauges of the server's parts (broker, WebSocket).
    pub(crate) counters: Arc<Counters>,
}

/// What the server's parts count, for `/metrics`.
#[derive(Default)]
pub(crate) struct Counters {
    /// Publishes refused while the broker blocked publishers.
    pub(crate) broker_blocked_refusals: AtomicU64,
    /// Reconnections to the broker after a lost connection.
    pub(crate) broker_reconnects: AtomicU64,
    /// Announcements of other servers heard.
    pub(crate) broker_announcements: AtomicU64,
    /// Pushes and closes of other servers this server received from the
    /// broker (one per AMQP message).
    pub(crate) mesh_orders: AtomicU64,
    /// Pushes queued on WebSocket connections.
    pub(crate) pushes_sent: AtomicU64,
    /// Pushes not delivered: the connection was gone or too far behind.
    pub(crate) pushes_dropped: AtomicU64,
    /// WebSocket closes by close code (index: code - 1000, up to 4999).
    closes: RwLock<BTreeMap<u16, u64>>,
}

impl Counters {
    pub(crate) fn closed(&self, code: u16) {
        *self
            .closes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(code)
            .or_default() += 1;
    }
}

/// How a server's telemetry is configured.
pub(crate) struct TelemetryConfig {
    pub(crate) buckets: Vec<f64>,
    pub(crate) show_internal: bool,
    pub(crate) application: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            buckets: DEFAULT_BUCKETS.to_vec(),
            show_internal: false,
            application: None,
        }
    }
}

fn other_address() -> Address {
    Address::new("(other)", "(other)", "(other)")
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new(TelemetryConfig::default())
    }
}

impl Telemetry {
    pub(crate) fn new(config: TelemetryConfig) -> Self {
        let mut buckets: Vec<f64> = config
            .buckets
            .into_iter()
            .filter(|bound| bound.is_finite() && *bound > 0.0)
            .collect();
        buckets.sort_by(f64::total_cmp);
        buckets.dedup();
        let bounds: Arc<[f64]> = buckets.into();
        Telemetry {
            recorder: PrometheusBuilder::new().build_recorder(),
            by_address: RwLock::new(HashMap::new()),
            other: Arc::new(Stats::new(&other_address(), bounds.clone(), false)),
            bounds,
            show_internal: config.show_internal,
            application: config.application,
            counters: Arc::default(),
        }
    }

    fn shown(&self, stats: &Stats) -> bool {
        self.show_internal || !stats.internal
    }

    /// The statistics of a hosted procedure, made at startup.
    pub(crate) fn local(&self, address: &Address, internal: bool) -> Arc<Stats> {
        let stats = Arc::new(Stats::new(address, self.bounds.clone(), internal));
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
    pub(crate) fn record_other(
        &self,
        address: &Address,
        internal: bool,
        code: u16,
        elapsed: Duration,
    ) {
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
                        .or_insert_with(|| {
                            Arc::new(Stats::new(address, self.bounds.clone(), internal))
                        })
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
            .filter(|(_, stats)| self.shown(stats))
            .map(|(address, stats)| numbers(address.clone(), stats))
            .chain(std::iter::once(numbers(other_address(), &self.other)))
            .filter(|row| row.calls > 0 || row.address.scope != "(other)")
            .collect();
        rows.sort_by(|a, b| a.address.cmp(&b.address));
        rows
    }

    /// The Prometheus exposition: the server's counters and gauges (rendered
    /// by the exporter), the call duration histograms, then the
    /// application's metrics.
    pub(crate) fn prometheus(&self, uptime: Duration, gauges: &[(&'static str, f64)]) -> String {
        let gauge = |name: &'static str| {
            self.recorder
                .register_gauge(&Key::from_name(name), &METADATA)
        };
        gauge("rpc_uptime_seconds").set(uptime.as_secs_f64());
        for (name, value) in gauges {
            gauge(name).set(*value);
        }
        let counter = |name: &'static str, value: &AtomicU64| {
            self.recorder
                .register_counter(&Key::from_name(name), &METADATA)
                .absolute(value.load(Ordering::Relaxed));
        };
        let counters = &self.counters;
        counter(
            "rpc_broker_blocked_refusals_total",
            &counters.broker_blocked_refusals,
        );
        counter("rpc_broker_reconnects_total", &counters.broker_reconnects);
        counter(
            "rpc_broker_announcements_total",
            &counters.broker_announcements,
        );
        counter("rpc_mesh_orders_received_total", &counters.mesh_orders);
        counter("rpc_websocket_pushes_total", &counters.pushes_sent);
        counter(
            "rpc_websocket_pushes_dropped_total",
            &counters.pushes_dropped,
        );
        for (code, count) in counters
            .closes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            self.recorder
                .register_counter(
                    &Key::from_parts(
                        "rpc_websocket_closes_total",
                        vec![Label::new("code", code.to_string())],
                    ),
                    &METADATA,
                )
                .absolute(*count);
        }
        let stats: Vec<Arc<Stats>> = self
            .by_address
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|stats| self.shown(stats))
            .cloned()
            .chain(std::iter::once(self.other.clone()))
            .collect();
        for stats in &stats {
            stats.publish(&self.recorder);
        }
        let mut out = self.recorder.handle().render();
        out.push_str(
            "# HELP rpc_call_duration_seconds Time from a call's arrival to its answer.\n\
             # TYPE rpc_call_duration_seconds histogram\n",
        );
        for stats in &stats {
            stats.render_histograms(&mut out);
        }
        if let Some(application) = &self.application {
            out.push_str(&application.render());
        }
        out
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
