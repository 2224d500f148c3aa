//! Routing one call to its handler: lookup, the internal and auth rules,
//! args validation, the deadline, panics, events and the tracing span.
//! Every transport and the broker consumer end up here.

use crate::call::Invoke;
use crate::events::{Event, EventKind, Events};
use crate::procedure::BoxFuture;
use crate::registry::{Local, Registry};
use crate::{Authenticator, Call, Context, Identity, RpcError, ServerHandle};
use futures_util::FutureExt;
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Where calls with no local handler go (the broker, when configured).
pub(crate) trait Forward: Send + Sync {
    /// Sends the call to a remote handler server, or answers without a hop
    /// (404 unroutable, 403 internal, 422 invalid args) when the remote
    /// procedure's announcement allows it.
    fn forward(&self, call: Call) -> BoxFuture<Result<Value, RpcError>>;

    /// The procedures other servers announced.
    fn remote_procedures(&self) -> Vec<crate::ProcedureSpec>;

    /// The state of the link and the servers behind it, for telemetry.
    fn status(&self) -> Value;
}

pub(crate) struct Dispatcher {
    pub(crate) name: String,
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
    accepting: AtomicBool,
    me: Weak<Dispatcher>,
}

pub(crate) struct DispatcherConfig {
    pub(crate) name: String,
    pub(crate) registry: Registry,
    pub(crate) events: Events,
    pub(crate) authenticator: Option<Arc<dyn Authenticator>>,
    pub(crate) default_timeout: Duration,
    pub(crate) handle: ServerHandle,
    pub(crate) telemetry: crate::telemetry::Telemetry,
    pub(crate) show_internal: bool,
}

impl Dispatcher {
    pub(crate) fn new(config: DispatcherConfig) -> Arc<Self> {
        Arc::new_cyclic(|me| Dispatcher {
            name: config.name,
            registry: config.registry,
            events: config.events,
            authenticator: config.authenticator,
            default_timeout: config.default_timeout,
            forward: std::sync::OnceLock::new(),
            handle: config.handle,
            telemetry: config.telemetry,
            show_internal: config.show_internal,
            accepting: AtomicBool::new(true),
            me: me.clone(),
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

    pub(crate) fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
    }

    /// Runs a call to completion and reports it to hooks and tracing.
    pub(crate) async fn dispatch(&self, call: Call) -> Result<Value, RpcError> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "rpc.call",
            rpc.scope = %call.address.scope,
            rpc.procedure = %call.address.procedure,
            rpc.version = %call.address.version,
            rpc.trace_id = %call.trace_id,
            rpc.code = tracing::field::Empty,
            rpc.duration_us = tracing::field::Empty,
        );
        // Hooks see the request as it came; only then is it copied.
        let record = (!self.events.is_empty()).then(|| call.clone());
        let local = self.registry.get(&call.address);
        // A call no local procedure runs is counted under its address, whose
        // row is looked up before the call moves on; the address is copied
        // only while it has no row yet.
        let remote_row = local.is_none().then(|| {
            self.telemetry
                .known(&call.address)
                .ok_or_else(|| call.address.clone())
        });
        let (kind, result) = self.route(call, local).instrument(span.clone()).await;
        let duration = started.elapsed();
        let code = result.as_ref().map_or_else(RpcError::code, |_| 200);
        match (local, remote_row) {
            (Some(local), _) => self.telemetry.record(&local.stats, code, duration),
            (None, Some(Ok(stats))) => self.telemetry.record(&stats, code, duration),
            (None, Some(Err(address))) => self.telemetry.record_other(&address, code, duration),
            (None, None) => {}
        }
        span.record("rpc.code", code);
        span.record("rpc.duration_us", duration.as_micros() as u64);
        if let Some(call) = &record {
            self.events.emit(&Event {
                kind,
                call,
                result: &result,
                duration,
            });
        }
        result
    }

