//! All the subscribers of a run: a client group in this process, and worker processes when
//! one process cannot hold them all.
//!
//! A run of `n` subscribers is split into as few processes as `per_process` allows, in equal
//! shares; this process takes the first share. A connection target is split in proportion to
//! the shares, so every process opens connections at the same time and the connect rate holds.

use std::thread;
use std::time::{Duration, Instant};

use crate::client::tally::Tally;
use crate::client::{ClientGroup, GroupSpec, Status};
use crate::error::Error;
use crate::target::Url;
use crate::token::TokenFile;
use crate::ui::Ui;
use crate::worker::{Remote, Request};

/// How the fleet's clients behave.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Client threads per process.
    pub threads: usize,
    /// Connections per second, for the whole run.
    pub rate: f64,
    /// Subscribers per process at most.
    pub per_process: usize,
    /// Connections per source address.
    pub per_address: usize,
    /// Sequences with their own latency histogram.
    pub per_event: usize,
    /// Close connections with a reset instead of a FIN.
    pub reset: bool,
    /// Tokens for the subscribers, if they send any.
    pub tokens: Option<TokenFile>,
}

/// The subscribers of a run.
pub struct Fleet {
    local: ClientGroup,
    remotes: Vec<Remote>,
    /// Subscribers each process holds at most; this process first.
    shares: Vec<usize>,
}

/// Splits `n` into `ceil(n / per_process)` shares that differ by at most one.
pub fn shares(n: usize, per_process: usize) -> Vec<usize> {
    let processes = n.div_ceil(per_process.max(1)).max(1);
    (0..processes)
        .map(|p| n / processes + usize::from(p < n % processes))
        .collect()
}

/// Splits `target` over processes in proportion to `shares`, never above a share.
pub fn split(target: usize, shares: &[usize]) -> Vec<usize> {
    let total: usize = shares.iter().sum();
    let target = target.min(total);
    if total == 0 {
        return vec![0; shares.len()];
    }
    let mut parts: Vec<usize> = shares.iter().map(|&s| target * s / total).collect();
    let mut left = target - parts.iter().sum::<usize>();
    for (part, &share) in parts.iter_mut().zip(shares) {
        if left == 0 {
            break;
        }
        if *part < share {
            *part += 1;
            left -= 1;
        }
    }
    parts
}

impl Fleet {
    /// Starts the client threads (and worker processes) for up to `n` subscribers, dealt
    /// over `urls` in turn.
    pub fn start(urls: &[Url], n: usize, options: &ClientOptions) -> Result<Fleet, Error> {
        let shares = shares(n, options.per_process);
        let processes = shares.len();
        let mut first = 0;
        let mut specs = Vec::with_capacity(processes);
        for &share in &shares {
            specs.push(GroupSpec {
                urls: urls.to_vec(),
                first,
                threads: options.threads,
                rate: options.rate / processes as f64,
                per_address: options.per_address,
                per_event: options.per_event,
                reset: options.reset,
                tokens: options.tokens.clone(),
            });
            first += share;
        }
        let local = ClientGroup::start(&specs[0])?;
        let remotes = specs[1..]
            .iter()
            .map(Remote::spawn)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Fleet {
            local,
            remotes,
            shares,
        })
    }

    /// Processes holding subscribers, this one included.
    pub fn processes(&self) -> usize {
        self.shares.len()
    }

    /// Sets how many connections the fleet attempts this round, in total.
    pub fn connect(&self, target: usize) -> Result<(), Error> {
        let parts = split(target, &self.shares);
        for (remote, &part) in self.remotes.iter().zip(&parts[1..]) {
            remote.expect_ok(&Request::Connect { target: part })?;
        }
        self.local.connect(parts[0])
    }

    /// CPU time of every client process (and of children this one has collected), ticks.
    pub fn cpu_ticks(&self) -> Result<u64, Error> {
        let mut ticks = crate::probe::own_cpu_ticks();
        for remote in &self.remotes {
            ticks += remote.cpu_ticks()?;
        }
        Ok(ticks)
    }

    /// The summed counts.
    pub fn status(&self) -> Result<Status, Error> {
        let mut status = self.local.status();
        for remote in &self.remotes {
            status.add(&remote.status()?);
        }
        Ok(status)
    }

    /// Forgets counts and latencies everywhere.
    pub fn reset(&self) -> Result<(), Error> {
        for remote in &self.remotes {
            remote.expect_ok(&Request::Reset)?;
        }
        self.local.reset()
    }

    /// Closes every connection.
    pub fn close(&self) -> Result<(), Error> {
        for remote in &self.remotes {
            remote.expect_ok(&Request::Close)?;
        }
        self.local.close()
    }

    /// The merged tally for `expected` events per subscriber.
    pub fn report(&self, expected: u64) -> Result<Tally, Error> {
        let mut tally = self.local.report(expected)?;
        for remote in &self.remotes {
            tally.merge(&remote.report(expected)?);
        }
        Ok(tally)
    }

    /// Opens connections up to `target` this round and waits until each has its head or has
    /// failed, at most `limit`; the progress bar shows settled connections.
    pub fn connect_and_wait(
        &self,
        target: usize,
        limit: Duration,
        ui: &Ui,
        what: &str,
    ) -> Result<Status, Error> {
        let start = self.status()?;
        self.connect(target)?;
        let goal = (target as u64).saturating_sub(start.attempted);
        let bar = ui.bar(goal, what);
        let deadline = Instant::now() + limit;
        loop {
            let status = self.status()?;
            let done = status.settled() - start.settled();
            bar.set_position(done);
            if done >= goal || Instant::now() >= deadline {
                bar.finish_and_clear();
                return Ok(status);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{shares, split};

    #[test]
    fn shares_are_even_and_bounded() {
        assert_eq!(shares(15_000, 19_000), vec![15_000]);
        assert_eq!(shares(25_000, 19_000), vec![12_500, 12_500]);
        assert_eq!(shares(40_001, 19_000), vec![13_334, 13_334, 13_333]);
        assert_eq!(shares(0, 19_000), vec![0]);
        assert_eq!(shares(5, 0), vec![1; 5]);
    }

    #[test]
    fn targets_split_in_proportion() {
        assert_eq!(split(12_500, &[12_500, 12_500]), vec![6_250, 6_250]);
        assert_eq!(split(7, &[5, 5]), vec![4, 3]);
        assert_eq!(split(100, &[5, 5]), vec![5, 5], "never above a share");
        assert_eq!(split(3, &[1, 4]), vec![1, 2]);
        for target in 0..=10 {
            let parts = split(target, &[3, 4, 3]);
            assert_eq!(parts.iter().sum::<usize>(), target);
        }
    }
}
