//! The broadcaster: owns every subscriber socket after its response head, and fans events out.
//!
//! [`Broadcaster`] is the handle the rest of the server uses. Its hub interns topic names and
//! frees them (`topic`), gives each publication its place in one total order (its `Seq`) and
//! an id when the publisher gave none, encodes it once, keeps history within its byte budget
//! and indexes its ids (`ledger`), and hands it to every shard; a subscribe goes to one shard,
//! chosen in turn. Each shard (`shard`) is a thread with a poll, a table, topics and a wheel of
//! its own, so shards share nothing but the shared frames, the hub (taken when subscribers
//! leave) and the counters. With `--subscriptions` the hub also holds every subscriber's
//! subscriptions and announces each as it starts and ends (`subscriptions`).
//!
//! Knows no HTTP: it gets sockets whose response head is written, and validated events.

mod access;
mod bell;
mod deliver;
mod history;
mod ledger;
mod membership;
mod patterns;
mod resume;
mod shard;
mod subscriber;
pub mod subscriptions;
mod table;
mod topic;
mod wheel;

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use foldhash::HashSet;
use tokio::sync::watch;
use tracing::{debug, error};

use self::bell::Bell;
use self::history::{Audience, Publication, Seq};
use self::ledger::Ledger;
use self::resume::Resume;
use self::shard::{Command, NewSubscriber, Shard, WAKER};
use self::subscriptions::{Active, Key, Snapshot, Subscriptions};
use self::topic::{Freed, Registry, TopicId};
use crate::address::{AddressKey, Addresses, ClientAddress};
use crate::auth::Grants;
use crate::selector::{Selector, Selectors};
use crate::sse::event::{self, Event};
use crate::sse::subscribe::Subscribe;
use crate::sse::topic::Topics;
use crate::stats::Stats;

pub use self::topic::TopicRefused;

/// How the broadcaster is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Shard threads, each owning a share of the subscribers.
    pub shards: usize,
    /// Frames of history kept per topic.
    pub history: usize,
    /// Bytes of history kept for all topics together.
    pub history_bytes: usize,
    /// The most topics held.
    pub max_topics: usize,
    /// The most topics one address's subscribes may have created and still held.
    pub max_topics_per_address: usize,
    /// The most pairs of a pattern and a topic it matches held.
    pub max_pattern_pairs: usize,
    /// How long a topic without subscribers is kept after its last publish or subscriber.
    pub topic_idle: Duration,
    /// The most subscribers held at once.
    pub max_subscribers: usize,
    /// Silence after which a subscriber is sent a keep-alive comment.
    pub keep_alive: Duration,
    /// On shutdown each stream is told to reconnect after 1 s plus a random part of this.
    pub reconnect_spread: Duration,
    /// Whether subscriptions are tracked and announced (Mercure's active subscriptions).
    pub subscriptions: bool,
}

/// Why the broadcaster refused a subscribe or a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the server is shutting down")]
    Closed,
    #[error(transparent)]
    Topics(#[from] TopicRefused),
    #[error("the server holds its limit of {0} subscribers")]
    SubscriberLimit(usize),
    #[error("an event with this id is still in history; ids must be unique")]
    DuplicateId,
}

/// A subscribe whose topics the broadcaster has accepted, waiting for its socket. Until it
/// is handed to [`Broadcaster::subscribe`] it holds its topics and its place under the
/// subscriber limit; dropping it gives them back (and ends its subscriptions, if tracked).
#[derive(Debug)]
pub struct Subscription {
    /// The broadcaster that accepted it.
    broadcaster: Broadcaster,
    /// Its topics, without repeats; taken when it is handed on.
    topics: Option<Box<[TopicId]>>,
    /// Where it resumes, if it does.
    resume: Option<Resume>,
    /// What its token allows, if it has one.
    access: Option<Access>,
    /// The last publication before it was accepted.
    accepted: Seq,
    /// The id of the newest event history held when it was accepted.
    last_event_id: Option<Bytes>,
    /// Its entry among the active subscriptions, when they are tracked; taken when it is
    /// handed on.
    tracked: Option<Key>,
}

