//! Every write to a subscriber's socket: frames, keep-alive comments and single messages.
//!
//! A flush gathers the frames after the subscriber's cursor from the history of each of its
//! topics, merged in publish order (an event in two of its topics has one `Seq` and is sent
//! once), and writes up to [`MAX_WRITEV_BUFS`] of them in one vectored write from a stack
//! array: nothing is copied or allocated per frame. A subscriber that is behind catches up in a
//! few large writes rather than one small write per event. A write may take any part of what
//! it is given; what is left is recorded in the subscriber's progress and sent when the socket
//! drains. The writes are generic over `Write`, so that tests can give them a writer that takes
//! a few bytes at a time.

use std::io::{self, IoSlice, Write};
use std::sync::atomic::Ordering::Relaxed;

use super::history::{Lagged, Publication, Seq};
use super::subscriber::{PackedProgress, Progress, Subscriber, TopicLinks};
use super::topic::Topic;
use crate::selector::Selectors;
use crate::sse::event::KEEP_ALIVE;
use crate::sse::topic::MAX_TOPICS;
use crate::stats::Stats;

/// The most buffers in one vectored write.
pub const MAX_WRITEV_BUFS: usize = 64;

/// Where a flush left the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything its history holds for it is written.
    CaughtUp,
    /// Its socket is full; the rest waits for writability.
    Blocked,
    /// It must go: history no longer holds a frame it needs.
    Lagged,
    /// It must go: its connection failed.
    Gone,
}

/// What writes delivered: frames completed and bytes written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Frames written whole.
    pub frames: u64,
    /// Bytes written, frames and keep-alives.
    pub bytes: u64,
}

impl Delivered {
    /// Adds this to the server's counters.
    pub fn count(self, stats: &Stats) {
        stats.frames_delivered.fetch_add(self.frames, Relaxed);
        stats.bytes_delivered.fetch_add(self.bytes, Relaxed);
    }
}

/// What a keep-alive write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptAlive {
    /// Some or all of the comment was written (the rest waits in the progress).
    Wrote,
    /// The socket was full; the comment waits in the progress.
    Blocked,
    /// The connection failed.
    Gone,
}

/// Writes every frame after `subscriber.cursor` it can, adding what it wrote to `delivered`;
/// a private frame only if `access` (the subscriber's token's selectors) admits it.
pub fn flush(
    subscriber: &mut Subscriber,
    topics: &[Topic],
    access: Option<&Selectors>,
    delivered: &mut Delivered,
) -> Flushed {
    let Subscriber {
        socket,
        progress,
        cursor,
        topics: links,
        ..
    } = subscriber;
    flush_to(&*socket, progress, cursor, links, topics, access, delivered)
}

/// Writes a keep-alive comment to an idle subscriber, adding its bytes to `delivered`.
pub fn keep_alive(
    out: impl Write,
    progress: &mut PackedProgress,
    delivered: &mut Delivered,
) -> KeptAlive {
    debug_assert!(progress.is_idle());
    match write_once(out, KEEP_ALIVE) {
        Ok(0) => KeptAlive::Gone,
        Ok(n) => {
            delivered.bytes += n as u64;
            if n < KEEP_ALIVE.len() {
                progress.set(Progress::KeepAlive(n as u8));
            }
            KeptAlive::Wrote
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            progress.set(Progress::KeepAlive(0));
            KeptAlive::Blocked
        }
        Err(_) => KeptAlive::Gone,
    }
}

/// Writes `message` in one write, for a socket that holds nothing else (a gap event to a new
/// subscriber, a reconnection delay on shutdown); false unless all of it was taken.
pub fn write_whole(out: impl Write, message: &[u8]) -> bool {
    matches!(write_once(out, message), Ok(n) if n == message.len())
}

fn write_once(mut out: impl Write, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match out.write(bytes) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            written => return written,
        }
    }
}

