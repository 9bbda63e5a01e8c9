//! Thin wrappers over private parsers, for the fuzz targets in `fuzz/` and the property tests in
//! `tests/properties.rs` only: not part of ssecast's API, hidden from its docs, and free to
//! change with the parsers they wrap.
//!
//! Each `check_*` function runs one parser over arbitrary input and panics when a property the
//! server relies on does not hold, so that a fuzz target is one call. Panicking is their job:
//! nothing here is reachable from the network.
#![doc(hidden)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::conn::handback::{Framer, Head, State};
use crate::conn::head::{self, HeadError};
use crate::http::publish::{self, PublishError};
use crate::sse::event::{self, Draft};

// === head ===

/// What `conn::head` makes of the bytes read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadParsed {
    /// Not a whole head yet: read more.
    More,
    /// A whole head of this many bytes starts the buffer.
    Head(usize),
    /// Refused as too large (`431`).
    TooLarge,
    /// Refused as malformed (`400`).
    Malformed,
}

/// The request-head parser of `conn::head`, with a limit of `max_bytes`.
pub fn parse_head(buf: &[u8], max_bytes: usize) -> HeadParsed {
    match head::parse(buf, max_bytes) {
        Ok(None) => HeadParsed::More,
        Ok(Some(len)) => HeadParsed::Head(len),
        Err(HeadError::TooLarge(_)) => HeadParsed::TooLarge,
        Err(HeadError::Malformed(_)) => HeadParsed::Malformed,
        Err(other) => panic!("parsing does no IO, yet: {other}"),
    }
}

/// Checks the head parser on `input`, at the server's default limit and at a small one: it
/// does not panic; a head it finds lies within the input and ends with an empty line; and its
/// answer does not depend on how the input was split into reads. The reader parses the whole
/// buffer after each read, so that means: every prefix shorter than a head it finds needs more,
/// every longer one gives the same head, and once a prefix is refused every longer one is too
/// (as `431` or `400`: a head both too long and malformed may get either, by where reads end).
pub fn check_head(input: &[u8]) {
    for max_bytes in [8 * 1024, 64] {
        let whole = parse_head(input, max_bytes);
        if let HeadParsed::Head(len) = whole {
            assert!(
                len > 0 && len <= input.len() && len <= max_bytes,
                "head of {len} bytes in {} (limit {max_bytes})",
                input.len()
            );
            assert!(input[..len].ends_with(b"\n"), "a head ends with a line end");
        }
        let mut refused = false;
        for split in split_points(input.len(), whole) {
            let part = parse_head(&input[..split], max_bytes);
            let consistent = match whole {
                HeadParsed::Head(len) if split < len => part == HeadParsed::More,
                HeadParsed::Head(_) => part == whole,
                HeadParsed::More => part == HeadParsed::More,
                HeadParsed::TooLarge | HeadParsed::Malformed if refused => part != HeadParsed::More,
                HeadParsed::TooLarge | HeadParsed::Malformed => true,
            };
            assert!(
                consistent,
                "{part:?} for the first {split} bytes, {whole:?} for all {} (limit {max_bytes})",
                input.len()
            );
            refused = part != HeadParsed::More;
        }
    }
}

/// Every prefix length of a short input, or a spread of them (with the ones around a head's end)
/// of a long one, ascending.
fn split_points(len: usize, whole: HeadParsed) -> Vec<usize> {
    if len <= 300 {
        return (0..=len).collect();
    }
    let mut points: Vec<usize> = (0..=len).step_by(len / 128).collect();
    points.push(len);
    if let HeadParsed::Head(head) = whole {
        points.extend([head - 1, head, (head + 1).min(len)]);
    }
    points.sort_unstable();
    points.dedup();
    points
}

// === framer ===

/// One request as the handback's framer delimited it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed {
    /// Where its bytes start in the input, empty lines before its head included.
    pub start: usize,
    /// Where its bytes end.
    pub end: usize,
    /// Its method, as httparse read it.
    pub method: String,
    /// Its request target, as httparse read it.
    pub target: String,
    /// Its body without chunk framing or trailers, as the framer stepped over it.
    pub body: Vec<u8>,
}

/// Why the framer stopped following requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The input ended at a request boundary.
    End,
    /// The framer switched to pass-through (a head or a body it does not follow): hyper frames
    /// the rest of the connection.
    Declined,
    /// The input ended inside a head or a request; hyper sees that EOF and decides.
    Cut,
}

/// How the framer split an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framing {
    /// The requests it delimited whole, in order.
    pub requests: Vec<Framed>,
    /// Why it stopped after them.
    pub stop: Stop,
}

fn never_takeover(_: &httparse::Request<'_, '_>) -> bool {
    false
}