impl Subscription {
    /// The id of the newest event history held when it was accepted, or Mercure's
    /// `earliest` when it held none: what the response's `Last-Event-ID` says.
    pub fn last_event_id(&self) -> &[u8] {
        self.last_event_id
            .as_deref()
            .unwrap_or(event::EARLIEST.as_bytes())
    }
}

/// A shard's answer to a publication: how many of its subscribers it was queued for.
type Queued = tokio::sync::oneshot::Receiver<u64>;

/// How many distinct subscribers a publication is for.
enum Count {
    /// Known from the registry's count per topic: when at most one of its topics has
    /// subscribers and it is public, or when none has any.
    Known(u64),
    /// Counted by the shards, which know who subscribes to several of its topics and whose
    /// token lets them see a private event.
    Asked(Vec<Queued>),
}

impl Count {
    async fn total(self) -> Result<u64, Refused> {
        match self {
            Self::Known(subscribers) => Ok(subscribers),
            Self::Asked(replies) => {
                let mut subscribers = 0;
                for answer in replies {
                    subscribers += answer.await.map_err(|_| Refused::Closed)?;
                }
                Ok(subscribers)
            }
        }
    }
}

/// What [`Inner::commit`] needs of an event besides its id and frame.
struct Stamped<'a> {
    /// Its topics.
    topics: &'a Topics,
    /// Whether only subscribers whose token allows one of its topics may see it.
    private: bool,
    /// Whether its count of subscribers is wanted: from the registry when it can tell, else
    /// from the shards.
    ask: bool,
}

/// The expiry of a token that does not expire.
const NEVER: u32 = u32::MAX;

const _: () = assert!(std::mem::size_of::<Access>() <= 16);

/// What a subscriber's token allows: the private events of the topics its selectors match
/// (an interned set, shared by every subscriber whose token has the same selectors), until it
/// expires.
#[derive(Debug)]
pub(crate) struct Access {
    /// Its `mercure.subscribe` selectors.
    selectors: Arc<Selectors>,
    /// When its token expires, in seconds since the Unix epoch ([`NEVER`] if it does not):
    /// 4 bytes, enough until 2106.
    expires: u32,
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

impl std::fmt::Debug for Broadcaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broadcaster").finish_non_exhaustive()
    }
}

struct Inner {
    /// What orders publications and holds topics; held only to intern, number and send.
    hub: Mutex<Hub>,
    /// One per shard thread.
    shards: Box<[ShardHandle]>,
    /// Wakes the shards once for the commands queued together.
    bell: Bell,
    /// The shard the next subscriber goes to, modulo the shard count.
    next_shard: AtomicUsize,
    /// Subscribers accepted (from `prepare`) and not yet gone.
    admitted: AtomicUsize,
    /// The most subscribers held at once.
    max_subscribers: usize,
    /// How long an unused topic without subscribers is kept.
    topic_idle: Duration,
    /// The connections each client address holds; subscribers give theirs back here.
    addresses: Arc<Addresses>,
    /// Why a shard failed, once one has.
    failure: watch::Sender<Option<String>>,
    /// The server's counters.
    stats: Arc<Stats>,
}

struct Hub {
    /// Topic names to ids, and what holds each topic.
    registry: Registry,
    /// The publications history holds, within its byte budget, and their ids.
    ledger: Ledger,
    /// The `Seq` of the last publication.
    seq: Seq,
    /// The last id assigned, in microseconds since the Unix epoch.
    last_assigned: u64,
    /// The selector sets of subscribers' tokens, each held once.
    selectors: HashSet<Arc<Selectors>>,
    /// Frames of history kept per topic (and per pattern).
    history: usize,
    /// With `--subscriptions`: every subscriber's subscriptions.
    subscriptions: Option<Subscriptions>,
}

struct ShardHandle {
    /// The shard's command queue.
    commands: mpsc::Sender<Command>,
    /// Wakes the shard's poll when a command is queued.
    waker: mio::Waker,
    /// Set while commands wait for the bell to wake the shard.
    due: AtomicBool,
}

