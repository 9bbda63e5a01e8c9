//! Samples the server's memory, the machine's memory and the client's connection count every
//! 250 ms during a run, for the `--json` report's `samples`, the `--svg` chart, `pulse`'s
//! recovery figures and `hostile`'s peaks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::fleet::Fleet;
use crate::probe;

/// Time between samples.
pub const EVERY: Duration = Duration::from_millis(250);

/// One sample: numbers only, about 150 bytes of JSON, 4 a second.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    /// Seconds since the sampler started, counted from the start of the wall clock's second
    /// it started in, so that whole seconds line up with the events' send stamps.
    pub t: f64,
    /// Client connections streaming.
    pub connections: u64,
    /// Server resident set, summed over the server's processes, bytes.
    pub rss: u64,
    /// Server anonymous resident memory, summed likewise, bytes.
    pub rss_anon: u64,
    /// The machine's TCP buffer memory (`/proc/net/sockstat`), bytes.
    pub tcp_mem: u64,
    /// The machine's kernel slab (`/proc/meminfo` `Slab`), bytes.
    pub slab: u64,
    /// What the machine has available (`MemAvailable`), bytes.
    pub mem_available: u64,
    /// The machine's memory in use, `MemTotal - MemAvailable`, bytes.
    pub mem_used: u64,
}

/// A running sampler.
pub struct Sampler {
    /// Time 0 of the samples: the start of the wall clock's second the sampler started in.
    started: Instant,
    /// That second, since the Unix epoch: places the events' send stamps on the time axis.
    started_unix: u64,
    stop: Arc<AtomicBool>,
    join: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Starts sampling the memory of `pids` and the streams of `fleet`.
    pub fn start(pids: Vec<u32>, fleet: Arc<Fleet>) -> Sampler {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let now = Instant::now();
        let into_second = Duration::from_nanos(u64::from(unix.subsec_nanos()));
        let started = now.checked_sub(into_second).unwrap_or(now);
        let started_unix = unix.as_secs();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let join = thread::spawn(move || {
            let mut samples = Vec::new();
            let mut next = now;
            while !stopping.load(Ordering::Relaxed) {
                let memory = probe::memory(&pids).unwrap_or_default();
                let connections = fleet.status().map(|s| s.streaming).unwrap_or(0);
                samples.push(Sample {
                    t: started.elapsed().as_secs_f64(),
                    connections,
                    rss: memory.rss,
                    rss_anon: memory.rss_anon,
                    tcp_mem: memory.tcp_mem,
                    slab: memory.slab,
                    mem_available: memory.mem_available,
                    mem_used: memory.mem_used(),
                });
                next += EVERY;
                let now = Instant::now();
                if next > now {
                    thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
            samples
        });
        Sampler {
            started,
            started_unix,
            stop,
            join,
        }
    }

    /// Seconds since the sampler started: the time base of its samples.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The second on the samples' time axis of `unix_second` (a second since the Unix epoch,
    /// as events are stamped): samples with `t` in `[s, s + 1)` were taken in second `s`.
    pub fn second_of(&self, unix_second: u64) -> u64 {
        unix_second.saturating_sub(self.started_unix)
    }

    /// Stops and returns the samples.
    pub fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.join.join().unwrap_or_default()
    }
}
