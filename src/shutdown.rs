//! Stopping: the signals that start it and the deadline that ends it.
//!
//! `run` takes any future as its shutdown trigger; the binary passes [`signal`]. On shutdown
//! the accept loop stops, hyper connections finish their current request, the broadcaster ends
//! every stream, and whatever is still running after [`GRACE`] is abandoned.

use std::time::Duration;

use tokio::signal::unix::{signal as unix_signal, SignalKind};

/// The longest a shutdown waits for connections to finish.
pub const GRACE: Duration = Duration::from_secs(5);

/// Resolves on the first SIGINT or SIGTERM.
pub async fn signal() {
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        unix_signal(SignalKind::interrupt()),
        unix_signal(SignalKind::terminate()),
    ) else {
        // Without signal handlers the default action (exit) still stops the process.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}
