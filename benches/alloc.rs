//! Heap allocations per published event, counted by a global allocator (`dhat`), at 1, 1,000
//! and 10,000 subscribers: allocations and bytes per publish, as Go reports allocs/op and B/op.
//!
//! The server runs in this process, so every allocation it makes (front end, broadcaster,
//! shards) is counted; the subscribers are held by a child process (this bench again), so their
//! allocations are not, and 10,000 of them fit under the open-file limit. Two paths:
//! `broadcaster` calls `Broadcaster::publish` directly (the fan-out alone), `POST` sends
//! `POST /publish` on a kept-alive connection to the whole server (adding hyper). Delivery is
//! awaited by reading the server's counters, which allocates nothing.
//!
//! Run: `cargo bench --bench alloc`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use clap::Parser;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use ssecast::stats::Stats;

#[path = "../tests/direct/mod.rs"]
mod direct;

use direct::{wait_until, Direct};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Publishes counted per row.
const MEASURED: u64 = 200;
/// Publishes before counting: more than the history holds, so every ring is at full size.
const WARM_UP: u64 = 80;
/// Frames of history per topic.
const HISTORY: usize = 64;
/// Set in the child: hold this many subscribers of the server at this address.
const CLIENT_ENV: &str = "SSECAST_ALLOC_BENCH_CLIENT";

fn main() {
    if let Ok(spec) = std::env::var(CLIENT_ENV) {
        return hold_subscribers(&spec);
    }
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let _profiler = dhat::Profiler::builder().testing().build();
    println!("| path | subscribers | allocs/op | B/op | allocs/delivery |");
    println!("|---|---:|---:|---:|---:|");
    for subscribers in [1u64, 1_000, 10_000] {
        for path in [Path::Broadcaster, Path::Post] {
            let (allocs, bytes) = match path {
                Path::Broadcaster => measure_broadcaster(subscribers),
                Path::Post => measure_post(subscribers),
            };
            println!(
                "| {} | {subscribers} | {allocs:.2} | {bytes:.0} | {:.5} |",
                path.name(),
                allocs / subscribers as f64,
            );
        }
    }
}

#[derive(Clone, Copy)]
enum Path {
    Broadcaster,
    Post,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Broadcaster => "broadcaster",
            Path::Post => "POST /publish",
        }
    }
}

/// Counts what `publish` allocates per call, after a warm-up, waiting for every delivery.
fn count(stats: &Stats, subscribers: u64, mut publish: impl FnMut(u64)) -> (f64, f64) {
    let mut run = |from: u64, count: u64| {
        let expected = stats.frames_delivered.load(Relaxed) + count * subscribers;
        for n in from..from + count {
            publish(n);
        }
        wait_until(|| stats.frames_delivered.load(Relaxed) >= expected);
    };
    run(0, WARM_UP);
    let before = dhat::HeapStats::get();
    run(WARM_UP, MEASURED);
    let after = dhat::HeapStats::get();
    (
        (after.total_blocks - before.total_blocks) as f64 / MEASURED as f64,
        (after.total_bytes - before.total_bytes) as f64 / MEASURED as f64,
    )
}

/// The fan-out alone: subscribers handed straight to a broadcaster, events published to it.
fn measure_broadcaster(subscribers: u64) -> (f64, f64) {
    let direct = Direct::start(HISTORY);
    let mut client = spawn_client(direct.addr(), subscribers);
    direct.subscribe(subscribers, |_| {});
    let result = count(&direct.stats, subscribers, |n| direct.publish(n));
    direct.stop();
    stop(&mut client);
    result
}

/// The whole server: `POST /publish` on a kept-alive connection.
fn measure_post(subscribers: u64) -> (f64, f64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let flags = [
        "ssecast",
        "--history",
        "64",
        "--keep-alive",
        "60s",
        "--shards",
        "2",
        "--max-connections-per-ip",
        "0",
    ];
    let config = ssecast::config::Config::try_parse_from(flags).unwrap();
    let stats = Arc::new(Stats::default());
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(ssecast::run_with_stats(
        listener,
        config,
        stats.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let mut client = spawn_client(addr, subscribers);
    wait_until(|| stats.subscribers.load(Relaxed) == subscribers);
    let mut publisher = TcpStream::connect(addr).unwrap();
    let mut answer = [0u8; 4096];
    let result = count(&stats, subscribers, |n| {
        let body = format!("topic=t&data=event+{n}");
        let request = format!(
            "POST /publish HTTP/1.1\r\nHost: b\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        publisher.write_all(request.as_bytes()).unwrap();
        let n = publisher.read(&mut answer).unwrap();
        assert!(
            answer[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&answer[..n])
        );
    });
    let _ = stop_server.send(());
    runtime.block_on(server).unwrap().unwrap();
    stop(&mut client);
    result
}

fn spawn_client(addr: SocketAddr, subscribers: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(CLIENT_ENV, format!("{addr},{subscribers}"))
        .spawn()
        .unwrap()
}

fn stop(client: &mut Child) {
    let _ = client.kill();
    let _ = client.wait();
}

/// The child: opens the subscribers, then reads and drops what arrives until killed.
fn hold_subscribers(spec: &str) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (addr, count) = spec.split_once(',').unwrap();
    let addr: SocketAddr = addr.parse().unwrap();
    let poll = Poll::new().unwrap();
    let mut sockets = Vec::new();
    for index in 0..count.parse::<usize>().unwrap() {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket
            .write_all(b"GET /events?topic=t HTTP/1.1\r\nHost: b\r\n\r\n")
            .unwrap();
        socket.set_nonblocking(true).unwrap();
        let fd = socket.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), Token(index), Interest::READABLE)
            .unwrap();
        sockets.push(socket);
    }
    let mut poll = poll;
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 64 * 1024];
    loop {
        if poll.poll(&mut events, None).is_err() {
            continue;
        }
        for event in events.iter() {
            let socket = &mut sockets[event.token().0];
            while let Ok(n) = socket.read(&mut scratch) {
                if n == 0 {
                    return;
                }
            }
        }
    }
}
