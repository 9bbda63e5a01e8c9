//! Reads memory and CPU time from `/proc`: the server's, the client's own, and the kernel's.
//!
//! User space is `VmRSS` and `RssAnon` of `/proc/PID/status`, summed over the measured PIDs.
//! Kernel memory is machine-wide (`/proc/net/sockstat` TCP `mem` pages and `Slab` of
//! `/proc/meminfo`), so on loopback it holds both ends of every connection, client and server;
//! so are `MemTotal` and `MemAvailable`, what the whole machine has and has left.
//! CPU time is `utime + stime` of `/proc/PID/stat`, in clock ticks.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// `USER_HZ`: `/proc` reports CPU time in these ticks per second on every Linux platform.
pub const TICKS_PER_SECOND: u64 = 100;
const PAGE_BYTES: u64 = 4096;

/// Memory of a set of processes and of the kernel at one moment.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Memory {
    /// Resident set (`VmRSS`), bytes.
    pub rss: u64,
    /// Resident anonymous memory (`RssAnon`): the heap and stacks, bytes.
    pub rss_anon: u64,
    /// TCP buffer memory (`/proc/net/sockstat` `mem`), bytes, all sockets of the machine.
    pub tcp_mem: u64,
    /// Kernel slab (`/proc/meminfo` `Slab`), bytes, machine-wide.
    pub slab: u64,
    /// Memory the machine has available (`/proc/meminfo` `MemAvailable`), bytes.
    #[serde(default)]
    pub mem_available: u64,
    /// The machine's memory (`/proc/meminfo` `MemTotal`), bytes.
    #[serde(default)]
    pub mem_total: u64,
}

impl Memory {
    /// Kernel memory: TCP buffers plus slab.
    pub fn kernel(&self) -> u64 {
        self.tcp_mem + self.slab
    }

    /// The machine's memory in use: `MemTotal - MemAvailable`, bytes.
    pub fn mem_used(&self) -> u64 {
        self.mem_total.saturating_sub(self.mem_available)
    }
}

/// Memory of one process at one moment.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct ProcessMemory {
    /// The process.
    pub pid: u32,
    /// Resident set (`VmRSS`), bytes.
    pub rss: u64,
    /// Resident anonymous memory (`RssAnon`), bytes.
    pub rss_anon: u64,
}

/// Reads the memory of each of `pids`, in order: a cluster's nodes one by one.
pub fn each_process(pids: &[u32]) -> Result<Vec<ProcessMemory>, Error> {
    pids.iter().map(|&pid| process_memory(pid)).collect()
}

/// Reads the memory of `pids` (summed) and of the kernel.
pub fn memory(pids: &[u32]) -> Result<Memory, Error> {
    let mut memory = kernel()?;
    for process in each_process(pids)? {
        memory.rss += process.rss;
        memory.rss_anon += process.rss_anon;
    }
    Ok(memory)
}

/// The memory of `pid`, from `VmRSS` and `RssAnon` of `/proc/PID/status`: the loadtest's one
/// reader of a process's memory (the server's `stats::rss_bytes` reads only its own).
pub fn process_memory(pid: u32) -> Result<ProcessMemory, Error> {
    let path = format!("/proc/{pid}/status");
    let text = read(&path)?;
    let rss = status_kib(&text, "VmRSS:").ok_or_else(|| Error::Proc(path, "no VmRSS".into()))?;
    let anon = status_kib(&text, "RssAnon:").unwrap_or(0);
    Ok(ProcessMemory {
        pid,
        rss: rss * 1024,
        rss_anon: anon * 1024,
    })
}

/// Machine-wide TCP buffer memory, slab, available and total memory.
pub fn kernel() -> Result<Memory, Error> {
    let sockstat = read("/proc/net/sockstat")?;
    let meminfo = read("/proc/meminfo")?;
    Ok(Memory {
        tcp_mem: sockstat_tcp_mem_pages(&sockstat).unwrap_or(0) * PAGE_BYTES,
        slab: status_kib(&meminfo, "Slab:").unwrap_or(0) * 1024,
        mem_available: status_kib(&meminfo, "MemAvailable:").unwrap_or(0) * 1024,
        mem_total: status_kib(&meminfo, "MemTotal:").unwrap_or(0) * 1024,
        ..Memory::default()
    })
}

