//! What a server has been doing: per-procedure calls, errors by code and
//! latency percentiles, for `GET /telemetry` (JSON and an HTML view) and
//! `GET /metrics` (Prometheus text, through `metrics-exporter-prometheus`
//! with a recorder of the server's own, so no global recorder is taken).

use crate::Address;
use hdrhistogram::Histogram;
use metrics::{Counter, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
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

/// Statistics of one procedure.
pub(crate) struct Stats {
    labels: Vec<Label>,
    /// Microseconds, 1 us to 1 h, 2 significant digits (`None` only if the
    /// histogram could not be made, which those bounds rule out).
    latency: Mutex<Option<Histogram<u64>>>,
    codes: Mutex<BTreeMap<u16, (u64, Counter)>>,
    duration: metrics::Histogram,
}

impl Stats {
    fn new(recorder: &PrometheusRecorder, address: &Address) -> Self {
        let labels = vec![
            Label::new("scope", address.scope.clone()),
            Label::new("procedure", address.procedure.clone()),
            Label::new("version", address.version.clone()),
        ];
        let duration = recorder.register_histogram(
            &Key::from_parts("rpc_call_duration_seconds", labels.clone()),
            &METADATA,
        );
        Stats {
            labels,
            latency: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 2).ok()),
            codes: Mutex::new(BTreeMap::new()),
            duration,
        }
    }

    fn record(&self, recorder: &PrometheusRecorder, code: u16, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        if let Some(histogram) = lock(&self.latency).as_mut() {
            let _ = histogram.record(micros.min(3_600_000_000));
        }
        self.duration.record(elapsed.as_secs_f64());
        let mut codes = lock(&self.codes);
        let (count, counter) = codes.entry(code).or_insert_with(|| {
            let mut labels = self.labels.clone();
            labels.push(Label::new("code", code.to_string()));
            (
                0,
                recorder.register_counter(&Key::from_parts("rpc_calls_total", labels), &METADATA),
            )
        });
        *count += 1;
        counter.increment(1);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A server's telemetry.
pub(crate) struct Telemetry {
    recorder: PrometheusRecorder,
    by_address: RwLock<HashMap<Address, Arc<Stats>>>,
    other: Arc<Stats>,
}

impl Default for Telemetry {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let other = Arc::new(Stats::new(
            &recorder,
            &Address::new("(other)", "(other)", "(other)"),
        ));
        Telemetry {
            recorder,
            by_address: RwLock::new(HashMap::new()),
            other,
        }
    }
}

impl Telemetry {
    /// The statistics of a hosted procedure, made at startup.
    pub(crate) fn local(&self, address: &Address) -> Arc<Stats> {
        let stats = Arc::new(Stats::new(&self.recorder, address));
        self.by_address
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(address.clone(), stats.clone());
        stats
    }

    /// Records a call that no local procedure ran: forwarded, or not found.
    pub(crate) fn record_other(&self, address: &Address, code: u16, elapsed: Duration) {
        let known = self
            .by_address
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(address)
            .cloned();
        let stats = match known {
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
                        .or_insert_with(|| Arc::new(Stats::new(&self.recorder, address)))
                        .clone()
                }
            }
        };
        stats.record(&self.recorder, code, elapsed);
    }

    pub(crate) fn record(&self, stats: &Stats, code: u16, elapsed: Duration) {
        stats.record(&self.recorder, code, elapsed);
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
            .chain(std::iter::once(numbers(
                Address::new("(other)", "(other)", "(other)"),
                &self.other,
            )))
            .filter(|row| row.calls > 0 || row.address.scope != "(other)")
            .collect();
        rows.sort_by(|a, b| a.address.cmp(&b.address));
        rows
    }

    /// Drains the samples the Prometheus histograms buffer into their
    /// summaries; without it they would grow with every call until a scrape.
    pub(crate) fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }

    /// The Prometheus exposition, with the server-wide gauges set first.
    pub(crate) fn prometheus(&self, uptime: Duration, connections: usize) -> String {
        let gauge = |name: &'static str| {
            self.recorder
                .register_gauge(&Key::from_name(name), &METADATA)
        };
        gauge("rpc_uptime_seconds").set(uptime.as_secs_f64());
        gauge("rpc_websocket_connections").set(connections as f64);
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
    let codes = lock(&stats.codes);
    let calls = codes.values().map(|(n, _)| n).sum();
    let errors = codes
        .iter()
        .filter(|(code, _)| !(200..300).contains(*code))
        .map(|(code, (n, _))| (code.to_string(), *n))
        .collect();
    drop(codes);
    let histogram = lock(&stats.latency);
    let at = |q: f64| {
        histogram
            .as_ref()
            .map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0)
    };
    ProcedureNumbers {
        address,
        calls,
        errors,
        latency_ms: Latency {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: at(1.0),
        },
    }
}

/// `GET /telemetry`: the server, its transports and broker, and every
/// procedure's numbers.
pub(crate) fn report(
    dispatcher: &crate::dispatch::Dispatcher,
    websocket: bool,
) -> serde_json::Value {
    let handle = &dispatcher.handle;
    serde_json::json!({
        "server": handle.name(),
        "instanceId": handle.instance_id(),
        "framework": concat!("rpc-runtime ", env!("CARGO_PKG_VERSION")),
        "startedAt": handle.started_at(),
        "uptimeSeconds": handle.uptime().as_secs_f64(),
        "transports": {
            "http": handle.http_addr().map(|a| a.to_string()),
            "websocket": websocket && handle.http_addr().is_some(),
            "broker": dispatcher.forward.get().is_some(),
        },
        "broker": dispatcher.forward.get().map(|f| f.status()),
        "websocket": { "connections": handle.connection_count() },
        "procedures": dispatcher.telemetry.procedures(),
    })
}
