//! A shard: one thread that owns a set of subscribers and delivers to them.
//!
//! The shard waits in a `mio::Poll` of its own, where each subscriber socket is registered
//! with its table slot as token (the kernel keeps the token: no per-socket allocation), and a
//! `mio::Waker` tells it that commands are waiting. Each turn it handles socket readiness
//! (a peer that hung up, a full socket that drained), takes the queued commands (subscribes,
//! publications and topics to forget, in the order the broadcaster sent them), delivers to
//! every subscriber of the topics that got frames (unless it is resting after a long pass),
//! writes keep-alives to those the wheel reports idle, and drops the subscribers marked gone
//! during the turn, giving back what they held (topics, places under the limits) in one go.
//!
//! A subscriber whose socket stays full for [`BLOCKED_INTERVALS`] keep-alive intervals is
//! dropped even on a topic that never publishes: its send buffer is capped, and what it lacks
//! waits in history, not in the kernel.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::mem::take;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::event::Event;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::oneshot;
use tracing::debug;

use super::access::Authorized;
use super::deliver::{self, flush, write_whole, Delivered, Flushed, KeptAlive};
use super::history::{Publication, Seq};
use super::membership;
use super::resume::{resume_point, Resume};
use super::subscriber::{PackedProgress, Subscriber};
use super::subscriptions::{Key, Keys};
use super::table::Table;
use super::topic::{Freed, Topic, TopicId};
use super::wheel::{Wheel, WheelLink};
use super::{Access, Inner, Settings};
use crate::address::AddressKey;
use crate::stats::Stats;

/// The poll token of the shard's waker; slots are below it.
pub(super) const WAKER: Token = Token(usize::MAX);
/// Writes a delivery pass makes between two looks at the command queue (about half a
/// millisecond of writes).
const WRITES_BETWEEN_COMMANDS: usize = 64;
/// After a delivery pass that took time `t`, the shard waits `t / PASS_PER_REST` before the
/// next one (taking commands and answering publishers meanwhile). A write costs several
/// microseconds whatever it carries, so when events come faster than a pass, resting lets each
/// subscriber's next write carry more frames: the shard spends at most two thirds of its time
/// writing. Measured with 10,000 subscribers and 100 events a second (BENCHMARKS.md): resting
/// half a pass keeps p99 latency near 130 ms at 0.9 us of server CPU per delivery; resting a
/// whole pass saves a tenth of the CPU and adds about 30 ms. A short pass makes a short rest,
/// so an event that comes alone is never held back.
const PASS_PER_REST: u32 = 2;
/// Publications a shard takes from one delivery pass's start to the next: enough that a pass
/// is never short of work, few enough that history rings (trimmed after each pass) and the
/// time to the next pass stay bounded.
const PUBLICATIONS_PER_PASS: usize = 1024;
/// The most bytes a subscriber may send after its request before it is dropped.
const MAX_INPUT_BYTES: usize = 64 * 1024;
/// The least reconnection delay sent to subscribers on shutdown, in milliseconds.
const RECONNECT_AFTER_MS: u64 = 1000;
/// Keep-alive intervals a subscriber's socket may stay full before it is dropped.
pub(super) const BLOCKED_INTERVALS: u64 = 3;

/// What the broadcaster asks of a shard.
pub(super) enum Command {
    /// Take over a subscriber whose response head is written.
    Subscribe(NewSubscriber),
    /// Drop history up to `floor`, add the publication to its topics' histories and deliver
    /// it; answer how many subscribers of this shard it was queued for, if asked.
    Publish {
        publication: Arc<Publication>,
        floor: Seq,
        reply: Option<oneshot::Sender<u64>>,
    },
    /// Forget these topics, which the registry freed (their ids will be reused).
    Forget(Arc<[Freed]>),
    /// Start the pattern `topic`, first held, with these publications of the topics it
    /// matches as its history, everything up to `dropped_through` counting as dropped.
    Seed {
        topic: TopicId,
        dropped_through: Seq,
        publications: Arc<[Arc<Publication>]>,
    },
    /// Drop history up to `floor` and every subscriber: they reconnect, and their resumes get
    /// the `gap` event (events may have been lost on the way here).
    Reset { floor: Seq },
    /// End every stream and stop.
    Shutdown,
    /// Panic, as a bug would (see `Broadcaster::fail_a_shard`).
    Fail,
}

