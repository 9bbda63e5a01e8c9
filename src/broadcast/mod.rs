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
    /// Silence after which a subscriber is sent a keep-alive comment.
    pub keep_alive: Duration,
}

/// The broadcaster has shut down.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the server is shutting down")]
pub struct Closed;

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
            registry: Registry::default(),
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

    /// Hands a socket whose response head is written to a shard, which owns it from now on.
    pub fn subscribe(&self, socket: std::net::TcpStream, request: Subscribe) -> Result<(), Closed> {
        let topics = self.hub().intern(&request.topics);
        let new = NewSubscriber {
            socket,
            topics,
            last_event_id: request.last_event_id.map(String::into_boxed_str),
        };
        let index = self.inner.next_shard.fetch_add(1, Relaxed) % self.inner.shards.len();
        self.inner.shards[index].send(Command::Subscribe(new))?;
        self.inner.stats.subscribes_total.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Publishes a validated event to every subscriber of its topics.
    pub async fn publish(&self, event: Event) -> Result<Published, Closed> {
        let (id, replies) = {
            let mut hub = self.hub();
            let topics = hub.intern(&event.topics);
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
            subscribers += answer.await.map_err(|_| Closed)?;
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
    fn intern(&mut self, names: &[String]) -> Box<[TopicId]> {
        names
            .iter()
            .map(|name| self.registry.intern(name))
            .collect()
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
    fn send(&self, command: Command) -> Result<(), Closed> {
        self.commands.send(command).map_err(|_| Closed)?;
        // A failed wake means the shard's poll is gone, which the next send will tell.
        let _ = self.waker.wake();
        Ok(())
    }
}