impl Broadcaster {
    /// Starts the shard threads; they run until [`Broadcaster::close`]. Subscribers give
    /// their connection's count back to `addresses` when they go.
    pub fn start(
        settings: &Settings,
        addresses: Arc<Addresses>,
        stats: Arc<Stats>,
    ) -> io::Result<(Self, Vec<JoinHandle<()>>)> {
        let count = settings.shards.max(1);
        let mut handles = Vec::with_capacity(count);
        let mut parts = Vec::with_capacity(count);
        for _ in 0..count {
            let poll = mio::Poll::new()?;
            let waker = mio::Waker::new(poll.registry(), WAKER)?;
            let (commands, receiver) = mpsc::channel();
            handles.push(ShardHandle {
                commands,
                waker,
                due: AtomicBool::new(false),
            });
            parts.push((poll, receiver));
        }
        let hub = Hub {
            registry: Registry::new(
                settings.max_topics,
                settings.max_topics_per_address,
                settings.max_pattern_pairs,
            ),
            history: settings.history,
            ledger: Ledger::new(settings.history_bytes, count),
            seq: 0,
            last_assigned: 0,
            selectors: HashSet::default(),
            subscriptions: settings.subscriptions.then(Subscriptions::default),
        };
        let inner = Arc::new(Inner {
            hub: Mutex::new(hub),
            shards: handles.into_boxed_slice(),
            bell: Bell::default(),
            next_shard: AtomicUsize::new(0),
            admitted: AtomicUsize::new(0),
            max_subscribers: settings.max_subscribers,
            topic_idle: settings.topic_idle,
            addresses,
            failure: watch::channel(None).0,
            stats,
        });
        let mut threads = Vec::with_capacity(count);
        for (index, (poll, receiver)) in parts.into_iter().enumerate() {
            let shard = Shard::new(index, poll, receiver, settings, inner.clone());
            let failed = inner.clone();
            let thread = std::thread::Builder::new()
                .name(format!("ssecast-shard-{index}"))
                .spawn(move || {
                    let ended = catch_unwind(AssertUnwindSafe(|| shard.run()));
                    let why = match ended {
                        Ok(Ok(())) => return,
                        Ok(Err(e)) => format!("shard {index} failed: {e}"),
                        Err(_) => format!("shard {index} panicked"),
                    };
                    error!(reason = %why, "broadcaster failed");
                    failed.failure.send_replace(Some(why));
                })?;
            threads.push(thread);
        }
        Ok((Self { inner }, threads))
    }

    /// Accepts a subscribe before its response head is written: it takes a place under the
    /// subscriber limit, its new topics count against the topic limits (and against `client`'s
    /// address), its `Last-Event-ID` is looked up in history, and, when subscriptions are
    /// tracked, each of its subscriptions is announced.
    pub fn prepare(
        &self,
        request: Subscribe,
        client: Option<ClientAddress>,
        mut grants: Option<Grants>,
    ) -> Result<Subscription, Refused> {
        let inner = &self.inner;
        if inner.admitted.fetch_add(1, Relaxed) >= inner.max_subscribers {
            inner.admitted.fetch_sub(1, Relaxed);
            return Err(Refused::SubscriberLimit(inner.max_subscribers));
        }
        let mut hub = self.hub();
        let now = Instant::now();
        let active = hub.subscriptions.is_some().then(|| {
            let topics = request.selection.iter().map(|s| s.text().into());
            Active::new(topics, grants.as_mut().and_then(|g| g.payload.take()))
        });
        // Its updates' topics and its own are checked together first, so that a subscribe
        // whose updates would not fit is refused whole.
        let interned = active
            .as_ref()
            .map_or(Ok(()), |active| {
                let mut names = active.update_topics();
                names.extend(request.selection.iter().map(Selector::key));
                hub.registry.room_for(names.iter())
            })
            .and_then(|()| {
                hub.registry
                    .intern_selection(&request.selection, client, now)
            });
        let interned = match interned {
            Ok(interned) => interned,
            Err(refused) => {
                inner.admitted.fetch_sub(1, Relaxed);
                return Err(refused.into());
            }
        };
        hub.registry.attach(&interned.ids);
        for &pattern in &interned.new_patterns {
            self.seed(&mut hub, pattern, now);
        }
        self.inner.count_topics(&hub);
        let resume = request.last_event_id.map(|asked| Resume {
            found: hub.ledger.find(asked.as_bytes()),
            asked: asked.into_boxed_str(),
        });
        let access = grants.map(|grants| Access {
            selectors: hub.intern_selectors(grants.subscribe),
            expires: grants
                .expires
                .map_or(NEVER, |at| u32::try_from(at).unwrap_or(NEVER)),
        });
        let last_event_id = hub
            .ledger
            .newest_first()
            .next()
            .map(|newest| Bytes::copy_from_slice(event::frame_id(&newest.frame)));
        let accepted = hub.seq;
        // Announced after `accepted`, so that the subscriber gets its own updates if it may.
        let tracked = active.map(|active| {
            let active = Arc::new(active);
            inner.announce(&mut hub, &active, true, now);
            let subscriptions = hub.subscriptions.as_mut();
            let subscriptions = subscriptions.expect("made only when subscriptions are tracked");
            subscriptions.insert(active)
        });
        Ok(Subscription {
            broadcaster: self.clone(),
            topics: Some(interned.ids),
            resume,
            access,
            accepted,
            last_event_id,
            tracked,
        })
    }

