//! The call pipeline: every call, from every entry (HTTP, WebSocket, a
//! handler server's queue consumer, a call a procedure makes), runs here,
//! through these stages in this order:
//!
//! 1. **Shutdown**: once the server drains, calls entering through a
//!    transport are refused with 503 (calls procedures make, and calls the
//!    broker delivered before its consumers were cancelled, still run).
//! 2. **Lookup**: a procedure hosted here, one another server announced,
//!    or, without a broker, none (404).
//! 3. **Internal rule**: an `internal` procedure refuses outside calls (403).
//! 4. **Authentication**: an `auth` procedure needs a token the
//!    authenticator accepts (401); its user id goes into the call.
//! 5. **Middleware**: the application's tower layers, the first added
//!    outermost ([`middleware`]).
//! 6. **Validation**: the args against the procedure's schema (422).
//! 7. **Deadline**: the procedure's timeout, or the server's default, and
//!    never later than the caller's deadline.
//! 8. **Run**: the local handler (504 at the deadline, 503 when the drain
//!    timeout ends), or the broker, which publishes and waits for the reply.
//!
//! Around all of it: the tracing span, telemetry, event hooks, and the log
//! line of an error converted from another type (its cause never reaches
//! the client). Transports only decode requests into [`Call`]s and encode
//! the answers.

pub(crate) mod deadline;
pub mod middleware;
#[cfg(feature = "otel")]
mod otel;
#[cfg(feature = "rate-limit")]
pub(crate) mod rate_limit;

#[cfg(feature = "broker")]
pub(crate) use deadline::after;
pub(crate) use deadline::deadline_in;

use crate::call::Invoke;
use crate::events::{Event, EventKind, Events};
use crate::procedure::BoxFuture;
use crate::registry::{Local, Registry, Rules};
use crate::state::States;
use crate::{Args, Authenticator, Call, Context, Data, Identity, RpcError, ServerHandle};
use futures_util::FutureExt;
use middleware::CallService;
use serde_json::Value;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tower::{Service, ServiceExt};
use tracing::Instrument;

/// Where calls with no local handler go (the broker, when configured).
pub(crate) trait Forward: Send + Sync {
    /// Publishes the call to a remote handler server and waits for the
    /// reply until the call's deadline.
    fn forward(&self, call: Call) -> BoxFuture<Result<Data, RpcError>>;

    /// What another server announced of this procedure, for the rules the
    /// pipeline applies before a call leaves.
    fn announced(&self, address: &crate::Address) -> Option<Arc<dyn Rules>>;

    /// The procedures other servers announced.
    fn remote_procedures(&self) -> Vec<crate::ProcedureSpec>;

    /// Gauges for `/metrics`.
    fn gauges(&self) -> Vec<(&'static str, f64)>;

    /// The state of the link and the servers behind it, for telemetry.
    fn status(&self) -> Value;
}

impl crate::hub::Routes for Pipeline {
    fn routable(&self) -> Vec<crate::ProcedureSpec> {
        Pipeline::routable(self)
    }

    #[cfg(feature = "docs")]
    fn openrpc(&self, request: Option<(&axum::http::HeaderMap, &str)>) -> Value {
        let url =
            crate::docs::server_url(self.public_url.as_deref(), request, self.handle.http_addr());
        crate::docs::openrpc_document(
            &self.name,
            self.routable(),
            self.show_internal,
            url.as_deref(),
        )
    }
}

/// Where a call enters the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// From a client, through HTTP or WebSocket: refused once draining.
    Transport,
    /// Delivered by the broker to the handler server that hosts it.
    #[cfg_attr(not(feature = "broker"), allow(dead_code, reason = "the broker's"))]
    Broker,
    /// Made by a procedure.
    Procedure,
}

/// What a call resolves to.
enum Target<'a> {
    Local(&'a Local),
    /// Forwarded through the broker, with the announced rules if known
    /// (unknown procedures go anyway: the broker answers 404 for them).
    Remote(Option<Arc<dyn Rules>>),
    Missing,
}

impl Target<'_> {
    fn rules(&self) -> Option<&dyn Rules> {
        match self {
            Target::Local(local) => Some(*local),
            Target::Remote(rules) => rules.as_deref(),
            Target::Missing => None,
        }
    }
}

