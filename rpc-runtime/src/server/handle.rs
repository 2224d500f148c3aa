//! A cheap, cloneable handle on a running server, for handlers (through
//! `Context::server`) and for code outside the server.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// A handle on a server.
#[derive(Clone)]
pub struct ServerHandle {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    instance_id: String,
    started: Instant,
    started_at: SystemTime,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("name", &self.inner.name)
            .field("instance_id", &self.inner.instance_id)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    pub(crate) fn new(name: String) -> Self {
        ServerHandle {
            inner: Arc::new(Inner {
                name,
                instance_id: uuid::Uuid::new_v4().to_string(),
                started: Instant::now(),
                started_at: SystemTime::now(),
            }),
        }
    }

    /// The server's display name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// A unique id of this server process.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// How long the server has existed.
    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }

    /// When the server was built.
    pub fn started_at(&self) -> SystemTime {
        self.inner.started_at
    }
}