    /// Gives a pattern first held the history of the topics it matches: the newest
    /// publications the ledger holds for them, up to a topic's count, so that a resume through
    /// the pattern misses nothing history has. Sent with the hub held, before any publication
    /// that names the pattern.
    fn seed(&self, hub: &mut Hub, pattern: TopicId, now: Instant) {
        let Hub {
            registry,
            ledger,
            history,
            ..
        } = hub;
        let mut publications: Vec<Arc<Publication>> = ledger
            .newest_first()
            .filter(|publication| {
                let topics = publication.topics.iter();
                topics
                    .into_iter()
                    .any(|&topic| registry.pattern_matches(pattern, topic))
            })
            .take(*history)
            .cloned()
            .collect();
        // What is not seeded counts as dropped: a resume from before it gets a `gap`.
        let dropped_through = match publications.last() {
            Some(oldest) if publications.len() == *history => oldest.seq - 1,
            _ => ledger.floor(),
        };
        publications.reverse();
        if let Some(newest) = publications.last() {
            registry.published(&[pattern], newest.seq, now);
        }
        let publications: Arc<[Arc<Publication>]> = publications.into();
        for shard in self.inner.shards.iter() {
            let seed = Command::Seed {
                topic: pattern,
                dropped_through,
                publications: publications.clone(),
            };
            let _ = self.inner.send(shard, seed);
        }
    }

