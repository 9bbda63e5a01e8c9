//! A small blocking HTTP/1.1 client for publishing and for `/stats`: one keep-alive connection.
//!
//! Answers are read by `Content-Length`, chunked framing or to the end of the connection. A
//! request on a reused connection that the server had closed is sent again once on a new one.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::client::chunked::Chunked;
use crate::error::Error;
use crate::head::{self, Malformed};

/// The longest any read or write may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer accepted.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, unframed.
    pub body: Vec<u8>,
}

/// A keep-alive connection to one server.
#[derive(Debug)]
pub struct HttpConn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl HttpConn {
    /// A client for `addr`; it connects on first use.
    pub fn new(addr: SocketAddr) -> HttpConn {
        HttpConn {
            addr,
            stream: None,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Sends `raw` (a whole request) and reads the answer.
    pub fn send(&mut self, raw: &[u8]) -> Result<Response, Error> {
        let reused = self.stream.is_some();
        match self.try_send(raw) {
            Err(Retry::Stale) if reused => {
                self.stream = None;
                self.try_send(raw).map_err(Retry::into_error)
            }
            other => other.map_err(Retry::into_error),
        }
    }

    fn try_send(&mut self, raw: &[u8]) -> Result<Response, Retry> {
        if self.stream.is_none() {
            self.buf.clear();
            let stream = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT)
                .map_err(|e| Retry::Failed(format!("connecting to {}: {e}", self.addr)))?;
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
            let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(Retry::Failed("no connection".into()));
        };
        if let Err(e) = stream.write_all(raw) {
            self.stream = None;
            return Err(stale_or(e));
        }
        let result = read_response(stream, &mut self.buf);
        match result {
            Ok((response, keep)) => {
                if !keep {
                    self.stream = None;
                }
                Ok(response)
            }
            Err(e) => {
                self.stream = None;
                self.buf.clear();
                Err(e)
            }
        }
    }
}

/// Why a request failed.
pub(crate) enum Retry {
    /// The connection was closed before any answer: send again on a new one.
    Stale,
    Failed(String),
}

impl Retry {
    /// The error to report.
    pub(crate) fn into_error(self) -> Error {
        match self {
            Retry::Stale => Error::Http("the server closed the connection".into()),
            Retry::Failed(why) => Error::Http(why),
        }
    }
}

fn stale_or(e: io::Error) -> Retry {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof => Retry::Stale,
        _ => Retry::Failed(e.to_string()),
    }
}

/// Reads one answer from `stream`; `buf` holds bytes already read and keeps any bytes past
/// this answer (the next pipelined one). Also says whether the connection may be used again.
pub(crate) fn read_response(
    stream: &mut impl Read,
    buf: &mut Vec<u8>,
) -> Result<(Response, bool), Retry> {
    let mut chunk = [0u8; 4096];
    let mut fill = |buf: &mut Vec<u8>| -> Result<usize, Retry> {
        let n = stream.read(&mut chunk).map_err(stale_or)?;
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE_BYTES {
            return Err(Retry::Failed("answer too large".into()));
        }
        Ok(n)
    };
    let head = loop {
        match head::response(buf) {
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(Malformed) => return Err(Retry::Failed("malformed answer head".into())),
        }
        if fill(buf)? == 0 {
            return Err(if buf.is_empty() {
                Retry::Stale
            } else {
                Retry::Failed("connection closed in the answer's head".into())
            });
        }
    };
    let (status, head_len, close) = (head.status, head.len, head.close);
    let cut_short = || Retry::Failed("answer cut short".into());
    if head.chunked {
        let mut decoder = Chunked::default();
        let mut body = Vec::new();
        let mut at = head_len;
        loop {
            at += decoder
                .feed(&buf[at..], &mut |data| body.extend_from_slice(data))
                .map_err(|_| Retry::Failed("malformed chunked answer".into()))?;
            if decoder.is_done() {
                buf.drain(..at);
                return Ok((Response { status, body }, !close));
            }
            if fill(buf)? == 0 {
                return Err(cut_short());
            }
        }
    }
    let no_body = status == 204 || status == 304 || (100..200).contains(&status);
    match head.content_length.or(no_body.then_some(0)) {
        Some(length) => {
            while buf.len() < head_len + length {
                if fill(buf)? == 0 {
                    return Err(cut_short());
                }
            }
            let body = buf[head_len..head_len + length].to_vec();
            buf.drain(..head_len + length);
            Ok((Response { status, body }, !close))
        }
        // Close-delimited.
        None => {
            while fill(buf)? > 0 {}
            let body = buf.split_off(head_len);
            buf.clear();
            Ok((Response { status, body }, false))
        }
    }
}

/// `GET path` on a new connection, `Connection: close`.
pub fn get(addr: SocketAddr, host: &str, path: &str) -> Result<Response, Error> {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    HttpConn::new(addr).send(raw.as_bytes())
}

/// The `pid` field of the JSON that `GET /stats` answers on `addr` (ssecast and the floor
/// server answer it; other servers need `--pid`).
pub fn stats_pid(addr: SocketAddr, host: &str) -> Result<u32, Error> {
    let response = get(addr, host, "/stats")?;
    if response.status != 200 {
        return Err(Error::Http(format!(
            "GET /stats answered {}; pass --pid",
            response.status
        )));
    }
    let json: serde_json::Value = serde_json::from_slice(&response.body)
        .map_err(|e| Error::Http(format!("GET /stats is not JSON ({e}); pass --pid")))?;
    json.get("pid")
        .and_then(serde_json::Value::as_u64)
        .and_then(|pid| u32::try_from(pid).ok())
        .ok_or_else(|| Error::Http("GET /stats has no pid; pass --pid".into()))
}

#[cfg(test)]
mod tests {
    use super::HttpConn;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A server that answers each of `answers` on one connection, then closes it.
    fn serve(answers: Vec<&'static [u8]>) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            socket
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            for answer in answers {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).unwrap();
                socket.write_all(answer).unwrap();
            }
        });
        addr
    }

    #[test]
    fn reads_sized_chunked_and_close_delimited_answers() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 202 Accepted\r\nConnection: close\r\n\r\nrest",
        ]);
        let mut conn = HttpConn::new(addr);
        let get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
        let a = conn.send(get).unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"hello"[..]));
        let b = conn.send(get).unwrap();
        assert_eq!((b.status, b.body.as_slice()), (201, &b"abc"[..]));
        let c = conn.send(get).unwrap();
        assert_eq!((c.status, c.body.as_slice()), (202, &b"rest"[..]));
    }

    #[test]
    fn keeps_bytes_of_pipelined_answers() {
        let mut wire: &[u8] =
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 201 Created\r\n\
            Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let mut buf = Vec::new();
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let Ok((response, keep)) = super::read_response(&mut wire, &mut buf) else {
                panic!("answer not read");
            };
            assert!(keep);
            statuses.push((response.status, response.body));
        }
        assert_eq!(
            statuses,
            vec![(200, b"ok".to_vec()), (201, b"x".to_vec()), (204, vec![])]
        );
        assert!(buf.is_empty());
    }
}
