//! Giving the heap back to the system after a spike of connections.
//!
//! Until its request head is read, a connection is a task on the front end's heap; so is every
//! hyper connection. When a spike of them ends, glibc keeps the freed memory: `free` returns
//! only the top of the heap, and the holes below live allocations stay resident. Measured
//! (BENCHMARKS.md): 15,000 pending heads that then closed left 28 MiB resident, and one
//! `malloc_trim(0)` brought the process back to 0.6 MiB. So when the number of live
//! connection tasks has fallen by [`SPIKE_TASKS`] from its peak since the last trim, the heap is
//! trimmed once, on a blocking thread (a trim walks the whole heap).
#![allow(unsafe_code)]

/// How far the live connection tasks must fall from their peak to call it a spike.
pub const SPIKE_TASKS: usize = 1000;

/// Watches the live connection tasks for the end of a spike.
#[derive(Debug, Default)]
pub struct SpikeWatch {
    /// The most tasks seen live since the last trim.
    peak: usize,
}

impl SpikeWatch {
    /// Records `live` tasks now; true when a spike has ended and the heap should be trimmed.
    pub fn ended(&mut self, live: usize) -> bool {
        self.peak = self.peak.max(live);
        if self.peak - live < SPIKE_TASKS {
            return false;
        }
        self.peak = live;
        true
    }
}

/// Returns the free memory of every malloc arena to the system.
pub fn heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointer and may be called at any time from any thread;
    // glibc locks each arena while it trims it.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spike_ends_when_tasks_fall_from_their_peak() {
        let mut watch = SpikeWatch::default();
        assert!(!watch.ended(10));
        assert!(!watch.ended(5_000));
        assert!(!watch.ended(4_500), "a small fall is no spike's end");
        assert!(watch.ended(3_000));
        assert!(!watch.ended(2_500), "once per spike");
        assert!(!watch.ended(3_400));
        assert!(watch.ended(100));
    }

    #[test]
    fn trimming_the_heap_is_harmless() {
        let kept = vec![1u8; 1 << 20];
        heap();
        assert!(kept.iter().all(|&b| b == 1));
    }
}
