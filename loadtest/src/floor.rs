//! The floor: the least a broadcaster can do on this machine, to measure servers against.
//!
//! It accepts, reads a request head, and for a `GET` writes a fixed SSE head and keeps the
//! socket; a `POST /publish` with the ssecast JSON body encodes `data: ...` once and writes it
//! to every socket with one plain `write` each, the sockets split over one writer thread per
//! core. No history, no keep-alives, no back-pressure: a full socket just misses the event.
//! Once a second each writer drops the sockets whose peer has gone. `GET /stats` answers the
//! PID, so the loadtest finds it like it finds ssecast's. It runs in a child process
//! (`serve-floor`) so that its sockets do not count against the client's open-file limit.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::error::Error;

/// The head every subscriber gets.
const HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
/// The longest request head read.
const MAX_HEAD_BYTES: usize = 8192;
/// The largest publish body read.
const MAX_BODY_BYTES: usize = 1 << 20;
/// How long a request may take to arrive.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How often writers look for subscribers that went away.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

type Shard = Arc<Mutex<Vec<TcpStream>>>;

struct Floor {
    shards: Vec<Shard>,
    writers: Vec<Sender<Arc<[u8]>>>,
    subscribers: Arc<AtomicUsize>,
}

/// Serves on `listener` with `threads` writer threads until the process ends.
pub fn serve(listener: TcpListener, threads: usize) -> Result<(), Error> {
    let subscribers = Arc::new(AtomicUsize::new(0));
    let mut shards = Vec::new();
    let mut writers = Vec::new();
    for i in 0..threads.max(1) {
        let shard: Shard = Arc::default();
        let (send, frames) = mpsc::channel();
        let (s, count) = (shard.clone(), subscribers.clone());
        thread::Builder::new()
            .name(format!("floor-writer-{i}"))
            .spawn(move || write_loop(&s, &frames, &count))
            .map_err(Error::io("starting a writer"))?;
        shards.push(shard);
        writers.push(send);
    }
    let floor = Arc::new(Floor {
        shards,
        writers,
        subscribers,
    });
    let mut next = 0;
    for socket in listener.incoming() {
        let Ok(mut socket) = socket else {
            // Out of file descriptors, most likely: let some close.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = socket.set_read_timeout(Some(READ_TIMEOUT));
        let Some((method, path, rest)) = read_head(&mut socket) else {
            continue;
        };
        match (method.as_str(), path.as_str()) {
            ("POST", _) => {
                let floor = floor.clone();
                let _ = thread::Builder::new()
                    .name("floor-publish".into())
                    .spawn(move || publish_loop(&floor, socket, rest));
            }
            ("GET", "/stats") => {
                let body = format!(
                    r#"{{"pid":{},"subscribers":{}}}"#,
                    std::process::id(),
                    floor.subscribers.load(Ordering::Relaxed)
                );
                let _ = write!(
                    socket,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
            ("GET", _) => {
                if socket.write_all(HEAD).is_err() || socket.set_nonblocking(true).is_err() {
                    continue;
                }
                let _ = socket.set_nodelay(true);
                if let Some(shard) = floor.shards.get(next % floor.shards.len()) {
                    if let Ok(mut list) = shard.lock() {
                        list.push(socket);
                        floor.subscribers.fetch_add(1, Ordering::Relaxed);
                    }
                }
                next += 1;
            }
            _ => {
                let _ = socket.write_all(
                    b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        }
    }
    Ok(())
}

/// Writes each frame to every socket of `shard`; sweeps out closed sockets between frames.
fn write_loop(shard: &Shard, frames: &Receiver<Arc<[u8]>>, count: &AtomicUsize) {
    loop {
        let frame = match frames.recv_timeout(SWEEP_EVERY) {
            Ok(frame) => Some(frame),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let Ok(mut list) = shard.lock() else { return };
        let before = list.len();
        let mut probe = [0u8; 1];
        list.retain_mut(|socket| match &frame {
            Some(frame) => match socket.write(frame) {
                Ok(_) => true,
                Err(e) => e.kind() == ErrorKind::WouldBlock,
            },
            // Subscribers send nothing after their request: readable means gone.
            None => match socket.peek(&mut probe) {
                Ok(_) => false,
                Err(e) => e.kind() == ErrorKind::WouldBlock,
            },
        });
        count.fetch_sub(before - list.len(), Ordering::Relaxed);
    }
}

/// Serves publishes on one keep-alive connection.
fn publish_loop(floor: &Floor, mut socket: TcpStream, mut buf: Vec<u8>) {
    let _ = socket.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = socket.set_nodelay(true);
    loop {
        let Some(length) = content_length(&buf) else {
            return;
        };
        let Some(head_end) = find(&buf, b"\r\n\r\n").map(|at| at + 4) else {
            return;
        };
        if length > MAX_BODY_BYTES {
            return;
        }
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        let (status, answer) = match encode(&body) {
            Some(frame) => {
                for writer in &floor.writers {
                    let _ = writer.send(frame.clone());
                }
                let n = floor.subscribers.load(Ordering::Relaxed);
                ("200 OK", format!(r#"{{"subscribers":{n}}}"#))
            }
            None => ("400 Bad Request", r#"{"error":"bad body"}"#.to_owned()),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if socket.write_all(response.as_bytes()).is_err() {
            return;
        }
        // The next request's head.
        while find(&buf, b"\r\n\r\n").is_none() {
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.len() > MAX_HEAD_BYTES {
                return;
            }
        }
    }
}

/// Encodes the `data` of a JSON publish body as one SSE frame.
pub fn encode(body: &[u8]) -> Option<Arc<[u8]>> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let data = match json.get("data")? {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let mut frame = String::with_capacity(data.len() + 16);
    for line in data.split("\r\n").flat_map(|l| l.split(['\r', '\n'])) {
        frame.push_str("data: ");
        frame.push_str(line);
        frame.push('\n');
    }
    frame.push('\n');
    Some(frame.into_bytes().into())
}

/// Reads one request head; returns its method, path and every byte read.
fn read_head(socket: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 2048];
    while find(&buf, b"\r\n\r\n").is_none() {
        let n = socket.read(&mut chunk).ok()?;
        if n == 0 || buf.len() > MAX_HEAD_BYTES {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    request.parse(&buf).ok()?;
    let method = request.method?.to_owned();
    let path = request.path?.split('?').next()?.to_owned();
    Some((method, path, buf))
}

fn content_length(buf: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    request.parse(buf).ok()?;
    let length = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Some(length)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A floor server in a child process.
pub struct FloorProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl FloorProcess {
    /// Starts `serve-floor` on a free loopback port.
    pub fn spawn() -> Result<FloorProcess, Error> {
        let mut child = Command::new(crate::worker::program()?)
            .args(["serve-floor", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(Error::io("starting the floor server"))?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok());
        match addr {
            Some(addr) => Ok(FloorProcess { child, addr }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(Error::Worker(format!("floor server said {line:?}")))
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for FloorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn encodes_json_data_once_per_line() {
        let frame = encode(br#"{"topic":"load","data":"1 2 xx"}"#).unwrap();
        assert_eq!(&frame[..], b"data: 1 2 xx\n\n");
        let frame = encode(br#"{"topic":"t","data":"a\r\nb\rc\nd"}"#).unwrap();
        assert_eq!(&frame[..], b"data: a\ndata: b\ndata: c\ndata: d\n\n");
        assert_eq!(
            &encode(br#"{"data":{"k":1}}"#).unwrap()[..],
            b"data: {\"k\":1}\n\n"
        );
        assert!(encode(b"not json").is_none());
        assert!(encode(br#"{"topic":"t"}"#).is_none());
    }
}
