//! The link to Redis that makes several nodes one service (`--redis`).
//!
//! A publish goes to Redis first: one script (`script`) numbers it in the deployment's one
//! sequence, gives it an id if it has none, keeps it in a shared log and publishes it on a
//! channel. Every node, this one included, takes the events from the channel in that order
//! (`follow`) and publishes them to its own subscribers, so every subscriber of every node sees
//! one order, and each node's history holds the same events. A node reads back from the log what
//! the channel did not bring it (a hole in the sequence, a reconnect) and, when it starts, the
//! latest events, so that it serves resumes for events published before it started. Events cross
//! Redis once per publish per node; fan-out stays local.
//!
//! A publish is answered once Redis has taken it and this node has published it (a subscribe
//! that follows the answer here sees the event). Without Redis, publishes are refused (`503`)
//! while subscribers stay connected.

mod follow;
mod message;
mod script;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionInfo, RedisError, Script};
use tokio::sync::{watch, OnceCell};

use self::script::Keys;
use crate::broadcast::Broadcaster;
use crate::sse::event::{self, Event};
use crate::stats::Stats;

pub use self::message::Message;

/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a command may wait for Redis's answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a publish waits for this node to have published it, once Redis has.
const LOCAL_WAIT: Duration = Duration::from_secs(2);

/// Why Redis did not take a publish.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("Redis is unreachable ({0}); retry shortly")]
    Unreachable(String),
    #[error("an event with this id is still in history; ids must be unique")]
    DuplicateId,
}

impl From<RedisError> for ClusterError {
    fn from(e: RedisError) -> Self {
        match e.code() {
            Some("DUPLICATE") => Self::DuplicateId,
            _ => Self::Unreachable(e.to_string()),
        }
    }
}

/// How a node reaches Redis.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where Redis is.
    pub redis: ConnectionInfo,
    /// What the deployment's keys and channel begin with.
    pub prefix: String,
    /// Events the shared log keeps.
    pub history: u32,
}

/// The last event this node has published from Redis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Published {
    /// The epoch of the Redis that numbered it.
    epoch: Option<Arc<str>>,
    /// Its number.
    seq: u64,
}

/// The node's link to Redis; `follow` must run for events to reach this node's subscribers.
pub struct Cluster {
    /// Redis's address.
    client: Client,
    /// Commands (the publish script, reads of the log); made at the first use that succeeds.
    commands: OnceCell<ConnectionManager>,
    /// The deployment's keys.
    keys: Keys,
    /// Events the shared log keeps.
    history: u32,
    /// The publish script.
    script: Script,
    /// What this node has published from Redis, for publishers waiting on it.
    published: watch::Sender<Published>,
    /// The server's counters, where the link's state is shown.
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A link to the Redis of `settings`; nothing is connected until it is used.
    pub fn new(settings: &Settings, stats: Arc<Stats>) -> Result<Arc<Self>, RedisError> {
        stats.redis.set_up(false);
        Ok(Arc::new(Self {
            client: Client::open(settings.redis.clone())?,
            commands: OnceCell::new(),
            keys: Keys::new(&settings.prefix),
            history: settings.history,
            script: Script::new(script::PUBLISH),
            published: watch::channel(Published::default()).0,
            stats,
        }))
    }

    /// Follows Redis's channel until dropped, publishing every event to `broadcaster`'s
    /// subscribers; reconnects with backoff.
    pub async fn follow(self: Arc<Self>, broadcaster: Broadcaster) {
        follow::run(&self, &broadcaster).await;
    }

    /// Publishes `events` through Redis, in order, all or none; answers their ids once this
    /// node has published them too (or after [`LOCAL_WAIT`], Redis having taken them).
    pub async fn publish(&self, events: &[Event]) -> Result<Vec<String>, ClusterError> {
        let mut connection = self.connection().await?;
        let mut invocation = self.script.prepare_invoke();
        for key in self.keys.for_script() {
            invocation.key(key);
        }
        invocation
            .arg(&self.keys.channel)
            .arg(self.history)
            .arg(events.len());
        for event in events {
            let topics: Vec<&str> = event.topics().iter().map(String::as_str).collect();
            invocation
                .arg(event.id().unwrap_or(""))
                .arg(if event.is_private() { "1" } else { "0" })
                .arg(topics.join("\n"))
                .arg(event::encode_body(event));
        }
        let answer: Vec<String> = invocation.invoke_async(&mut connection).await?;
        let (epoch, sent) = answer
            .split_first()
            .ok_or_else(|| ClusterError::Unreachable("an empty answer".into()))?;
        let last: u64 = sent
            .iter()
            .step_by(2)
            .filter_map(|seq| seq.parse().ok())
            .max()
            .unwrap_or(0);
        let ids = sent.iter().skip(1).step_by(2).cloned().collect();
        let mut published = self.published.subscribe();
        let here = published.wait_for(|p| p.epoch.as_deref() == Some(epoch) && p.seq >= last);
        let _ = tokio::time::timeout(LOCAL_WAIT, here).await;
        Ok(ids)
    }

    /// The connection for commands, made now if it is not yet.
    async fn connection(&self) -> Result<ConnectionManager, ClusterError> {
        let connect = || async {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(1);
            self.client.get_connection_manager_with_config(config).await
        };
        Ok(self.commands.get_or_try_init(connect).await?.clone())
    }
}
