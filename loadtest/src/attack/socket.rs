//! Blocking sockets bound to an attacker's own source address, and the reads attackers do.
//!
//! Every socket closes with a reset (`SO_LINGER` 0), so that thousands of short connections
//! from one address leave no `TIME_WAIT` behind to run its ports out.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::wire;

/// The longest a connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The most bytes of an answer an attacker keeps (enough for a head and a `gap` event).
const MAX_KEPT_BYTES: usize = 4096;

/// Connects to `target` from `source` (unbound if `None`); a `receive_buffer` of `Some(n)`
/// is set before connecting, so the window the server sees is small from the start.
pub fn connect(
    source: Option<IpAddr>,
    target: SocketAddr,
    receive_buffer: Option<usize>,
) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_linger(Some(Duration::ZERO))?;
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    if let Some(ip) = source {
        socket.set_reuse_address(true)?;
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    socket.connect_timeout(&target.into(), CONNECT_TIMEOUT)?;
    socket.set_tcp_nodelay(true)?;
    Ok(socket.into())
}

/// What a held connection's server has said so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Nothing yet, and the connection is open.
    Nothing,
    /// An answer with this status (the server may have closed after it).
    Status(u16),
    /// Bytes that are not an answer head.
    Other,
    /// The server closed or reset the connection without answering.
    Closed,
}

/// Reads what has arrived on a non-blocking `stream` without waiting; `bytes_received`
/// counts what was read.
pub fn listen(stream: &mut TcpStream, bytes_received: &mut u64) -> Heard {
    let mut buf = [0u8; MAX_KEPT_BYTES];
    let mut kept = 0;
    loop {
        let free = buf.get_mut(kept..).unwrap_or_default();
        match stream.read(free) {
            Ok(0) => break,
            Ok(n) => {
                *bytes_received += n as u64;
                kept += n;
                if kept == buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && kept == 0 => return Heard::Nothing,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let kept = buf.get(..kept).unwrap_or_default();
    match (kept.is_empty(), wire::status(kept)) {
        (true, _) => Heard::Closed,
        (false, Some(status)) => Heard::Status(status),
        (false, None) => Heard::Other,
    }
}

/// What a blocking read of one answer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The status of a whole answer head; `gap` if a `gap` event followed within the wait.
    Status {
        /// The status code.
        status: u16,
        /// A `gap` event came after the head.
        gap: bool,
    },
    /// The server closed or reset the connection first.
    Closed,
    /// Nothing whole within the wait.
    TimedOut,
}

/// Reads from a blocking `stream` until an answer head is whole (and, with `want_gap`, until
/// a `gap` event follows it), at most until `deadline`.
pub fn read_answer(
    stream: &mut TcpStream,
    deadline: Instant,
    want_gap: bool,
    bytes_received: &mut u64,
) -> Answer {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let head = wire::head_complete(&buf);
        if head && (!want_gap || wire::has_gap_event(&buf) || buf.len() >= MAX_KEPT_BYTES) {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                *bytes_received += n as u64;
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(_) => {
                if buf.is_empty() {
                    return Answer::Closed;
                }
                break;
            }
        }
    }
    match wire::status(&buf) {
        Some(status) if wire::head_complete(&buf) => Answer::Status {
            status,
            gap: wire::has_gap_event(&buf),
        },
        _ if buf.is_empty() && Instant::now() < deadline => Answer::Closed,
        _ => Answer::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::{listen, read_answer, Answer, Heard};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn hears_nothing_then_a_status_then_a_close() {
        let (mut client, mut server) = pair();
        client.set_nonblocking(true).unwrap();
        let mut received = 0;
        assert_eq!(listen(&mut client, &mut received), Heard::Nothing);
        server
            .write_all(b"HTTP/1.1 408 Request Timeout\r\n")
            .unwrap();
        drop(server);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(listen(&mut client, &mut received), Heard::Status(408));
        assert_eq!(received, 30);
        assert_eq!(listen(&mut client, &mut received), Heard::Closed);
    }

    #[test]
    fn reads_a_head_and_a_gap_or_times_out() {
        let (mut client, mut server) = pair();
        let mut received = 0;
        server
            .write_all(b"HTTP/1.1 200 OK\r\n\r\nevent: gap\ndata: {}\n\n")
            .unwrap();
        let soon = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            read_answer(&mut client, soon, true, &mut received),
            Answer::Status {
                status: 200,
                gap: true
            }
        );
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(
            read_answer(&mut client, soon, false, &mut received),
            Answer::TimedOut
        );
        drop(server);
        let soon = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            read_answer(&mut client, soon, false, &mut received),
            Answer::Closed
        );
    }
}
