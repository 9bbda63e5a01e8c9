//! Samples the server's memory, the machine's TCP memory and the client's connection count
//! every 250 ms during a run, for the `--svg` chart, `pulse`'s recovery figures and
//! `hostile`'s peaks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::fleet::Fleet;
use crate::probe;

/// Time between samples.
pub const EVERY: Duration = Duration::from_millis(250);

/// One sample.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub t: f64,
    /// Server resident set, bytes.
    pub rss: u64,
    /// Server anonymous resident memory, bytes.
    pub rss_anon: u64,
    /// The machine's TCP buffer memory (`/proc/net/sockstat`), bytes.
    pub tcp_mem: u64,
    /// Client connections streaming.
    pub connections: u64,
}

/// A running sampler.
pub struct Sampler {
    started: Instant,
    stop: Arc<AtomicBool>,
    join: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Starts sampling the memory of `pids` and the streams of `fleet`.
    pub fn start(pids: Vec<u32>, fleet: Arc<Fleet>) -> Sampler {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let join = thread::spawn(move || {
            let mut samples = Vec::new();
            let mut next = started;
            while !stopping.load(Ordering::Relaxed) {
                let memory = probe::memory(&pids).unwrap_or_default();
                let connections = fleet.status().map(|s| s.streaming).unwrap_or(0);
                samples.push(Sample {
                    t: started.elapsed().as_secs_f64(),
                    rss: memory.rss,
                    rss_anon: memory.rss_anon,
                    tcp_mem: memory.tcp_mem,
                    connections,
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
            stop,
            join,
        }
    }

    /// Seconds since the sampler started: the time base of its samples.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Stops and returns the samples.
    pub fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.join.join().unwrap_or_default()
    }
}
