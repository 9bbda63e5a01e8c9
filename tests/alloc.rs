//! Nothing is allocated per delivery: a publish costs as many heap allocations with 200
//! subscribers as with one, counted by a global allocator of this test's own.
//!
//! The broadcaster runs in this process, started directly as `benches/alloc.rs` does, so every
//! allocation of the publish path and the shards is counted. The subscribers' sockets are read by
//! a thread that the allocator does not count, so only the server's side is measured. The
//! bench reports bytes and larger counts; this test only holds the line.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

mod direct;

use direct::{wait_until, Direct};

/// Counts allocations and reallocations, except on threads that opt out.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the subscribers' reader thread, which is the client's side.
    static UNCOUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    // `try_with`: the allocator may run while a thread's locals are being torn down.
    if !UNCOUNTED.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to the system allocator, so each keeps
// the contract `GlobalAlloc` states; counting touches only an atomic and a const thread-local,
// neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `alloc`'s contract, which `System.alloc` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` and `layout` came from this allocator, that is from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` came from this allocator, that is from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Frames of history per topic.
const HISTORY: usize = 16;
/// Publishes before counting: more than the history holds, so every ring is at full size.
const WARM_UP: u64 = 2 * HISTORY as u64;
/// Publishes counted.
const MEASURED: u64 = 100;

#[test]
fn a_publish_allocates_as_much_for_200_subscribers_as_for_one() {
    let one = allocations_per_publish(1);
    let many = allocations_per_publish(200);
    eprintln!("allocations per publish: {one:.2} for 1 subscriber, {many:.2} for 200");
    assert!(one > 0.0, "the counter counts: {one}");
    assert!(
        (many - one).abs() <= 1.0,
        "{one:.2} allocations per publish for 1 subscriber, {many:.2} for 200: something is \
         allocated per delivery"
    );
}

/// Starts a broadcaster with `subscribers` subscribers, publishes, and returns the allocations
/// per publish once every subscriber got every event.
fn allocations_per_publish(subscribers: u64) -> f64 {
    let direct = Direct::start(HISTORY);
    let mut clients = Vec::new();
    direct.subscribe(subscribers, |addr| {
        let mut client = TcpStream::connect(addr).unwrap();
        client
            .write_all(b"GET /events?topic=t HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        clients.push(client);
    });
    let stop = Arc::new(AtomicBool::new(false));
    let reader = std::thread::spawn({
        let stop = stop.clone();
        move || read_until_stopped(clients, &stop)
    });
    let delivered = &direct.stats.frames_delivered;
    let publish = |from: u64, count: u64| {
        let expected = delivered.load(Relaxed) + count * subscribers;
        for n in from..from + count {
            direct.publish(n);
        }
        wait_until(|| delivered.load(Relaxed) >= expected);
    };
    publish(0, WARM_UP);
    let before = ALLOCATIONS.load(Relaxed);
    publish(WARM_UP, MEASURED);
    let allocations = ALLOCATIONS.load(Relaxed) - before;
    direct.stop();
    stop.store(true, Relaxed);
    reader.join().unwrap();
    allocations as f64 / MEASURED as f64
}

/// The clients' side: reads and drops whatever arrives on `sockets` until `stop`, uncounted.
fn read_until_stopped(mut sockets: Vec<TcpStream>, stop: &AtomicBool) {
    UNCOUNTED.with(|uncounted| uncounted.set(true));
    let mut poll = Poll::new().unwrap();
    for (index, socket) in sockets.iter().enumerate() {
        socket.set_nonblocking(true).unwrap();
        let fd = socket.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), Token(index), Interest::READABLE)
            .unwrap();
    }
    let mut events = Events::with_capacity(256);
    let mut scratch = vec![0u8; 64 * 1024];
    while !stop.load(Relaxed) {
        if poll
            .poll(&mut events, Some(Duration::from_millis(10)))
            .is_err()
        {
            continue;
        }
        for event in events.iter() {
            let socket = &mut sockets[event.token().0];
            loop {
                match socket.read(&mut scratch) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
    }
}
