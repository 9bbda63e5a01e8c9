//! The attackers that hold connections open: slowloris, stalled bodies, unread pipelines and
//! subscribers that never read.
//!
//! Each is one thread over a fixed number of non-blocking sockets, visited once a tick: a
//! connection the server answered or closed is counted and opened again on the next tick
//! (except never-read subscribers, which are opened once and examined at the end).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::socket::{self, Heard};
use super::{wire, Context, Counts, MAX_ITERATIONS};

/// How often a slowloris connection sends its next byte.
const SLOW_TICK: Duration = Duration::from_secs(1);
/// How often the other holding attackers look at their connections.
const TICK: Duration = Duration::from_millis(250);
/// The receive buffer of a client that does not read: the server's writes stall sooner.
const SMALL_RECEIVE_BUFFER: usize = 4096;
/// The most an unread pipeline writes in one tick.
const MAX_PIPELINE_TICK_BYTES: usize = 64 * 1024;
/// The most a never-read subscriber reads at the end, to tell an open stream from a cut one.
const MAX_DRAIN_BYTES: u64 = 64 << 20;

/// One held connection and how much of its bytes went out.
struct Held {
    stream: TcpStream,
    sent: usize,
}

/// Opens a non-blocking connection for `context`, counting it.
fn open(context: &Context, counts: &mut Counts, receive_buffer: Option<usize>) -> Option<Held> {
    let opened = socket::connect(context.source, context.plan.target, receive_buffer)
        .and_then(|stream| stream.set_nonblocking(true).map(|()| stream));
    match opened {
        Ok(stream) => {
            counts.connections += 1;
            Some(Held { stream, sent: 0 })
        }
        Err(e) => {
            counts.connect_failed += 1;
            counts.error("connect", e);
            None
        }
    }
}

/// Counts what the server said on `held`; false if it is done with the connection.
fn still_open(held: &mut Held, counts: &mut Counts) -> bool {
    match socket::listen(&mut held.stream, &mut counts.bytes_received) {
        Heard::Nothing => true,
        Heard::Status(status) => {
            counts.status(status);
            false
        }
        Heard::Closed => {
            counts.cut += 1;
            false
        }
        Heard::Other => {
            counts.error("answer", "not an HTTP head");
            false
        }
    }
}