    /// Hands a socket whose response head is written to a shard, which owns it from now on;
    /// `address` is its connection's count, which the shard gives back when it drops it.
    pub fn subscribe(
        &self,
        socket: std::net::TcpStream,
        mut subscription: Subscription,
        address: AddressKey,
    ) -> Result<(), Refused> {
        let new = NewSubscriber {
            socket,
            topics: subscription.topics.take().unwrap_or_default(),
            resume: subscription.resume.take(),
            access: subscription.access.take(),
            accepted: subscription.accepted,
            address,
            tracked: subscription.tracked.take(),
        };
        let index = self.inner.next_shard.fetch_add(1, Relaxed) % self.inner.shards.len();
        self.inner
            .send(&self.inner.shards[index], Command::Subscribe(new))?;
        self.inner.stats.subscribes_total.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Publishes a validated event to every subscriber of its topics.
    pub async fn publish(&self, event: Event) -> Result<Published, Refused> {
        let (id, replies) = {
            let mut hub = self.hub();
            if event
                .id()
                .is_some_and(|id| hub.ledger.find(id.as_bytes()).is_some())
            {
                return Err(Refused::DuplicateId);
            }
            let sent = self.commit_event(&mut hub, &event, Instant::now())?;
            self.inner.count_topics(&hub);
            sent
        };
        self.inner.stats.events_published.fetch_add(1, Relaxed);
        let subscribers = replies.total().await?;
        Ok(Published { id, subscribers })
    }

    /// Publishes validated events in their order, all or none: an id history holds (or that
    /// two of them share), or new topics past the limit, refuse the whole batch.
    pub async fn publish_batch(&self, events: &[Event]) -> Result<Vec<Published>, Refused> {
        let sent = {
            let mut hub = self.hub();
            let mut ids = HashSet::with_capacity_and_hasher(events.len(), Default::default());
            for id in events.iter().filter_map(Event::id) {
                if hub.ledger.find(id.as_bytes()).is_some() || !ids.insert(id) {
                    return Err(Refused::DuplicateId);
                }
            }
            hub.registry
                .room_for(events.iter().flat_map(|event| event.topics().iter()))?;
            let now = Instant::now();
            let sent: Result<Vec<_>, Refused> = events
                .iter()
                .map(|event| self.commit_event(&mut hub, event, now))
                .collect();
            self.inner.count_topics(&hub);
            sent?
        };
        self.inner
            .stats
            .events_published
            .fetch_add(events.len() as u64, Relaxed);
        let mut published = Vec::with_capacity(sent.len());
        for (id, count) in sent {
            let subscribers = count.total().await?;
            published.push(Published { id, subscribers });
        }
        Ok(published)
    }

    /// Publishes an event another node published, in the order Redis gave it: `frame` is
    /// its frame under `id`. Waits for no shard; what history holds is checked by Redis.
    pub fn publish_received(
        &self,
        topics: &Topics,
        id: String,
        frame: Bytes,
        private: bool,
    ) -> Result<(), Refused> {
        let mut hub = self.hub();
        let stamped = Stamped {
            topics,
            private,
            ask: false,
        };
        self.inner
            .commit(&mut hub, stamped, |_| (id, frame), Instant::now())?;
        self.inner.count_topics(&hub);
        drop(hub);
        self.inner.stats.events_published.fetch_add(1, Relaxed);
        Ok(())
    }

    /// The subscribers of each of `names` on this node, summed (one subscribed to several
    /// counts once for each).
    pub fn subscribers_of(&self, names: &Topics) -> u64 {
        let hub = self.hub();
        let ids = names
            .iter()
            .filter_map(|name| hub.registry.id(name))
            .collect();
        let ids = hub.registry.with_patterns(ids);
        hub.registry
            .subscribers(ids.iter().copied())
            .map(u64::from)
            .sum()
    }

    /// Every subscriber's subscriptions and the newest event id history holds, at one instant;
    /// `None` when subscriptions are not tracked.
    pub fn subscriptions(&self) -> Option<Snapshot> {
        let hub = self.hub();
        let active = hub.subscriptions.as_ref()?.all();
        let newest = hub.ledger.newest_first().next();
        let last_event_id = newest.map_or(event::EARLIEST.into(), |newest| {
            String::from_utf8_lossy(event::frame_id(&newest.frame)).into_owned()
        });
        Some(Snapshot {
            last_event_id,
            active,
        })
    }

    /// After events may have been lost on the way to this node: forgets every id history holds
    /// and drops every subscriber, so that each reconnects, and its resume gets the `gap`
    /// event instead of a silent hole.
    pub fn reset_after_loss(&self) {
        let mut hub = self.hub();
        hub.ledger.retain(|_| false);
        // Sent with the hub held, so that every publication before it is dropped.
        for shard in self.inner.shards.iter() {
            let _ = self.inner.send(shard, Command::Reset { floor: hub.seq });
        }
    }

    /// Numbers, encodes and holds a publisher's event, its id assigned if it has none.
    fn commit_event(
        &self,
        hub: &mut Hub,
        event: &Event,
        now: Instant,
    ) -> Result<(String, Count), Refused> {
        let stamped = Stamped {
            topics: event.topics(),
            private: event.is_private(),
            ask: true,
        };
        let frame = |hub: &mut Hub| {
            let id = event.id().map_or_else(|| hub.assign_id(), str::to_owned);
            let frame = event::encode(&id, event);
            (id, frame)
        };
        self.inner.commit(hub, stamped, frame, now)
    }

    /// Frees the topics without subscribers unused for the idle time.
    pub fn sweep(&self) {
        let mut hub = self.hub();
        let mut freed = Vec::new();
        hub.registry
            .sweep(Instant::now(), self.inner.topic_idle, &mut freed);
        // Selector sets no subscriber holds any more.
        hub.selectors.retain(|shared| Arc::strong_count(shared) > 1);
        if !freed.is_empty() {
            // Their history goes with them: what no held topic names leaves the ledger.
            let Hub {
                registry, ledger, ..
            } = &mut *hub;
            ledger.retain(|publication| publication.topics.iter().any(|&t| registry.is_held(t)));
        }
        let _ = self.inner.forget(freed);
        self.inner.count_topics(&hub);
    }

    /// How often [`Broadcaster::sweep`] should run.
    pub fn sweep_every(&self) -> Duration {
        (self.inner.topic_idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Why a shard failed, if one has.
    pub fn failure(&self) -> Option<String> {
        self.inner.failure.borrow().clone()
    }

    /// Resolves with the reason when a shard fails.
    pub async fn failed(&self) -> String {
        let mut failure = self.inner.failure.subscribe();
        loop {
            if let Some(why) = failure.borrow_and_update().clone() {
                return why;
            }
            if failure.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Wakes the shards once for the commands queued in each turn of the runtime this runs
    /// on, instead of once per command (see `bell`); runs until dropped. The server runs it
    /// on its front end; without it, every command wakes its shard at once.
    pub async fn ring_shards(&self) {
        let inner = &self.inner;
        let ringing = inner.bell.start(&inner.shards);
        loop {
            inner.bell.wait().await;
            ringing.ring();
        }
    }

    /// Asks every shard to end its streams and stop.
    pub fn close(&self) {
        for shard in self.inner.shards.iter() {
            let _ = shard.send_now(Command::Shutdown);
        }
    }

    /// Makes a shard thread panic, to test what a failed shard does to the server.
    #[doc(hidden)]
    pub fn fail_a_shard(&self) {
        let _ = self.inner.shards[0].send_now(Command::Fail);
    }

    fn hub(&self) -> MutexGuard<'_, Hub> {
        self.inner.hub()
    }
}

impl Inner {
    fn hub(&self) -> MutexGuard<'_, Hub> {
        // The hub's state stays consistent even if a holder panicked: recover it.
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Numbers and holds one event and sends it to every shard, with the hub held; `frame`
    /// gives its id and frame. Returns its id and its count of subscribers, or the shards'
    /// answers to come.
    fn commit(
        &self,
        hub: &mut Hub,
        stamped: Stamped<'_>,
        frame: impl FnOnce(&mut Hub) -> (String, Bytes),
        now: Instant,
    ) -> Result<(String, Count), Refused> {
        let topics = hub.registry.intern_all(stamped.topics, None, now)?;
        let topics = hub.registry.with_patterns(topics);
        let (id, frame) = frame(hub);
        hub.seq += 1;
        let publication = Arc::new(Publication {
            seq: hub.seq,
            topics,
            frame,
            published_at: now,
            audience: match stamped.private {
                false => Audience::Everyone,
                true => {
                    Audience::Allowed(stamped.topics.iter().map(|t| t.as_str().into()).collect())
                }
            },
        });
        let mut freed = Vec::new();
        let Hub {
            registry, ledger, ..
        } = hub;
        registry.published(&publication.topics, publication.seq, now);
        ledger.push(publication.clone(), |evicted| {
            registry.evicted(&evicted.topics, evicted.seq, &mut freed)
        });
        let known = match stamped.ask {
            // Nobody waits for the count.
            false => Some(0),
            true => {
                let topics = publication.topics.iter().copied();
                let mut with_subscribers = registry.subscribers(topics).filter(|&n| n > 0);
                match (with_subscribers.next(), with_subscribers.next()) {
                    (None, _) => Some(0),
                    (Some(n), None) if !stamped.private => Some(u64::from(n)),
                    _ => None,
                }
            }
        };
        // Sent while the hub is held, so every shard sees publications in `Seq` order, and a
        // freed id is forgotten before it can be reused.
        let mut replies = Vec::new();
        for shard in self.shards.iter() {
            let reply = known.is_none().then(|| {
                let (reply, answer) = tokio::sync::oneshot::channel();
                replies.push(answer);
                reply
            });
            let publish = Command::Publish {
                publication: publication.clone(),
                floor: ledger.floor(),
                reply,
            };
            self.send(shard, publish)?;
        }
        self.forget(freed)?;
        Ok((id, known.map_or(Count::Asked(replies), Count::Known)))
    }

    /// Gives back what `subscribers` subscribers held: their places under the limit and,
    /// for each, each of its topics (listed together in `topics`); announces the end of the
    /// subscriptions of those `tracked`.
    fn release(&self, subscribers: usize, topics: &[TopicId], tracked: &[Key]) {
        self.admitted.fetch_sub(subscribers, Relaxed);
        let mut hub = self.hub();
        let now = Instant::now();
        for &key in tracked {
            let active = hub.subscriptions.as_mut().and_then(|s| s.remove(key));
            if let Some(active) = active {
                self.announce(&mut hub, &active, false, now);
            }
        }
        let floor = hub.ledger.floor();
        let mut freed = Vec::new();
        hub.registry.detach(topics, floor, now, &mut freed);
        let _ = self.forget(freed);
        self.count_topics(&hub);
    }

    /// Publishes the update of each of `subscriber`'s subscriptions (Mercure's subscription
    /// events), `active` or not: private, each to its own topic. Called with the hub held; an
    /// update that cannot be published (its topic past the limit) is left out.
    fn announce(&self, hub: &mut Hub, subscriber: &Active, active: bool, now: Instant) {
        for topic in subscriber.topics() {
            let document = subscriber.document(topic, active);
            let topics = Topics::hub_made(document.id.clone());
            let body = subscriptions::update_body(&document);
            let stamped = Stamped {
                topics: &topics,
                private: true,
                ask: false,
            };
            let frame = |hub: &mut Hub| {
                let id = hub.assign_id();
                let frame = event::with_id(&id, &body);
                (id, frame)
            };
            if let Err(e) = self.commit(hub, stamped, frame, now) {
                debug!(error = %e, active, "subscription update left out");
            }
        }
        self.count_topics(hub);
    }

    /// Queues `command` for `shard`, which the bell wakes.
    fn send(&self, shard: &ShardHandle, command: Command) -> Result<(), Refused> {
        shard.commands.send(command).map_err(|_| Refused::Closed)?;
        self.bell.queued(shard);
        Ok(())
    }

    /// Tells every shard to forget topics the registry freed; called with the hub held.
    fn forget(&self, freed: Vec<Freed>) -> Result<(), Refused> {
        if freed.is_empty() {
            return Ok(());
        }
        let freed: Arc<[Freed]> = freed.into();
        for shard in self.shards.iter() {
            self.send(shard, Command::Forget(freed.clone()))?;
        }
        Ok(())
    }

    fn count_topics(&self, hub: &Hub) {
        self.stats.topics.store(hub.registry.len() as u64, Relaxed);
        self.stats
            .history_bytes
            .store(hub.ledger.bytes() as u64, Relaxed);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(topics) = self.topics.take() {
            let tracked = self.tracked.take();
            self.broadcaster
                .inner
                .release(1, &topics, tracked.as_slice());
        }
    }
}

impl Hub {
    /// The shared copy of `selectors`.
    fn intern_selectors(&mut self, selectors: Selectors) -> Arc<Selectors> {
        if let Some(shared) = self.selectors.get(&selectors) {
            return shared.clone();
        }
        let shared = Arc::new(selectors);
        self.selectors.insert(shared.clone());
        shared
    }

    /// A time-based id: microseconds since the Unix epoch, made strictly increasing (and
    /// unlike any id history holds), so ids keep increasing across restarts as long as the
    /// clock does.
    fn assign_id(&mut self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_micros() as u64);
        self.last_assigned = now.max(self.last_assigned + 1);
        loop {
            let id = self.last_assigned.to_string();
            if self.ledger.find(id.as_bytes()).is_none() {
                return id;
            }
            self.last_assigned += 1;
        }
    }
}

impl ShardHandle {
    /// Queues `command` and wakes the shard at once.
    fn send_now(&self, command: Command) -> Result<(), Refused> {
        self.commands.send(command).map_err(|_| Refused::Closed)?;
        self.wake();
        Ok(())
    }

    fn wake(&self) {
        // A failed wake means the shard's poll is gone, which the next send will tell.
        let _ = self.waker.wake();
    }
}
