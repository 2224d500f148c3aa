//! The mesh: WebSocket pushes and closes, presence, and connection events
//! across every server on the broker (`hub/mesh.rs` says what the hub asks
//! of it; `docs/BROKER.md` has the topology).
//!
//! - Pushes and closes go to the direct exchange `rpc.push` with the
//!   routing key of their target: `c:<connection id>`, `u:<user id>`, or
//!   `all`. Each server that takes WebSocket connections reads its own
//!   exclusive queue, bound to `all` and to the key of each connection and
//!   each user it holds, so a push to a user reaches only the gateways
//!   that hold a connection of that user.
//! - Presence: each such server reports its connections (in all and per
//!   user) on the announcement exchange every announce interval; every
//!   server keeps the latest report of each, and forgets a server silent
//!   for three intervals (at least 3 s).
//! - Connection events (client messages, and optionally connects,
//!   identity changes and disconnects) go to the shared queue
//!   `rpc.mesh-events`, from which servers with `on_mesh_event` hooks take
//!   them, each event to one of them.

use super::wire::{Announcement, CONTENT_TYPE};
use super::{Broker, Link, queue};
use crate::hub::mesh::{ALL_KEY, Action, Mesh, MeshEvent, Order, Target};
use futures_util::StreamExt;
use lapin::options::{BasicPublishOptions, QueueBindOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, oneshot};

/// The direct exchange of pushes and closes.
pub(super) const PUSH_EXCHANGE: &str = "rpc.push";
/// The shared queue of connection events.
pub(super) const EVENTS_QUEUE: &str = "rpc.mesh-events";

/// A hook on the connection events gateways forward.
pub(crate) type MeshHook = Arc<dyn Fn(&MeshEvent, &crate::ServerHandle) + Send + Sync>;

/// This server's push queue while connected: binding changes go through
/// one task, in order.
pub(super) struct PushQueue {
    pub(super) bindings: mpsc::UnboundedSender<Bindings>,
}

/// Routing keys to bind (true) or unbind, and whom to tell when done.
pub(super) struct Bindings {
    changes: Vec<(String, bool)>,
    done: oneshot::Sender<()>,
}

/// The latest presence report of each other server.
#[derive(Default)]
pub(super) struct Presence {
    servers: HashMap<String, Report>,
}

struct Report {
    seen: Instant,
    silence: Duration,
    connections: usize,
    users: HashMap<String, usize>,
}

impl Presence {
    fn apply(&mut self, announcement: &Announcement, now: Instant) {
        match announcement {
            Announcement::Presence {
                instance_id,
                interval_ms,
                connections,
                users,
                ..
            } => {
                let silence = Duration::from_millis(interval_ms.saturating_mul(3))
                    .max(Duration::from_secs(3));
                self.servers.insert(
                    instance_id.clone(),
                    Report {
                        seen: now,
                        silence,
                        connections: *connections,
                        users: users.clone(),
                    },
                );
            }
            Announcement::Goodbye { instance_id } => {
                self.servers.remove(instance_id);
            }
            _ => {}
        }
    }

    fn count(&mut self, user: Option<&str>, now: Instant) -> usize {
        self.servers
            .retain(|_, report| now.saturating_duration_since(report.seen) < report.silence);
        self.servers
            .values()
            .map(|report| match user {
                Some(user) => report.users.get(user).copied().unwrap_or(0),
                None => report.connections,
            })
            .sum()
    }
}

impl Broker {
    /// Declares this server's push queue, binds it to `all` and to the keys
    /// of the connections it holds, and reads the orders that arrive.
    pub(super) async fn listen_for_orders(
        &self,
        link: &Link,
        lost: &Arc<Notify>,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, crate::Error> {
        let channel = Arc::new(super::connection::open_channel(&link.connection).await?);
        let queue = super::connection::declare(
            &channel,
            "",
            lapin::options::QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            "declare the push queue",
        )
        .await?;
        // Changes are queued from here on, before the keys are read: a
        // connection that arrives while the queue is being bound is either
        // in the snapshot or queued (or both: binding twice is harmless, as
        // is unbinding a key that was never bound), never missed.
        let (bindings, changes) = mpsc::unbounded_channel();
        *self.push_slot() = Some(PushQueue { bindings });
        for key in std::iter::once(ALL_KEY.to_owned()).chain(self.handle.hub().keys()) {
            super::connection::bind(&channel, &queue, PUSH_EXCHANGE, &key).await?;
        }
        let orders =
            super::connection::consume(&channel, &queue, true, "consume the push queue").await?;
        let me = self
            .me
            .upgrade()
            .ok_or_else(|| crate::Error::Broker("the server is stopping".into()))?;
        Ok(vec![
            tokio::spawn(me.clone().read_orders(orders, lost.clone())),
            tokio::spawn(bind_in_order(channel, queue, changes)),
        ])
    }

    async fn read_orders(self: Arc<Self>, mut orders: lapin::Consumer, lost: Arc<Notify>) {
        while let Some(Ok(delivery)) = orders.next().await {
            self.count(|counters| &counters.mesh_orders);
            if let Some(order) = order_of(delivery) {
                self.handle.obey(order);
            }
        }
        lost.notify_one();
    }

    /// Runs the mesh event hooks on the events of the shared queue.
    pub(super) async fn read_events(
        self: Arc<Self>,
        mut events: lapin::Consumer,
        channel: Arc<Channel>,
        lost: Arc<Notify>,
    ) {
        while let Some(Ok(delivery)) = events.next().await {
            if let Ok(event) = serde_json::from_slice::<MeshEvent>(&delivery.data) {
                for hook in &self.config.mesh_hooks {
                    crate::events::run_hook("mesh event", || hook(&event, &self.handle));
                }
            }
            queue(channel.basic_ack(delivery.delivery_tag, Default::default()));
        }
        lost.notify_one();
    }

    /// This server's presence report.
    pub(super) fn presence_report(&self) -> Announcement {
        let users = self.handle.hub().users();
        Announcement::Presence {
            instance_id: self.handle.instance_id().to_owned(),
            server: self.handle.name().to_owned(),
            interval_ms: self.config.announce_interval.as_millis() as u64,
            connections: self.handle.connection_count(),
            users,
        }
    }

    pub(super) fn hear_presence(&self, announcement: &Announcement) {
        self.presence().apply(announcement, Instant::now());
    }

    fn publish_to(&self, exchange: &str, key: &str, payload: Vec<u8>) {
        let Some(link) = self.current_link() else {
            return;
        };
        let properties = BasicProperties::default().with_content_type(CONTENT_TYPE.into());
        queue(link.publisher.basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            &payload,
            properties,
        ));
    }
}