/// A subscriber on its way to a shard.
pub(super) struct NewSubscriber {
    /// The socket, its response head written.
    pub socket: TcpStream,
    /// Its topics, without repeats.
    pub topics: Box<[TopicId]>,
    /// Where it resumes, if it does.
    pub resume: Option<Resume>,
    /// The last publication before its subscribe was accepted: it gets every one after.
    pub accepted: Seq,
    /// What its token allows, if it has one.
    pub access: Option<Access>,
    /// Its connection's count against its client address.
    pub address: AddressKey,
    /// Its entry among the active subscriptions, when they are tracked.
    pub tracked: Option<Key>,
}

/// One shard's subscribers, topics and wheel.
pub(super) struct Shard {
    /// Readiness of the subscriber sockets and of the waker.
    poll: Poll,
    /// Commands from the broadcaster.
    commands: Receiver<Command>,
    /// The subscribers, by slot.
    table: Table,
    /// This shard's view of each topic, by id.
    topics: Vec<Topic>,
    /// Keep-alive deadlines.
    wheel: Wheel,
    /// Frames of history per topic.
    history: usize,
    /// Every publication some history of this shard may hold, oldest first; weak, so that
    /// a publication whose topics were all forgotten is freed at once.
    held: VecDeque<Weak<Publication>>,
    /// The `Seq` of the last publication taken.
    last_seq: Seq,
    /// Topics that got frames since the last delivery pass.
    dirty: Vec<TopicId>,
    /// Publications that may still be taken before the next delivery pass (see
    /// [`PUBLICATIONS_PER_PASS`]).
    budget: usize,
    /// Frame bytes that may still be taken before the next delivery pass: half the history's
    /// byte budget, so that the budget cannot evict a frame before the pass that delivers it.
    budget_bytes: usize,
    /// Half the history's byte budget.
    pass_bytes: usize,
    /// When each publication taken since the current delivery pass started was published.
    awaiting: Vec<Instant>,
    /// How long from a publish to the end of the pass that wrote it, for this shard.
    latency: Histogram,
    /// The spread of the reconnection delays sent on shutdown.
    reconnect_spread: Duration,
    /// When the next delivery pass may start (see [`PASS_PER_REST`]).
    rest_until: Instant,
    /// Set once the broadcaster asked the shard to stop.
    stopping: bool,
    /// Slots to drop at the end of the turn (reused, so a turn allocates nothing).
    gone: Vec<u32>,
    /// Slots to drop at the end of the turn because history moved past them (reused likewise).
    lagged: Vec<u32>,
    /// Slots whose socket stayed full too long, to drop at the end of the turn (reused).
    blocked: Vec<u32>,
    /// Slots whose token has expired, to drop at the end of the turn (reused).
    expired: Vec<u32>,
    /// The subscribers with a token: what each may see, and when each expires.
    authorized: Authorized,
    /// Each subscriber's entry among the active subscriptions, when they are tracked.
    tracked: Keys,
    /// Slots the wheel reports idle (reused likewise).
    due: Vec<u32>,
    /// The topics of the subscribers dropped this turn, one entry per subscription (reused).
    released_topics: Vec<TopicId>,
    /// The address counts of the subscribers dropped this turn (reused).
    released_addresses: Vec<AddressKey>,
    /// The active-subscription entries of the subscribers dropped this turn (reused).
    released_tracked: Vec<Key>,
    /// The broadcaster, to give back what dropped subscribers held.
    broadcaster: Arc<Inner>,
    /// The server's counters.
    stats: Arc<Stats>,
}