/// Runs the handback's framer over `input` as `Handback` does, the socket giving `reads` bytes
/// per read in turn (all at once if empty), and steps over each body in the framer's own units
/// to keep its bytes. No head is taken over.
pub fn frame(input: &[u8], reads: &[usize]) -> Framing {
    frame_with(input, reads, true)
}

/// As [`frame`], handing the framer every byte read at once, as `Handback` does; bodies and
/// targets are not kept.
fn frame_with(input: &[u8], reads: &[usize], keep: bool) -> Framing {
    let mut framer = Framer::default();
    let mut sizes = reads.iter().cycle();
    let mut unread = input;
    let mut buf: Vec<u8> = Vec::new();
    let mut at = 0;
    let mut requests = Vec::new();
    let mut current: Option<Framed> = None;
    let mut read = |buf: &mut Vec<u8>| {
        if unread.is_empty() {
            return false;
        }
        let n = sizes.next().map_or(unread.len(), |&n| n.max(1));
        let (now, later) = unread.split_at(n.min(unread.len()));
        buf.extend_from_slice(now);
        unread = later;
        true
    };
    let stop = loop {
        match framer.state {
            State::Boundary => {
                if let Some(mut done) = current.take() {
                    done.end = at;
                    requests.push(done);
                }
                match framer.next_head(&buf, never_takeover) {
                    Head::Partial if read(&mut buf) => {}
                    Head::Partial if buf.is_empty() => break Stop::End,
                    Head::Partial => break Stop::Cut,
                    Head::Request => {
                        let (method, target) = if keep {
                            request_line(&buf)
                        } else {
                            <_>::default()
                        };
                        current = Some(Framed {
                            start: at,
                            end: at,
                            method,
                            target,
                            body: Vec::new(),
                        });
                    }
                    Head::Pass => break Stop::Declined,
                    Head::Takeover => unreachable!("nothing is taken over"),
                }
            }
            State::Pass => break Stop::Declined,
            State::Takeover => unreachable!("nothing is taken over"),
            State::Head { .. } | State::Body(_) => {
                if buf.is_empty() && !read(&mut buf) {
                    break Stop::Cut;
                }
                // Body bytes are what the framer lets hyper read straight from the socket.
                let direct = framer.direct().filter(|&limit| limit > 0);
                let take = match (framer.state, direct) {
                    _ if !keep => buf.len(),
                    (State::Head { left, .. }, _) => left.min(buf.len()),
                    (_, Some(limit)) => {
                        usize::try_from(limit).map_or(buf.len(), |l| l.min(buf.len()))
                    }
                    // Chunk framing, a byte at a time.
                    (_, None) => 1,
                };
                let n = framer.advance(&buf[..take]);
                assert!(n > 0 && n <= take, "advance took {n} of {take} bytes");
                if keep {
                    assert_eq!(n, take, "the framer stops only at a request's end");
                    if let (Some(_), Some(request)) = (direct, current.as_mut()) {
                        request.body.extend_from_slice(&buf[..n]);
                    }
                }
                buf.drain(..n);
                at += n;
            }
        }
    };
    Framing { requests, stop }
}

/// The method and target of the head at the front of `buf`, which httparse has parsed whole.
fn request_line(buf: &[u8]) -> (String, String) {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let _ = request.parse(buf);
    let method = request.method.unwrap_or_default().to_owned();
    let target = request.path.unwrap_or_default().to_owned();
    (method, target)
}

/// One request as hyper's HTTP/1.1 server read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Its method.
    pub method: String,
    /// Its target, as `Uri` displays it.
    pub target: String,
    /// Its body, or `None` if hyper failed it.
    pub body: Option<Vec<u8>>,
}

/// Serves `input` with a real `hyper::server::conn::http1` connection over an in-memory duplex
/// (the client closing its side after the input) and returns the requests its service was
/// called with, in order, each body read to its end.
pub fn hyper_requests(input: &[u8]) -> Vec<Served> {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|runtime| runtime.block_on(serve_with_hyper(input)))
}

