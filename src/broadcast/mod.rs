//! The broadcaster: owns every subscriber socket after its response head, and fans events out.
//!
//! [`Broadcaster`] is the handle the rest of the server uses. It interns topic names, gives
//! each publication its place in one total order (its `Seq`) and an id when the publisher gave
//! none, encodes it once, and hands it to every shard; a subscribe goes to one shard, chosen in
//! turn. Each shard (`shard`) is a thread with a poll, a table, topics and a wheel of its own,
//! so shards share nothing but the shared frames and the counters.
//!
//! Knows no HTTP: it gets sockets whose response head is written, and validated events.

mod deliver;
mod history;
mod shard;
mod subscriber;
mod table;
mod topic;
mod wheel;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use self::history::Seq;
use self::shard::{Command, NewSubscriber, Publication, Shard, WAKER};
use self::topic::{Registry, TopicId};
use crate::sse::event::{self, Event};
use crate::sse::subscribe::Subscribe;
use crate::stats::Stats;

/// How the broadcaster is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Shard threads, each owning a share of the subscribers.
    pub shards: usize,
    /// Frames of history kept per topic.
    pub history: usize,
    /// The most topics held.
    pub max_topics: usize,
    /// Silence after which a subscriber is sent a keep-alive comment.
    pub keep_alive: Duration,
}

pub use self::topic::TopicLimit;

/// Why the broadcaster refused a subscribe or a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the server is shutting down")]
    Closed,
    #[error(transparent)]
    TopicLimit(#[from] TopicLimit),
}

/// A subscribe whose topics the broadcaster has accepted, waiting for its socket.
#[derive(Debug)]
pub struct Subscription {
    /// Its topics, without repeats.
    topics: Box<[TopicId]>,
    /// The id it resumes after, if any.
    last_event_id: Option<Box<str>>,
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The event's id, as sent to subscribers.
    pub id: String,
    /// The distinct subscribers it was queued for.
    pub subscribers: u64,
}

/// A handle to the broadcaster; clones share it.
#[derive(Clone)]
pub struct Broadcaster {
    inner: Arc<Inner>,
}

struct Inner {
    /// What orders publications; held only to intern, number and send.
    hub: Mutex<Hub>,
    /// One per shard thread.
    shards: Box<[ShardHandle]>,
    /// The shard the next subscriber goes to, modulo the shard count.
    next_shard: AtomicUsize,
    /// The server's counters.
    stats: Arc<Stats>,
}

struct Hub {
    /// Topic names to ids, shared by all shards.
    registry: Registry,
    /// The `Seq` of the last publication.
    seq: Seq,
    /// The last id assigned, in microseconds since the Unix epoch.
    last_assigned: u64,
}

struct ShardHandle {
    /// The shard's command queue.
    commands: mpsc::Sender<Command>,
    /// Wakes the shard's poll when a command is queued.
    waker: mio::Waker,
}

impl Broadcaster {
    /// Starts the shard threads; they run until [`Broadcaster::close`].
    pub fn start(
        settings: &Settings,
        stats: Arc<Stats>,
    ) -> io::Result<(Self, Vec<JoinHandle<()>>)> {
        let mut shards = Vec::with_capacity(settings.shards.max(1));
        let mut threads = Vec::with_capacity(settings.shards.max(1));
        for index in 0..settings.shards.max(1) {
            let poll = mio::Poll::new()?;
            let waker = mio::Waker::new(poll.registry(), WAKER)?;
            let (commands, receiver) = mpsc::channel();
            let shard = Shard::new(
                poll,
                receiver,
                settings.history,
                settings.keep_alive,
                stats.clone(),
            );
            let thread = std::thread::Builder::new()
                .name(format!("ssecast-shard-{index}"))
                .spawn(move || shard.run())?;
            shards.push(ShardHandle { commands, waker });
            threads.push(thread);
        }
        let hub = Hub {
            registry: Registry::new(settings.max_topics),
            seq: 0,
            last_assigned: 0,
        };
        let inner = Inner {
            hub: Mutex::new(hub),
            shards: shards.into_boxed_slice(),
            next_shard: AtomicUsize::new(0),
            stats,
        };
        Ok((
            Self {
                inner: Arc::new(inner),
            },
            threads,
        ))
    }

    /// Accepts a subscribe's topics (new ones count against the topic limit) before its
    /// response head is written.
    pub fn prepare(&self, request: Subscribe) -> Result<Subscription, Refused> {
        Ok(Subscription {
            topics: self.hub().intern(&request.topics, &self.inner.stats)?,
            last_event_id: request.last_event_id.map(String::into_boxed_str),
        })
    }

    /// Hands a socket whose response head is written to a shard, which owns it from now on.
    pub fn subscribe(
        &self,
        socket: std::net::TcpStream,
        subscription: Subscription,
    ) -> Result<(), Refused> {
        let new = NewSubscriber {
            socket,
            topics: subscription.topics,
            last_event_id: subscription.last_event_id,
        };
        let index = self.inner.next_shard.fetch_add(1, Relaxed) % self.inner.shards.len();
        self.inner.shards[index].send(Command::Subscribe(new))?;
        self.inner.stats.subscribes_total.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Publishes a validated event to every subscriber of its topics.
    pub async fn publish(&self, event: Event) -> Result<Published, Refused> {
        let (id, replies) = {
            let mut hub = self.hub();
            let topics = hub.intern(&event.topics, &self.inner.stats)?;
            let id = match event.id.clone() {
                Some(id) => id,
                None => hub.assign_id().to_string(),
            };
            let frame = event::encode(&id, &event);
            hub.seq += 1;
            let publication = Arc::new(Publication {
                seq: hub.seq,
                topics,
                frame,
            });
            // Sent while the hub is held, so every shard sees publications in `Seq` order.
            let mut replies = Vec::with_capacity(self.inner.shards.len());
            for shard in self.inner.shards.iter() {
                let (reply, answer) = tokio::sync::oneshot::channel();
                shard.send(Command::Publish(publication.clone(), reply))?;
                replies.push(answer);
            }
            (id, replies)
        };
        self.inner.stats.events_published.fetch_add(1, Relaxed);
        let mut subscribers = 0;
        for answer in replies {
            subscribers += answer.await.map_err(|_| Refused::Closed)?;
        }
        Ok(Published { id, subscribers })
    }

    /// Asks every shard to end its streams and stop.
    pub fn close(&self) {
        for shard in self.inner.shards.iter() {
            let _ = shard.send(Command::Shutdown);
        }
    }

    fn hub(&self) -> std::sync::MutexGuard<'_, Hub> {
        // The hub's state stays consistent even if a holder panicked: recover it.
        self.inner
            .hub
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Hub {
    fn intern(&mut self, names: &[String], stats: &Stats) -> Result<Box<[TopicId]>, TopicLimit> {
        let topics = self.registry.intern_all(names)?;
        stats.topics.store(self.registry.len() as u64, Relaxed);
        Ok(topics)
    }

    /// A time-based id: microseconds since the Unix epoch, made strictly increasing, so ids
    /// keep increasing across restarts as long as the clock does.
    fn assign_id(&mut self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_micros() as u64);
        self.last_assigned = now.max(self.last_assigned + 1);
        self.last_assigned
    }
}

impl ShardHandle {
    fn send(&self, command: Command) -> Result<(), Refused> {
        self.commands.send(command).map_err(|_| Refused::Closed)?;
        // A failed wake means the shard's poll is gone, which the next send will tell.
        let _ = self.waker.wake();
        Ok(())
    }
}
