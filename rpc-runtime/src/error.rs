//! The two error types: [`RpcError`] travels on the wire with a status code;
//! [`Error`] is what starting or running a server can fail with.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A failed call, as the caller sees it: an HTTP-style status `code`, a
/// `message`, and for validation failures the list of `errors`.
///
/// Handlers return it (or any `E: Into<RpcError>`) to choose the status and
/// message the caller gets; the framework produces the codes listed in the
/// protocol (400, 401, 403, 404, 413, 422, 429, 500, 503, 504). An optional
/// `data` value (any JSON) travels with it to the client.
///
/// Any other error converts into it, so `?` works in a procedure on
/// `std::io::Error`, `anyhow::Error` or any `std::error::Error + Send +
/// Sync + 'static`: such an error answers 500 with a generic message (its
/// text never reaches the client), and the server logs it with its source
/// chain and the call's trace id. This is why, like `anyhow::Error`,
/// `RpcError` does not itself implement `std::error::Error` (that would
/// make the blanket conversion overlap with the identity one); use
/// [`RpcError::into_std`] where a `Box<dyn Error>` is wanted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RpcError {
    code: u16,
    message: Cow<'static, str>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Box<serde_json::Value>>,
    /// The text and source chain of the error this one was converted
    /// from: logged by the server, never sent.
    #[serde(skip)]
    cause: Option<std::sync::Arc<str>>,
    /// Returned (or caused by a panic) in a handler, for event hooks.
    #[serde(skip)]
    handler: bool,
}

impl PartialEq for RpcError {
    /// What the caller sees: code, message, errors and data.
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.message == other.message
            && self.errors == other.errors
            && self.data == other.data
    }
}

/// One failure of args validation: where in the args, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// JSON pointer into `args` (`""` is the args value itself).
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl RpcError {
    /// An error with any status code. Codes outside 400..=599 become 500,
    /// so a failure is never reported as a success.
    pub fn new(code: u16, message: impl Into<Cow<'static, str>>) -> Self {
        let code = if (400..=599).contains(&code) {
            code
        } else {
            500
        };
        RpcError {
            code,
            message: message.into(),
            errors: Vec::new(),
            data: None,
            cause: None,
            handler: false,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(400, message)
    }

    /// 401: the caller is not authenticated.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(401, message)
    }

    /// 403: the caller may not do this.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(403, message)
    }

    /// 404: the thing asked for does not exist.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(404, message)
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(409, message)
    }

    /// 500 with a generic message that leaks nothing of the cause.
    pub fn internal() -> Self {
        Self::new(500, "internal server error")
    }

    /// 422 with every validation failure.
    pub fn invalid_args(errors: Vec<FieldError>) -> Self {
        let summary = errors
            .iter()
            .take(3)
            .map(|e| {
                format!(
                    "{}: {}",
                    if e.path.is_empty() { "/" } else { &e.path },
                    e.message
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let more = errors.len().saturating_sub(3);
        let message = if more > 0 {
            format!("args failed validation: {summary} (and {more} more)")
        } else {
            format!("args failed validation: {summary}")
        };
        RpcError {
            code: 422,
            message: message.into(),
            errors,
            data: None,
            cause: None,
            handler: false,
        }
    }

    /// 429: too many calls; `retry_after` is sent as
    /// `data: {"retryAfterMs": ...}`.
    pub fn too_many_requests(
        message: impl Into<Cow<'static, str>>,
        retry_after: std::time::Duration,
    ) -> Self {
        let retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
        Self::new(429, message).with_data(serde_json::json!({ "retryAfterMs": retry_after_ms }))
    }

    /// The same error carrying `data` (any JSON) to the client.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(Box::new(data));
        self
    }

    /// The data the error carries to the client, if any.
    pub fn data(&self) -> Option<&serde_json::Value> {
        self.data.as_deref()
    }

    /// The error this one was converted from, with its source chain, as the
    /// server logs it; never sent to the client.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }

    /// Marks an error a handler returned.
    #[cfg_attr(not(feature = "server"), allow(dead_code, reason = "the pipeline's"))]
    pub(crate) fn mark_handler(mut self) -> Self {
        self.handler = true;
        self
    }

    /// Marks the errors of a forwarded call that a remote handler returned
    /// (all but the broker's own 503 and 504).
    #[cfg_attr(not(feature = "server"), allow(dead_code, reason = "the pipeline's"))]
    pub(crate) fn forwarded(self) -> Self {
        if matches!(self.code, 503 | 504) {
            self
        } else {
            self.mark_handler()
        }
    }

    #[cfg_attr(not(feature = "server"), allow(dead_code, reason = "the pipeline's"))]
    pub(crate) fn is_from_handler(&self) -> bool {
        self.handler
    }

    /// This error as a standard error, for `Box<dyn Error>` contexts.
    pub fn into_std(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        Box::new(StdRpcError(self))
    }

    /// The same error with another message.
    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }

    /// The status code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The message shown to the caller.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The validation failures of a 422, empty otherwise.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

/// Any other error: 500 with a generic message; its text and source chain
/// are kept for the server's log.
impl<E> From<E> for RpcError
where
    E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    fn from(error: E) -> Self {
        let error: Box<dyn std::error::Error + Send + Sync + 'static> = error.into();
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        let mut internal = RpcError::internal();
        internal.cause = Some(chain.into());
        internal
    }
}

/// [`RpcError`] as a `std::error::Error`, from [`RpcError::into_std`].
#[derive(Debug)]
struct StdRpcError(RpcError);

impl fmt::Display for StdRpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for StdRpcError {}

/// Why a server could not start or stopped with a failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two or more registrations share one (scope, procedure, version).
    #[error("duplicate procedures:\n{}", .0.join("\n"))]
    DuplicateProcedures(Vec<String>),
    /// Procedures take state values that the builder was not given.
    #[error("missing state:\n{}", .0.join("\n"))]
    MissingState(Vec<String>),
    /// A procedure's args schema could not be compiled into a validator.
    #[error("the args schema of {procedure} does not compile: {message}")]
    InvalidSchema {
        /// The procedure's address.
        procedure: String,
        /// What the schema compiler said.
        message: String,
    },
    /// The server configuration is inconsistent.
    #[error("invalid server configuration: {0}")]
    Config(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The message broker could not be reached or refused the topology.
    #[error("message broker: {0}")]
    Broker(String),
    /// Any other I/O failure while serving.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