async fn serve_with_hyper(input: &[u8]) -> Vec<Served> {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (mut answers, mut requests) = tokio::io::split(client);
    let write = async {
        let _ = requests.write_all(input).await;
        let _ = requests.shutdown().await;
    };
    let read = async {
        let mut sink = Vec::new();
        let _ = answers.read_to_end(&mut sink).await;
    };
    let log: Arc<Mutex<Vec<Served>>> = Arc::default();
    let service = {
        let log = log.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let log = log.clone();
            async move {
                let index = {
                    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                    log.push(Served {
                        method: request.method().to_string(),
                        target: request.uri().to_string(),
                        body: None,
                    });
                    log.len() - 1
                };
                let body = request.into_body().collect().await;
                let body = body.ok().map(|body| body.to_bytes().to_vec());
                log.lock().unwrap_or_else(PoisonError::into_inner)[index].body = body;
                Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
            }
        })
    };
    // Half-close, so that the input's end does not cut short a response hyper still writes.
    let conn = http1::Builder::new()
        .half_close(true)
        .serve_connection(TokioIo::new(server), service);
    let serve = async {
        let _ = conn.await;
    };
    let all = async { tokio::join!(write, read, serve) };
    tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .expect("hyper ends at the end of its input");
    let log = log.lock().unwrap_or_else(PoisonError::into_inner);
    log.clone()
}

/// Checks the handback's framer on `input`: it does not panic; where requests end does not
/// depend on how the input was split into reads, nor on whether the framer is handed a byte at
/// a time or all it has; and every request it delimits whole is the request hyper reads at the
/// same place (same method, target and body), unless hyper stopped serving before it. A body
/// hyper fails ends the connection, so nothing the framer says after it matters.
pub fn check_framer(input: &[u8]) {
    let framing = frame(input, &[]);
    let mut reads: Vec<&[usize]> = vec![&[], &[7, 3, 64], &[1000]];
    // One byte per read parses a partial head again after each byte: quadratic.
    if input.len() <= 512 {
        reads.push(&[1]);
    }
    let ends = |framing: &Framing| -> Vec<(usize, usize)> {
        framing.requests.iter().map(|r| (r.start, r.end)).collect()
    };
    for reads in reads {
        for keep in [true, false] {
            let other = frame_with(input, reads, keep);
            assert_eq!(
                (ends(&other), other.stop),
                (ends(&framing), framing.stop),
                "reads of {reads:?} bytes, bodies kept: {keep}"
            );
        }
    }
    let served = hyper_requests(input);
    for (index, (ours, theirs)) in framing.requests.iter().zip(&served).enumerate() {
        assert_eq!(ours.method, theirs.method, "request {index}: method");
        if ours.target.starts_with('/') {
            // `Uri` drops a fragment.
            let target = ours.target.split('#').next().unwrap_or_default();
            assert_eq!(target, theirs.target, "request {index}: target");
        }
        match &theirs.body {
            Some(body) => assert_eq!(&ours.body, body, "request {index}: body"),
            None => assert_eq!(
                index + 1,
                served.len(),
                "hyper served a request after failing a body"
            ),
        }
    }
}

// === publish ===

/// Parses a form publish body, validates it and encodes it under id `1`, checking the frame as
/// [`check_frame`] does. Returns the frame, or `None` if the body was refused.
pub fn check_publish_form(body: &[u8]) -> Option<Bytes> {
    check_publish(publish::parse_form(body))
}

/// As [`check_publish_form`], for a JSON publish body.
pub fn check_publish_json(body: &[u8]) -> Option<Bytes> {
    check_publish(publish::parse_json(body))
}

fn check_publish(draft: Result<Draft, PublishError>) -> Option<Bytes> {
    let draft = draft.ok()?;
    let copy = draft.clone();
    let event = draft.validate().ok()?;
    let frame = event::encode("1", &event);
    check_frame(&frame, &copy);
    Some(frame)
}

/// Checks a frame encoded from `draft` under id `1`: one event and only one (a single empty line,
/// at its end); no CR anywhere (a parser would end a line there); every line a field of ours;
/// and its fields read back as `draft`'s, data with CRLF and CR as LF.
pub fn check_frame(frame: &[u8], draft: &Draft) {
    let text = std::str::from_utf8(frame).expect("a frame is UTF-8");
    let body = text
        .strip_suffix("\n\n")
        .expect("a frame ends with an empty line");
    assert!(!body.contains("\n\n"), "one frame, one event: {text:?}");
    assert!(!text.contains('\r'), "no CR in a frame: {text:?}");
    let (mut id, mut event, mut retry, mut data) = (None, None, None, Vec::new());
    for line in body.split('\n') {
        let (field, value) = line.split_once(": ").expect("a field line");
        match field {
            "id" => id = Some(value),
            "event" => event = Some(value),
            "retry" => retry = Some(value),
            "data" => data.push(value),
            _ => panic!("unknown field in {text:?}"),
        }
    }
    assert_eq!(id, Some("1"));
    assert_eq!(event, draft.event.as_deref());
    assert_eq!(retry.map(str::to_owned), draft.retry.map(|r| r.to_string()));
    let normalised = draft.data.replace("\r\n", "\n").replace('\r', "\n");
    assert_eq!(data.join("\n"), normalised);
}
