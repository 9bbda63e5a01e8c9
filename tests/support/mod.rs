//! Runs the real server on 127.0.0.1:0 and talks to it in raw bytes. Every await has a
//! timeout, so a hang fails in seconds.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any single step may take.
pub const STEP: Duration = Duration::from_secs(5);

/// Fails the test if `future` takes longer than [`STEP`].
pub async fn timed<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(STEP, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// A server running in this process; it derefs to a [`Client`] of it.
pub struct Server {
    client: Client,
    stop: Option<oneshot::Sender<()>>,
    done: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Starts a server with these flags (defaults otherwise).
    pub async fn start(flags: &[&str]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, flags)
    }

    /// Starts a server on a listener the caller bound.
    pub fn start_on(listener: TcpListener, flags: &[&str]) -> Server {
        let addr = listener.local_addr().unwrap();
        let args = std::iter::once("ssecast").chain(flags.iter().copied());
        let config = ssecast::config::Config::try_parse_from(args).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(ssecast::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Server {
            client: Client { addr },
            stop: Some(stop),
            done,
        }
    }

    /// Stops the server and returns how long it took to return.
    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        let done = &mut self.done;
        tokio::time::timeout(Duration::from_secs(10), done)
            .await
            .expect("server stops within 10 s")
            .unwrap()
            .unwrap();
        started.elapsed()
    }
}

impl std::ops::Deref for Server {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// Speaks to a server at an address; copies can go to other tasks.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub addr: SocketAddr,
}

impl Client {
    /// `GET /stats`.
    pub async fn stats(&self) -> Value {
        let response = request(
            self.addr,
            "GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(response.status, 200);
        serde_json::from_slice(&response.body).unwrap()
    }

    /// Waits until `/stats` shows `field` equal to `value`.
    pub async fn wait_for_stat(&self, field: &str, value: u64) {
        let deadline = Instant::now() + STEP;
        loop {
            let stats = self.stats().await;
            if stats[field] == value {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{field} never became {value}: {stats}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Publishes a JSON body and returns the answer's JSON; panics unless it is `200`.
    pub async fn publish(&self, body: Value) -> Value {
        let response = post(self.addr, "application/json", body.to_string().as_bytes()).await;
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        serde_json::from_slice(&response.body).unwrap()
    }

    /// Publishes `data` to one topic with the given id.
    pub async fn publish_id(&self, topic: &str, id: &str, data: &str) {
        self.publish(serde_json::json!({ "topic": topic, "id": id, "data": data }))
            .await;
    }

    /// Opens a subscriber stream at `path` (e.g. `/events?topic=a`) with extra header lines.
    pub async fn subscribe(&self, path: &str, headers: &str) -> Stream {
        Stream::open(self.addr, path, headers).await
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends raw request bytes on a fresh connection and reads the answer to the end of the
/// connection (ask for `Connection: close`).
pub async fn request(addr: SocketAddr, raw: impl AsRef<[u8]>) -> Response {
    let mut socket = timed("connect", TcpStream::connect(addr)).await.unwrap();
    timed("write request", socket.write_all(raw.as_ref()))
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let _ = timed("read response", socket.read_to_end(&mut bytes)).await;
    parse_response(&bytes)
}

/// Splits a response into status, head and body (one response, close-delimited or sized).
pub fn parse_response(bytes: &[u8]) -> Response {
    let end = find(bytes, b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let status = head[9..12].parse().unwrap();
    Response {
        status,
        head,
        body: bytes[end + 4..].to_vec(),
    }
}

/// `POST /publish` with this content type and body.
pub async fn post(addr: SocketAddr, content_type: &str, body: &[u8]) -> Response {
    let mut raw = format!(
        "POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    request(addr, raw).await
}

/// The first index of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// One subscriber connection, read frame by frame.
pub struct Stream {
    pub socket: TcpStream,
    /// The response head.
    pub head: String,
    buf: Vec<u8>,
}

impl Stream {
    /// Sends a subscribe request and reads its response head.
    pub async fn open(addr: SocketAddr, path: &str, headers: &str) -> Stream {
        let socket = timed("connect", TcpStream::connect(addr)).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n{headers}\r\n");
        Self::on(socket, request.as_bytes()).await
    }

    /// Sends `request` on an open socket and reads a response head.
    pub async fn on(mut socket: TcpStream, request: &[u8]) -> Stream {
        timed("write subscribe", socket.write_all(request))
            .await
            .unwrap();
        let mut stream = Stream {
            socket,
            head: String::new(),
            buf: Vec::new(),
        };
        let head = stream.read_until(b"\r\n\r\n").await;
        stream.head = String::from_utf8(head).unwrap();
        stream
    }

    async fn read_until(&mut self, end: &[u8]) -> Vec<u8> {
        loop {
            if let Some(at) = find(&self.buf, end) {
                return self.buf.drain(..at + end.len()).collect();
            }
            let mut chunk = [0u8; 4096];
            let n = timed("read stream", self.socket.read(&mut chunk))
                .await
                .unwrap();
            assert!(
                n > 0,
                "stream ended; unread: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next frame, keep-alive comments included, as text ending in a blank line.
    pub async fn frame(&mut self) -> String {
        String::from_utf8(self.read_until(b"\n\n").await).unwrap()
    }

    /// The next frame that is not a comment.
    pub async fn event(&mut self) -> String {
        loop {
            let frame = self.frame().await;
            if !frame.starts_with(':') {
                return frame;
            }
        }
    }

    /// The id of the next event.
    pub async fn event_id(&mut self) -> String {
        let frame = self.event().await;
        let line = frame.lines().next().unwrap_or_default();
        line.strip_prefix("id: ")
            .unwrap_or_else(|| panic!("no id in {frame:?}"))
            .to_owned()
    }

    /// Reads until the server closes; returns what arrived.
    pub async fn rest(mut self) -> Vec<u8> {
        let _ = timed("read to close", self.socket.read_to_end(&mut self.buf)).await;
        self.buf
    }
}
