//! Handler side: running the calls delivered on the queues of the hosted
//! procedures, and answering 404 to the calls nobody serves.

use super::wire::{CONTENT_TYPE, CallMessage, ReplyMessage};
use super::{Broker, Link, queue};
use crate::pipeline::{Entry, deadline_in};
use crate::{Address, Call, RpcError};
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicPublishOptions};
use lapin::{BasicProperties, Channel};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::Notify;

impl Broker {
    /// Handler side: runs every call delivered on one procedure queue.
    pub(super) async fn serve_queue(
        self: Arc<Self>,
        mut consumer: lapin::Consumer,
        channel: Arc<Channel>,
        link: Link,
        lost: Arc<Notify>,
    ) {
        while let Some(delivery) = consumer.next().await {
            let Ok(delivery) = delivery else { break };
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            let me = self.clone();
            let link = link.clone();
            let channel = channel.clone();
            let mut serving = Box::pin(async move {
                me.serve_delivery(delivery, &channel, &link).await;
                if me.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
                    me.idle.notify_waiters();
                }
            });
            // Most calls finish in their first poll, reply and
            // acknowledgement queued: they run here, without a task of
            // their own. A call that waits goes on running in one, so that
            // the queue's next calls do not wait for it.
            if futures_util::FutureExt::now_or_never(serving.as_mut()).is_none() {
                tokio::spawn(serving);
            }
        }
        // The stream also ends when the consumer is cancelled at shutdown;
        // the supervisor is draining then and ignores the notification.
        lost.notify_one();
    }

    /// Runs one delivered call, then queues its reply and its
    /// acknowledgement.
    ///
    /// The acknowledgement goes straight to the consuming channel rather
    /// than through `Delivery::ack`, which routes it through lapin's
    /// internal task. Neither write is waited for (see [`queue`]); the
    /// goodbye a draining server publishes last is written after them.
    async fn serve_delivery(
        &self,
        delivery: lapin::message::Delivery,
        channel: &Channel,
        link: &Link,
    ) {
        let ack = || queue(channel.basic_ack(delivery.delivery_tag, BasicAckOptions::default()));
        // At most once: a message delivered again may already have run.
        if delivery.redelivered {
            ack();
            return;
        }
        let reply_to = delivery.properties.reply_to().clone();
        let traced = super::wire::trace_from_headers(delivery.properties.headers().as_ref());
        let correlation_id = delivery.properties.correlation_id().clone();
        let result = match serde_json::from_slice::<CallMessage>(&delivery.data) {
            Ok(message) if message.timeout_ms == 0 => {
                ack();
                return;
            }
            // Its deadline passed while it waited (in the queue, in this
            // server's prefetch buffer, or while this process was stopped):
            // it is not run, and the caller, if still waiting, learns why.
            Ok(message) if message.remaining(super::wire::unix_ms()).is_zero() => {
                Err(RpcError::new(
                    504,
                    format!(
                        "{} expired before a handler server started it",
                        message.address
                    ),
                ))
            }
            Ok(message) => {
                let remaining = message.remaining(super::wire::unix_ms());
                let (trace_id, trace) = traced.unwrap_or_else(|| {
                    (
                        message.trace_id,
                        crate::trace::TraceContext {
                            sampled: true,
                            ..Default::default()
                        },
                    )
                });
                let call = Box::new(Call {
                    address: message.address,
                    args: message.args,
                    identity: message.identity,
                    internal: message.internal,
                    caller: message.caller,
                    trace_id,
                    span_id: None,
                    trace,
                    deadline: Some(deadline_in(remaining)),
                    user_id: message.user_id,
                    metadata: Arc::new(message.metadata),
                });
                match self.pipeline.upgrade() {
                    Some(pipeline) => pipeline.dispatch(call, Entry::Broker).await,
                    None => Err(RpcError::new(503, "the handler server is stopping")),
                }
            }
            Err(error) => Err(RpcError::bad_request(format!(
                "malformed call message: {error}"
            ))),
        };
        if let (Some(reply_to), Some(correlation_id)) = (reply_to, correlation_id) {
            publish_reply(
                link,
                reply_to,
                correlation_id,
                ReplyMessage::from_result(result),
            );
        }
        ack();
    }

    /// Answers 404 to the calls the call exchange could route nowhere
    /// (whichever server published them: the reply goes to its reply-to).
    ///
    /// Each is acknowledged once its answer is queued, so that the calls a
    /// server holds when it stops or dies go back to the queue for another
    /// server to answer, instead of waiting for their deadline.
    pub(super) async fn answer_unroutable(
        self: Arc<Self>,
        mut unroutable: lapin::Consumer,
        channel: Arc<Channel>,
        link: Link,
        lost: Arc<Notify>,
    ) {
        while let Some(Ok(delivery)) = unroutable.next().await {
            if let (Some(reply_to), Some(correlation_id)) = (
                delivery.properties.reply_to(),
                delivery.properties.correlation_id(),
            ) {
                let error = match serde_json::from_slice::<CallMessage>(&delivery.data) {
                    Ok(message) => not_found(&message.address),
                    Err(_) => RpcError::not_found("no such procedure"),
                };
                let mut reply = ReplyMessage::from_result(Err(error));
                reply.unroutable = true;
                publish_reply(&link, reply_to.clone(), correlation_id.clone(), reply);
            }
            queue(channel.basic_ack(delivery.delivery_tag, BasicAckOptions::default()));
        }
        // The stream also ends when the consumer is cancelled at shutdown;
        // the supervisor is draining then and ignores the notification.
        lost.notify_one();
    }
}

/// Queues the answer to a call for the reply-to address it came with.
fn publish_reply(
    link: &Link,
    reply_to: lapin::types::ShortString,
    correlation_id: lapin::types::ShortString,
    reply: ReplyMessage,
) {
    let Ok(payload) = serde_json::to_vec(&reply) else {
        return;
    };
    let properties = BasicProperties::default()
        .with_correlation_id(correlation_id)
        .with_content_type(CONTENT_TYPE.into());
    queue(link.publisher.basic_publish(
        "".into(),
        reply_to,
        BasicPublishOptions::default(),
        &payload,
        properties,
    ));
}

fn not_found(address: &Address) -> RpcError {
    RpcError::not_found(format!(
        "no procedure {:?} in scope {:?} with version {:?}",
        address.procedure, address.scope, address.version
    ))
}