impl Mesh for Broker {
    /// An order travels as its routing key (the target), `app_id` (the
    /// sender), `type` (`push` or `close`) and a body: the push's frame as
    /// the connections receive it, or the close code. A gateway reads it
    /// without decoding JSON.
    fn publish(&self, order: Order) {
        let Some(link) = self.current_link() else {
            return;
        };
        let key = order.target.key();
        let (kind, payload) = match order.action {
            Action::Send(frame) => ("push", frame.into_bytes()),
            Action::Close(code) => ("close", code.to_string().into_bytes()),
        };
        let properties = BasicProperties::default()
            .with_app_id(order.origin.into())
            .with_type(kind.into());
        queue(link.publisher.basic_publish(
            PUSH_EXCHANGE.into(),
            key.as_str().into(),
            BasicPublishOptions::default(),
            &payload,
            properties,
        ));
    }

    fn listen(&self, changes: Vec<(String, bool)>, done: oneshot::Sender<()>) {
        if let Some(push) = self.push_slot().as_ref() {
            let _ = push.bindings.send(Bindings { changes, done });
        }
    }

    fn remote_connections(&self, user: Option<&str>) -> usize {
        self.presence().count(user, Instant::now())
    }

    fn forward_event(&self, event: MeshEvent) {
        if let Ok(payload) = serde_json::to_vec(&event) {
            self.publish_to("", EVENTS_QUEUE, payload);
        }
    }
}

/// The order a delivery of the push queue carries (see `publish`).
fn order_of(delivery: lapin::message::Delivery) -> Option<Order> {
    let target = Target::from_key(delivery.routing_key.as_str())?;
    let origin = delivery.properties.app_id().as_ref()?.to_string();
    let action = match delivery.properties.kind().as_ref()?.as_str() {
        "push" => Action::Send(String::from_utf8(delivery.data).ok()?),
        "close" => Action::Close(std::str::from_utf8(&delivery.data).ok()?.parse().ok()?),
        _ => return None,
    };
    Some(Order {
        origin,
        target,
        action,
    })
}

/// Binds and unbinds the push queue in the order the hub asked.
async fn bind_in_order(
    channel: Arc<Channel>,
    queue: String,
    mut requests: mpsc::UnboundedReceiver<Bindings>,
) {
    while let Some(Bindings { changes, done }) = requests.recv().await {
        for (key, on) in changes {
            let applied = if on {
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        PUSH_EXCHANGE.into(),
                        key.as_str().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
            } else {
                channel
                    .queue_unbind(
                        queue.as_str().into(),
                        PUSH_EXCHANGE.into(),
                        key.as_str().into(),
                        FieldTable::default(),
                    )
                    .await
            };
            // The channel is gone with the connection; the next one binds
            // every key again.
            if applied.is_err() {
                return;
            }
        }
        let _ = done.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_counts_fresh_reports_and_forgets_goodbyes() {
        let report = |id: &str, users: &[(&str, usize)]| Announcement::Presence {
            instance_id: id.into(),
            server: "g".into(),
            interval_ms: 1000,
            connections: users.iter().map(|(_, n)| n).sum(),
            users: users.iter().map(|(u, n)| ((*u).to_owned(), *n)).collect(),
        };
        let mut presence = Presence::default();
        let now = Instant::now();
        presence.apply(&report("a", &[("ann", 2), ("bob", 1)]), now);
        presence.apply(&report("b", &[("ann", 1)]), now);
        assert_eq!(presence.count(Some("ann"), now), 3);
        assert_eq!(presence.count(None, now), 4);
        presence.apply(
            &Announcement::Goodbye {
                instance_id: "b".into(),
            },
            now,
        );
        assert_eq!(presence.count(Some("ann"), now), 2);
        // Silent for three intervals (at least 3 s): forgotten.
        assert_eq!(presence.count(None, now + Duration::from_secs(4)), 0);
    }
}
