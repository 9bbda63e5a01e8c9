//! One subscriber, as a shard holds it.
//!
//! After its response head, a subscriber is only this struct in its shard's table. It owns no
//! task, timer, span, buffer or queue: what it has not been sent yet is named by its cursor
//! into the shared history of its topics.

use std::mem::size_of;

use super::history::Seq;
use super::topic::TopicId;
use super::wheel::WheelLink;
use crate::address::AddressKey;

/// A subscriber: 48 bytes, plus 4 in the subscriber list of each of its topics.
///
/// | field      | bytes | what                                                          |
/// |------------|-------|---------------------------------------------------------------|
/// | `socket`   | 4     | the fd; its epoll registration keeps the slot as token, in the kernel |
/// | `progress` | 4     | a frame or keep-alive partly written, waiting for writability |
/// | `cursor`   | 8     | the `Seq` of the last frame fully written                     |
/// | `topics`   | 16    | one topic link inline, or a boxed slice of several            |
/// | `wheel`    | 12    | its keep-alive wheel links and the tick of its last write     |
/// | `address`  | 4     | its client address's entry, given back when it goes           |
///
/// A subscriber of several topics adds a heap slice of 8 bytes per topic.
#[derive(Debug)]
pub struct Subscriber {
    /// The non-blocking socket, registered in the shard's poll (by fd) with the slot as token.
    pub socket: std::net::TcpStream,
    /// What is partly written; `Idle` unless the socket is full.
    pub progress: PackedProgress,
    /// The `Seq` of the last frame fully written to this subscriber.
    pub cursor: Seq,
    /// Its topics, each with its index in that topic's subscriber list.
    pub topics: TopicLinks,
    /// Its place in the keep-alive wheel.
    pub wheel: WheelLink,
    /// Its connection's count against its client address.
    pub address: AddressKey,
}

const _: () = assert!(size_of::<Subscriber>() <= 48);

/// How far a subscriber's writes have got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing partly written; the subscriber is sent new frames as they come.
    Idle,
    /// The socket was full: this many bytes of the first frame after the cursor are written,
    /// and the rest follows when the socket is writable again.
    Frame(u32),
    /// The socket was full in the middle of a keep-alive comment, this many bytes written.
    KeepAlive(u8),
}

/// Frames are at most this long, so that a partial write's offset fits a [`PackedProgress`]:
/// a publish body is at most 16 MiB, and encoding adds at most 7 bytes per byte of data.
pub const MAX_FRAME_BYTES: usize = (1 << 30) - 1;

/// A [`Progress`] in 4 bytes: two bits of state and a 30-bit offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedProgress(u32);

const FRAME: u32 = 1 << 30;
const KEEP_ALIVE: u32 = 2 << 30;
const OFFSET: u32 = FRAME - 1;

impl PackedProgress {
    /// Nothing partly written.
    pub const IDLE: Self = Self(0);

    /// The progress it holds.
    pub fn get(self) -> Progress {
        let offset = self.0 & OFFSET;
        match self.0 & !OFFSET {
            FRAME => Progress::Frame(offset),
            KEEP_ALIVE => Progress::KeepAlive(offset as u8),
            _ => Progress::Idle,
        }
    }

    /// Holds `progress`.
    pub fn set(&mut self, progress: Progress) {
        self.0 = match progress {
            Progress::Idle => 0,
            Progress::Frame(offset) => {
                debug_assert!(offset as usize <= MAX_FRAME_BYTES);
                FRAME | offset & OFFSET
            }
            Progress::KeepAlive(offset) => KEEP_ALIVE | u32::from(offset),
        };
    }

    /// Whether nothing is partly written.
    pub fn is_idle(self) -> bool {
        self == Self::IDLE
    }
}

/// A subscriber's membership in one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLink {
    /// The topic.
    pub topic: TopicId,
    /// The subscriber's index in the topic's subscriber list.
    pub index: u32,
}

/// A subscriber's topics: one inline (the common case), several on the heap.
#[derive(Debug)]
pub enum TopicLinks {
    /// Subscribed to a single topic.
    One(TopicLink),
    /// Subscribed to several topics.
    Many(Box<[TopicLink]>),
}

impl TopicLinks {
    /// Holds `links`, inline if there is one.
    pub fn new(links: Vec<TopicLink>) -> Self {
        match <[TopicLink; 1]>::try_from(links) {
            Ok([link]) => Self::One(link),
            Err(links) => Self::Many(links.into_boxed_slice()),
        }
    }

    /// The links, in subscribe order.
    pub fn as_slice(&self) -> &[TopicLink] {
        match self {
            Self::One(link) => std::slice::from_ref(link),
            Self::Many(links) => links,
        }
    }

    /// The links, to update their indexes.
    pub fn as_mut_slice(&mut self) -> &mut [TopicLink] {
        match self {
            Self::One(link) => std::slice::from_mut(link),
            Self::Many(links) => links,
        }
    }

    /// Whether `topic` is among them.
    pub fn contains(&self, topic: TopicId) -> bool {
        self.as_slice().iter().any(|link| link.topic == topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_round_trips_through_four_bytes() {
        let mut packed = PackedProgress::IDLE;
        for progress in [
            Progress::Frame(0),
            Progress::Frame(MAX_FRAME_BYTES as u32),
            Progress::KeepAlive(0),
            Progress::KeepAlive(13),
            Progress::Idle,
        ] {
            packed.set(progress);
            assert_eq!(packed.get(), progress);
        }
        assert!(packed.is_idle());
        assert_eq!(size_of::<PackedProgress>(), 4);
    }
}
