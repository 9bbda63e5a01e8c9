//! Runs the real server on 127.0.0.1:0 and talks to it in raw bytes. Every await has a
//! timeout, so a hang fails in seconds.
#![allow(dead_code)]

pub mod apt;
pub mod nginx;
pub mod redis;

use std::future::Future;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
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

    /// Waits until a node started with `--redis` follows Redis (`up`) or has lost it.
    pub async fn wait_for_redis(&self, up: bool) {
        let deadline = Instant::now() + STEP;
        while self.stats().await["redis_up"] != up {
            assert!(Instant::now() < deadline, "redis_up never became {up}");
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

    /// Reads until the server closes, which must end the stream with `retry: N` alone, and
    /// returns N.
    pub async fn retry_delay(self) -> u64 {
        let rest = String::from_utf8(self.rest().await).unwrap();
        rest.strip_prefix("retry: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .and_then(|delay| delay.parse().ok())
            .unwrap_or_else(|| panic!("not a retry: {rest:?}"))
    }

    /// Reads until the server closes; returns what arrived.
    pub async fn rest(mut self) -> Vec<u8> {
        let _ = timed("read to close", self.socket.read_to_end(&mut self.buf)).await;
        self.buf
    }
}

/// A TCP proxy in front of a server that the test can cut, as a network would: [`Proxy::cut`]
/// ends every connection through it at once and closes new ones on arrival, until
/// [`Proxy::restore`]. The server sees its peers hang up; the clients see their streams end and
/// their reconnects fail, then succeed.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Whether the network is cut; every connection watches it.
    cut: tokio::sync::watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1 that forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cuts) = tokio::sync::watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *cuts.borrow() {
                    continue; // dropped: the client sees its connection close at once
                }
                let mut cuts = cuts.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    // `wait_for` also returns at once if the cut came before this line.
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Proxy { addr, cut, accept }
    }

    /// Ends every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        self.accept.abort();
    }
}

/// Runs `command` to completion within `deadline`; panics with its output unless it succeeds.
/// For the one-time installs of test dependencies (`npm ci`, `pip install`).
pub fn run_to_completion(command: &mut std::process::Command, deadline: Duration) {
    use std::process::Stdio;
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {what}: {err}"));
    // Drain both pipes on threads so a chatty installer never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        status.success(),
        "{what} failed ({status}):\n{stdout}\n{stderr}"
    );
}

/// Makes `dir` exist, safely when several tests or test processes race: `build` gets an empty
/// scratch directory beside `dir` and returns the finished directory it made in there, which is
/// then renamed to `dir`. The first rename wins (a rename onto a directory that exists fails, and
/// the loser throws its copy away), so `dir` is either complete or absent.
pub fn install_atomically(
    dir: &std::path::Path,
    build: impl FnOnce(&std::path::Path) -> std::path::PathBuf,
) {
    if dir.exists() {
        return;
    }
    let parent = dir.parent().expect("an install dir has a parent");
    let name = dir.file_name().unwrap().to_string_lossy();
    let scratch = parent.join(format!(".staging-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let built = build(&scratch);
    if std::fs::rename(&built, dir).is_err() {
        assert!(dir.exists(), "cannot move {built:?} to {dir:?}");
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Binds `addr` again once a stopped server has let go of it, to start the next one on the same
/// port (tokio sets `SO_REUSEADDR`, so connections in `TIME_WAIT` do not stand in the way).
pub async fn bind_again(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + STEP;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(err) if Instant::now() > deadline => panic!("cannot bind {addr} again: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A child process whose stdout is read line by line and whose stderr is collected whole (for
/// failure messages), so neither pipe can fill up and block it.
pub struct Piped {
    pub child: tokio::process::Child,
    pub stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    pub stderr: JoinHandle<String>,
}

/// Starts `command` with stdout and stderr piped (stdin as the caller set it).
pub fn spawn_piped(command: &mut tokio::process::Command) -> Piped {
    use tokio::io::AsyncBufReadExt;
    let what = format!("{command:?}");
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {what}: {err}"));
    let stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut pipe = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text).await;
        text
    });
    Piped {
        child,
        stdout,
        stderr,
    }
}

/// Connects to `addr` from the loopback address `from` (e.g. `127.0.0.2`), as another client
/// host would.
pub async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    timed("connect", socket.connect(addr)).await.unwrap()
}

/// Polls `/stats` until `check` holds for it, and returns it; fails after [`STEP`].
pub async fn wait_until(client: &Client, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + STEP;
    loop {
        let stats = client.stats().await;
        if check(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "never {what}: {stats}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Server {
    /// Starts a server on a runtime of its own with one thread, as the binary runs it, so that a
    /// test can tell when anything holds that thread.
    pub async fn start_single_threaded(flags: &[&str]) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let args = std::iter::once("ssecast").chain(flags.iter().copied());
        let config = ssecast::config::Config::try_parse_from(args).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                ssecast::run(listener, config, async move {
                    let _ = stopped.await;
                })
                .await
            })
        });
        Server {
            client: Client { addr },
            stop: Some(stop),
            done,
        }
    }
}

