//! Topics: the registry that turns names into small ids, and a shard's view of one topic.
//!
//! Names are interned once, by the [`Registry`] every shard shares, so shards, subscribers and
//! publications speak of topics as 4-byte [`TopicId`]s. Each shard keeps its own [`Topic`] per
//! id: its subscribers on that shard and its history ring (whose frames are shared `Bytes`).

use std::collections::HashMap;

use super::history::History;

/// A topic's interned id, an index into each shard's topic table.
pub type TopicId = u32;

/// Topic names and their ids.
#[derive(Debug, Default)]
pub struct Registry {
    /// Every name seen, with its id (ids count up from 0).
    ids: HashMap<Box<str>, TopicId>,
}

impl Registry {
    /// The id of `name`, given a new one on first sight.
    pub fn intern(&mut self, name: &str) -> TopicId {
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
    #[test]
    fn names_get_stable_dense_ids() {
        let mut registry = super::Registry::default();
        assert_eq!(registry.intern("a"), 0);
        assert_eq!(registry.intern("b"), 1);
        assert_eq!(registry.intern("a"), 0);
    }
}