pub(crate) struct Pipeline {
    /// The server's name, which the calls it runs carry as their caller's.
    pub(crate) name: Arc<str>,
    pub(crate) registry: Registry,
    events: Events,
    authenticator: Option<Arc<dyn Authenticator>>,
    default_timeout: Duration,
    pub(crate) forward: std::sync::OnceLock<Arc<dyn Forward>>,
    pub(crate) handle: ServerHandle,
    pub(crate) telemetry: crate::telemetry::Telemetry,
    #[cfg_attr(
        not(feature = "docs"),
        allow(dead_code, reason = "read by rpc.discover")
    )]
    pub(crate) show_internal: bool,
    /// Where clients reach the server, for the OpenRPC document.
    #[cfg_attr(not(feature = "docs"), allow(dead_code, reason = "the docs'"))]
    public_url: Option<String>,
    states: States,
    /// The middleware around stages 6 to 8, if the application gave any.
    middleware: Option<CallService>,
    accepting: AtomicBool,
    /// Set when the drain timeout ends: calls still running answer 503.
    drained: watch::Sender<bool>,
    me: Weak<Pipeline>,
}

pub(crate) struct PipelineConfig {
    pub(crate) name: String,
    pub(crate) registry: Registry,
    pub(crate) events: Events,
    pub(crate) authenticator: Option<Arc<dyn Authenticator>>,
    pub(crate) default_timeout: Duration,
    pub(crate) handle: ServerHandle,
    pub(crate) telemetry: crate::telemetry::Telemetry,
    pub(crate) show_internal: bool,
    pub(crate) public_url: Option<String>,
    pub(crate) states: States,
    pub(crate) layers: Vec<middleware::LayerFn>,
}

impl Pipeline {
    pub(crate) fn new(config: PipelineConfig) -> Arc<Self> {
        Arc::new_cyclic(|me| {
            let middleware = middleware::stack(&config.layers, me.clone());
            Pipeline {
                name: config.name.into(),
                registry: config.registry,
                events: config.events,
                authenticator: config.authenticator,
                default_timeout: config.default_timeout,
                forward: std::sync::OnceLock::new(),
                handle: config.handle,
                telemetry: config.telemetry,
                show_internal: config.show_internal,
                public_url: config.public_url,
                states: config.states,
                middleware,
                accepting: AtomicBool::new(true),
                drained: watch::Sender::new(false),
                me: me.clone(),
            }
        })
    }

    /// Every procedure this server can route: its own, then announced ones.
    pub(crate) fn routable(&self) -> Vec<crate::ProcedureSpec> {
        let mut all: Vec<crate::ProcedureSpec> =
            self.registry.iter().map(|l| l.spec.clone()).collect();
        if let Some(forward) = self.forward.get() {
            for spec in forward.remote_procedures() {
                if self.registry.get(&spec.address).is_none() {
                    all.push(spec);
                }
            }
        }
        all.sort_by(|a, b| a.address.cmp(&b.address));
        all
    }