/// Fails the test unless `future` finishes within `limit`; returns its output.
pub async fn within<F: Future>(what: &str, limit: Duration, future: F) -> F::Output {
    let started = Instant::now();
    let output = timed(what, future).await;
    let took = started.elapsed();
    assert!(took <= limit, "{what} took {took:?}, more than {limit:?}");
    output
}

/// Reads one response (head and a `content-length` body) from `socket`, leaving the connection
/// open; panics if it ends first. Bytes read past that response are dropped: ask for one
/// response at a time.
pub async fn read_response(socket: &mut TcpStream) -> Response {
    let mut bytes = Vec::new();
    loop {
        if let Some(end) = find(&bytes, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            if bytes.len() >= end + 4 + length {
                return parse_response(&bytes[..end + 4 + length]);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = timed("read response", socket.read(&mut chunk))
            .await
            .unwrap();
        assert!(
            n > 0,
            "connection ended in {:?}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// Reads until the peer closes, by EOF or reset; returns what arrived and whether it was a
/// reset.
pub async fn read_to_close(socket: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut bytes = Vec::new();
    loop {
        let mut chunk = [0u8; 16384];
        match timed("read to close", socket.read(&mut chunk)).await {
            Ok(0) => return (bytes, false),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(_) => return (bytes, true),
        }
    }
}

impl Server {
    /// Starts a server with an internal listener too, both on ports the test bound; returns it
    /// (a client of its public listener) and a client of the internal one.
    pub async fn start_with_internal(flags: &[&str]) -> (Server, Client) {
        let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let internal = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = public.local_addr().unwrap();
        let internal_client = Client {
            addr: internal.local_addr().unwrap(),
        };
        let args = std::iter::once("ssecast").chain(flags.iter().copied());
        let config = ssecast::config::Config::try_parse_from(args).unwrap();
        let listeners = ssecast::Listeners {
            public,
            internal: Some(internal),
        };
        let stats = std::sync::Arc::new(ssecast::stats::Stats::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(ssecast::run_with(listeners, config, stats, async move {
            let _ = stopped.await;
        }));
        let server = Server {
            client: Client { addr },
            stop: Some(stop),
            done,
        };
        (server, internal_client)
    }
}

/// Starts the binary through `sh` (to set limits or variables) and returns it with the address
/// it logged; it listens on `127.0.0.1:0` unless `flags` give `--listen`.
pub async fn spawn_binary(
    shell_prefix: &str,
    flags: &str,
) -> (Child, Client, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let binary = env!("CARGO_BIN_EXE_ssecast");
    let listen = match flags.contains("--listen ") {
        true => "",
        false => "--listen 127.0.0.1:0",
    };
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("{shell_prefix} exec {binary} {listen} {flags}"))
        .env("NO_COLOR", "1")
        .env("SSECAST_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (send, mut receive) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = send.send(line);
        }
    });
    let listening = timed("listening line", async {
        loop {
            let line = receive
                .recv()
                .await
                .expect("server exited before listening");
            if line.contains("listening") {
                return line;
            }
        }
    })
    .await;
    let address = listening
        .split("address=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {listening:?}"));
    (
        child,
        Client {
            addr: address.parse().unwrap(),
        },
        receive,
    )
}
