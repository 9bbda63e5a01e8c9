//! Topics: the registry that turns names into small ids and decides when a topic is freed,
//! and a shard's view of one topic.
//!
//! Names are interned by the [`Registry`] every shard shares, so shards, subscribers and
//! publications speak of topics as 4-byte [`TopicId`]s. A topic is held while it has a
//! subscriber (counted from the subscribe's acceptance, before its response head) or history;
//! one with neither is freed at once, and one with history but no subscriber is freed after
//! the idle time since its last publish or subscriber. A freed id is reused, after every
//! shard has been told to forget it. Topics that a client's subscribes created count against
//! its address while they are held, so one client cannot fill the table.
//!
//! Each shard keeps its own [`Topic`] per id: its subscribers on that shard and its history.

use std::time::{Duration, Instant};

use foldhash::{HashMap, HashSet};

use std::sync::Arc;

use super::history::{History, Publication, Seq};
use super::patterns::Patterns;
use crate::address::ClientAddress;
use crate::selector::{Selection, Selector};
use crate::sse::topic::Topics;

/// A topic's interned id, an index into each shard's topic table.
pub type TopicId = u32;

/// A topic the registry freed, for the shards to forget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freed {
    /// Its id, which will be reused.
    pub id: TopicId,
    /// The `Seq` of its last publication: a resume from before it missed something.
    pub last_published: Seq,
}

/// Why a request's topics were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicRefused {
    #[error("the server holds its limit of {0} topics; use a topic that exists")]
    Full(usize),
    #[error("topics created by this address's subscribes are at their limit of {0}")]
    AddressFull(usize),
    #[error("the server holds its limit of {0} pairs of a pattern and a topic it matches")]
    PatternPairs(usize),
}

