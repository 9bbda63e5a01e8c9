//! Topics: the registry that turns names into small ids, and a shard's view of one topic.
//!
//! Names are interned once, by the [`Registry`] every shard shares (up to a limit, since a topic
//! is kept with its history for the life of the process), so shards, subscribers and
//! publications speak of topics as 4-byte [`TopicId`]s. Each shard keeps its own [`Topic`] per
//! id: its subscribers on that shard and its history ring (whose frames are shared `Bytes`).

use std::collections::HashMap;

use super::history::History;

/// A topic's interned id, an index into each shard's topic table.
pub type TopicId = u32;

/// Topic names and their ids, up to a limit.
#[derive(Debug)]
pub struct Registry {
    /// Every name seen, with its id (ids count up from 0).
    ids: HashMap<Box<str>, TopicId>,
    /// The most topics held; a topic is kept, with its history, for the life of the process.
    limit: usize,
}

/// A request named new topics while the server holds its limit of topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server holds its limit of {0} topics; use a topic that exists")]
pub struct TopicLimit(pub usize);

impl Registry {
    /// A registry that holds at most `limit` topics.
    pub fn new(limit: usize) -> Self {
        Self {
            ids: HashMap::new(),
            limit,
        }
    }

    /// The number of topics held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The ids of `names`, new names given new ids; none is interned if the new ones would take
    /// the registry past its limit.
    pub fn intern_all(&mut self, names: &[String]) -> Result<Box<[TopicId]>, TopicLimit> {
        let new = names
            .iter()
            .filter(|name| !self.ids.contains_key(name.as_str()))
            .count();
        if self.ids.len() + new > self.limit {
            return Err(TopicLimit(self.limit));
        }
        Ok(names.iter().map(|name| self.intern(name)).collect())
    }

    fn intern(&mut self, name: &str) -> TopicId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.ids.len() as TopicId;
        self.ids.insert(name.into(), id);
        id
    }
}

/// One topic, as one shard sees it.
#[derive(Debug)]
pub struct Topic {
    /// The slots of this shard's subscribers of the topic, in no order.
    pub subscribers: Vec<u32>,
    /// The topic's recent frames.
    pub history: History,
    /// Whether frames were added since the last delivery pass.
    pub dirty: bool,
}

impl Topic {
    /// A topic with no subscribers and an empty history of `capacity` frames.
    pub fn new(capacity: usize) -> Self {
        Self {
            subscribers: Vec::new(),
            history: History::new(capacity),
            dirty: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_get_stable_dense_ids() {
        let mut registry = Registry::new(10);
        assert_eq!(&*registry.intern_all(&names(&["a", "b"])).unwrap(), &[0, 1]);
        assert_eq!(
            &*registry.intern_all(&names(&["b", "c", "a"])).unwrap(),
            &[1, 2, 0]
        );
    }

    #[test]
    fn new_names_past_the_limit_are_refused_whole() {
        let mut registry = Registry::new(3);
        registry.intern_all(&names(&["a", "b"])).unwrap();
        assert_eq!(registry.intern_all(&names(&["c", "d"])), Err(TopicLimit(3)));
        assert_eq!(registry.len(), 2, "nothing of a refused request is kept");
        assert!(registry.intern_all(&names(&["a", "c"])).is_ok());
        assert!(registry.intern_all(&names(&["a", "b", "c"])).is_ok());
        assert_eq!(registry.intern_all(&names(&["d"])), Err(TopicLimit(3)));
    }
}
