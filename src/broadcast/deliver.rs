//! Writing shared frames straight to a subscriber's socket.
//!
//! A flush gathers the frames after the subscriber's cursor from the history of each of its
//! topics, merged in publish order (an event in two of its topics has one `Seq` and is sent
//! once), and writes up to [`MAX_WRITEV_BUFS`] of them in one vectored write from a stack
//! array: nothing is copied or allocated per frame. A subscriber that is behind catches up in a
//! few large writes rather than one small write per event.

use std::io::{self, IoSlice, Write};

use super::history::{Lagged, Publication, Seq};
use super::subscriber::{PackedProgress, Progress, Subscriber, TopicLinks};
use super::topic::Topic;
use crate::sse::event::KEEP_ALIVE;
use crate::sse::topic::MAX_TOPICS;

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

/// Writes every frame after `subscriber.cursor` it can; `frames` counts the frames completed.
pub fn flush(subscriber: &mut Subscriber, topics: &[Topic], frames: &mut u64) -> Flushed {
    loop {
        let mut bufs = [IoSlice::new(&[]); MAX_WRITEV_BUFS];
        // The `Seq` of each buffer's frame; 0 marks the rest of a keep-alive comment.
        let mut seqs = [0 as Seq; MAX_WRITEV_BUFS];
        let mut len = 0;
        let mut first_offset = 0;
        match subscriber.progress.get() {
            Progress::KeepAlive(written) => {
                bufs[0] = IoSlice::new(&KEEP_ALIVE[written as usize..]);
                len = 1;
            }
            Progress::Frame(written) => first_offset = written as usize,
            Progress::Idle => {}
        }
        match gather(
            subscriber,
            topics,
            first_offset,
            &mut bufs[len..],
            &mut seqs[len..],
        ) {
            Ok(gathered) => len += gathered,
            Err(Lagged) => return Flushed::Lagged,
        }
        if len == 0 {
            subscriber.progress = PackedProgress::IDLE;
            return Flushed::CaughtUp;
        }
        let total: usize = bufs[..len].iter().map(|buf| buf.len()).sum();
        let written = match (&subscriber.socket).write_vectored(&bufs[..len]) {
            Ok(0) => return Flushed::Gone,
            Ok(written) => written,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if subscriber.progress.is_idle() {
                    subscriber.progress.set(Progress::Frame(0));
                }
                return Flushed::Blocked;
            }
            Err(_) => return Flushed::Gone,
        };
        advance(
            subscriber,
            &bufs[..len],
            &seqs[..len],
            first_offset,
            written,
            frames,
        );
        // A full or partial write both go round again: more may be waiting, and a partial
        // write is followed by one that sees `WouldBlock`, which arms the edge-triggered
        // writability event.
        if written == total && len < MAX_WRITEV_BUFS {
            subscriber.progress = PackedProgress::IDLE;
            return Flushed::CaughtUp;
        }
    }
}

/// Moves the cursor past the frames `written` bytes completed and records a partial one.
fn advance(
    subscriber: &mut Subscriber,
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
            subscriber.progress = PackedProgress::IDLE;
            if seq != 0 {
                subscriber.cursor = seq;
                *frames += 1;
                offset = 0;
            }
            continue;
        }
        let progress = match subscriber.progress.get() {
            Progress::KeepAlive(done) if index == 0 && seq == 0 => {
                Progress::KeepAlive(done + written as u8)
            }
            _ => Progress::Frame((offset + written) as u32),
        };
        subscriber.progress.set(progress);
        return;
    }
}

/// Fills `bufs` with the frames after the cursor, merged across topics; the first starts at
/// `first_offset`. Returns how many it filled.
fn gather<'a>(
    subscriber: &Subscriber,
    topics: &'a [Topic],
    first_offset: usize,
    bufs: &mut [IoSlice<'a>],
    seqs: &mut [Seq],
) -> Result<usize, Lagged> {
    let cursor = subscriber.cursor;
    let mut len = 0;
    let mut push = |seq: Seq, frame: &'a [u8]| {
        let skip = if len == 0 { first_offset } else { 0 };
        bufs[len] = IoSlice::new(frame.get(skip..).unwrap_or_default());
        seqs[len] = seq;
        len += 1;
        len < bufs.len()
    };
    match &subscriber.topics {
        TopicLinks::One(link) => {
            let history = &topics[link.topic as usize].history;
            let mut index = history.position_after(cursor)?;
            while let Some(publication) = history.get(index) {
                index += 1;
                if !push(publication.seq, &publication.frame) {
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
                let Some(Publication { seq, frame, .. }) = next else {
                    break;
                };
                // The same event in several of its topics has one `Seq`: step past it in each.
                for (link, position) in links.iter().zip(positions.iter_mut()) {
                    let history = &topics[link.topic as usize].history;
                    if history.get(*position).is_some_and(|p| p.seq == *seq) {
                        *position += 1;
                    }
                }
                if !push(*seq, frame) {
                    break;
                }
            }
        }
    }
    Ok(len)
}
