//! One client thread: a mio poll over its share of the subscriber connections.
//!
//! Connections live in a slab and the slab key is the poll token, so an event finds its
//! connection with one index. Reads go into one scratch buffer per thread. New connections
//! are opened at the thread's share of the connect rate, with a bound on those still waiting
//! for their response head, so a slow accept loop on the server does not overflow its backlog.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};

use super::conn::{Conn, Outcome, Phase};
use super::request::Requests;
use super::tally::Tally;
use crate::addr::Spread;

/// The waker's token; slab keys stay far below it.
pub const WAKER: Token = Token(usize::MAX);
/// Bytes read per `read` call.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Connections per thread that may wait for their response head at once.
const MAX_PENDING: usize = 256;
/// The longest the loop sleeps without looking at its commands.
const MAX_SLEEP: Duration = Duration::from_millis(50);
/// `EINPROGRESS` on Linux: a non-blocking `connect` has started.
const EINPROGRESS: i32 = 115;
/// Address slots tried past a connection's own when ports run out.
const MAX_SKIPS: usize = 8;

/// Orders from the group to a thread; each is answered on its channel once done.
pub enum Command {
    /// Attempt this many connections in total in this round (since the last `Close`).
    Target(usize, SyncSender<()>),
    /// Forget all counts and latencies, keep the connections.
    Reset(SyncSender<()>),
    /// Close every connection and start a new round.
    Close(SyncSender<()>),
    /// Settle lost events for `expected` events per subscriber and hand over the tally.
    Report(u64, SyncSender<Tally>),
    /// Close everything and end the thread.
    Stop,
}

/// Counters a thread publishes after each poll round, read by the group without locks.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections attempted this round.
    pub attempted: AtomicU64,
    /// Connections that got their response head this round.
    pub headed: AtomicU64,
    /// Connections that failed before their head this round.
    pub failed: AtomicU64,
    /// Sockets open now.
    pub open: AtomicU64,
    /// Connections streaming now.
    pub streaming: AtomicU64,
    /// First copies of events received since the last reset.
    pub delivered: AtomicU64,
    /// Connections the server closed while streaming, ever.
    pub closed: AtomicU64,
}

/// What a thread needs to open its connections.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The server and subscribe request head of each run connection.
    pub requests: Requests,
    /// This thread's connection `k` is process connection `k * stride + offset`...
    pub stride: usize,
    /// ... of which this thread has this offset ...
    pub offset: usize,
    /// ... and process connection `j` is run connection `j + first`.
    pub first: usize,
    /// Source addresses by run connection.
    pub spread: Spread,
    /// This thread's connections per second.
    pub rate: f64,
    /// Sequences with their own latency histogram.
    pub per_event: usize,
    /// Close with a reset instead of a FIN.
    pub reset: bool,
}

/// The state of one client thread.
pub struct ClientThread {
    plan: Plan,
    poll: Poll,
    conns: Slab<Conn>,
    commands: Receiver<Command>,
    counters: Arc<Counters>,
    tally: Tally,
    /// Connections to attempt this round.
    target: usize,
    /// Connections attempted this round.
    attempted: usize,
    headed: u64,
    failed: u64,
    /// Connections waiting for their head.
    pending: usize,
    /// Connections streaming now.
    streaming: u64,
    /// When the next connection may start.
    next_open: Instant,
    /// Address slots skipped because ports ran out there.
    skip: usize,
}

impl ClientThread {
    /// A thread that will take commands from `commands` and publish into `counters`.
    pub fn new(
        plan: Plan,
        poll: Poll,
        commands: Receiver<Command>,
        counters: Arc<Counters>,
    ) -> ClientThread {
        let per_event = plan.per_event;
        ClientThread {
            plan,
            poll,
            conns: Slab::new(),
            commands,
            counters,
            tally: Tally::new(per_event),
            target: 0,
            attempted: 0,
            headed: 0,
            failed: 0,
            pending: 0,
            streaming: 0,
            next_open: Instant::now(),
            skip: 0,
        }
    }

