//! Announcements: what a handler server serves, published when it starts,
//! periodically and on a gateway's query; what others announce, kept in
//! the registry of remote procedures.

use super::wire::{ANNOUNCE_EXCHANGE, Announcement, CONTENT_TYPE};
use super::{Broker, Link};
use futures_util::StreamExt;
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use std::sync::Arc;
use tokio::sync::Notify;

impl Broker {
    pub(super) async fn read_announcements(
        self: Arc<Self>,
        mut announcements: lapin::Consumer,
        link: Link,
        lost: Arc<Notify>,
    ) {
        while let Some(Ok(delivery)) = announcements.next().await {
            let Ok(announcement) = serde_json::from_slice::<Announcement>(&delivery.data) else {
                continue;
            };
            match &announcement {
                Announcement::Query { instance_id } if instance_id != self.handle.instance_id() => {
                    if !self.hosted.is_empty() {
                        self.publish_announcement(&link, &self.announcement()).await;
                    }
                    if self.config.mesh_listen {
                        self.publish_announcement(&link, &self.presence_report())
                            .await;
                    }
                }
                Announcement::Presence { instance_id, .. }
                    if instance_id != self.handle.instance_id() =>
                {
                    self.hear_presence(&announcement);
                }
                Announcement::Announce { instance_id, .. }
                | Announcement::Goodbye { instance_id }
                    if instance_id != self.handle.instance_id() =>
                {
                    self.count(|counters| &counters.broker_announcements);
                    self.hear_presence(&announcement);
                    self.remote.apply(announcement);
                }
                _ => {}
            }
        }
        lost.notify_one();
    }

    fn announcement(&self) -> Announcement {
        Announcement::Announce {
            instance_id: self.handle.instance_id().to_owned(),
            server: self.handle.name().to_owned(),
            interval_ms: self.config.announce_interval.as_millis() as u64,
            procedures: self.hosted.clone(),
        }
    }

    pub(super) async fn announce_periodically(self: Arc<Self>, link: Link) {
        let mut every = tokio::time::interval(self.config.announce_interval);
        loop {
            every.tick().await;
            self.publish_announcement(&link, &self.announcement()).await;
        }
    }

    /// Reports this server's connections every interval.
    pub(super) async fn report_presence(self: Arc<Self>, link: Link) {
        let mut every = tokio::time::interval(self.config.announce_interval);
        loop {
            every.tick().await;
            self.publish_announcement(&link, &self.presence_report())
                .await;
        }
    }

    pub(super) async fn publish_announcement(&self, link: &Link, announcement: &Announcement) {
        let Ok(payload) = serde_json::to_vec(announcement) else {
            return;
        };
        let properties = BasicProperties::default().with_content_type(CONTENT_TYPE.into());
        let _ = link
            .publisher
            .basic_publish(
                ANNOUNCE_EXCHANGE.into(),
                "".into(),
                BasicPublishOptions::default(),
                &payload,
                properties,
            )
            .await;
    }
}