    async fn route(
        &self,
        mut call: Call,
        local: Option<&Local>,
    ) -> (EventKind, Result<Value, RpcError>) {
        let Some(local) = local else {
            return match self.forward.get() {
                Some(forward) => {
                    let result = forward.forward(call).await;
                    (classify_forwarded(&result), result)
                }
                None => (EventKind::Rejected, Err(not_found(&call))),
            };
        };
        if local.spec.internal && !call.internal {
            return (
                EventKind::Rejected,
                Err(RpcError::forbidden(format!(
                    "{} is internal: only other procedures may call it",
                    call.address
                ))),
            );
        }
        let user_id = if local.spec.auth {
            match self.authenticate(call.identity.as_ref()).await {
                Ok(user_id) => user_id,
                Err(error) => return (EventKind::Rejected, Err(error)),
            }
        } else {
            None
        };
        if let Err(error) = local.validate(&call.args) {
            return (EventKind::Rejected, Err(error));
        }
        let timeout = local
            .spec
            .timeout_ms
            .map_or(self.default_timeout, Duration::from_millis);
        let own_deadline = deadline_in(timeout);
        let deadline = call.deadline.map_or(own_deadline, |d| d.min(own_deadline));
        call.deadline = Some(deadline);
        let args = std::mem::take(&mut call.args);
        let context = Context::for_call(call, user_id, self.invoker());
        let address = &local.spec.address;
        let mut running = AssertUnwindSafe((local.handler)(args, context)).catch_unwind();
        // Most handlers finish in their first poll: they need no timer.
        let outcome = match (&mut running).now_or_never() {
            Some(outcome) => Ok(outcome),
            None => tokio::time::timeout_at(deadline.into(), running).await,
        };
        match outcome {
            Ok(Ok(Ok(data))) => (EventKind::Success, Ok(data)),
            Ok(Ok(Err(error))) => (EventKind::HandlerError, Err(error)),
            Ok(Err(_panic)) => {
                tracing::error!(procedure = %address, "handler panicked");
                (EventKind::HandlerError, Err(RpcError::internal()))
            }
            Err(_elapsed) => (
                EventKind::ServerError,
                Err(RpcError::new(
                    504,
                    format!("{address} did not answer before the deadline"),
                )),
            ),
        }
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
        // `me` is set by `new_cyclic`, and a dispatcher that runs a call is
        // alive: the upgrade succeeds.
        match self.me.upgrade() {
            Some(me) => me,
            None => Arc::new(Detached(self.handle.clone())),
        }
    }
}

/// The instant `timeout` from now. A timeout too long for the clock (such
/// as `Duration::MAX`) is as good as none: it ends a century from now (an
/// instant every platform's clock can hold).
pub(crate) fn deadline_in(timeout: Duration) -> Instant {
    after(Instant::now(), timeout)
}

/// `start + span`, saturating as [`deadline_in`] does.
pub(crate) fn after(start: Instant, span: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    start.checked_add(span.min(CENTURY)).unwrap_or(start)
}

pub(crate) fn not_found(call: &Call) -> RpcError {
    RpcError::not_found(format!(
        "no procedure {:?} in scope {:?} with version {:?}",
        call.address.procedure, call.address.scope, call.address.version
    ))
}

fn classify_forwarded(result: &Result<Value, RpcError>) -> EventKind {
    match result {
        Ok(_) => EventKind::Success,
        Err(error) if matches!(error.code(), 503 | 504) => EventKind::ServerError,
        Err(_) => EventKind::HandlerError,
    }
}

impl Invoke for Dispatcher {
    fn invoke(&self, call: Call) -> BoxFuture<Result<Value, RpcError>> {
        let Some(me) = self.me.upgrade() else {
            return Box::pin(async { Err(RpcError::new(503, "the server has stopped")) });
        };
        Box::pin(async move { me.dispatch(call).await })
    }

    fn server(&self) -> &ServerHandle {
        &self.handle
    }
}

/// Stands in for a dispatcher that is being dropped.
struct Detached(ServerHandle);

impl Invoke for Detached {
    fn invoke(&self, _call: Call) -> BoxFuture<Result<Value, RpcError>> {
        Box::pin(async { Err(RpcError::new(503, "the server has stopped")) })
    }

    fn server(&self) -> &ServerHandle {
        &self.0
    }
}
