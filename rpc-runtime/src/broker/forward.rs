//! Gateway side: forwarding a call it does not host and waiting for the
//! reply.

use super::wire::{
    self, CALL_EXCHANGE, CONTENT_TYPE, CallMessage, REPLY_TO, ReplyMessage, queue_name,
};
use super::{Broker, Replied, Reply, queue};
use crate::pipeline::deadline_in;
use crate::{Address, Call, Data, RpcError};
use futures_util::StreamExt;
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot};

impl Broker {
    /// Gateway side: publishes a call the pipeline has checked and given
    /// its deadline, and waits for the reply until then.
    pub(super) async fn forward_call(&self, call: Call) -> Result<Data, RpcError> {
        let remote = self.remote.get(&call.address);
        let Some(link) = self.current_link() else {
            return Err(RpcError::new(503, "the message broker is unreachable"));
        };
        // Under a resource alarm RabbitMQ takes nothing from publishers:
        // a call would only wait in the connection's buffer.
        if link.connection.status().blocked() {
            self.count(|counters| &counters.broker_blocked_refusals);
            return Err(RpcError::new(
                503,
                "the message broker is refusing messages (resource alarm)",
            ));
        }
        let deadline = call
            .deadline
            .unwrap_or_else(|| deadline_in(self.default_timeout));
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining < Duration::from_millis(1) {
            return Err(deadline_passed(&call.address));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let _waiting = Waiting::new(self, id, reply);
        let span_id = call.span_id;
        let trace = call.trace;
        let message = CallMessage {
            address: call.address,
            args: call.args,
            identity: call.identity,
            internal: call.internal,
            caller: call.caller,
            trace_id: call.trace_id,
            user_id: call.user_id,
            metadata: call.metadata.only_headers(&self.config.forward_headers),
            timeout_ms: u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
            deadline_unix_ms: Some(
                wire::unix_ms()
                    .saturating_add(u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX)),
            ),
        };
        // Room for a typical call message, so that writing it rarely grows
        // the buffer.
        let mut payload = Vec::with_capacity(512);
        serde_json::to_writer(&mut payload, &message).map_err(|_| RpcError::internal())?;
        let address = message.address;
        let routing_key = match &remote {
            Some(remote) => remote.queue.clone(),
            None => queue_name(&address).into(),
        };
        let properties = BasicProperties::default()
            .with_headers(wire::trace_headers(&message.trace_id, span_id, &trace))
            .with_correlation_id(wire::correlation_id(id))
            .with_reply_to(REPLY_TO.into())
            .with_expiration(wire::expiration(remaining))
            .with_content_type(CONTENT_TYPE.into());
        // Without `mandatory` and confirms: a call no queue takes goes to the
        // alternate exchange, and the 404 comes back as its reply.
        let publish = link.publisher.basic_publish(
            CALL_EXCHANGE.into(),
            routing_key,
            BasicPublishOptions::default(),
            &payload,
            properties,
        );
        if let Some(Err(_)) = queue(publish) {
            return Err(RpcError::new(503, "the message broker is unreachable"));
        }
        let exchange = async {
            let replied = answer.await.unwrap_or_else(|_| {
                Replied::error(RpcError::new(
                    503,
                    "the connection to the message broker was lost",
                ))
            });
            // A procedure servers announced, whose queue is gone: its
            // servers are away for now (reconnecting after a broker node
            // was lost, or restarting), which is not a 404.
            if replied.unroutable && remote.is_some() {
                return Err(RpcError::new(
                    503,
                    format!(
                        "no handler server of {address} is connected to the broker right now; try again"
                    ),
                ));
            }
            replied.result
        };
        tokio::time::timeout_at(deadline.into(), exchange)
            .await
            .unwrap_or_else(|_| Err(deadline_passed(&address)))
    }

    pub(super) async fn read_replies(
        self: Arc<Self>,
        mut replies: lapin::Consumer,
        lost: Arc<Notify>,
    ) {
        while let Some(Ok(delivery)) = replies.next().await {
            let Some(id) = delivery
                .properties
                .correlation_id()
                .as_ref()
                .and_then(|id| wire::parse_correlation_id(id.as_str()))
            else {
                continue;
            };
            let Some(reply) = self.pending().remove(&id) else {
                continue;
            };
            let replied = match serde_json::from_slice::<ReplyMessage>(&delivery.data) {
                Ok(message) => Replied {
                    unroutable: message.unroutable,
                    result: message.into_result(),
                },
                Err(_) => Replied::error(RpcError::new(
                    502,
                    "a handler server sent a malformed reply",
                )),
            };
            let _ = reply.send(replied);
        }
        lost.notify_one();
    }
}

fn deadline_passed(address: &Address) -> RpcError {
    RpcError::new(504, format!("{address} did not answer before the deadline"))
}

/// A reply being waited for; forgotten when the wait ends, however it ends.
struct Waiting<'a> {
    broker: &'a Broker,
    id: u64,
}

impl<'a> Waiting<'a> {
    fn new(broker: &'a Broker, id: u64, reply: Reply) -> Self {
        broker.pending().insert(id, reply);
        Waiting { broker, id }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut pending = self.broker.pending();
        pending.remove(&self.id);
        if pending.is_empty() {
            drop(pending);
            // A draining server waits for its forwarded calls too.
            self.broker.idle.notify_waiters();
        }
    }
}