    /// Runs until `Stop` or until the group goes away.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut scratch = vec![0u8; SCRATCH_BYTES];
        loop {
            loop {
                match self.commands.try_recv() {
                    Ok(Command::Stop) | Err(TryRecvError::Disconnected) => return,
                    Ok(command) => self.command(command),
                    Err(TryRecvError::Empty) => break,
                }
            }
            let sleep = self.open_due();
            if let Err(e) = self.poll.poll(&mut events, Some(sleep)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.tally
                        .fail(|t| &mut t.failed_connect, || format!("poll: {e}"));
                    return;
                }
            }
            for event in events.iter() {
                if event.token() == WAKER {
                    continue;
                }
                self.ready(event, &mut scratch);
            }
            self.publish();
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Target(target, done) => {
                self.target = target;
                self.next_open = self.next_open.max(Instant::now());
                let _ = done.send(());
            }
            Command::Reset(done) => {
                self.tally = Tally::new(self.plan.per_event);
                for (_, conn) in self.conns.iter_mut() {
                    conn.seq = Default::default();
                    if conn.is_streaming() {
                        self.tally.subscribers += 1;
                    }
                }
                self.publish();
                let _ = done.send(());
            }
            Command::Close(done) => {
                for (_, conn) in self.conns.iter() {
                    if conn.is_streaming() {
                        self.tally.gone(&conn.seq);
                    }
                }
                self.conns.clear();
                // Give the table's memory back after a large round.
                self.conns.shrink_to_fit();
                self.target = 0;
                self.attempted = 0;
                self.headed = 0;
                self.failed = 0;
                self.pending = 0;
                self.streaming = 0;
                self.publish();
                let _ = done.send(());
            }
            Command::Report(expected, reply) => {
                let mut tally = self.tally.clone();
                tally.settle(
                    expected,
                    self.conns
                        .iter()
                        .filter(|(_, c)| c.is_streaming())
                        .map(|(_, c)| &c.seq),
                );
                let _ = reply.send(tally);
            }
            Command::Stop => {}
        }
    }

    /// Opens the connections that are due; returns how long the poll may sleep.
    fn open_due(&mut self) -> Duration {
        let interval = Duration::from_secs_f64(1.0 / self.plan.rate.max(0.001));
        let now = Instant::now();
        // After a stall, do not make up for lost time in one burst.
        if self.next_open + Duration::from_millis(100) < now {
            self.next_open = now;
        }
        while self.attempted < self.target && self.pending < MAX_PENDING {
            if self.next_open > now {
                return (self.next_open - now).min(MAX_SLEEP);
            }
            self.next_open += interval;
            let index = self.plan.first + self.attempted * self.plan.stride + self.plan.offset;
            self.attempted += 1;
            self.open(index);
        }
        MAX_SLEEP
    }

    fn open(&mut self, index: usize) {
        let spread = self.plan.spread;
        let target = self.plan.requests.addr(index);
        let mut last_error = None;
        for _ in 0..MAX_SKIPS {
            let slot = spread.slot(index) + self.skip;
            if !spread.has_slot(slot) {
                break;
            }
            match connect(target, spread.bind_to(slot, index), self.plan.reset) {
                Ok(stream) => return self.register(stream, index),
                Err(e) if is_port_shortage(&e) => {
                    // This address has no ports left: move this thread on to the next one.
                    self.skip += 1;
                    last_error = Some(e);
                }
                Err(e) => {
                    last_error = Some(e);
                    break;
                }
            }
        }
        self.failed += 1;
        self.tally.fail(
            |t| &mut t.failed_connect,
            || match last_error {
                Some(e) => format!("connect: {e}"),
                None => "connect: out of source addresses".into(),
            },
        );
    }

    /// Adds a connecting socket; run connection `index` picks its request head.
    fn register(&mut self, mut stream: TcpStream, index: usize) {
        let entry = self.conns.vacant_entry();
        let token = Token(entry.key());
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.failed += 1;
            self.tally
                .fail(|t| &mut t.failed_connect, || format!("register: {e}"));
            return;
        }
        entry.insert(Conn {
            stream,
            phase: Phase::Request {
                written: 0,
                head: self.plan.requests.head(index),
            },
            seq: Default::default(),
        });
        self.pending += 1;
    }

    fn ready(&mut self, event: &mio::event::Event, scratch: &mut [u8]) {
        let key = event.token().0;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Phase::Request { .. } = conn.phase {
            if !event.is_writable() && !event.is_error() && !event.is_write_closed() {
                return;
            }
            let written = match conn.stream.take_error() {
                Ok(None) => conn.write_request(),
                Ok(Some(e)) | Err(e) => Err(e),
            };
            match written {
                Ok(true) => {
                    // Nothing more is written: stop hearing about write space.
                    let _ = self.poll.registry().reregister(
                        &mut conn.stream,
                        event.token(),
                        Interest::READABLE,
                    );
                }
                Ok(false) => return,
                Err(e) => {
                    self.tally
                        .fail(|t| &mut t.failed_connect, || format!("connect: {e}"));
                    self.failed += 1;
                    self.pending -= 1;
                    self.conns.remove(key);
                    return;
                }
            }
        }
        if !(event.is_readable() || event.is_read_closed() || event.is_error()) {
            return;
        }
        let was_streaming = conn.is_streaming();
        let drain = event.is_read_closed() || event.is_error();
        match conn.read(scratch, drain, &mut self.tally, now_nanos) {
            Outcome::Open { headed } => {
                if headed {
                    self.headed += 1;
                    self.pending -= 1;
                    self.streaming += 1;
                }
            }
            Outcome::Done => {
                let conn = self.conns.remove(key);
                if conn.is_streaming() {
                    self.tally.gone(&conn.seq);
                    if was_streaming {
                        self.streaming -= 1;
                        self.counters.closed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // Its head and its end came in one read.
                        self.headed += 1;
                        self.pending -= 1;
                    }
                } else {
                    self.failed += 1;
                    self.pending -= 1;
                }
            }
        }
    }

    /// Publishes this round's counts for the group to read.
    fn publish(&self) {
        let c = &self.counters;
        c.attempted.store(self.attempted as u64, Ordering::Relaxed);
        c.headed.store(self.headed, Ordering::Relaxed);
        c.failed.store(self.failed, Ordering::Relaxed);
        c.open.store(self.conns.len() as u64, Ordering::Relaxed);
        c.streaming.store(self.streaming, Ordering::Relaxed);
        c.delivered.store(self.tally.delivered, Ordering::Relaxed);
    }
}

/// Starts a non-blocking connect to `target`, from `source` (address and port) if given.
/// With `reset`, closing sends a RST: no TIME_WAIT is left behind, so repeated runs neither
/// run out of ports nor count the client's closed sockets in the kernel's memory.
fn connect(target: SocketAddr, source: Option<SocketAddr>, reset: bool) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    if reset {
        socket.set_linger(Some(Duration::ZERO))?;
    }
    if let Some(source) = source {
        // Lets the port of a connection in TIME_WAIT from an earlier run be bound again.
        socket.set_reuse_address(true)?;
        if let Err(e) = socket.bind(&source.into()) {
            // Someone listens on that port: let the kernel find another.
            if e.kind() != io::ErrorKind::AddrInUse {
                return Err(e);
            }
            socket.bind(&SocketAddr::new(source.ip(), 0).into())?;
        }
    }
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Errors that mean this source address has no ephemeral port left for the target.
fn is_port_shortage(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::AddrInUse
    )
}

/// Now, in nanoseconds since the Unix epoch, the clock the publisher stamps events with.
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
