//! One subscriber, as a shard holds it.
//!
//! After its response head, a subscriber is only this struct in its shard's table. It owns no
//! task, timer, span, buffer or queue: what it has not been sent yet is named by its cursor
//! into the shared history of its topics.

use std::mem::size_of;

use super::history::Seq;
use super::topic::TopicId;
use super::wheel::WheelLink;

/// A subscriber: 48 bytes, plus 4 in the subscriber list of each of its topics.
///
/// | field      | bytes | what                                                          |
/// |------------|-------|---------------------------------------------------------------|
/// | `socket`   | 4     | the fd; its epoll registration keeps the slot as token, in the kernel |
/// | `progress` | 8     | a frame or keep-alive partly written, waiting for writability |
/// | `cursor`   | 8     | the `Seq` of the last frame fully written                     |
/// | `topics`   | 16    | one topic link inline, or a boxed slice of several            |
/// | `wheel`    | 12    | its keep-alive wheel links and the tick of its last write     |
///
/// A subscriber of several topics adds a heap slice of 8 bytes per topic.
#[derive(Debug)]
pub struct Subscriber {
    /// The non-blocking socket, registered in the shard's poll (by fd) with the slot as token.
    pub socket: std::net::TcpStream,
    /// What is partly written; `Idle` unless the socket is full.
    pub progress: Progress,
    /// The `Seq` of the last frame fully written to this subscriber.
    pub cursor: Seq,
    /// Its topics, each with its index in that topic's subscriber list.
    pub topics: TopicLinks,
    /// Its place in the keep-alive wheel.
    pub wheel: WheelLink,
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