/// [`flush`] to any writer, given the subscriber's progress, cursor and topic links.
fn flush_to(
    mut out: impl Write,
    progress: &mut PackedProgress,
    cursor: &mut Seq,
    links: &TopicLinks,
    topics: &[Topic],
    access: Option<&Selectors>,
    delivered: &mut Delivered,
) -> Flushed {
    loop {
        let mut bufs = [IoSlice::new(&[]); MAX_WRITEV_BUFS];
        // The `Seq` of each buffer's frame; 0 marks the rest of a keep-alive comment.
        let mut seqs = [0 as Seq; MAX_WRITEV_BUFS];
        let mut len = 0;
        let mut first_offset = 0;
        match progress.get() {
            Progress::KeepAlive(written) => {
                bufs[0] = IoSlice::new(&KEEP_ALIVE[written as usize..]);
                len = 1;
            }
            Progress::Frame(written) => first_offset = written as usize,
            Progress::Idle => {}
        }
        let examined = match gather(
            *cursor,
            links,
            topics,
            access,
            first_offset,
            &mut bufs[len..],
            &mut seqs[len..],
        ) {
            Ok(gathered) => {
                len += gathered.len;
                // Frames it may not see are passed, never sent: the cursor moves over them.
                if let Some(passed) = gathered.passed {
                    *cursor = passed;
                }
                gathered.examined
            }
            Err(Lagged) => return Flushed::Lagged,
        };
        if len == 0 {
            *progress = PackedProgress::IDLE;
            return Flushed::CaughtUp;
        }
        let total: usize = bufs[..len].iter().map(|buf| buf.len()).sum();
        let written = match out.write_vectored(&bufs[..len]) {
            Ok(0) => return Flushed::Gone,
            Ok(written) => written,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if progress.is_idle() {
                    progress.set(Progress::Frame(0));
                }
                return Flushed::Blocked;
            }
            Err(_) => return Flushed::Gone,
        };
        delivered.bytes += written as u64;
        advance(
            progress,
            cursor,
            &bufs[..len],
            &seqs[..len],
            first_offset,
            written,
            &mut delivered.frames,
        );
        // A full or partial write both go round again: more may be waiting, and a partial
        // write is followed by one that sees `WouldBlock`, which arms the edge-triggered
        // writability event.
        if written == total && len < MAX_WRITEV_BUFS {
            *progress = PackedProgress::IDLE;
            *cursor = (*cursor).max(examined);
            return Flushed::CaughtUp;
        }
    }
}