/// CPU time (`utime + stime`) of `pids`, summed, in ticks.
pub fn cpu_ticks(pids: &[u32]) -> Result<u64, Error> {
    let mut total = 0;
    for &pid in pids {
        let path = format!("/proc/{pid}/stat");
        let text = read(&path)?;
        total += stat_cpu_ticks(&text).ok_or_else(|| Error::Proc(path, "malformed".into()))?;
    }
    Ok(total)
}

/// CPU time of this process, its live threads and its collected children, in ticks.
pub fn own_cpu_ticks() -> u64 {
    read("/proc/self/stat")
        .ok()
        .and_then(|text| stat_cpu_ticks_with_children(&text))
        .unwrap_or(0)
}

/// Converts ticks to seconds.
pub fn ticks_to_seconds(ticks: u64) -> f64 {
    ticks as f64 / TICKS_PER_SECOND as f64
}

/// Waits until `pids` use no CPU for `quiet` (measured in ticks), at most `limit`; returns
/// whether they went quiet.
pub fn wait_idle(pids: &[u32], quiet: Duration, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let step = Duration::from_millis(100);
    let mut last = cpu_ticks(pids).unwrap_or(0);
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        thread::sleep(step);
        let now = cpu_ticks(pids).unwrap_or(0);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= quiet {
            return true;
        }
    }
    false
}

fn read(path: &str) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|e| Error::Proc(path.to_owned(), e.to_string()))
}

/// The number after `key` in a `key: value kB` file.
fn status_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The `mem` field of the `TCP:` line of `/proc/net/sockstat`, in pages.
fn sockstat_tcp_mem_pages(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|line| line.strip_prefix("TCP:"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    fields
        .chunks(2)
        .find(|pair| pair.first() == Some(&"mem"))
        .and_then(|pair| pair.get(1))
        .and_then(|n| n.parse().ok())
}

/// The fields of `/proc/PID/stat` after the command name, which may hold spaces and `)`.
fn stat_fields(text: &str) -> Option<Vec<&str>> {
    let after = text.rfind(')')?;
    Some(text.get(after + 1..)?.split_whitespace().collect())
}

/// `utime + stime` (fields 14 and 15; 12 and 13 after the name).
fn stat_cpu_ticks(text: &str) -> Option<u64> {
    let fields = stat_fields(text)?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `utime + stime + cutime + cstime`.
fn stat_cpu_ticks_with_children(text: &str) -> Option<u64> {
    let fields = stat_fields(text)?;
    let mut total = 0;
    for at in 11..=14 {
        total += fields.get(at)?.parse::<u64>().ok()?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_meminfo() {
        let status = "Name:\tssecast\nVmRSS:\t   10240 kB\nRssAnon:\t    2048 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(10240));
        assert_eq!(status_kib(status, "RssAnon:"), Some(2048));
        assert_eq!(status_kib(status, "RssFile:"), None);
        assert_eq!(
            status_kib("Slab:             195932 kB\n", "Slab:"),
            Some(195932)
        );
    }

    #[test]
    fn parses_sockstat() {
        let text =
            "sockets: used 16\nTCP: inuse 3 orphan 0 tw 1472 alloc 3 mem 12\nUDP: inuse 0 mem 0\n";
        assert_eq!(sockstat_tcp_mem_pages(text), Some(12));
    }

    #[test]
    fn parses_stat_with_awkward_names() {
        let text = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 3 2 20 0 1 0 1 2 3";
        assert_eq!(stat_cpu_ticks(text), Some(12));
        assert_eq!(stat_cpu_ticks_with_children(text), Some(17));
        assert_eq!(stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let memory = memory(&[std::process::id()]).unwrap();
        assert!(memory.rss > 0 && memory.slab > 0 && memory.mem_available > 0);
        assert!(memory.mem_used() > 0 && memory.mem_used() < memory.mem_total);
        let each = each_process(&[std::process::id()]).unwrap();
        assert_eq!(each.len(), 1);
        assert!(each[0].rss > 0 && each[0].pid == std::process::id());
        assert!(cpu_ticks(&[std::process::id()]).is_ok());
    }
}
