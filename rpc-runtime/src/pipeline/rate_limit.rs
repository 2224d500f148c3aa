//! A rate limit per user or per client IP, on `governor` (GCRA): a call
//! over the quota answers 429 with `data: {"retryAfterMs": ...}`.

use super::middleware::CallService;
use crate::procedure::BoxFuture;
use crate::{Call, Data, RpcError};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Every this many calls, keys whose quota is full again are forgotten,
/// so that the table does not grow with every user or address ever seen.
const RETAIN_EVERY: u64 = 4096;

/// What a call is counted under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Ip(IpAddr),
    /// A call with neither (a test's, or a procedure's): one shared bucket.
    Nobody,
}

#[derive(Clone, Copy, Debug)]
enum By {
    User,
    Ip,
}

/// A rate-limit middleware: give [`RateLimit::per_user`] or
/// [`RateLimit::per_ip`] to
/// [`ServerBuilder::layer`](crate::ServerBuilder::layer).
///
/// ```
/// use rpc_runtime::middleware::{Quota, RateLimit};
/// use std::num::NonZeroU32;
///
/// // 20 calls per second per user, in bursts of up to 20.
/// let limit = RateLimit::per_user(Quota::per_second(NonZeroU32::new(20).unwrap()));
/// let server = rpc_runtime::Server::builder().layer(limit);
/// ```
///
/// Calls made by procedures (internal calls) are not counted: the call
/// that made them was.
#[derive(Debug)]
pub struct RateLimit;

impl RateLimit {
    /// Counts calls per authenticated user id; calls without one count per
    /// client IP address.
    pub fn per_user(quota: Quota) -> RateLimitLayer {
        RateLimitLayer::new(quota, By::User)
    }

    /// Counts calls per client IP address (a valid `X-Real-IP` first).
    pub fn per_ip(quota: Quota) -> RateLimitLayer {
        RateLimitLayer::new(quota, By::Ip)
    }
}

/// The layer [`RateLimit`] makes; its clones share one table.
#[derive(Clone)]
pub struct RateLimitLayer {
    shared: Arc<Shared>,
}

struct Shared {
    limiter: DefaultKeyedRateLimiter<Key>,
    clock: DefaultClock,
    by: By,
    checks: AtomicU64,
}

impl std::fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("by", &self.shared.by)
            .finish_non_exhaustive()
    }
}

impl RateLimitLayer {
    fn new(quota: Quota, by: By) -> Self {
        RateLimitLayer {
            shared: Arc::new(Shared {
                limiter: DefaultKeyedRateLimiter::keyed(quota),
                clock: DefaultClock::default(),
                by,
                checks: AtomicU64::new(0),
            }),
        }
    }
}

impl Shared {
    fn key(&self, call: &Call) -> Key {
        let user = match self.by {
            By::User => call.user_id.clone().map(Key::User),
            By::Ip => None,
        };
        user.or_else(|| call.metadata.ip.map(Key::Ip))
            .unwrap_or(Key::Nobody)
    }

    fn check(&self, call: &Call) -> Result<(), RpcError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(&self.key(call)) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(RpcError::too_many_requests(
                    format!(
                        "too many calls: try again in {} ms",
                        wait.as_millis().max(1)
                    ),
                    wait,
                ))
            }
        }
    }
}

impl Layer<CallService> for RateLimitLayer {
    type Service = RateLimited;

    fn layer(&self, inner: CallService) -> RateLimited {
        RateLimited {
            shared: self.shared.clone(),
            inner,
        }
    }
}

/// The service [`RateLimitLayer`] wraps around the rest of the pipeline.
#[derive(Clone)]
pub struct RateLimited {
    shared: Arc<Shared>,
    inner: CallService,
}

impl Service<Call> for RateLimited {
    type Response = Data;
    type Error = RpcError;
    type Future = futures_util::future::Either<
        std::future::Ready<Result<Data, RpcError>>,
        BoxFuture<Result<Data, RpcError>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        use futures_util::future::Either;
        if !call.internal
            && let Err(error) = self.shared.check(&call)
        {
            return Either::Left(std::future::ready(Err(error)));
        }
        Either::Right(Box::pin(self.inner.call(call)))
    }
}