/// What a request names: a topic, or a pattern (held under its key).
#[derive(Debug, Clone, Copy)]
enum Entry<'a> {
    Topic(&'a str),
    Pattern(&'a Selector),
}

/// What [`Registry::intern_selection`] held for a subscribe.
#[derive(Debug)]
pub struct Interned {
    /// The ids of its selectors, in order.
    pub ids: Box<[TopicId]>,
    /// Those of its patterns that were not held before.
    pub new_patterns: Vec<TopicId>,
}

/// Topic names, their ids and what holds each topic.
#[derive(Debug)]
pub struct Registry {
    /// Every name held, with its id.
    ids: HashMap<Box<str>, TopicId>,
    /// Each id's topic, `None` when free.
    topics: Vec<Option<Held>>,
    /// Ids to reuse.
    free: Vec<TopicId>,
    /// The most topics held.
    limit: usize,
    /// The most topics one address's subscribes may hold created.
    per_address: usize,
    /// Topics held that each address's subscribes created.
    created: HashMap<ClientAddress, usize>,
    /// The held patterns, and which topics each matches.
    patterns: Patterns,
}

/// What the registry knows of a held topic.
#[derive(Debug)]
struct Held {
    /// Its name, the key of its id.
    name: Box<str>,
    /// Subscribers accepted and not yet gone, on every shard.
    subscribers: u32,
    /// The `Seq` of its last publication (0 if none).
    last_published: Seq,
    /// When it last had a publish or a subscriber.
    last_used: Instant,
    /// The address whose subscribe created it, if a subscribe did.
    creator: Option<ClientAddress>,
    /// Whether it is a pattern (its name is the pattern's key).
    pattern: bool,
}

impl Held {
    /// Whether it may be freed at once: no subscriber and no history after `floor`. A
    /// pattern is kept until it has been idle for the idle time, whatever it holds: making one
    /// matches it against every held topic, which a page that reconnects should not cost each
    /// time.
    fn is_unused(&self, floor: Seq) -> bool {
        !self.pattern && self.subscribers == 0 && self.last_published <= floor
    }
}

impl Registry {
    /// A registry that holds at most `limit` topics and patterns, `per_address` of them
    /// created by the subscribes of one address, and at most `pairs` pairs of a pattern and
    /// a topic it matches.
    pub fn new(limit: usize, per_address: usize, pairs: usize) -> Self {
        Self {
            ids: HashMap::default(),
            topics: Vec::new(),
            free: Vec::new(),
            limit,
            per_address,
            created: HashMap::default(),
            patterns: Patterns::new(pairs),
        }
    }

    /// The number of topics held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The ids of a publish's topics `names` (without repeats), new names given ids; none is
    /// interned if the new ones would pass a limit.
    pub fn intern_all(
        &mut self,
        names: &Topics,
        creator: Option<ClientAddress>,
        now: Instant,
    ) -> Result<Box<[TopicId]>, TopicRefused> {
        if let Some(ids) = self.held_ids(names, now) {
            return Ok(ids);
        }
        let entries: Vec<Entry<'_>> = names.iter().map(|name| Entry::Topic(name)).collect();
        Ok(self.intern_entries(&entries, creator, now)?.ids)
    }

    /// The ids of `names` if every one is held, each marked used: a publish to topics that
    /// exist, the usual one, allocates only its list of ids.
    fn held_ids(&mut self, names: &Topics, now: Instant) -> Option<Box<[TopicId]>> {
        // Allocated at its size: a list grown and then boxed would be allocated twice.
        let mut ids = Vec::with_capacity(names.len());
        for name in names.iter() {
            ids.push(*self.ids.get(name.as_str())?);
        }
        for &id in &ids {
            if let Some(held) = self.held_mut(id) {
                held.last_used = now;
            }
        }
        Some(ids.into_boxed_slice())
    }

    /// The ids of a subscribe's selectors, topics and patterns, new ones given ids; none is
    /// interned if the new ones would pass a limit. The subscribe names its `creator`.
    pub fn intern_selection(
        &mut self,
        selection: &Selection,
        creator: Option<ClientAddress>,
        now: Instant,
    ) -> Result<Interned, TopicRefused> {
        let entries: Vec<Entry<'_>> = selection
            .iter()
            .map(|selector| match selector.as_exact() {
                Some(name) => Entry::Topic(name),
                None => Entry::Pattern(selector),
            })
            .collect();
        self.intern_entries(&entries, creator, now)
    }

    fn intern_entries(
        &mut self,
        entries: &[Entry<'_>],
        creator: Option<ClientAddress>,
        now: Instant,
    ) -> Result<Interned, TopicRefused> {
        let keys: Vec<std::borrow::Cow<'_, str>> = entries
            .iter()
            .map(|entry| match entry {
                Entry::Topic(name) => (*name).into(),
                Entry::Pattern(selector) => selector.key().into(),
            })
            .collect();
        let new: Vec<usize> = (0..entries.len())
            .filter(|&index| !self.ids.contains_key(&*keys[index]))
            .collect();
        if self.ids.len() + new.len() > self.limit {
            return Err(TopicRefused::Full(self.limit));
        }
        if let Some(creator) = creator.filter(|_| !new.is_empty()) {
            let created = self.created.get(&creator).copied().unwrap_or_default();
            if created + new.len() > self.per_address {
                return Err(TopicRefused::AddressFull(self.per_address));
            }
        }
        // Each new one matched once, against what is held: the pairs it adds.
        let matches: Vec<Vec<TopicId>> = new
            .iter()
            .map(|&index| match entries[index] {
                Entry::Topic(name) => self.patterns.matching_topic(name),
                Entry::Pattern(selector) => self.topics_matching(selector),
            })
            .collect();
        if !self.patterns.room_for(matches.iter().map(Vec::len).sum()) {
            return Err(TopicRefused::PatternPairs(self.patterns.limit()));
        }
        if let Some(creator) = creator.filter(|_| !new.is_empty()) {
            *self.created.entry(creator).or_default() += new.len();
        }
        let ids: Box<[TopicId]> = keys
            .iter()
            .zip(entries)
            .map(|(key, entry)| self.intern(key, matches!(entry, Entry::Pattern(_)), creator, now))
            .collect();
        let mut new_patterns = Vec::new();
        for (&index, matches) in new.iter().zip(matches) {
            match entries[index] {
                Entry::Topic(_) => self.patterns.add_topic(ids[index], matches),
                Entry::Pattern(selector) => {
                    self.patterns
                        .add_pattern(ids[index], selector.clone(), &matches);
                    new_patterns.push(ids[index]);
                }
            }
        }
        // A new pattern and a new topic of the same request did not see each other.
        for &pattern in &new {
            let Entry::Pattern(selector) = entries[pattern] else {
                continue;
            };
            let topics: Vec<TopicId> = new
                .iter()
                .filter(|&&topic| matches!(entries[topic], Entry::Topic(name) if selector.matches(name)))
                .map(|&topic| ids[topic])
                .collect();
            self.patterns.link(ids[pattern], &topics);
        }
        Ok(Interned { ids, new_patterns })
    }

    /// The held topics (not patterns) that `selector` matches.
    fn topics_matching(&self, selector: &Selector) -> Vec<TopicId> {
        self.topics
            .iter()
            .enumerate()
            .filter_map(|(id, held)| {
                let held = held.as_ref().filter(|held| !held.pattern)?;
                selector.matches(&held.name).then_some(id as TopicId)
            })
            .collect()
    }

    fn intern(
        &mut self,
        name: &str,
        pattern: bool,
        creator: Option<ClientAddress>,
        now: Instant,
    ) -> TopicId {
        if let Some(&id) = self.ids.get(name) {
            if let Some(held) = self.held_mut(id) {
                held.last_used = now;
            }
            return id;
        }
        let held = Held {
            name: name.into(),
            subscribers: 0,
            last_published: 0,
            last_used: now,
            creator,
            pattern,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.topics[id as usize] = Some(held);
                id
            }
            None => {
                self.topics.push(Some(held));
                self.topics.len() as TopicId - 1
            }
        };
        self.ids.insert(name.into(), id);
        id
    }

    /// `topics` (a publication's) and the held patterns matching any of them.
    pub fn with_patterns(&self, topics: Box<[TopicId]>) -> Box<[TopicId]> {
        self.patterns.extend(topics)
    }

    /// Whether the held pattern `pattern` matches the held topic `topic`.
    pub fn pattern_matches(&self, pattern: TopicId, topic: TopicId) -> bool {
        self.patterns.matches(pattern, topic)
    }

    /// Whether the topics `names` (repeats and all) would fit: their new names, counted once,
    /// and the pairs they would add with the held patterns, within the limits.
    pub fn room_for<'a>(
        &self,
        names: impl Iterator<Item = &'a String>,
    ) -> Result<(), TopicRefused> {
        let new: HashSet<&str> = names
            .map(String::as_str)
            .filter(|name| !self.ids.contains_key(*name))
            .collect();
        if self.ids.len() + new.len() > self.limit {
            return Err(TopicRefused::Full(self.limit));
        }
        let pairs = new
            .iter()
            .map(|name| self.patterns.matching_topic(name).len())
            .sum();
        if !self.patterns.room_for(pairs) {
            return Err(TopicRefused::PatternPairs(self.patterns.limit()));
        }
        Ok(())
    }

    /// Counts a subscriber of each of `ids`.
    pub fn attach(&mut self, ids: &[TopicId]) {
        for &id in ids {
            if let Some(held) = self.held_mut(id) {
                held.subscribers += 1;
            }
        }
    }

    /// Counts a subscriber of each of `ids` gone; frees, into `freed`, those left with
    /// neither subscribers nor history (nothing published after `floor`).
    pub fn detach(&mut self, ids: &[TopicId], floor: Seq, now: Instant, freed: &mut Vec<Freed>) {
        for &id in ids {
            let Some(held) = self.held_mut(id) else {
                continue;
            };
            held.subscribers = held.subscribers.saturating_sub(1);
            held.last_used = now;
            if held.is_unused(floor) {
                self.free(id, freed);
            }
        }
    }

    /// The id of `name`, if it is held.
    pub fn id(&self, name: &str) -> Option<TopicId> {
        self.ids.get(name).copied()
    }

    /// The subscribers of each of `ids`, accepted and not yet gone, on every shard.
    pub fn subscribers<'a>(
        &'a self,
        ids: impl IntoIterator<Item = TopicId> + 'a,
    ) -> impl Iterator<Item = u32> + 'a {
        ids.into_iter().map(|id| {
            self.topics
                .get(id as usize)
                .and_then(Option::as_ref)
                .map_or(0, |held| held.subscribers)
        })
    }

    /// Records a publication of `seq` to `ids`.
    pub fn published(&mut self, ids: &[TopicId], seq: Seq, now: Instant) {
        for &id in ids {
            if let Some(held) = self.held_mut(id) {
                held.last_published = seq;
                held.last_used = now;
            }
        }
    }

    /// After history's floor moved to `floor`: frees, into `freed`, those of `ids` left with
    /// neither subscribers nor history.
    pub fn evicted(&mut self, ids: &[TopicId], floor: Seq, freed: &mut Vec<Freed>) {
        for &id in ids {
            let idle = self.held_mut(id).is_some_and(|held| held.is_unused(floor));
            if idle {
                self.free(id, freed);
            }
        }
    }

    /// Frees, into `freed`, every topic without subscribers unused for `idle`.
    pub fn sweep(&mut self, now: Instant, idle: Duration, freed: &mut Vec<Freed>) {
        for id in 0..self.topics.len() as TopicId {
            let idle = self.held_mut(id).is_some_and(|held| {
                held.subscribers == 0 && now.saturating_duration_since(held.last_used) >= idle
            });
            if idle {
                self.free(id, freed);
            }
        }
    }

    /// Whether `id` names a held topic.
    pub fn is_held(&self, id: TopicId) -> bool {
        self.topics.get(id as usize).is_some_and(Option::is_some)
    }

    fn held_mut(&mut self, id: TopicId) -> Option<&mut Held> {
        self.topics.get_mut(id as usize)?.as_mut()
    }

    fn free(&mut self, id: TopicId, freed: &mut Vec<Freed>) {
        let Some(held) = self.topics.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        self.ids.remove(&held.name);
        self.patterns.remove(id);
        if let Some(creator) = held.creator {
            if let Some(created) = self.created.get_mut(&creator) {
                *created -= 1;
                if *created == 0 {
                    self.created.remove(&creator);
                }
            }
        }
        self.free.push(id);
        freed.push(Freed {
            id,
            last_published: held.last_published,
        });
        if self.ids.is_empty() {
            // A spike of topics is over: give its memory back.
            *self = Self::new(self.limit, self.per_address, self.patterns.limit());
        }
    }
}

