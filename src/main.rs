//! The `ssecast` binary: reads its settings, binds, and runs the server until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::sync::Arc;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use tokio::net::TcpListener;
use tracing::info;
use tracing_subscriber::EnvFilter;

use ssecast::config::Config;
use ssecast::stats::Stats;
use ssecast::Listeners;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::parse();
    if let Err(e) = config.check() {
        Config::command()
            .error(ErrorKind::ArgumentConflict, e)
            .exit();
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_env("SSECAST_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let public = TcpListener::bind(config.listen.addrs()).await?;
    let address = public.local_addr()?;
    if config.demo {
        info!(address = %address, "listening; demo page at http://{address}/");
    } else {
        info!(address = %address, "listening");
    }
    let internal = match &config.internal_listen {
        Some(address) => {
            let internal = TcpListener::bind(address.addrs()).await?;
            info!(internal = %internal.local_addr()?,
                  "internal listener for publish, stats and healthz; no publish on the public one");
            Some(internal)
        }
        None => None,
    };
    let listeners = Listeners { public, internal };
    let stats = Arc::new(Stats::default());
    ssecast::run_with(listeners, config, stats, ssecast::shutdown::signal()).await?;
    Ok(())
}
