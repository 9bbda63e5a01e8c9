//! A broadcaster started directly, without the HTTP front end, with subscribers of topic `t`
//! handed to it from a listener of its own: what `tests/alloc.rs` and `benches/alloc.rs`
//! count the allocations of. The clients are the caller's: a thread, or a child process.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser;
use ssecast::address::Addresses;
use ssecast::broadcast::Broadcaster;
use ssecast::config::Config;
use ssecast::selector::{Selection, Selector};
use ssecast::sse::event::Draft;
use ssecast::sse::subscribe::Subscribe;
use ssecast::stats::Stats;

/// The longest any wait here may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running broadcaster and the listener its subscribers connect to.
pub struct Direct {
    pub broadcaster: Broadcaster,
    pub stats: Arc<Stats>,
    shards: Vec<JoinHandle<()>>,
    addresses: Arc<Addresses>,
    listener: TcpListener,
    runtime: tokio::runtime::Runtime,
}

impl Direct {
    /// Starts two shards keeping `history` events per topic.
    pub fn start(history: usize) -> Self {
        let history = history.to_string();
        let flags = [
            "ssecast",
            "--shards",
            "2",
            "--history",
            &history,
            "--keep-alive",
            "60s",
        ];
        let settings = Config::try_parse_from(flags).unwrap().broadcast(usize::MAX);
        let stats = Arc::new(Stats::default());
        let addresses = Addresses::new(0);
        let (broadcaster, shards) =
            Broadcaster::start(&settings, addresses.clone(), stats.clone()).unwrap();
        Self {
            broadcaster,
            stats,
            shards,
            addresses,
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        }
    }

    /// Where subscribers connect.
    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    /// Takes `count` subscribers of `t` as they connect, `before_each` called before each is
    /// accepted (to connect one, say), and waits until every one is subscribed.
    pub fn subscribe(&self, count: u64, mut before_each: impl FnMut(SocketAddr)) {
        for _ in 0..count {
            before_each(self.addr());
            let (mut socket, peer) = self.listener.accept().unwrap();
            // As the front end does: else each small frame waits for the client's delayed ACK.
            socket.set_nodelay(true).unwrap();
            read_head(&mut socket);
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
                .unwrap();
            let request = Subscribe {
                selection: Selection::new(vec![Selector::topic("t")]).unwrap(),
                last_event_id: None,
                token: None,
                origin: None,
            };
            let admission = self.addresses.admit(peer.ip()).unwrap();
            let subscription = self
                .broadcaster
                .prepare(request, Some(admission.address()), None)
                .unwrap();
            self.broadcaster
                .subscribe(socket, subscription, admission.into_key())
                .unwrap();
        }
        wait_until(|| self.stats.subscribers.load(Relaxed) == count);
    }

    /// Publishes event number `n` to `t`.
    pub fn publish(&self, n: u64) {
        let event = Draft {
            topics: vec!["t".into()],
            data: format!("event {n}"),
            ..Draft::default()
        }
        .validate()
        .unwrap();
        self.runtime
            .block_on(self.broadcaster.publish(event))
            .unwrap();
    }

    /// Stops the shards.
    pub fn stop(self) {
        self.broadcaster.close();
        self.shards
            .into_iter()
            .for_each(|shard| shard.join().unwrap());
    }
}

/// Reads a request head, byte by byte.
pub fn read_head(socket: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(socket.read(&mut byte).unwrap(), 1, "client closed");
        head.push(byte[0]);
    }
}

/// Waits until `done`, for at most a minute.
pub fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(1));
    }
}
