//! What one server lets all its clients hold at once: connections, and
//! bytes of request bodies being read; and the write timeout that frees a
//! connection whose client does not read its answers.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A connection's IO with a write timeout: a write (or flush) that makes no
/// progress for `limit` fails with `TimedOut`, which ends the connection.
/// So a client that stops reading its answers, pipelining requests or
/// not, is closed instead of holding the server's buffers.
pub(crate) struct TimedIo<T> {
    inner: T,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
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
    pub(crate) fn new(inner: T, limit: Duration, read: BytesRead) -> Self {
        TimedIo {
            inner,
            limit,
            stalled: None,
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