/// Writes what `stream` takes of `bytes` now; an error means the server is gone.
fn write_now(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    match stream.write(bytes) {
        Ok(n) => Ok(n),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

/// Visits `n` connections every `tick`, reopening those the server let go (reading its
/// answers first if `listens`); `step` writes to one and returns false once the server has
/// cut it.
fn hold_each(
    context: &Context,
    n: usize,
    tick: Duration,
    (listens, receive_buffer): (bool, Option<usize>),
    mut step: impl FnMut(&mut Held, &mut Counts) -> bool,
) -> Counts {
    let mut counts = Counts::default();
    let mut held: Vec<Option<Held>> = (0..n).map(|_| None).collect();
    let mut rounds = 0;
    while !context.done() && rounds < MAX_ITERATIONS {
        rounds += 1;
        for slot in held.iter_mut() {
            if context.done() {
                break;
            }
            if slot.is_none() {
                *slot = open(context, &mut counts, receive_buffer);
            }
            let Some(conn) = slot else {
                continue;
            };
            if (listens && !still_open(conn, &mut counts)) || !step(conn, &mut counts) {
                *slot = None;
            }
        }
        context.sleep(tick);
    }
    counts.open_at_end = held.iter().flatten().count() as u64;
    counts
}

/// Request heads one byte a second, never finished.
pub(crate) fn slowloris(context: &Context) -> Counts {
    let n = context.plan.sizes.slowloris;
    hold_each(context, n, SLOW_TICK, (true, None), |conn, counts| {
        send(conn, counts, &[wire::slow_byte(conn.sent)], 1)
    })
}

/// Publishes that declare a whole body, send part of it, and stall.
pub(crate) fn stalled_body(context: &Context) -> Counts {
    let plan = &context.plan;
    let sizes = &plan.sizes;
    let mut bytes = wire::post_head(
        &plan.publish_path,
        &plan.host,
        "application/json",
        sizes.body_bytes,
    );
    let head = bytes.len();
    bytes.extend(std::iter::repeat_n(
        b'x',
        sizes.stalled_sent.min(sizes.body_bytes),
    ));
    hold_each(
        context,
        sizes.stalled_bodies,
        TICK,
        (true, None),
        |conn, counts| match bytes.get(conn.sent..).filter(|rest| !rest.is_empty()) {
            Some(rest) => send(conn, counts, rest, head),
            None => true,
        },
    )
}

/// Writes what the socket takes of `bytes`, the next of the connection's request, counting the
/// request once its first `head` bytes are sent; false if the connection was cut.
fn send(conn: &mut Held, counts: &mut Counts, bytes: &[u8], head: usize) -> bool {
    match write_now(&mut conn.stream, bytes) {
        Ok(n) => {
            if conn.sent < head && conn.sent + n >= head {
                counts.requests += 1;
            }
            conn.sent += n;
            counts.bytes_sent += n as u64;
            true
        }
        Err(_) => {
            counts.cut += 1;
            false
        }
    }
}

/// Pipelined `GET /` requests, written as fast as the server takes them; answers never read.
pub(crate) fn unread_pipeline(context: &Context) -> Counts {
    let plan = &context.plan;
    let request = wire::get("/", &plan.host);
    let batch = request.repeat(64);
    let n = plan.sizes.unread_pipelines;
    let mut counts = hold_each(
        context,
        n,
        TICK,
        (false, Some(SMALL_RECEIVE_BUFFER)),
        |conn, counts| {
            let mut written = 0;
            while written < MAX_PIPELINE_TICK_BYTES {
                let at = conn.sent % batch.len();
                let Some(rest) = batch.get(at..) else {
                    return true;
                };
                match write_now(&mut conn.stream, rest) {
                    Ok(0) => return true,
                    Ok(n) => {
                        conn.sent += n;
                        written += n;
                        counts.bytes_sent += n as u64;
                    }
                    Err(_) => {
                        counts.cut += 1;
                        return false;
                    }
                }
            }
            true
        },
    );
    counts.requests = counts.bytes_sent / request.len().max(1) as u64;
    counts
}

/// Subscribers of the good clients' topic that never read; at the end each is read out to
/// tell the ones still streaming from those the server cut.
pub(crate) fn never_read(context: &Context) -> Counts {
    let plan = &context.plan;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        plan.subscribe_path, plan.host
    )
    .into_bytes();
    let mut counts = Counts::default();
    let mut held = Vec::with_capacity(plan.sizes.never_read);
    for _ in 0..plan.sizes.never_read {
        if context.done() {
            break;
        }
        let Some(mut conn) = open(context, &mut counts, Some(SMALL_RECEIVE_BUFFER)) else {
            continue;
        };
        // A request this small fits an empty send buffer whole.
        match write_now(&mut conn.stream, &request) {
            Ok(n) if n == request.len() => {
                counts.requests += 1;
                counts.bytes_sent += n as u64;
                held.push(conn);
            }
            Ok(_) => counts.error("subscribe", "request not written whole"),
            Err(e) => {
                counts.cut += 1;
                counts.error("subscribe", e);
            }
        }
    }
    while !context.done() {
        context.sleep(TICK);
    }
    for conn in &mut held {
        let (status, closed) = read_out(&mut conn.stream, &mut counts.bytes_received);
        if let Some(status) = status {
            counts.status(status);
        }
        if closed {
            counts.cut += 1;
        } else {
            counts.open_at_end += 1;
        }
    }
    counts
}

/// Reads everything a non-blocking `stream` holds: the status of its first bytes, and
/// whether the server has closed it.
fn read_out(stream: &mut TcpStream, bytes_received: &mut u64) -> (Option<u16>, bool) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut first: Vec<u8> = Vec::new();
    let mut read = 0u64;
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => {
                if first.len() < 16 {
                    first.extend_from_slice(buf.get(..n.min(16)).unwrap_or_default());
                }
                read += n as u64;
                if read >= MAX_DRAIN_BYTES {
                    break false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    *bytes_received += read;
    (wire::status(&first), closed)
}