/// Moves the cursor past the frames `written` bytes completed and records a partial one.
fn advance(
    progress: &mut PackedProgress,
    cursor: &mut Seq,
    bufs: &[IoSlice<'_>],
    seqs: &[Seq],
    first_offset: usize,
    mut written: usize,
    frames: &mut u64,
) {
    let mut offset = first_offset;
    for (index, (buf, &seq)) in bufs.iter().zip(seqs).enumerate() {
        if written >= buf.len() {
            written -= buf.len();
            *progress = PackedProgress::IDLE;
            if seq != 0 {
                *cursor = seq;
                *frames += 1;
                offset = 0;
            }
            continue;
        }
        let partial = match progress.get() {
            Progress::KeepAlive(done) if index == 0 && seq == 0 => {
                Progress::KeepAlive(done + written as u8)
            }
            _ => Progress::Frame((offset + written) as u32),
        };
        progress.set(partial);
        return;
    }
}

/// What [`gather`] found.
struct Gathered {
    /// Buffers filled.
    len: usize,
    /// The last frame before the first one filled (or of all, if none was) that `access`
    /// does not admit: the cursor may move past it.
    passed: Option<Seq>,
    /// The last frame looked at, filled or not: once every buffer is written, when they were
    /// not all filled, the cursor may move to it.
    examined: Seq,
}

/// Fills `bufs` with the frames after the cursor that `access` admits, merged across topics;
/// the first starts at `first_offset`.
fn gather<'a>(
    cursor: Seq,
    links: &TopicLinks,
    topics: &'a [Topic],
    access: Option<&Selectors>,
    first_offset: usize,
    bufs: &mut [IoSlice<'a>],
    seqs: &mut [Seq],
) -> Result<Gathered, Lagged> {
    let mut len = 0;
    let mut passed = None;
    let mut examined = cursor;
    let mut push = |publication: &'a Publication| {
        examined = publication.seq;
        if !publication.audience.admits(access) {
            if len == 0 {
                passed = Some(publication.seq);
            }
            return true;
        }
        let skip = if len == 0 { first_offset } else { 0 };
        let frame = &publication.frame;
        bufs[len] = IoSlice::new(frame.get(skip..).unwrap_or_default());
        seqs[len] = publication.seq;
        len += 1;
        len < bufs.len()
    };
    match links {
        TopicLinks::One(link) => {
            let history = &topics[link.topic as usize].history;
            let mut index = history.position_after(cursor)?;
            while let Some(publication) = history.get(index) {
                index += 1;
                if !push(publication) {
                    break;
                }
            }
        }
        TopicLinks::Many(links) => {
            let mut positions = [0usize; MAX_TOPICS];
            for (position, link) in positions.iter_mut().zip(links.iter()) {
                *position = topics[link.topic as usize].history.position_after(cursor)?;
            }
            let positions = &mut positions[..links.len()];
            loop {
                let next = links
                    .iter()
                    .zip(positions.iter())
                    .filter_map(|(link, &position)| {
                        topics[link.topic as usize].history.get(position)
                    })
                    .min_by_key(|publication| publication.seq);
                let Some(publication) = next else {
                    break;
                };
                // The same event in several of its topics has one `Seq`: step past it in each.
                for (link, position) in links.iter().zip(positions.iter_mut()) {
                    let history = &topics[link.topic as usize].history;
                    if history
                        .get(*position)
                        .is_some_and(|p| p.seq == publication.seq)
                    {
                        *position += 1;
                    }
                }
                if !push(publication) {
                    break;
                }
            }
        }
    }
    Ok(Gathered {
        len,
        passed,
        examined,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::broadcast::history::{Audience, Publication};
    use crate::broadcast::subscriber::TopicLink;
    use crate::broadcast::topic::TopicId;

    /// A socket that takes at most `per_write` bytes a write and is full every other write.
    struct Trickle {
        taken: Vec<u8>,
        per_write: usize,
        writes: usize,
    }

    impl Trickle {
        fn new(per_write: usize) -> Self {
            Self {
                taken: Vec::new(),
                per_write,
                writes: 0,
            }
        }
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.writes += 1;
            if self.writes % 2 == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut room = self.per_write;
            for buf in bufs {
                let n = buf.len().min(room);
                self.taken.extend_from_slice(&buf[..n]);
                room -= n;
            }
            Ok(self.per_write - room)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A subscriber's write state, without a socket.
    struct Reader {
        progress: PackedProgress,
        cursor: Seq,
        links: TopicLinks,
        access: Option<Selectors>,
    }

    impl Reader {
        fn of(topics: &[TopicId]) -> Self {
            let links = topics
                .iter()
                .map(|&topic| TopicLink { topic, index: 0 })
                .collect();
            Self {
                progress: PackedProgress::IDLE,
                cursor: 0,
                links: TopicLinks::new(links),
                access: None,
            }
        }

        /// Flushes into `out` until caught up, as writability events would; returns the
        /// frames completed.
        fn drain(&mut self, out: &mut Trickle, topics: &[Topic]) -> u64 {
            let mut delivered = Delivered::default();
            let before = out.taken.len();
            for _ in 0..10_000 {
                let flushed = flush_to(
                    &mut *out,
                    &mut self.progress,
                    &mut self.cursor,
                    &self.links,
                    topics,
                    self.access.as_ref(),
                    &mut delivered,
                );
                match flushed {
                    Flushed::CaughtUp => {
                        assert_eq!(delivered.bytes, (out.taken.len() - before) as u64);
                        return delivered.frames;
                    }
                    Flushed::Blocked => {}
                    other => panic!("{other:?}"),
                }
            }
            panic!("never caught up");
        }
    }

    fn frame(seq: Seq) -> Bytes {
        Bytes::from(format!(
            "id: {seq}\ndata: {}\n\n",
            "x".repeat(seq as usize % 7)
        ))
    }

    /// Topics `count`, with each `(seq, topics)` published in order.
    fn published(count: usize, events: &[(Seq, &[TopicId])]) -> Vec<Topic> {
        let events: Vec<_> = events.iter().map(|&(seq, ids)| (seq, ids, None)).collect();
        published_to(count, &events)
    }

    /// As [`published`], each event private to the topic names given, or public.
    fn published_to(count: usize, events: &[(Seq, &[TopicId], Option<&str>)]) -> Vec<Topic> {
        let mut topics: Vec<Topic> = (0..count).map(|_| Topic::new(1000)).collect();
        for &(seq, ids, private) in events {
            let publication = Arc::new(Publication {
                seq,
                topics: ids.into(),
                frame: frame(seq),
                published_at: std::time::Instant::now(),
                audience: private.map_or(Audience::Everyone, |name| {
                    Audience::Allowed(Box::new([name.into()]))
                }),
            });
            for &id in ids {
                topics[id as usize].history.push(publication.clone());
            }
        }
        topics
    }

    fn frames(seqs: impl IntoIterator<Item = Seq>) -> Vec<u8> {
        seqs.into_iter()
            .flat_map(|seq| frame(seq).to_vec())
            .collect()
    }

    #[test]
    fn short_writes_deliver_whole_frames_in_order() {
        let events: Vec<(Seq, &[TopicId])> = (1..=150).map(|seq| (seq, &[0][..])).collect();
        let topics = published(1, &events);
        for per_write in [1, 3, 7, 64, 4096] {
            let mut out = Trickle::new(per_write);
            let mut reader = Reader::of(&[0]);
            assert_eq!(reader.drain(&mut out, &topics), 150, "{per_write} a write");
            assert_eq!(out.taken, frames(1..=150), "{per_write} a write");
            assert_eq!(reader.cursor, 150);
        }
    }

    #[test]
    fn an_event_in_several_topics_is_sent_once_in_publish_order() {
        let events: [(Seq, &[TopicId]); 5] =
            [(1, &[0]), (2, &[1]), (3, &[0, 1]), (4, &[2]), (5, &[1])];
        let topics = published(3, &events);
        let mut out = Trickle::new(5);
        let mut reader = Reader::of(&[1, 0]);
        reader.drain(&mut out, &topics);
        assert_eq!(out.taken, frames([1, 2, 3, 5]));
    }

    #[test]
    fn private_frames_reach_only_a_token_that_allows_them_and_are_passed_by_the_rest() {
        let events: [(Seq, &[TopicId], Option<&str>); 5] = [
            (1, &[0], Some("secret")),
            (2, &[0], None),
            (3, &[0], Some("secret")),
            (4, &[0], Some("other")),
            (5, &[0], Some("secret")),
        ];
        let topics = published_to(1, &events);
        let mut anonymous = Reader::of(&[0]);
        let mut out = Trickle::new(1000);
        anonymous.drain(&mut out, &topics);
        assert_eq!(out.taken, frames([2]));
        assert_eq!(anonymous.cursor, 5, "the cursor passes what it may not see");
        let mut allowed = Reader::of(&[0]);
        allowed.access = Some(Selectors::from_claim(["secret"]));
        let mut out = Trickle::new(3);
        allowed.drain(&mut out, &topics);
        assert_eq!(out.taken, frames([1, 2, 3, 5]));
        let mut everything = Reader::of(&[0]);
        everything.access = Some(Selectors::from_claim(["*"]));
        let mut out = Trickle::new(1000);
        everything.drain(&mut out, &topics);
        assert_eq!(out.taken, frames(1..=5));
    }

    #[test]
    fn a_partial_keep_alive_is_finished_before_the_next_frame() {
        let topics = published(1, &[(1, &[0])]);
        let mut reader = Reader::of(&[0]);
        let mut out = Trickle::new(4);
        let mut delivered = Delivered::default();
        assert_eq!(
            keep_alive(&mut out, &mut reader.progress, &mut delivered),
            KeptAlive::Wrote
        );
        assert_eq!(delivered.bytes, 4);
        assert_eq!(reader.progress.get(), Progress::KeepAlive(4));
        reader.drain(&mut out, &topics);
        let mut expected = KEEP_ALIVE.to_vec();
        expected.extend(frames([1]));
        assert_eq!(out.taken, expected);
    }

    #[test]
    fn a_cursor_behind_what_history_dropped_has_lagged() {
        let events: Vec<(Seq, &[TopicId])> = (1..=5).map(|seq| (seq, &[0][..])).collect();
        let mut topics = published(1, &events);
        topics[0].history.drop_through(2);
        let mut reader = Reader::of(&[0]);
        let flushed = flush_to(
            Trickle::new(100),
            &mut reader.progress,
            &mut reader.cursor,
            &reader.links,
            &topics,
            None,
            &mut Delivered::default(),
        );
        assert_eq!(flushed, Flushed::Lagged);
        reader.cursor = 2;
        let mut out = Trickle::new(100);
        reader.drain(&mut out, &topics);
        assert_eq!(out.taken, frames(3..=5));
    }

    #[test]
    fn single_messages_are_written_whole_or_not_at_all() {
        assert!(write_whole(Trickle::new(100), b"retry: 1000\n\n"));
        assert!(!write_whole(Trickle::new(5), b"retry: 1000\n\n"));
    }
}
