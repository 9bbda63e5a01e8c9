//! What the loadtest's tests share: a real ssecast started in this process on a free port,
//! and a time bound on blocking scenario code.

use std::time::Duration;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How long one scenario may take.
const LIMIT: Duration = Duration::from_secs(60);

/// A server on a free port, started with `flags`; dropping the sender stops it.
pub async fn start_server(flags: &[&str]) -> (std::net::SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let args = std::iter::once("ssecast").chain(flags.iter().copied());
    let config = ssecast::config::Config::try_parse_from(args).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(ssecast::run(listener, config, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// Runs blocking scenario code off the runtime, failing the test if it takes too long.
pub async fn within_limit<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::time::timeout(LIMIT, tokio::task::spawn_blocking(f))
        .await
        .expect("scenario finished in time")
        .expect("scenario did not panic")
}
