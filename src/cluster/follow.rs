//! Following Redis: every event of the deployment, in its order, published to this node's
//! subscribers, and what the channel did not bring read back from the log.
//!
//! The node subscribes to the channel first and reads the log second, so nothing published in
//! between is missed (what comes twice is skipped by its number). An event that is neither on
//! the channel nor in the log any more is lost to this node: it forgets the ids its history holds
//! and ends its subscribers' streams, so that each reconnects and its resume gets the `gap` event
//! instead of a silent hole. The same happens when Redis comes back without its data (a new
//! epoch), since the node cannot know what it missed.

use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::aio::ConnectionManager;
use tracing::{info, warn};

use super::{Cluster, ClusterError, Message, Published, CONNECT_TIMEOUT};
use crate::broadcast::Broadcaster;

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait before reconnecting.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A link that lasted this long starts its reconnection from [`MIN_BACKOFF`] again.
const STEADY: Duration = Duration::from_secs(10);

/// Follows Redis until dropped, reconnecting with backoff.
pub(super) async fn run(cluster: &Cluster, broadcaster: &Broadcaster) {
    let mut follower = Follower {
        cluster,
        broadcaster,
        place: Published::default(),
    };
    let mut backoff = MIN_BACKOFF;
    loop {
        let started = Instant::now();
        let Err(e) = follower.follow().await;
        cluster.stats.redis.set_up(false);
        if started.elapsed() >= STEADY {
            backoff = MIN_BACKOFF;
        }
        warn!(error = %e, retry_in = ?backoff, "not following Redis");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Where this node stands in the deployment's sequence.
struct Follower<'a> {
    cluster: &'a Cluster,
    broadcaster: &'a Broadcaster,
    /// The last event published here.
    place: Published,
}

impl Follower<'_> {
    /// Subscribes, catches up and follows the channel until the link fails.
    async fn follow(&mut self) -> Result<std::convert::Infallible, ClusterError> {
        let keys = &self.cluster.keys;
        let pubsub = self.cluster.client.get_async_pubsub();
        let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, pubsub)
            .await
            .map_err(|_| ClusterError::Unreachable("connecting timed out".into()))??;
        pubsub.subscribe(&keys.channel).await?;
        let mut messages = pubsub.into_on_message();
        let mut connection = self.cluster.connection().await?;
        self.catch_up(&mut connection).await?;
        self.cluster.stats.redis.set_up(true);
        info!(seq = self.place.seq, "following Redis");
        while let Some(message) = messages.next().await {
            match Message::parse(message.get_payload_bytes()) {
                Ok(message) => self.receive(&mut connection, message).await?,
                Err(e) => warn!(error = %e, "skipped a message Redis's channel carried"),
            }
        }
        Err(ClusterError::Unreachable("the connection closed".into()))
    }

    /// After (re)connecting: reads from the log what was published since this node's place,
    /// or, on a first start or a new epoch, the latest events.
    async fn catch_up(&mut self, connection: &mut ConnectionManager) -> Result<(), ClusterError> {
        let keys = &self.cluster.keys;
        let epoch: Option<String> = redis::cmd("GET")
            .arg(&keys.epoch)
            .query_async(connection)
            .await?;
        let Some(epoch) = epoch else {
            // Redis holds nothing: new, or back without its data.
            self.enter_epoch(None);
            return Ok(());
        };
        let current: Option<u64> = redis::cmd("GET")
            .arg(&keys.seq)
            .query_async(connection)
            .await?;
        let current = current.unwrap_or(0);
        if self.place.epoch.as_deref() == Some(epoch.as_str()) {
            // Back with older data (a snapshot): the next numbers follow what it holds.
            self.place.seq = self.place.seq.min(current);
            let missed = self.read_log(connection, self.place.seq + 1, None).await?;
            for message in missed {
                self.publish(message, true);
            }
            if self.place.seq < current {
                self.lost("events left Redis's log before this node read them");
                self.place.seq = current;
            }
        } else {
            self.enter_epoch(Some(&epoch));
            for message in self.latest(connection).await? {
                self.publish(message, false);
            }
            self.place.seq = self.place.seq.max(current);
        }
        self.cluster.published.send_replace(self.place.clone());
        Ok(())
    }

    /// Publishes an event from the channel, after what the log holds of any before it that
    /// the channel did not bring.
    async fn receive(
        &mut self,
        connection: &mut ConnectionManager,
        message: Message,
    ) -> Result<(), ClusterError> {
        if self.place.epoch.as_deref() != Some(message.epoch.as_str()) {
            self.enter_epoch(Some(&message.epoch));
        }
        if message.seq <= self.place.seq {
            return Ok(());
        }
        if message.seq > self.place.seq + 1 {
            let to = message.seq - 1;
            for missed in self
                .read_log(connection, self.place.seq + 1, Some(to))
                .await?
            {
                self.publish(missed, true);
            }
        }
        self.publish(message, true);
        self.cluster.published.send_replace(self.place.clone());
        Ok(())
    }

    /// Publishes `message` to this node's subscribers unless it was already; when `follows`,
    /// an event between the last one and it is lost.
    fn publish(&mut self, message: Message, follows: bool) {
        if message.seq <= self.place.seq {
            return;
        }
        if follows && message.seq > self.place.seq + 1 {
            self.lost("events left Redis's log before this node read them");
        }
        self.place.seq = message.seq;
        let seq = message.seq;
        let topics = match message.topics() {
            Ok(topics) => topics,
            Err(e) => return warn!(error = %e, seq, "an event from Redis has bad topics"),
        };
        let frame = message.frame();
        let published =
            self.broadcaster
                .publish_received(&topics, message.id, frame, message.private);
        if let Err(e) = published {
            warn!(error = %e, seq, "an event from Redis is not kept here");
        }
    }

    /// Starts over at the beginning of `epoch` (none: Redis holds nothing yet). What this node
    /// had of an earlier epoch may lack events Redis lost with its data.
    fn enter_epoch(&mut self, epoch: Option<&str>) {
        if self.place.epoch.is_some() {
            self.lost("Redis came back without its data (a new epoch)");
        }
        self.place = Published {
            epoch: epoch.map(Into::into),
            seq: 0,
        };
    }

    /// Ends every stream of this node and forgets the ids its history holds: each resumes and
    /// gets the `gap` event.
    fn lost(&self, why: &str) {
        warn!(
            reason = why,
            "events may be missing here; ending every stream so that each resumes"
        );
        self.broadcaster.reset_after_loss();
    }

    /// The log's events numbered `from` to `to` (or to the last), oldest first.
    async fn read_log(
        &self,
        connection: &mut ConnectionManager,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Message>, ClusterError> {
        let end = to.map_or_else(|| "+".to_owned(), |to| format!("{to}-1"));
        let entries: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
            .arg(&self.cluster.keys.log)
            .arg(format!("{from}-1"))
            .arg(end)
            .query_async(connection)
            .await?;
        Ok(parse_entries(entries))
    }

    /// The latest events of the log, oldest first, as many as it keeps.
    async fn latest(
        &self,
        connection: &mut ConnectionManager,
    ) -> Result<Vec<Message>, ClusterError> {
        let entries: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XREVRANGE")
            .arg(&self.cluster.keys.log)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(self.cluster.history)
            .query_async(connection)
            .await?;
        let mut latest = parse_entries(entries);
        latest.reverse();
        Ok(latest)
    }
}

/// The messages of log entries (`[id, [field, value, ...]]`, the message under `m`).
fn parse_entries(entries: Vec<(String, Vec<Vec<u8>>)>) -> Vec<Message> {
    entries
        .into_iter()
        .filter_map(|(entry, fields)| {
            let value = fields
                .chunks(2)
                .find(|pair| pair[0] == b"m")
                .and_then(|pair| pair.get(1))?;
            Message::parse(value)
                .map_err(|e| warn!(error = %e, entry, "skipped a log entry"))
                .ok()
        })
        .collect()
}
