//! Membership: which of a shard's subscribers each topic has, and where each subscriber sits in
//! those lists.
//!
//! A topic keeps its subscribers' slots in a vector, in no order; a subscriber keeps, for each
//! of its topics, its index in that vector ([`TopicLink`]). Joining is a push; leaving is a
//! swap-remove and one fix-up of the subscriber moved into the freed place, whatever the list's
//! length; a list that has shrunk to a quarter of its capacity gives memory back.

use super::subscriber::{TopicLink, TopicLinks};
use super::table::Table;
use super::topic::{Topic, TopicId};

/// Where membership finds a subscriber's links: the shard's table.
pub trait Members {
    /// The links of the subscriber at `slot`, if there is one.
    fn links(&mut self, slot: u32) -> Option<&mut TopicLinks>;
}

impl Members for Table {
    fn links(&mut self, slot: u32) -> Option<&mut TopicLinks> {
        self.get_mut(slot).map(|subscriber| &mut subscriber.topics)
    }
}

/// Adds the subscriber at `slot` to the list of each of `ids` (which `topics` holds); returns
/// its links.
pub fn join(topics: &mut [Topic], slot: u32, ids: &[TopicId]) -> TopicLinks {
    let links = ids
        .iter()
        .map(|&topic| {
            let subscribers = &mut topics[topic as usize].subscribers;
            subscribers.push(slot);
            TopicLink {
                topic,
                index: subscribers.len() as u32 - 1,
            }
        })
        .collect();
    TopicLinks::new(links)
}

/// Takes a subscriber that has left the table out of its topics' lists, by its `links`.
pub fn leave(topics: &mut [Topic], members: &mut impl Members, links: &TopicLinks) {
    for link in links.as_slice() {
        let subscribers = &mut topics[link.topic as usize].subscribers;
        subscribers.swap_remove(link.index as usize);
        if subscribers.len() < subscribers.capacity() / 4 {
            subscribers.shrink_to(subscribers.len() * 2);
        }
        let Some(&moved) = subscribers.get(link.index as usize) else {
            continue;
        };
        if let Some(moved) = members.links(moved) {
            for moved_link in moved.as_mut_slice() {
                if moved_link.topic == link.topic {
                    moved_link.index = link.index;
                }
            }
        }
    }
}

/// How many distinct subscribers the topics `ids` have that `counts` (one in several of them
/// counts once).
pub fn recipients(
    topics: &[Topic],
    members: &mut impl Members,
    ids: &[TopicId],
    counts: impl Fn(u32) -> bool,
) -> u64 {
    let mut count = 0;
    for (index, &topic) in ids.iter().enumerate() {
        let Some(topic) = topics.get(topic as usize) else {
            continue;
        };
        let earlier = &ids[..index];
        count += topic
            .subscribers
            .iter()
            .filter(|&&slot| {
                counts(slot)
                    && (earlier.is_empty()
                        || members
                            .links(slot)
                            .is_some_and(|links| !earlier.iter().any(|&t| links.contains(t))))
            })
            .count() as u64;
    }
    count
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    impl Members for HashMap<u32, TopicLinks> {
        fn links(&mut self, slot: u32) -> Option<&mut TopicLinks> {
            self.get_mut(&slot)
        }
    }

    fn topics(count: usize) -> Vec<Topic> {
        (0..count).map(|_| Topic::new(10)).collect()
    }

    /// Every link points at its own slot in its topic's list, and every list entry has a link.
    fn assert_consistent(topics: &[Topic], members: &HashMap<u32, TopicLinks>) {
        for (&slot, links) in members {
            for link in links.as_slice() {
                assert_eq!(
                    topics[link.topic as usize].subscribers[link.index as usize],
                    slot
                );
            }
        }
        let listed: usize = topics.iter().map(|t| t.subscribers.len()).sum();
        let linked: usize = members.values().map(|l| l.as_slice().len()).sum();
        assert_eq!(listed, linked);
    }

    #[test]
    fn leaving_keeps_every_other_link_true() {
        let mut topics = topics(3);
        let mut members = HashMap::new();
        for slot in 0..6u32 {
            let ids: Vec<TopicId> = (0..3).filter(|t| (slot + t) % 2 == 0 || *t == 2).collect();
            members.insert(slot, join(&mut topics, slot, &ids));
        }
        assert_consistent(&topics, &members);
        for slot in [0, 3, 5, 1] {
            let links = members.remove(&slot).unwrap();
            leave(&mut topics, &mut members, &links);
            assert_consistent(&topics, &members);
        }
        assert_eq!(topics[2].subscribers.len(), 2);
    }

    #[test]
    fn a_subscriber_of_several_topics_of_an_event_counts_once() {
        let mut topics = topics(3);
        let mut members = HashMap::new();
        members.insert(0, join(&mut topics, 0, &[0, 1]));
        members.insert(1, join(&mut topics, 1, &[1]));
        members.insert(2, join(&mut topics, 2, &[2]));
        let all = |_| true;
        assert_eq!(recipients(&topics, &mut members, &[0, 1], all), 2);
        assert_eq!(recipients(&topics, &mut members, &[1, 0, 2], all), 3);
        assert_eq!(recipients(&topics, &mut members, &[2], all), 1);
        assert_eq!(
            recipients(&topics, &mut members, &[7], all),
            0,
            "a topic not here"
        );
        let not_slot_0 = |slot| slot != 0;
        assert_eq!(recipients(&topics, &mut members, &[0, 1], not_slot_0), 1);
    }
}
