//! Instants a call stops at, saturating rather than overflowing.

use std::time::{Duration, Instant};

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
