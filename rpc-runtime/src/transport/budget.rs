//! What one server lets all its clients hold at once: connections, and
//! bytes of request bodies being read; and the timeouts that free a
//! connection whose client sends no request head, or does not read its
//! answers.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The server-wide limits, shared by every connection.
#[derive(Clone)]
pub(crate) struct Budget {
    connections: Arc<Semaphore>,
    max_connections: usize,
    body_bytes: Arc<AtomicUsize>,
    max_body_bytes: usize,
}

impl Budget {
    pub(crate) fn new(max_connections: usize, max_body_bytes: usize) -> Self {
        Budget {
            connections: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            body_bytes: Arc::new(AtomicUsize::new(0)),
            max_body_bytes,
        }
    }

    /// A connection's place, or `None` when every place is taken.
    pub(crate) fn connection(&self) -> Option<ConnectionSlot> {
        self.connections
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|permit| ConnectionSlot(Arc::new(permit)))
    }

    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Room for `bytes` more of request bodies, or `None` when the server
    /// holds its maximum already.
    pub(crate) fn body(&self, bytes: usize) -> Option<BodyBytes<'_>> {
        let mut held = BodyBytes {
            budget: self,
            bytes: 0,
        };
        held.grow(bytes).then_some(held)
    }
}

/// A connection's place in the budget; clones share it. An upgraded
/// (WebSocket) connection keeps it for its whole life.
#[derive(Clone)]
pub(crate) struct ConnectionSlot(
    #[allow(dead_code, reason = "held, not read")] Arc<OwnedSemaphorePermit>,
);

/// Bytes of a request body held in the budget, given back when dropped.
pub(crate) struct BodyBytes<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl BodyBytes<'_> {
    /// Takes `more` bytes, or leaves the holding as it was and says no.
    pub(crate) fn grow(&mut self, more: usize) -> bool {
        let budget = &self.budget;
        let taken = budget
            .body_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(more)
                    .filter(|total| *total <= budget.max_body_bytes)
            })
            .is_ok();
        if taken {
            self.bytes += more;
        }
        taken
    }
}

impl Drop for BodyBytes<'_> {
    fn drop(&mut self) {
        self.budget
            .body_bytes
            .fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// The requests of a connection, as its reader needs to know them to time
/// the heads: counted as they begin and as they are answered (or dropped),
/// and never again once the connection is upgraded.
#[derive(Clone, Default)]
pub(crate) struct Requests(Arc<RequestCounts>);

#[derive(Default)]
struct RequestCounts {
    begun: AtomicU64,
    answered: AtomicU64,
    upgraded: AtomicBool,
}

impl Requests {
    /// A request has begun (its head was read); it counts as answered when
    /// what this returns is dropped.
    pub(crate) fn begin(&self) -> Answering {
        self.0.begun.fetch_add(1, Ordering::Relaxed);
        Answering(self.clone())
    }

    /// The connection is a WebSocket now: it reads frames, not heads.
    pub(crate) fn upgraded(&self) {
        self.0.upgraded.store(true, Ordering::Relaxed);
    }

    /// Where the connection is: `None` once upgraded, else whether a
    /// request is being answered, and a number that changes whenever a
    /// request begins or is answered.
    fn state(&self) -> Option<(bool, u64)> {
        if self.0.upgraded.load(Ordering::Relaxed) {
            return None;
        }
        let begun = self.0.begun.load(Ordering::Relaxed);
        let answered = self.0.answered.load(Ordering::Relaxed);
        Some((begun != answered, begun.wrapping_add(answered)))
    }
}

/// A request being answered; dropped once it is (or once the connection
/// gives it up).
pub(crate) struct Answering(Requests);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.0.answered.fetch_add(1, Ordering::Relaxed);
    }
}

/// A connection's IO with its timeouts.
///
/// A write (or flush) that makes no progress for the write timeout fails
/// with `TimedOut`, which ends the connection: a client that stops
/// reading its answers, pipelining requests or not, is closed instead of
/// holding the server's buffers.
///
/// A read that waits while no request is being answered waits for a
/// request's head: once the head timeout has run with no request begun or
/// answered, it fails with `TimedOut`, which closes the connection (a
/// silent client, one that sends its head a byte at a time, or an idle
/// one). The timer is one per connection, armed once and checked lazily
/// when it fires: a request begun or answered meanwhile arms it again
/// rather than resetting it per request, so a head has between one and
/// two timeouts to arrive, and a request costs two counter increments.
pub(crate) struct TimedIo<T> {
    inner: T,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    head_timeout: Duration,
    /// The head timer, and the requests' state when it was armed.
    head: Option<(Pin<Box<tokio::time::Sleep>>, u64)>,
    /// The waker the head timer holds: while it has not elapsed, a read
    /// with the same waker need not poll it again.
    head_waker: Option<std::task::Waker>,
    requests: Requests,
    read: BytesRead,
    /// An answer written in place of one of hyper's (see `framing.rs`),
    /// not written yet.
    replacing: Vec<u8>,
}

