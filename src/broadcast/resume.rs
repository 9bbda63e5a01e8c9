//! Where a new subscriber starts: right after its `Last-Event-ID` when history still holds
//! everything since on each of its topics, or else at the oldest point history can fill in,
//! with a `gap` frame first. The id `earliest` (Mercure's) asks for everything history holds,
//! without a `gap`.
//!
//! The broadcaster looks the id up in its ledger when it accepts the subscribe ([`Resume`]);
//! the shard decides here, against its own histories, when the subscriber arrives.

use bytes::Bytes;

use super::history::{History, Seq};
use super::topic::{Topic, TopicId};
use crate::sse::event::{frame_id, gap_frame, EARLIEST};

/// Where a subscriber resumes: the id it asked for, and that id's place if history held it.
#[derive(Debug)]
pub(crate) struct Resume {
    /// The `Last-Event-ID` asked for.
    pub(super) asked: Box<str>,
    /// The `Seq` of the event with that id, when history held it at the subscribe.
    pub(super) found: Option<Seq>,
}

impl Resume {
    fn is_earliest(&self) -> bool {
        &*self.asked == EARLIEST
    }
}

/// The `Seq` a new subscriber of `ids` starts after, and the `gap` frame it is sent first when
/// history cannot fill in from where it asked; `accepted` is the last publication before the
/// broadcaster accepted the subscribe (before its response head was written), where a
/// subscriber that does not resume starts, so that it gets every event published after the
/// client saw its head.
pub fn resume_point(
    topics: &[Topic],
    ids: &[TopicId],
    resume: Option<&Resume>,
    accepted: Seq,
) -> (Seq, Option<Bytes>) {
    let Some(resume) = resume else {
        return (accepted, None);
    };
    let histories = || ids.iter().map(|&topic| &topics[topic as usize].history);
    // Every frame after `floor` is still held in every one of its topics.
    let floor = histories().map(History::resume_floor).max().unwrap_or(0);
    match resume.found {
        Some(seq) if seq >= floor => (seq, None),
        _ if resume.is_earliest() => (floor, None),
        _ => {
            let oldest = histories()
                .filter_map(|history| history.first_after(floor))
                .min_by_key(|publication| publication.seq)
                .map(|publication| frame_id(&publication.frame));
            (floor, Some(gap_frame(&resume.asked, oldest)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::history::tests::publication;

    fn resume(asked: &str, found: Option<Seq>) -> Resume {
        Resume {
            asked: asked.into(),
            found,
        }
    }

    /// Two topics: 0 holds seqs 1..=4 (its first two dropped), 1 holds 5 and 6.
    fn topics() -> Vec<Topic> {
        let mut topics = vec![Topic::new(2), Topic::new(10)];
        for seq in 1..=4 {
            topics[0].history.push(publication(seq));
            topics[0].history.trim();
        }
        for seq in 5..=6 {
            topics[1].history.push(publication(seq));
        }
        topics
    }

    #[test]
    fn without_an_id_a_subscriber_starts_where_it_was_accepted() {
        assert_eq!(resume_point(&topics(), &[0, 1], None, 6), (6, None));
        assert_eq!(
            resume_point(&topics(), &[0, 1], None, 4),
            (4, None),
            "what was published since its acceptance is its to get"
        );
    }

    #[test]
    fn an_id_history_covers_resumes_right_after_it() {
        assert_eq!(
            resume_point(&topics(), &[0, 1], Some(&resume("30", Some(3))), 6),
            (3, None)
        );
        assert_eq!(
            resume_point(&topics(), &[1], Some(&resume("10", Some(1))), 6),
            (1, None),
            "topic 1 dropped nothing"
        );
    }

    #[test]
    fn an_id_before_a_dropped_frame_or_unknown_gets_a_gap() {
        let (cursor, gap) = resume_point(&topics(), &[0, 1], Some(&resume("10", Some(1))), 6);
        assert_eq!(cursor, 2, "from the oldest frame held on every topic");
        let gap = gap.unwrap();
        assert!(gap.starts_with(b"event: gap\n"), "{gap:?}");
        assert!(
            std::str::from_utf8(&gap)
                .unwrap()
                .contains(r#""oldestId":"30""#),
            "{gap:?}"
        );
        let (cursor, gap) = resume_point(&topics(), &[1], Some(&resume("nope", None)), 6);
        assert_eq!(cursor, 0);
        assert!(std::str::from_utf8(&gap.unwrap())
            .unwrap()
            .contains(r#""oldestId":"50""#));
    }

    #[test]
    fn earliest_starts_at_the_oldest_frame_held_on_every_topic_without_a_gap() {
        let earliest = resume(EARLIEST, None);
        assert_eq!(
            resume_point(&topics(), &[0, 1], Some(&earliest), 6),
            (2, None)
        );
        assert_eq!(resume_point(&topics(), &[1], Some(&earliest), 6), (0, None));
    }
}
