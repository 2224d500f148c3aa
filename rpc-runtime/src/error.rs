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
/// protocol (400, 401, 403, 404, 413, 422, 429, 500, 503, 504).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    code: u16,
    message: Cow<'static, str>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
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
        }
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

impl std::error::Error for RpcError {}

impl From<std::convert::Infallible> for RpcError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// Why a server could not start or stopped with a failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two or more registrations share one (scope, procedure, version).
    #[error("duplicate procedures:\n{}", .0.join("\n"))]
    DuplicateProcedures(Vec<String>),
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
