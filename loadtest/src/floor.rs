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
use crate::head::{self, RequestHead};

/// The head every subscriber gets.
const HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
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
        let mut buf = Vec::with_capacity(512);
        let Some(head) = read_head(&mut socket, &mut buf) else {
            continue;
        };
        match (head.method.as_str(), head.path.as_str()) {
            ("POST", _) => {
                let floor = floor.clone();
                let _ = thread::Builder::new()
                    .name("floor-publish".into())
                    .spawn(move || publish_loop(&floor, socket, buf));
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

/// Serves publishes on one keep-alive connection; `buf` holds what was read of it so far.
fn publish_loop(floor: &Floor, mut socket: TcpStream, mut buf: Vec<u8>) {
    let _ = socket.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = socket.set_nodelay(true);
    while let Some(head) = read_head(&mut socket, &mut buf) {
        let end = head.len + head.content_length;
        if head.content_length > MAX_BODY_BYTES {
            return;
        }
        while buf.len() < end {
            if !read_more(&mut socket, &mut buf) {
                return;
            }
        }
        let (status, answer) = match encode(&buf[head.len..end]) {
            Some(frame) => {
                for writer in &floor.writers {
                    let _ = writer.send(frame.clone());
                }
                let n = floor.subscribers.load(Ordering::Relaxed);
                ("200 OK", format!(r#"{{"subscribers":{n}}}"#))
            }
            None => ("400 Bad Request", r#"{"error":"bad body"}"#.to_owned()),
        };
        buf.drain(..end);
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if socket.write_all(response.as_bytes()).is_err() {
            return;
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

/// Reads until `buf` starts with a whole request head; `None` if the connection ends first or
/// sends no HTTP.
fn read_head(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<RequestHead> {
    loop {
        if let Some(head) = head::request(buf).ok()? {
            return Some(head);
        }
        if !read_more(socket, buf) {
            return None;
        }
    }
}

/// Appends what `socket` has to `buf`; false at its end or on an error.
fn read_more(socket: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match socket.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
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
