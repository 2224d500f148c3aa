//! Middleware: tower layers around every call.
//!
//! A middleware is a [`tower::Layer`] over [`CallService`], a service from
//! a [`Call`] to the call's [`Data`] (read it as a `serde_json::Value`;
//! make one with `json!(..).into()`) or an [`RpcError`], given to
//! [`ServerBuilder::layer`](crate::ServerBuilder::layer). It wraps every
//! call of every transport, local or forwarded through the broker, after
//! the pipeline's internal rule and authentication (so it sees the user
//! id) and before validation, the deadline and the handler. It sees the
//! whole call (address, identity, user id, metadata, args), can refuse it
//! by answering an `RpcError` without calling the inner service, can change
//! it before passing it on, and can observe or change the answer.
//!
//! Layers apply in the order they are added: the first one added is the
//! outermost, so it sees the call first and the answer last, as a
//! `tower::ServiceBuilder` reads from top to bottom.
//!
//! Why a tower layer rather than a closure type of the framework's own:
//! the layers the ecosystem already has (`tower::limit`, `tower::timeout`,
//! `tower::util::MapRequest`, tracing and metrics layers, and any layer a
//! team wrote for its other services) apply to calls unchanged, and
//! readiness (`poll_ready`) lets a layer such as a concurrency limit wait
//! for room. Why over the call rather than around the HTTP service: a
//! middleware then also wraps WebSocket calls and calls delivered by the
//! broker, and sees the decoded call instead of bytes. For a quick
//! middleware, [`from_fn`] turns an async function into a layer.

use crate::procedure::BoxFuture;
use crate::{Call, Data, RpcError};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The service every middleware wraps: a call in, its data or error out.
/// Cloning it is cheap.
pub type CallService = tower::util::BoxCloneSyncService<Call, Data, RpcError>;

/// A layer as the builder keeps it: applied once, when the server is built.
pub(crate) type LayerFn = Arc<dyn Fn(CallService) -> CallService + Send + Sync>;

/// Boxes a layer for the builder.
pub(crate) fn layer_fn<L>(layer: L) -> LayerFn
where
    L: Layer<CallService> + Send + Sync + 'static,
    L::Service: Service<Call, Response = Data, Error = RpcError> + Clone + Send + Sync + 'static,
    <L::Service as Service<Call>>::Future: Send + 'static,
{
    Arc::new(move |inner| CallService::new(layer.layer(inner)))
}

/// Wraps the pipeline's last stages in the layers, the first one outermost.
pub(crate) fn stack(layers: &[LayerFn], pipeline: Weak<super::Pipeline>) -> Option<CallService> {
    if layers.is_empty() {
        return None;
    }
    let mut service = CallService::new(Rest { pipeline });
    for layer in layers.iter().rev() {
        service = layer(service);
    }
    Some(service)
}

/// Validation, the deadline, and the handler or the broker: what the
/// innermost middleware calls.
#[derive(Clone)]
struct Rest {
    pipeline: Weak<super::Pipeline>,
}

impl Service<Call> for Rest {
    type Response = Data;
    type Error = RpcError;
    type Future = BoxFuture<Result<Data, RpcError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let pipeline = self.pipeline.upgrade();
        Box::pin(async move {
            let Some(pipeline) = pipeline else {
                return Err(RpcError::new(503, "the server has stopped"));
            };
            let target = pipeline.lookup(&call.address);
            pipeline.run(Box::new(call), target).finish().await
        })
    }
}

/// A middleware from an async function of the call and the rest of the
/// pipeline:
///
/// ```
/// use rpc_runtime::middleware::{from_fn, CallService};
/// use rpc_runtime::{Call, RpcError, Server};
/// use tower::ServiceExt;
///
/// let audit = from_fn(|call: Call, next: CallService| async move {
///     if call.args.get("forbidden").is_some() {
///         return Err(RpcError::forbidden("not this"));
///     }
///     let address = call.address.clone();
///     let answer = next.oneshot(call).await;
///     tracing::info!(%address, ok = answer.is_ok(), "audited");
///     answer
/// });
/// let server = Server::builder().layer(audit);
/// ```
///
/// The answer is the call's [`Data`], which reads as a
/// `serde_json::Value`; a middleware that answers with data of its own
/// turns a value into one:
///
/// ```
/// use rpc_runtime::middleware::{from_fn, CallService};
/// use rpc_runtime::{Call, Server};
/// use serde_json::json;
/// use tower::ServiceExt;
///
/// let wrap = from_fn(|call: Call, next: CallService| async move {
///     let data = next.oneshot(call).await?;
///     let empty = data.as_object().is_some_and(|object| object.is_empty());
///     Ok(json!({ "data": data, "empty": empty }).into())
/// });
/// let server = Server::builder().layer(wrap);
/// ```
pub fn from_fn<F, Fut>(f: F) -> FromFnLayer<F>
where
    F: Fn(Call, CallService) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Data, RpcError>> + Send + 'static,
{
    FromFnLayer { f }
}

/// The layer [`from_fn`] makes.
#[derive(Clone)]
pub struct FromFnLayer<F> {
    f: F,
}

impl<F: Clone> Layer<CallService> for FromFnLayer<F> {
    type Service = FromFn<F>;

    fn layer(&self, next: CallService) -> FromFn<F> {
        FromFn {
            f: self.f.clone(),
            next,
        }
    }
}

/// The service [`from_fn`] makes.
#[derive(Clone)]
pub struct FromFn<F> {
    f: F,
    next: CallService,
}

impl<F, Fut> Service<Call> for FromFn<F>
where
    F: Fn(Call, CallService) -> Fut,
    Fut: Future<Output = Result<Data, RpcError>> + Send + 'static,
{
    type Response = Data;
    type Error = RpcError;
    type Future = BoxFuture<Result<Data, RpcError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        Box::pin((self.f)(call, self.next.clone()))
    }
}

#[cfg(feature = "rate-limit")]
pub use super::rate_limit::{RateLimit, RateLimitLayer, RateLimited};
#[cfg(feature = "rate-limit")]
pub use governor::Quota;