    #[cfg_attr(
        not(feature = "broker"),
        allow(dead_code, reason = "read by the broker")
    )]
    pub(crate) fn default_timeout(&self) -> Duration {
        self.default_timeout
    }

    /// Calls from clients are refused with 503 from now on; calls that
    /// procedures make while they finish still run.
    pub(crate) fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::SeqCst);
    }

    /// The drain timeout has ended: calls still running answer 503.
    pub(crate) fn abandon_calls(&self) {
        self.drained.send_replace(true);
    }

    /// Runs a call through every stage and reports it to telemetry, event
    /// hooks and tracing.
    ///
    /// The stages run at once, as far as they can without waiting: most
    /// calls (a handler that finishes in its first poll) are answered
    /// before this returns, and only a call that waits keeps a future of
    /// its own, which owns what it needs (so that a transport can hold it
    /// without holding the pipeline).
    pub(crate) fn dispatch(&self, mut call: Box<Call>, entry: Entry) -> Dispatched {
        let started = Instant::now();
        let span = tracing::info_span!(
            "rpc.call",
            otel.kind = if entry == Entry::Procedure { "internal" } else { "server" },
            rpc.system = "rpc-runtime",
            rpc.scope = %call.address.scope,
            rpc.procedure = %call.address.procedure,
            rpc.version = %call.address.version,
            rpc.trace_id = tracing::field::Empty,
            rpc.span_id = tracing::field::Empty,
            rpc.parent_span_id = tracing::field::Empty,
            rpc.transport = %call.metadata.transport,
            rpc.user_id = tracing::field::Empty,
            rpc.code = tracing::field::Empty,
            rpc.duration_us = tracing::field::Empty,
        );
        trace_call(&span, &mut call);
        // Hooks see the request as it came; only then is it copied.
        let record = (!self.events.is_empty()).then(|| call.clone());
        let target = self.lookup(&call.address);
        // A call no local procedure runs is counted under its address, whose
        // row is looked up before the call moves on; the address is copied
        // only while it has no row yet.
        let row = match target {
            Target::Local(local) => Row::Local(&local.stats),
            _ => match self.telemetry.known(&call.address) {
                Some(stats) => Row::Known(stats),
                None => Row::Unknown(call.address.clone()),
            },
        };
        let internal = target.rules().is_some_and(|rules| rules.spec().internal);
        let answered = Answered {
            started,
            span,
            row,
            internal,
            record,
        };
        match answered.span.in_scope(|| self.stages(call, entry, target)) {
            Answer::Now(result) => Dispatched::Now(self.answered(result, answered)),
            Answer::Later(waiting) => {
                let Some(me) = self.me.upgrade() else {
                    return Dispatched::Now(self.answered(Err(stopped()), answered));
                };
                let answered = answered.owned();
                Dispatched::Later(Box::pin(async move {
                    let result = waiting.instrument(answered.span.clone()).await;
                    me.answered(result, answered)
                }))
            }
        }
    }

    /// Reports an answered call to telemetry, tracing and event hooks.
    fn answered(
        &self,
        result: Result<Data, RpcError>,
        answered: Answered<'_>,
    ) -> Result<Data, RpcError> {
        let Answered {
            started,
            span,
            row,
            internal,
            record,
        } = answered;
        let duration = started.elapsed();
        let code = result.as_ref().map_or_else(RpcError::code, |_| 200);
        match &row {
            Row::Local(stats) => self.telemetry.record(stats, code, duration),
            Row::Known(stats) => self.telemetry.record(stats, code, duration),
            Row::Unknown(address) => self
                .telemetry
                .record_other(address, internal, code, duration),
        }
        span.record("rpc.code", code);
        span.record("rpc.duration_us", duration.as_micros() as u64);
        tracing::debug!(parent: &span, "call answered");
        if let Err(error) = &result
            && let Some(cause) = error.cause()
        {
            tracing::error!(parent: &span, %cause, "the procedure failed");
        }
        if let Some(call) = &record {
            self.events.emit(&Event {
                kind: classify(&result),
                call,
                result: &result,
                duration,
            });
        }
        result
    }

    /// Whether this server hosts the procedure or another server announced
    /// it.
    pub(crate) fn knows(&self, address: &crate::Address) -> bool {
        self.registry.get(address).is_some()
            || self
                .forward
                .get()
                .is_some_and(|forward| forward.announced(address).is_some())
    }

    fn lookup(&self, address: &crate::Address) -> Target<'_> {
        if let Some(local) = self.registry.get(address) {
            return Target::Local(local);
        }
        match self.forward.get() {
            Some(forward) => Target::Remote(forward.announced(address)),
            None => Target::Missing,
        }
    }

    /// Stages 1 to 5; the middleware (or, without any, this function)
    /// goes on with [`Pipeline::run`].
    fn stages(&self, mut call: Box<Call>, entry: Entry, target: Target<'_>) -> Answer {
        if entry == Entry::Transport && !self.accepting.load(Ordering::Relaxed) {
            return Answer::Now(Err(RpcError::new(503, "the server is shutting down")));
        }
        if let Target::Missing = target {
            return Answer::Now(Err(not_found(&call)));
        }
        if let Some(rules) = target.rules() {
            let spec = rules.spec();
            if spec.internal && !call.internal {
                return Answer::Now(Err(RpcError::forbidden(format!(
                    "{} is internal: only other procedures may call it",
                    call.address
                ))));
            }
            if spec.auth {
                let Some(me) = self.me.upgrade() else {
                    return Answer::Now(Err(stopped()));
                };
                return Answer::later(async move {
                    if let Some(user_id) = me.authenticate(call.identity.as_ref()).await? {
                        tracing::Span::current().record("rpc.user_id", user_id.as_str());
                        call.user_id = Some(user_id);
                    }
                    let target = me.lookup(&call.address);
                    me.middleware(call, target).finish().await
                });
            }
        }
        self.middleware(call, target)
    }

    /// Stage 5: the application's middleware, which goes on with
    /// [`Pipeline::run`]; without any, `run` directly.
    fn middleware(&self, call: Box<Call>, target: Target<'_>) -> Answer {
        let Some(service) = &self.middleware else {
            return self.run(call, target);
        };
        let mut service = service.clone();
        // Most layers are ready at once: the call goes in now, and only
        // the service's own future is kept. A layer that waits for room
        // (a concurrency limit) is waited for.
        let mut now = std::task::Context::from_waker(std::task::Waker::noop());
        match service.poll_ready(&mut now) {
            Poll::Ready(Ok(())) => Answer::Later(service.call(*call)),
            Poll::Ready(Err(refused)) => Answer::Now(Err(refused)),
            Poll::Pending => Answer::later(service.oneshot(*call)),
        }
    }

    /// Stages 6 to 8: validation, the deadline, then the handler or the
    /// broker. Behind middleware the target is looked up again, since a
    /// middleware may have changed the address.
    fn run(&self, mut call: Box<Call>, target: Target<'_>) -> Answer {
        let rules = target.rules();
        if let Some(rules) = rules
            && !rules.checked_by_type()
            && let Err(invalid) = rules.validate(&call.args)
        {
            return Answer::Now(Err(invalid));
        }
        let timeout = rules
            .and_then(|rules| rules.spec().timeout_ms)
            .map_or(self.default_timeout, Duration::from_millis);
        let own_deadline = deadline_in(timeout);
        let deadline = call.deadline.map_or(own_deadline, |d| d.min(own_deadline));
        call.deadline = Some(deadline);
        match target {
            Target::Local(local) => self.run_local(call, local, deadline),
            Target::Remote(_) => match self.forward.get() {
                Some(forward) => {
                    let forwarded = forward.forward(*call);
                    let drained = self.drained.subscribe();
                    Answer::later(async move {
                        until_drained(drained, forwarded)
                            .await
                            .unwrap_or_else(|| Err(self::drained()))
                            .map_err(RpcError::forwarded)
                    })
                }
                None => Answer::Now(Err(not_found(&call))),
            },
            Target::Missing => Answer::Now(Err(not_found(&call))),
        }
    }

    fn run_local(&self, mut call: Box<Call>, local: &Local, deadline: Instant) -> Answer {
        let mut args = std::mem::replace(&mut call.args, Args::taken());
        let context = Context::for_call(call, self.invoker());
        let address = &local.spec.address;
        let handler = || (local.handler)(&mut args, context);
        let running = match catch_unwind(AssertUnwindSafe(handler)) {
            Ok(Ok(running)) => running,
            // Decoding failed: the validator lists what is wrong (it has
            // already run, and passed, unless the type checks the schema).
            Ok(Err(decode)) => {
                return Answer::Now(Err(if local.checked_by_type() {
                    local.validate(&args).err().unwrap_or(decode)
                } else {
                    decode
                }));
            }
            Err(_panic) => {
                tracing::error!(procedure = %address, "handler panicked");
                return Answer::Now(Err(RpcError::internal().mark_handler()));
            }
        };
        drop(args);
        let mut running = AssertUnwindSafe(running).catch_unwind();
        // Most handlers finish in their first poll: they need no timer.
        if let Some(outcome) = (&mut running).now_or_never() {
            return Answer::Now(handler_outcome(address, Some(Ok(outcome))));
        }
        let drained = self.drained.subscribe();
        let address = address.clone();
        Answer::later(async move {
            let outcome =
                until_drained(drained, tokio::time::timeout_at(deadline.into(), running)).await;
            handler_outcome(&address, outcome)
        })
    }

    /// Checks the identity of a call to an `auth` procedure; yields the
    /// authenticator's user id when one is configured.
    pub(crate) async fn authenticate(
        &self,
        identity: Option<&Identity>,
    ) -> Result<Option<String>, RpcError> {
        let Some(token) = identity.and_then(Identity::token) else {
            return Err(RpcError::unauthorized(
                "this procedure requires an identity with an authorization",
            ));
        };
        match &self.authenticator {
            Some(authenticator) => crate::auth::check(authenticator.as_ref(), token.to_owned())
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn authenticator(&self) -> Option<&Arc<dyn Authenticator>> {
        self.authenticator.as_ref()
    }

    fn invoker(&self) -> Arc<dyn Invoke> {
        // `me` is set by `new_cyclic`, and a pipeline that runs a call is
        // alive: the upgrade succeeds.
        match self.me.upgrade() {
            Some(me) => me,
            None => Arc::new(Detached(self.handle.clone())),
        }
    }

    /// `GET /metrics`.
    pub(crate) fn metrics(&self) -> String {
        let mut gauges = vec![(
            "rpc_websocket_connections",
            self.handle.connection_count() as f64,
        )];
        if let Some(forward) = self.forward.get() {
            gauges.extend(forward.gauges());
        }
        self.telemetry.prometheus(self.handle.uptime(), &gauges)
    }

    /// `GET /telemetry`: the server, its transports and broker, and every
    /// procedure's numbers.
    pub(crate) fn report(&self, websocket: bool) -> Value {
        let handle = &self.handle;
        serde_json::json!({
            "server": handle.name(),
            "instanceId": handle.instance_id(),
            "framework": concat!("rpc-runtime ", env!("CARGO_PKG_VERSION")),
            "startedAt": handle.started_at(),
            "uptimeSeconds": handle.uptime().as_secs_f64(),
            "transports": {
                "http": handle.http_addr().map(|a| a.to_string()),
                "websocket": websocket && handle.http_addr().is_some(),
                "broker": self.forward.get().is_some(),
            },
            "broker": self.forward.get().map(|f| f.status()),
            "websocket": { "connections": handle.connection_count() },
            "procedures": self.telemetry.procedures(),
        })
    }
}

/// Gives the call its span id and records its trace on the span. With the
/// `otel` feature, the span continues the incoming trace in OpenTelemetry,
/// and the ids are OpenTelemetry's when a layer exports them.
fn trace_call(span: &tracing::Span, call: &mut Call) {
    call.span_id = Some(crate::trace::new_span_id());
    #[cfg(feature = "otel")]
    otel::link(span, call);
    span.record("rpc.trace_id", call.trace_id.as_str());
    if let Some(span_id) = &call.span_id {
        span.record("rpc.span_id", span_id.as_str());
    }
    if let Some(parent) = &call.trace.parent_span_id {
        span.record("rpc.parent_span_id", parent.as_str());
    }
    if let Some(user_id) = &call.user_id {
        span.record("rpc.user_id", user_id.as_str());
    }
}

pub(crate) fn not_found(call: &Call) -> RpcError {
    RpcError::not_found(format!(
        "no procedure {:?} in scope {:?} with version {:?}",
        call.address.procedure, call.address.scope, call.address.version
    ))
}

fn drained() -> RpcError {
    RpcError::new(503, "the server stopped before the call finished")
}

fn stopped() -> RpcError {
    RpcError::new(503, "the server has stopped")
}

/// Runs `work` unless the drain timeout ends first (then `None`).
async fn until_drained<T>(
    mut drained: watch::Receiver<bool>,
    work: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        done = work => Some(done),
        _ = drained.wait_for(|drained| *drained) => None,
    }
}