/// The bytes a connection has read, shared with what runs on it: a
/// WebSocket session compares them with the messages it received, to
/// tell an unfinished message.
#[derive(Clone, Default)]
pub(crate) struct BytesRead(Arc<std::sync::atomic::AtomicU64>);

impl BytesRead {
    pub(crate) fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl<T> TimedIo<T> {
    pub(crate) fn new(
        inner: T,
        limit: Duration,
        head_timeout: Duration,
        requests: Requests,
        read: BytesRead,
    ) -> Self {
        TimedIo {
            inner,
            limit,
            stalled: None,
            head_timeout,
            head: None,
            head_waker: None,
            requests,
            read,
            replacing: Vec::new(),
        }
    }

    /// Writes what is left of a replacement answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        T: AsyncWrite + Unpin,
    {
        while !self.replacing.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.replacing) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(written)) => {
                    self.stalled = None;
                    self.replacing.drain(..written);
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return self.stall(cx),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Called when a write is pending: starts the timer if it is not
    /// running, and fails once it has run out.
    fn stall<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not read for the write timeout",
        )))
    }

    /// Called when a read is pending: fails once the head timeout has run
    /// with the connection waiting for a head and nothing begun or
    /// answered.
    fn wait_for_head(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((_, mut progress)) = self.requests.state() else {
            // Upgraded: heads are over, and so is their timer.
            self.head = None;
            self.head_waker = None;
            return Poll::Pending;
        };
        let timeout = self.head_timeout;
        let (timer, armed_at) = self
            .head
            .get_or_insert_with(|| (Box::pin(tokio::time::sleep(timeout)), progress));
        let registered = self
            .head_waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        if registered && !timer.is_elapsed() {
            return Poll::Pending;
        }
        self.head_waker = Some(cx.waker().clone());
        while timer.as_mut().poll(cx).is_ready() {
            match self.requests.state() {
                Some((false, now)) if now == *armed_at => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent no request head within the header timeout",
                    )));
                }
                Some((_, now)) => progress = now,
                None => {
                    self.head = None;
                    self.head_waker = None;
                    return Poll::Pending;
                }
            }
            *armed_at = progress;
            timer.as_mut().reset(tokio::time::Instant::now() + timeout);
        }
        Poll::Pending
    }

    fn progressed<R>(&mut self, result: io::Result<R>) -> Poll<io::Result<R>> {
        self.stalled = None;
        Poll::Ready(result)
    }
}

use std::future::Future as _;

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if polled.is_pending() {
            return self.wait_for_head(cx);
        }
        let read = (buf.filled().len() - before) as u64;
        if read > 0 {
            self.read
                .0
                .fetch_add(read, std::sync::atomic::Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if buf.starts_with(b"HTTP/1.1 4")
            && let Some(answer) = super::framing::with_envelope(buf)
        {
            // The bare head counts as written; the envelope goes out now
            // or with the next flush.
            self.replacing = answer;
            return match self.drain(cx) {
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                _ => Poll::Ready(Ok(buf.len())),
            };
        }
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(result) => self.progressed(result),
            Poll::Pending => self.stall(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // An answer hyper writes itself is a head alone: see `poll_write`.
        if let Some(first) = bufs.iter().find(|buf| !buf.is_empty())
            && (!self.replacing.is_empty() || first.starts_with(b"HTTP/1.1 4"))
        {
            return self.poll_write(cx, first);
        }
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => self.progressed(result),
            Poll::Pending => self.stall(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(result) => self.progressed(result),
            Poll::Pending => self.stall(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn the_budget_gives_back_what_it_lent() {
        let budget = Budget::new(2, 100);
        let one = budget.connection().expect("a place");
        let two = budget.connection().expect("a place");
        assert!(budget.connection().is_none());
        drop(one);
        let _three = budget.connection().expect("a place again");
        drop(two);

        let mut a = budget.body(60).expect("room");
        assert!(budget.body(50).is_none());
        assert!(a.grow(40));
        assert!(!a.grow(1));
        drop(a);
        assert!(budget.body(100).is_some());
    }
}
