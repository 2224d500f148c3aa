//! Hooks that see every call with its outcome, and how every hook of the
//! application runs.

use crate::{Call, Data, RpcError};
use std::sync::Arc;
use std::time::Duration;

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// The handler succeeded.
    Success,
    /// The handler returned an error or panicked.
    HandlerError,
    /// The server refused the call before any handler ran (400, 401, 403,
    /// 404, 413, 422, 429).
    Rejected,
    /// The server failed to complete the call (500 outside a handler, 503,
    /// 504).
    ServerError,
}

/// One finished call, as event hooks see it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Event<'a> {
    /// How it ended.
    pub kind: EventKind,
    /// The request, with its args.
    pub call: &'a Call,
    /// The response: data, or the error the caller got.
    pub result: &'a Result<Data, RpcError>,
    /// Time from dispatch to response.
    pub duration: Duration,
}

pub(crate) type Hook = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// The registered hooks; empty costs nothing per call.
#[derive(Clone, Default)]
pub(crate) struct Events {
    hooks: Vec<Hook>,
}

impl Events {
    pub(crate) fn push(&mut self, hook: Hook) {
        self.hooks.push(hook);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    pub(crate) fn emit(&self, event: &Event<'_>) {
        for hook in &self.hooks {
            run_hook("event", || hook(event));
        }
    }
}

/// Runs one of the application's hooks. A panic in it is logged and goes
/// no further, as a handler's is: it must not take down the connection,
/// the request or the queue consumer the hook runs on.
pub(crate) fn run_hook(kind: &'static str, hook: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook)).is_err() {
        tracing::error!(hook = kind, "a hook panicked");
    }
}