/// A call's answer, as [`Pipeline::dispatch`] gives it: known at once
/// (most calls, already reported), or the rest of the work, which
/// reports it when it ends.
pub(crate) enum Dispatched {
    Now(Result<Data, RpcError>),
    Later(BoxFuture<Result<Data, RpcError>>),
}

impl std::future::IntoFuture for Dispatched {
    type Output = Result<Data, RpcError>;
    type IntoFuture = futures_util::future::Either<
        std::future::Ready<Result<Data, RpcError>>,
        BoxFuture<Result<Data, RpcError>>,
    >;

    fn into_future(self) -> Self::IntoFuture {
        use futures_util::future::Either;
        match self {
            Dispatched::Now(result) => Either::Left(std::future::ready(result)),
            Dispatched::Later(waiting) => Either::Right(waiting),
        }
    }
}

/// What reporting a call needs once it is answered.
struct Answered<'a> {
    started: Instant,
    span: tracing::Span,
    row: Row<'a>,
    internal: bool,
    /// The call as it came, for event hooks (when there are any).
    record: Option<Box<Call>>,
}

impl Answered<'_> {
    /// The same, owning its row, for a call that waits.
    fn owned(self) -> Answered<'static> {
        Answered {
            started: self.started,
            span: self.span,
            row: match self.row {
                Row::Local(stats) => Row::Known(stats.clone()),
                Row::Known(stats) => Row::Known(stats),
                Row::Unknown(address) => Row::Unknown(address),
            },
            internal: self.internal,
            record: self.record,
        }
    }
}

