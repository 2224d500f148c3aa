//! What a handler knows about its call, and how it calls other procedures.

use crate::call::{Call, Caller, Invoke, Metadata};
use crate::{Address, Data, Identity, Procedure, RpcError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// The handler's view of its call: identity, user id, caller, request
/// metadata (transport, client IP, connection, headers), trace id,
/// deadline, application state, and calls to other procedures, which are
/// marked internal and carry the same identity, metadata, trace id and
/// deadline.
///
/// Cloning is cheap. `Context::default()` is a detached context for unit
/// tests: it has no identity and its calls fail with 503.
#[derive(Clone, Default)]
pub struct Context {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The call being handled, without its args (the handler owns those).
    call: Option<Box<Call>>,
    identity: Option<Identity>,
    invoker: Option<Arc<dyn Invoke>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("address", &self.address())
            .field("identity", &self.identity())
            .field("user_id", &self.user_id())
            .field("caller", &self.caller())
            .field("trace_id", &self.trace_id())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A detached context with this identity, for unit tests.
    pub fn with_identity(identity: Identity) -> Self {
        Context {
            inner: Arc::new(Inner {
                identity: Some(identity),
                ..Inner::default()
            }),
        }
    }

    /// The context of a call about to run; its args must have been taken.
    #[cfg(feature = "server")]
    pub(crate) fn for_call(call: Box<Call>, invoker: Arc<dyn Invoke>) -> Self {
        Context {
            inner: Arc::new(Inner {
                call: Some(call),
                identity: None,
                invoker: Some(invoker),
            }),
        }
    }

    /// The identity the call carries.
    pub fn identity(&self) -> Option<&Identity> {
        match &self.inner.call {
            Some(call) => call.identity.as_ref(),
            None => self.inner.identity.as_ref(),
        }
    }

    /// The user id the server's authenticator gave for this identity.
    pub fn user_id(&self) -> Option<&str> {
        self.inner.call.as_ref()?.user_id.as_deref()
    }

    /// How the call reached the server: transport, client IP, WebSocket
    /// connection and request headers (see [`Metadata`]). Empty for a
    /// detached context.
    pub fn metadata(&self) -> &Metadata {
        static NONE: std::sync::OnceLock<Metadata> = std::sync::OnceLock::new();
        match &self.inner.call {
            Some(call) => &call.metadata,
            None => NONE.get_or_init(Metadata::default),
        }
    }

    /// `"http"` or `"websocket"`; empty for calls from no transport.
    pub fn transport(&self) -> &str {
        &self.metadata().transport
    }

    /// The client's IP address (a valid `X-Real-IP` first).
    pub fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.metadata().ip
    }

    /// The WebSocket connection the call came on.
    pub fn connection_id(&self) -> Option<&str> {
        self.metadata().connection_id.as_deref()
    }

    /// The request's headers: the HTTP request's, a WebSocket upgrade's,
    /// or on a handler server those the gateway forwards.
    pub fn headers(&self) -> &http::HeaderMap {
        &self.metadata().headers
    }

    /// A clone of the server's state value of type `T`, if it has one.
    /// Procedures usually ask for it in their signature (`State<T>`)
    /// instead.
    pub fn state<T: crate::state::StateValue>(&self) -> Option<T> {
        self.inner.invoker.as_ref()?.states().get::<T>()
    }

    /// Who made the call.
    pub fn caller(&self) -> &Caller {
        self.inner
            .call
            .as_ref()
            .map_or(&Caller::Detached, |call| &call.caller)
    }

    /// The procedure this context belongs to.
    pub fn address(&self) -> Option<&Address> {
        self.inner.call.as_ref().map(|call| &call.address)
    }

    /// The W3C trace id (32 hex digits) shared by this call and every call
    /// it makes; what logs and tracing backends show.
    pub fn trace_id(&self) -> &str {
        self.inner
            .call
            .as_ref()
            .map_or("", |call| call.trace_id.as_str())
    }

    /// This call's span id (16 hex digits): the parent of the calls it
    /// makes.
    pub fn span_id(&self) -> &str {
        self.inner
            .call
            .as_ref()
            .and_then(|call| call.span_id.as_ref())
            .map_or("", crate::SpanId::as_str)
    }

    /// Where this call's trace came from: the caller's span id, the
    /// `sampled` flag and the `tracestate`.
    pub fn trace(&self) -> Option<&crate::TraceContext> {
        self.inner.call.as_ref().map(|call| &call.trace)
    }

    /// The `traceparent` header value that continues this call's trace, for
    /// requests a procedure makes to other services.
    pub fn traceparent(&self) -> Option<String> {
        let call = self.inner.call.as_ref()?;
        let span_id = call.span_id.as_ref()?;
        Some(crate::trace::traceparent(
            &call.trace_id,
            span_id,
            call.trace.sampled,
        ))
    }

    /// When the caller stops waiting.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.call.as_ref().and_then(|call| call.deadline)
    }

    /// The server running this call: connections, pushes, closes.
    #[cfg(feature = "server")]
    pub fn server(&self) -> Option<&crate::ServerHandle> {
        self.inner.invoker.as_deref().map(Invoke::server)
    }

    /// Calls another procedure through its typed marker; internal
    /// procedures are reachable this way.
    pub async fn call<P: Procedure>(&self, args: P::Args) -> Result<P::Output, RpcError>
    where
        P::Args: Serialize,
        P::Output: DeserializeOwned,
    {
        let args = serde_json::to_value(args).map_err(|_| RpcError::internal())?;
        let data = self.call_data(Address::of::<P>(), args).await?;
        data.decode().map_err(|error| {
            RpcError::new(
                502,
                format!(
                    "{} answered data of an unexpected shape: {error}",
                    Address::of::<P>()
                ),
            )
        })
    }

    /// Calls another procedure by address with JSON args.
    pub async fn call_json(&self, address: Address, args: Value) -> Result<Value, RpcError> {
        self.call_data(address, args).await.map(Data::into_value)
    }

    /// Calls another procedure by address with JSON args, answering its
    /// data as it came (text, when it was written as text).
    pub async fn call_data(&self, address: Address, args: Value) -> Result<Data, RpcError> {
        let Some(invoker) = &self.inner.invoker else {
            return Err(RpcError::new(
                503,
                "this context is not attached to a server",
            ));
        };
        #[cfg(feature = "server")]
        let server = invoker.server().name().into();
        #[cfg(not(feature = "server"))]
        let server = "".into();
        let caller = match self.address() {
            Some(own) => Caller::Procedure {
                address: own.clone(),
                server,
            },
            None => Caller::Detached,
        };
        let call = Call {
            address,
            args: args.into(),
            identity: self.identity().cloned(),
            internal: true,
            caller,
            trace_id: self
                .inner
                .call
                .as_ref()
                .map_or_else(crate::trace::new_trace_id, |call| call.trace_id),
            span_id: None,
            trace: crate::trace::TraceContext {
                parent_span_id: self.inner.call.as_ref().and_then(|call| call.span_id),
                sampled: self
                    .inner
                    .call
                    .as_ref()
                    .is_none_or(|call| call.trace.sampled),
                state: self
                    .inner
                    .call
                    .as_ref()
                    .and_then(|call| call.trace.state.clone()),
            },
            deadline: self.deadline(),
            user_id: self.user_id().map(str::to_owned),
            metadata: self
                .inner
                .call
                .as_ref()
                .map(|call| call.metadata.clone())
                .unwrap_or_default(),
        };
        invoker.invoke(call).await
    }
}