impl Shard {
    /// A shard with no subscribers; `poll` must hold the waker the broadcaster wakes it with.
    pub(super) fn new(
        index: usize,
        poll: Poll,
        commands: Receiver<Command>,
        settings: &Settings,
        broadcaster: Arc<Inner>,
    ) -> Self {
        let pass_bytes = (settings.history_bytes / 2).max(1);
        Self {
            poll,
            commands,
            table: Table::default(),
            topics: Vec::new(),
            wheel: Wheel::new(settings.keep_alive, Instant::now()),
            history: settings.history,
            held: VecDeque::new(),
            last_seq: 0,
            dirty: Vec::new(),
            budget: PUBLICATIONS_PER_PASS,
            budget_bytes: pass_bytes,
            pass_bytes,
            awaiting: Vec::new(),
            latency: broadcaster.stats.delivery_latency.shard(index),
            reconnect_spread: settings.reconnect_spread,
            rest_until: Instant::now(),
            stopping: false,
            gone: Vec::new(),
            lagged: Vec::new(),
            blocked: Vec::new(),
            expired: Vec::new(),
            authorized: Authorized::default(),
            tracked: Keys::default(),
            due: Vec::new(),
            released_topics: Vec::new(),
            released_addresses: Vec::new(),
            released_tracked: Vec::new(),
            stats: broadcaster.stats.clone(),
            broadcaster,
        }
    }