/// Where a call's numbers go: its procedure's row (borrowed from a
/// local procedure, or found by its address), or a row still to make.
enum Row<'a> {
    Local(&'a Arc<crate::telemetry::Stats>),
    Known(Arc<crate::telemetry::Stats>),
    Unknown(crate::Address),
}

/// What a stage answers: the call's result, when it is known without
/// waiting (most calls), or the rest of the work.
enum Answer {
    Now(Result<Data, RpcError>),
    Later(BoxFuture<Result<Data, RpcError>>),
}

impl Answer {
    fn later(work: impl Future<Output = Result<Data, RpcError>> + Send + 'static) -> Self {
        Answer::Later(Box::pin(work))
    }

    async fn finish(self) -> Result<Data, RpcError> {
        match self {
            Answer::Now(result) => result,
            Answer::Later(waiting) => waiting.await,
        }
    }
}

/// A handler's result: its data, its error, a panic, the deadline, or
/// `None` when the drain timeout ended first.
type HandlerOutcome = Option<
    Result<
        Result<Result<Data, RpcError>, Box<dyn std::any::Any + Send>>,
        tokio::time::error::Elapsed,
    >,
>;

fn handler_outcome(address: &crate::Address, outcome: HandlerOutcome) -> Result<Data, RpcError> {
    match outcome {
        Some(Ok(Ok(Ok(data)))) => Ok(data),
        Some(Ok(Ok(Err(error)))) => Err(error.mark_handler()),
        Some(Ok(Err(_panic))) => {
            tracing::error!(procedure = %address, "handler panicked");
            Err(RpcError::internal().mark_handler())
        }
        Some(Err(_elapsed)) => Err(RpcError::new(
            504,
            format!("{address} did not answer before the deadline"),
        )),
        None => Err(drained()),
    }
}

