//! The bell: wakes each shard once for all the commands queued for it together.
//!
//! Waking a shard is a write to its `eventfd` and, on its side, a return from `epoll_wait`:
//! measured at about a third of the server's CPU when every publish woke both shards. While
//! [`ring_shards`](super::Broadcaster::ring_shards) runs on the front end's runtime, a command
//! only marks its shard as due and notifies the ringer task, which tokio runs after the tasks
//! that were ready with it: every publish read in one turn of the front end is delivered by one
//! wake of each shard (and, for a subscriber behind, by one write). Without the ringer, or from
//! a thread outside the runtime once it is gone, each command wakes its shard at once.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use tokio::sync::Notify;

use super::ShardHandle;

/// Whether shards are woken later, by the ringer.
#[derive(Debug, Default)]
pub(super) struct Bell {
    /// Set while the ringer task runs.
    ringing: AtomicBool,
    /// Wakes the ringer; a permit is kept if it is busy, so no ring is missed.
    notify: Notify,
}

impl Bell {
    /// After a command was queued for `shard`: wakes it now, or marks it due and lets the
    /// ringer wake it.
    pub(super) fn queued(&self, shard: &ShardHandle) {
        if !self.ringing.load(SeqCst) {
            shard.wake();
            return;
        }
        if !shard.due.swap(true, SeqCst) {
            self.notify.notify_one();
        }
        // The ringer may have stopped after the check above and rung before the mark.
        if !self.ringing.load(SeqCst) && shard.due.swap(false, SeqCst) {
            shard.wake();
        }
    }

    /// Marks the ringer as running; the guard marks it stopped when dropped, ringing first.
    pub(super) fn start<'a>(&'a self, shards: &'a [ShardHandle]) -> Ringing<'a> {
        self.ringing.store(true, SeqCst);
        Ringing { bell: self, shards }
    }

    /// Waits until a command was queued since the last ring.
    pub(super) async fn wait(&self) {
        self.notify.notified().await;
    }
}

/// The ringer's hold on the bell: while it lives, commands wait for [`Ringing::ring`].
pub(super) struct Ringing<'a> {
    bell: &'a Bell,
    shards: &'a [ShardHandle],
}

impl Ringing<'_> {
    /// Wakes every shard that is due.
    pub(super) fn ring(&self) {
        for shard in self.shards {
            if shard.due.swap(false, SeqCst) {
                shard.wake();
            }
        }
    }
}

impl Drop for Ringing<'_> {
    fn drop(&mut self) {
        self.bell.ringing.store(false, SeqCst);
        self.ring();
    }
}