    /// Runs until shut down, then ends every stream; an error if its poll failed.
    pub(super) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        while !self.stopping {
            let now = Instant::now();
            let mut timeout = self.wheel.timeout(now);
            if !self.dirty.is_empty() {
                timeout = timeout.min(self.rest_until.saturating_duration_since(now));
            }
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            for event in events.iter() {
                if event.token() != WAKER {
                    self.on_ready(event.token().0 as u32, event);
                }
            }
            self.take_commands();
            if Instant::now() >= self.rest_until {
                self.deliver();
            }
            self.keep_alive();
            self.end_expired_tokens();
            self.reap();
        }
        self.close_all();
        Ok(())
    }

    fn on_ready(&mut self, slot: u32, event: &Event) {
        let Some(subscriber) = self.table.get_mut(slot) else {
            return;
        };
        let alive = !(event.is_error() || event.is_read_closed())
            && (!event.is_readable() || discard_input(&subscriber.socket));
        if !alive {
            self.gone.push(slot);
        } else if event.is_writable() && !subscriber.progress.is_idle() {
            let before = (subscriber.cursor, subscriber.progress);
            self.flush_slot(slot);
            // Only progress counts as a write: a socket that drained a little and is full
            // again is still blocked.
            let tick = self.wheel.tick_at(Instant::now());
            if let Some(subscriber) = self.table.get_mut(slot) {
                if (subscriber.cursor, subscriber.progress) != before {
                    subscriber.wheel.touch(tick);
                }
            }
        }
    }

    /// Takes queued commands until the queue is empty, the budget of publications is spent
    /// (`budget` or `budget_bytes` is then 0), or a shutdown (`stopping` is then set).
    fn take_commands(&mut self) {
        while self.budget > 0 && self.budget_bytes > 0 && !self.stopping {
            match self.commands.try_recv() {
                Ok(Command::Subscribe(new)) => self.subscribe(new),
                Ok(Command::Publish {
                    publication,
                    floor,
                    reply,
                }) => {
                    self.drop_history_through(floor);
                    self.awaiting.push(publication.published_at);
                    self.publish(&publication);
                    if let Some(reply) = reply {
                        let authorized = &self.authorized;
                        let recipients = membership::recipients(
                            &self.topics,
                            &mut self.table,
                            &publication.topics,
                            |slot| publication.audience.admits(authorized.selectors(slot)),
                        );
                        let _ = reply.send(recipients);
                    }
                    self.budget -= 1;
                    self.budget_bytes = self.budget_bytes.saturating_sub(publication.frame.len());
                }
                Ok(Command::Forget(topics)) => self.forget(&topics),
                Ok(Command::Seed {
                    topic,
                    dropped_through,
                    publications,
                }) => {
                    let history = self.history;
                    *self.topic_mut(topic) = Topic::seeded(history, dropped_through, &publications);
                }
                Ok(Command::Reset { floor }) => {
                    self.drop_history_through(floor);
                    let slots = self.table.slots();
                    self.gone.extend(slots);
                }
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => self.stopping = true,
                Ok(Command::Fail) => panic!("failing as asked"),
                Err(TryRecvError::Empty) => return,
            }
        }
    }

    /// Drops every history entry up to `floor`, which left the server's history budget.
    fn drop_history_through(&mut self, floor: Seq) {
        while let Some(oldest) = self.held.front() {
            // One that is gone was in no history any more.
            if let Some(oldest) = oldest.upgrade() {
                if oldest.seq > floor {
                    break;
                }
                for &topic in oldest.topics.iter() {
                    if let Some(topic) = self.topics.get_mut(topic as usize) {
                        topic.history.drop_through(floor);
                    }
                }
            }
            self.held.pop_front();
        }
        if self.held.len() < self.held.capacity() / 4 {
            self.held.shrink_to(self.held.len() * 2);
        }
    }

    /// Resets topics the registry freed: no subscriber is left in them.
    fn forget(&mut self, topics: &[Freed]) {
        for &freed in topics {
            if let Some(entry) = self.topics.get_mut(freed.id as usize) {
                debug_assert!(entry.subscribers.is_empty());
                *entry = Topic::forgotten(self.history, freed);
            }
        }
    }

    fn topic_mut(&mut self, topic: TopicId) -> &mut Topic {
        let index = topic as usize;
        if index >= self.topics.len() {
            let history = self.history;
            self.topics.resize_with(index + 1, || Topic::new(history));
        }
        &mut self.topics[index]
    }

    /// Adds the frame to each topic's history, for the next delivery pass.
    fn publish(&mut self, publication: &Arc<Publication>) {
        self.last_seq = publication.seq;
        self.held.push_back(Arc::downgrade(publication));
        for &topic in publication.topics.iter() {
            let entry = self.topic_mut(topic);
            entry.history.push(publication.clone());
            if !entry.dirty {
                entry.dirty = true;
                self.dirty.push(topic);
            }
        }
    }

    fn subscribe(&mut self, new: NewSubscriber) {
        for &topic in new.topics.iter() {
            self.topic_mut(topic);
        }
        let (cursor, gap) =
            resume_point(&self.topics, &new.topics, new.resume.as_ref(), new.accepted);
        let socket = &new.socket;
        let mut accepted = socket.set_nonblocking(true).is_ok();
        if let Some(gap) = gap.filter(|_| accepted) {
            // The socket has only its response head in it, so a gap frame (bounded by the
            // head size limit) fits; if it somehow does not, the client just reconnects.
            accepted = write_whole(socket, &gap);
        }
        if !accepted {
            return self.release_unregistered(new);
        }
        let slot = self.table.next_slot();
        let interest = Interest::READABLE | Interest::WRITABLE;
        let fd = socket.as_raw_fd();
        let token = Token(slot as usize);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), token, interest)
        {
            debug!(error = %e, "could not register subscriber");
            return self.release_unregistered(new);
        }
        let subscriber = Subscriber {
            socket: new.socket,
            progress: PackedProgress::IDLE,
            cursor,
            topics: membership::join(&mut self.topics, slot, &new.topics),
            wheel: WheelLink::default(),
            address: new.address,
        };
        let inserted = self.table.insert(subscriber);
        debug_assert_eq!(inserted, slot);
        if let Some(access) = new.access {
            self.authorized.insert(slot, access);
        }
        if let Some(key) = new.tracked {
            self.tracked.insert(slot, key);
        }
        let tick = self.wheel.tick_at(Instant::now());
        self.wheel.insert(&mut self.table, slot, tick);
        self.stats.subscribers.fetch_add(1, Relaxed);
        if cursor < self.last_seq {
            self.flush_slot(slot);
        }
    }

    /// Gives back what a subscriber that never made it into the table held.
    fn release_unregistered(&mut self, new: NewSubscriber) {
        self.released_topics.extend_from_slice(&new.topics);
        self.released_addresses.push(new.address);
        self.released_tracked.extend(new.tracked);
        self.give_back(1);
    }

    fn flush_slot(&mut self, slot: u32) {
        let Some(subscriber) = self.table.get_mut(slot) else {
            return;
        };
        let mut delivered = Delivered::default();
        let access = self.authorized.selectors(slot);
        let flushed = flush(subscriber, &self.topics, access, &mut delivered);
        delivered.count(&self.stats);
        self.drop_if_done(slot, flushed);
    }

    /// Marks a subscriber to be dropped at the end of the turn if a flush says it must go.
    fn drop_if_done(&mut self, slot: u32, flushed: Flushed) {
        match flushed {
            Flushed::CaughtUp | Flushed::Blocked => {}
            Flushed::Lagged => self.lagged.push(slot),
            Flushed::Gone => self.gone.push(slot),
        }
    }

    /// Sends every idle subscriber of a dirty topic what it lacks, and drops those whose
    /// socket is full with a frame history no longer holds.
    ///
    /// A pass over many subscribers takes a while (a write is several microseconds), so it
    /// looks at the command queue every [`WRITES_BETWEEN_COMMANDS`] writes: a publisher waiting
    /// for its answer is not held up for a whole pass, and the frames it adds reach the
    /// subscribers the pass has not visited yet in the same write. Subscribers are only
    /// dropped after the pass, so the lists it walks keep their order.
    fn deliver(&mut self) {
        self.budget = PUBLICATIONS_PER_PASS;
        self.budget_bytes = self.pass_bytes;
        if self.dirty.is_empty() {
            return;
        }
        // The publications this pass writes to every subscriber ready for them; those taken
        // during the pass may miss subscribers it has passed, and count at the next one.
        let delivering = self.awaiting.len();
        let started = Instant::now();
        let dirty = take(&mut self.dirty);
        let tick = self.wheel.tick_at(started);
        let mut delivered = Delivered::default();
        let mut writes = 0;
        for &topic in &dirty {
            self.topics[topic as usize].dirty = false;
            let mut index = 0;
            while let Some(&slot) = self.topics[topic as usize].subscribers.get(index) {
                index += 1;
                let history = &self.topics[topic as usize].history;
                let Some(subscriber) = self.table.get_mut(slot) else {
                    continue;
                };
                if !subscriber.progress.is_idle() {
                    // A full socket is flushed when it drains, unless what it waits for has
                    // left history: then it never will be.
                    if history.dropped_through() > subscriber.cursor {
                        self.lagged.push(slot);
                    }
                    continue;
                }
                if subscriber.cursor >= history.last_seq() {
                    continue;
                }
                subscriber.wheel.touch(tick);
                let access = self.authorized.selectors(slot);
                let flushed = flush(subscriber, &self.topics, access, &mut delivered);
                self.drop_if_done(slot, flushed);
                writes += 1;
                if writes % WRITES_BETWEEN_COMMANDS == 0 {
                    self.take_commands();
                    if self.stopping {
                        return;
                    }
                }
            }
        }
        delivered.count(&self.stats);
        let now = Instant::now();
        for published in self.awaiting.drain(..delivering) {
            self.latency
                .observe(now.saturating_duration_since(published).as_secs_f64());
        }
        // Rings keep their count from here on; one that got frames during the pass keeps them
        // until the next pass has delivered them.
        for &topic in &dirty {
            let topic = &mut self.topics[topic as usize];
            if !topic.dirty {
                topic.history.trim();
            }
        }
        self.rest_until = now + (now - started) / PASS_PER_REST;
        // Keep the larger allocation of the two for the next pass.
        if self.dirty.is_empty() {
            let mut dirty = dirty;
            dirty.clear();
            self.dirty = dirty;
        }
    }

    /// Writes a keep-alive comment to every subscriber idle for the interval, and marks those
    /// whose socket stayed full for [`BLOCKED_INTERVALS`] to be dropped.
    fn keep_alive(&mut self) {
        let tick = self.wheel.tick_at(Instant::now());
        let mut due = take(&mut self.due);
        let mut delivered = Delivered::default();
        self.wheel.expire(&mut self.table, tick, &mut due);
        for slot in due.drain(..) {
            let Some(subscriber) = self.table.get_mut(slot) else {
                continue;
            };
            if !subscriber.progress.is_idle() {
                if subscriber.wheel.intervals_idle(tick) >= BLOCKED_INTERVALS {
                    self.blocked.push(slot);
                }
                continue;
            }
            let socket = &subscriber.socket;
            match deliver::keep_alive(socket, &mut subscriber.progress, &mut delivered) {
                KeptAlive::Wrote => subscriber.wheel.touch(tick),
                KeptAlive::Blocked => {}
                KeptAlive::Gone => self.gone.push(slot),
            }
        }
        delivered.count(&self.stats);
        self.due = due;
    }

    /// Marks the subscribers whose token has expired to be dropped: their browsers reconnect
    /// and authenticate again.
    fn end_expired_tokens(&mut self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        self.authorized.expired(now, &mut self.expired);
    }

    /// Drops the subscribers marked during the turn, gives back what they held, and gives
    /// back table memory.
    fn reap(&mut self) {
        count_dropped(
            &self.lagged,
            &self.stats.subscribers_lagged,
            "lagged behind history",
        );
        count_dropped(
            &self.blocked,
            &self.stats.subscribers_blocked,
            "blocked for too long",
        );
        count_dropped(
            &self.expired,
            &self.stats.subscribers_expired,
            "whose token expired",
        );
        let mut gone = take(&mut self.gone);
        let mut lagged = take(&mut self.lagged);
        let mut blocked = take(&mut self.blocked);
        let mut expired = take(&mut self.expired);
        let mut removed = 0;
        for slot in gone
            .drain(..)
            .chain(lagged.drain(..))
            .chain(blocked.drain(..))
            .chain(expired.drain(..))
        {
            removed += self.remove(slot) as usize;
        }
        (self.gone, self.lagged, self.blocked, self.expired) = (gone, lagged, blocked, expired);
        if removed > 0 {
            self.give_back(removed);
            // Last, so that whoever sees the count fall finds everything given back.
            self.stats.subscribers.fetch_sub(removed as u64, Relaxed);
        }
        self.table.shrink();
    }

    /// Gives back what `subscribers` dropped subscribers held: their places under the limits,
    /// the topics in `released_topics`, the address counts in `released_addresses` and the
    /// active-subscription entries in `released_tracked`.
    fn give_back(&mut self, subscribers: usize) {
        let (topics, tracked) = (&self.released_topics, &self.released_tracked);
        self.broadcaster.release(subscribers, topics, tracked);
        self.broadcaster
            .addresses
            .release(self.released_addresses.drain(..));
        self.released_topics.clear();
        self.released_tracked.clear();
        if self.released_topics.capacity() > 4096 {
            self.released_topics = Vec::new();
            self.released_addresses = Vec::new();
            self.released_tracked = Vec::new();
        }
    }

    /// Takes a subscriber out of the table, its topics and the wheel; false if it was gone.
    fn remove(&mut self, slot: u32) -> bool {
        if self.table.get_mut(slot).is_none() {
            return false;
        }
        self.wheel.remove(&mut self.table, slot);
        let Some(subscriber) = self.table.remove(slot) else {
            return false;
        };
        self.released_addresses.push(subscriber.address);
        self.authorized.remove(slot);
        self.released_tracked.extend(self.tracked.take(slot));
        let links = subscriber.topics.as_slice();
        self.released_topics
            .extend(links.iter().map(|link| link.topic));
        membership::leave(&mut self.topics, &mut self.table, &subscriber.topics);
        // Dropping the socket closes it, which also takes it out of the poll.
        true
    }

    /// Ends every stream, each told to reconnect after its own random delay so that the
    /// clients of a restarting server do not all come back in the same second.
    fn close_all(&mut self) {
        let spread = self.reconnect_spread.as_millis() as u64;
        for subscriber in self.table.drain() {
            if subscriber.progress.is_idle() {
                let retry = RECONNECT_AFTER_MS + fastrand::u64(0..=spread);
                write_whole(&subscriber.socket, format!("retry: {retry}\n\n").as_bytes());
            }
            let _ = subscriber.socket.shutdown(std::net::Shutdown::Write);
            self.stats.subscribers.fetch_sub(1, Relaxed);
        }
    }
}

/// Counts, and logs, the subscribers about to be dropped for `why`.
fn count_dropped(slots: &[u32], counter: &AtomicU64, why: &'static str) {
    if !slots.is_empty() {
        debug!(count = slots.len(), "subscribers {why}");
        counter.fetch_add(slots.len() as u64, Relaxed);
    }
}

/// Reads and drops what a subscriber sent after its request; false if it hung up or sent too
/// much. A subscriber has nothing to say, so this only runs on a misbehaving or closing peer.
fn discard_input(mut socket: &TcpStream) -> bool {
    let mut scratch = [0u8; 1024];
    let mut total = 0;
    loop {
        match socket.read(&mut scratch) {
            Ok(0) => return false,
            Ok(n) => {
                total += n;
                if total > MAX_INPUT_BYTES {
                    return false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