/// One topic, as one shard sees it.
#[derive(Debug)]
pub struct Topic {
    /// The slots of this shard's subscribers of the topic, in no order.
    pub subscribers: Vec<u32>,
    /// The topic's recent publications.
    pub history: History,
    /// Whether frames were added since the last delivery pass.
    pub dirty: bool,
}

impl Topic {
    /// A topic with no subscribers and an empty history of `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            subscribers: Vec::new(),
            history: History::new(capacity),
            dirty: false,
        }
    }

    /// A pattern first held: its history is `publications` (in `Seq` order, of the topics it
    /// matches), everything up to `dropped_through` counting as dropped.
    pub fn seeded(
        capacity: usize,
        dropped_through: Seq,
        publications: &[Arc<Publication>],
    ) -> Self {
        let mut topic = Self::new(capacity);
        topic.history.forget_through(dropped_through);
        for publication in publications {
            topic.history.push(publication.clone());
        }
        topic.history.trim();
        topic
    }

    /// A topic whose id was freed: whatever it held is gone, so a resume from before its
    /// last publication gets a `gap` (and one from after it misses nothing).
    pub fn forgotten(capacity: usize, freed: Freed) -> Self {
        let mut topic = Self::new(capacity);
        topic.history.forget_through(freed.last_published);
        topic
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::{Selection, Selector};

    fn names(list: &[&str]) -> Topics {
        Topics::new(list.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    fn address(n: u8) -> Option<ClientAddress> {
        Some(std::net::IpAddr::from([10, 0, 0, n]).into())
    }

    #[test]
    fn names_get_stable_dense_ids() {
        let mut registry = Registry::new(10, 10, 100);
        let now = Instant::now();
        assert_eq!(
            &*registry.intern_all(&names(&["a", "b"]), None, now).unwrap(),
            &[0, 1]
        );
        assert_eq!(
            &*registry
                .intern_all(&names(&["b", "c", "a"]), None, now)
                .unwrap(),
            &[1, 2, 0]
        );
    }

    #[test]
    fn new_names_past_a_limit_are_refused_whole() {
        let mut registry = Registry::new(3, 10, 100);
        let now = Instant::now();
        registry.intern_all(&names(&["a", "b"]), None, now).unwrap();
        assert_eq!(
            registry.intern_all(&names(&["c", "d"]), None, now),
            Err(TopicRefused::Full(3))
        );
        assert_eq!(registry.len(), 2, "nothing of a refused request is kept");
        assert!(registry.intern_all(&names(&["a", "c"]), None, now).is_ok());
        let mut registry = Registry::new(10, 2, 100);
        registry
            .intern_all(&names(&["a", "b"]), address(1), now)
            .unwrap();
        assert_eq!(
            registry.intern_all(&names(&["c"]), address(1), now),
            Err(TopicRefused::AddressFull(2))
        );
        assert!(registry
            .intern_all(&names(&["a", "c"]), address(2), now)
            .is_ok());
        assert!(registry.intern_all(&names(&["b"]), address(1), now).is_ok());
    }

    #[test]
    fn a_topic_without_subscribers_or_history_is_freed_at_once() {
        let mut registry = Registry::new(10, 1, 100);
        let now = Instant::now();
        let mut freed = Vec::new();
        let ids = registry
            .intern_all(&names(&["a"]), address(1), now)
            .unwrap();
        registry.attach(&ids);
        registry.attach(&ids);
        registry.detach(&ids, 0, now, &mut freed);
        assert!(freed.is_empty(), "one subscriber is left");
        registry.detach(&ids, 0, now, &mut freed);
        assert_eq!(
            freed,
            vec![Freed {
                id: 0,
                last_published: 0
            }]
        );
        assert_eq!(registry.len(), 0);
        assert!(
            registry.intern_all(&names(&["b"]), address(1), now).is_ok(),
            "the creator's count came back"
        );
    }

    #[test]
    fn a_topic_with_history_waits_for_eviction_or_idleness() {
        let mut registry = Registry::new(10, 10, 100);
        let start = Instant::now();
        let mut freed = Vec::new();
        let ids = registry
            .intern_all(&names(&["a", "b"]), None, start)
            .unwrap();
        registry.published(&ids[..1], 5, start);
        registry.attach(&ids[..1]);
        registry.detach(&ids[..1], 0, start, &mut freed);
        assert!(freed.is_empty(), "a has history");
        registry.evicted(&ids[..1], 4, &mut freed);
        assert!(freed.is_empty(), "a's publication is still held");
        registry.evicted(&ids, 5, &mut freed);
        let last_published: Vec<_> = freed.iter().map(|f| (f.id, f.last_published)).collect();
        assert_eq!(last_published, vec![(0, 5), (1, 0)]);

        let ids = registry.intern_all(&names(&["c"]), None, start).unwrap();
        registry.published(&ids, 9, start);
        let idle = Duration::from_secs(60);
        registry.sweep(start + idle / 2, idle, &mut freed);
        assert_eq!(registry.len(), 1);
        registry.sweep(start + idle, idle, &mut freed);
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn patterns_are_matched_once_against_topics_held_and_to_come() {
        let mut registry = Registry::new(10, 10, 100);
        let now = Instant::now();
        let mut freed = Vec::new();
        let a = registry
            .intern_all(&names(&["/b/1", "x"]), None, now)
            .unwrap();
        let template = Selector::topic_or_template("/b/{id}");
        let selection = Selection::new(vec![template.clone(), Selector::topic("/b/2")]).unwrap();
        let interned = registry.intern_selection(&selection, None, now).unwrap();
        let (pattern, b2) = (interned.ids[0], interned.ids[1]);
        assert_eq!(interned.new_patterns, vec![pattern]);
        assert!(
            registry.pattern_matches(pattern, a[0]),
            "a topic held before"
        );
        assert!(
            registry.pattern_matches(pattern, b2),
            "a topic of the same request"
        );
        assert!(!registry.pattern_matches(pattern, a[1]));
        let c = registry.intern_all(&names(&["/b/3"]), None, now).unwrap();
        assert_eq!(
            &*registry.with_patterns(c.clone()),
            &[c[0], pattern],
            "a topic to come"
        );
        assert_eq!(&*registry.with_patterns(a.clone()), &[a[0], a[1], pattern]);
        let again = registry.intern_selection(&selection, None, now).unwrap();
        assert!(again.new_patterns.is_empty(), "held once");
        registry.attach(&interned.ids);
        registry.detach(&interned.ids, 0, now, &mut freed);
        assert!(freed.iter().all(|f| f.id != pattern), "kept until idle");
        let idle = Duration::from_secs(60);
        registry.sweep(now + idle, idle, &mut freed);
        assert!(freed.iter().any(|f| f.id == pattern), "freed once idle");
        assert_eq!(registry.len(), 0);
    }
}
