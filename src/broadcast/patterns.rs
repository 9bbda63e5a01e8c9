//! Which held patterns match which held topics, so that a publication reaches the subscribers
//! of the patterns matching its topics without matching anything per event.
//!
//! A pattern (`*`, a URI template, a URL pattern) is held by the registry like a topic, under a
//! key no topic has, and its subscribers sit in its own list on each shard. Each distinct
//! pattern is matched against each topic once: against every held topic when the pattern is
//! first held, and a new topic against every held pattern when the topic is first held. The
//! pairs that match are kept here, by topic; a publication's topics are extended with the
//! patterns matching them ([`Patterns::extend`]), and the shards deliver it through the
//! patterns' lists as through any topic's, once to a subscriber of several. The pairs are
//! bounded: past the limit, the subscribe or publish that would add more is refused.

use foldhash::HashMap;

use super::topic::TopicId;
use crate::selector::Selector;

/// The held patterns and the topics each matches.
#[derive(Debug)]
pub struct Patterns {
    /// Each held pattern, by id.
    held: Vec<(TopicId, Selector)>,
    /// For each held topic some pattern matches: the patterns matching it.
    matching: HashMap<TopicId, Vec<TopicId>>,
    /// Pairs held (entries of `matching`, summed).
    pairs: usize,
    /// The most pairs held.
    limit: usize,
}

impl Patterns {
    /// No patterns; at most `limit` matching pairs.
    pub fn new(limit: usize) -> Self {
        Self {
            held: Vec::new(),
            matching: HashMap::default(),
            pairs: 0,
            limit,
        }
    }

    /// The most pairs held.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether `more` pairs fit under the limit.
    pub fn room_for(&self, more: usize) -> bool {
        self.pairs + more <= self.limit
    }

    /// The held patterns matching the topic `name`.
    pub fn matching_topic(&self, name: &str) -> Vec<TopicId> {
        self.held
            .iter()
            .filter(|(_, selector)| selector.matches(name))
            .map(|&(id, _)| id)
            .collect()
    }

    /// Holds the topic `id`, which the patterns `matches` match.
    pub fn add_topic(&mut self, id: TopicId, matches: Vec<TopicId>) {
        if !matches.is_empty() {
            self.pairs += matches.len();
            self.matching.insert(id, matches);
        }
    }

    /// Holds the pattern `id`, which matches the topics `matches`.
    pub fn add_pattern(&mut self, id: TopicId, selector: Selector, matches: &[TopicId]) {
        self.held.push((id, selector));
        self.link(id, matches);
    }

    /// Records that the held pattern `pattern` matches the held topics `topics`.
    pub fn link(&mut self, pattern: TopicId, topics: &[TopicId]) {
        for &topic in topics {
            self.matching.entry(topic).or_default().push(pattern);
        }
        self.pairs += topics.len();
    }

    /// Forgets the topic or pattern `id`, freed.
    pub fn remove(&mut self, id: TopicId) {
        if let Some(matches) = self.matching.remove(&id) {
            self.pairs -= matches.len();
        }
        let Some(index) = self.held.iter().position(|&(held, _)| held == id) else {
            return;
        };
        self.held.swap_remove(index);
        let mut removed = 0;
        self.matching.retain(|_, patterns| {
            let before = patterns.len();
            patterns.retain(|&pattern| pattern != id);
            removed += before - patterns.len();
            !patterns.is_empty()
        });
        self.pairs -= removed;
        if self.held.is_empty() {
            *self = Self::new(self.limit);
        }
    }

    /// Whether the pattern `pattern` matches the held topic `topic`.
    pub fn matches(&self, pattern: TopicId, topic: TopicId) -> bool {
        self.matching
            .get(&topic)
            .is_some_and(|patterns| patterns.contains(&pattern))
    }

    /// `topics` and the patterns matching any of them, without repeats; `topics` itself when
    /// none does.
    pub fn extend(&self, topics: Box<[TopicId]>) -> Box<[TopicId]> {
        if self.matching.is_empty() {
            return topics;
        }
        let mut extended = topics.to_vec();
        for topic in topics.iter() {
            for &pattern in self.matching.get(topic).into_iter().flatten() {
                if !extended.contains(&pattern) {
                    extended.push(pattern);
                }
            }
        }
        extended.into_boxed_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_kept_both_ways_and_counted() {
        let mut patterns = Patterns::new(3);
        let books = Selector::topic_or_template("/books/{id}");
        patterns.add_pattern(10, books, &[1, 2]);
        assert_eq!(patterns.matching_topic("/books/3"), vec![10]);
        assert!(patterns.matching_topic("/authors/3").is_empty());
        patterns.add_topic(3, vec![10]);
        assert!(!patterns.room_for(1), "three pairs of three");
        patterns.add_pattern(11, Selector::exact("*"), &[]);
        assert_eq!(&*patterns.extend(Box::new([1, 5])), &[1, 5, 10]);
        assert_eq!(&*patterns.extend(Box::new([5])), &[5]);
        assert!(patterns.matches(10, 2) && !patterns.matches(11, 2));
        patterns.remove(2);
        assert!(patterns.room_for(1));
        patterns.remove(10);
        assert_eq!(&*patterns.extend(Box::new([1, 3])), &[1, 3]);
        assert!(patterns.room_for(3));
    }
}
