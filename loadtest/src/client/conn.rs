//! One subscriber connection: its socket, where it is in the response, and its accounting.
//!
//! A connection writes its request when the socket first becomes writable, reads the response
//! head (copying into a carry buffer only if the head is split across reads), then streams the
//! body through the chunk decoder (only for chunked responses) into the SSE parser.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;

use super::chunked::Chunked;
use super::seq::Streams;
use super::sse::Parser;
use super::tally::Tally;
use crate::head::{self, Malformed, ResponseHead};

/// Where a connection is in its life.
#[derive(Debug)]
pub enum Phase {
    /// Connecting; `written` bytes of the request are out.
    Request {
        /// Request bytes already written.
        written: usize,
        /// The request head: shared by all, or this connection's own if it carries a token,
        /// dropped once written.
        head: Arc<[u8]>,
    },
    /// Waiting for the whole response head; bytes of a split head so far.
    Head {
        /// The head's bytes received so far, only while it is split across reads.
        carry: Vec<u8>,
    },
    /// Streaming events.
    Body {
        /// The chunk decoder, for `Transfer-Encoding: chunked` responses.
        chunked: Option<Chunked>,
        /// The event-stream parser.
        sse: Parser,
    },
}

/// One subscriber.
#[derive(Debug)]
pub struct Conn {
    /// The socket, registered with the thread's poll under this connection's slab key.
    pub stream: TcpStream,
    /// Where it is in the response.
    pub phase: Phase,
    /// Which events it received, stream by stream.
    pub seq: Streams,
}

/// What became of a connection after some IO.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still going; `streaming` is true if its head arrived in this step.
    Open { headed: bool },
    /// It ended (closed by the server, or failed); counted in the tally already.
    Done,
}

/// Why a response head was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// Not a `200` with `text/event-stream`; the status.
    Refused(u16),
    /// Not HTTP, or too long.
    Malformed,
}

/// Parses a subscriber's response head from `bytes`: `Ok(None)` means more bytes are needed.
pub fn parse_head(bytes: &[u8]) -> Result<Option<ResponseHead>, HeadError> {
    match head::response(bytes) {
        Ok(Some(head)) if head.status == 200 && head.event_stream => Ok(Some(head)),
        Ok(Some(head)) => Err(HeadError::Refused(head.status)),
        Ok(None) => Ok(None),
        Err(Malformed) => Err(HeadError::Malformed),
    }
}

impl Conn {
    /// Writes the rest of the request head; true once all of it is out.
    pub fn write_request(&mut self) -> io::Result<bool> {
        let Phase::Request { written, head } = &mut self.phase else {
            return Ok(true);
        };
        while *written < head.len() {
            match self.stream.write(&head[*written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => *written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.phase = Phase::Head { carry: Vec::new() };
        Ok(true)
    }

    /// Reads what the socket has into `scratch` and parses it. `drain` reads until the socket
    /// would block; otherwise a short read ends the step, which saves a syscall per event and
    /// is safe with edge-triggered polling (new bytes raise a new edge).
    pub fn read(
        &mut self,
        scratch: &mut [u8],
        drain: bool,
        tally: &mut Tally,
        now_nanos: impl Fn() -> u64,
    ) -> Outcome {
        let mut headed = false;
        loop {
            let n = match self.stream.read(scratch) {
                Ok(0) => {
                    self.end(tally, None);
                    return Outcome::Done;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.end(tally, Some(e));
                    return Outcome::Done;
                }
            };
            match self.consume(&scratch[..n], tally, &now_nanos) {
                Ok(h) => headed |= h,
                Err(()) => return Outcome::Done,
            }
            if n < scratch.len() && !drain {
                break;
            }
        }
        Outcome::Open { headed }
    }

    /// Parses bytes just read; `Ok(true)` if the head completed; `Err` if the connection
    /// failed (counted).
    fn consume(
        &mut self,
        bytes: &[u8],
        tally: &mut Tally,
        now_nanos: &impl Fn() -> u64,
    ) -> Result<bool, ()> {
        let mut headed = false;
        let mut joined = Vec::new();
        let mut start = 0;
        if let Phase::Head { carry } = &mut self.phase {
            if !carry.is_empty() {
                carry.extend_from_slice(bytes);
                joined = std::mem::take(carry);
            }
            let head_bytes = if joined.is_empty() { bytes } else { &joined };
            match parse_head(head_bytes) {
                Ok(None) => {
                    if joined.is_empty() {
                        joined = bytes.to_vec();
                    }
                    self.phase = Phase::Head { carry: joined };
                    return Ok(false);
                }
                Ok(Some(head)) => {
                    self.phase = Phase::Body {
                        chunked: head.chunked.then(Chunked::default),
                        sse: Parser::default(),
                    };
                    headed = true;
                    tally.subscribers += 1;
                    start = head.len;
                }
                Err(HeadError::Refused(status)) => {
                    tally.fail(
                        |t| &mut t.failed_status,
                        || format!("answered {status}, not a 200 event stream"),
                    );
                    return Err(());
                }
                Err(HeadError::Malformed) => {
                    tally.fail(
                        |t| &mut t.failed_protocol,
                        || "malformed response head".into(),
                    );
                    return Err(());
                }
            }
        }
        let body = if joined.is_empty() {
            &bytes[start..]
        } else {
            &joined[start..]
        };
        if let Phase::Body { chunked, sse } = &mut self.phase {
            if body.is_empty() {
                return Ok(headed);
            }
            let now = now_nanos();
            let seq = &mut self.seq;
            let mut on_frame = |frame| tally.frame(frame, seq, now);
            let framed = match chunked {
                Some(chunked) => chunked
                    .feed(body, &mut |data| sse.feed(data, &mut on_frame))
                    .map(drop),
                None => {
                    sse.feed(body, &mut on_frame);
                    Ok(())
                }
            };
            if framed.is_err() {
                tally.fail(
                    |t| &mut t.failed_protocol,
                    || "malformed chunked body".into(),
                );
                return Err(());
            }
        }
        Ok(headed)
    }

    /// Counts the end of this connection: the server closed it, or an error ended it.
    fn end(&mut self, tally: &mut Tally, error: Option<io::Error>) {
        match (&self.phase, error) {
            (Phase::Body { .. }, _) => {
                tally.closed_by_server += 1;
            }
            (_, Some(e)) => tally.fail(|t| &mut t.failed_connect, || format!("connection: {e}")),
            (_, None) => tally.fail(
                |t| &mut t.failed_protocol,
                || "closed before the response head".into(),
            ),
        }
    }

    /// True once the response head arrived.
    pub fn is_streaming(&self) -> bool {
        matches!(self.phase, Phase::Body { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_head, HeadError};

    #[test]
    fn only_a_200_event_stream_is_accepted() {
        let stream = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
        assert_eq!(parse_head(stream).unwrap().unwrap().len, stream.len());
        assert_eq!(parse_head(&stream[..20]), Ok(None));
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n";
        assert_eq!(parse_head(not_found), Err(HeadError::Refused(404)));
        let html = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n";
        assert_eq!(parse_head(html), Err(HeadError::Refused(200)));
        assert_eq!(parse_head(b"SSH-2.0-x\r\n\r\n"), Err(HeadError::Malformed));
    }
}