/// How a call ended, for event hooks.
fn classify(result: &Result<Data, RpcError>) -> EventKind {
    match result {
        Ok(_) => EventKind::Success,
        Err(error) if error.is_from_handler() => EventKind::HandlerError,
        Err(error) if matches!(error.code(), 500 | 503 | 504) => EventKind::ServerError,
        Err(_) => EventKind::Rejected,
    }
}

impl Invoke for Pipeline {
    fn invoke(&self, call: Call) -> BoxFuture<Result<Data, RpcError>> {
        match self.dispatch(Box::new(call), Entry::Procedure) {
            Dispatched::Now(result) => Box::pin(std::future::ready(result)),
            Dispatched::Later(waiting) => waiting,
        }
    }

    fn server(&self) -> &ServerHandle {
        &self.handle
    }

    fn states(&self) -> &States {
        &self.states
    }
}

/// Stands in for a pipeline that is being dropped.
struct Detached(ServerHandle);

impl Invoke for Detached {
    fn invoke(&self, _call: Call) -> BoxFuture<Result<Data, RpcError>> {
        Box::pin(async { Err(RpcError::new(503, "the server has stopped")) })
    }

    fn server(&self) -> &ServerHandle {
        &self.0
    }

    fn states(&self) -> &States {
        static NONE: std::sync::OnceLock<States> = std::sync::OnceLock::new();
        NONE.get_or_init(States::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call's future moves on its way through a transport (into the
    /// connection's task, into a box): the stages' own state goes into
    /// it only when a call waits, so that it stays the size of a few
    /// fields. It was over 5 KB when every stage was an `async fn`.
    #[test]
    fn the_future_of_a_call_is_small() {
        let server = crate::Server::builder().build().expect("builds");
        let call = Call::new(crate::Address::new("test", "nothing", "1"), Value::Null);
        let answer = server.pipeline().dispatch(Box::new(call), Entry::Transport);
        let size = std::mem::size_of_val(&answer);
        assert!(size <= 512, "the future of a call takes {size} bytes");
    }
}
