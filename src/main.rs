//! The `ssecast` binary: reads its settings, binds, and runs the server until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use std::io::IsTerminal;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use tokio::net::TcpListener;
use tracing::info;
use tracing_subscriber::EnvFilter;

use ssecast::config::Config;

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
    let listener = TcpListener::bind(config.listen).await?;
    info!(address = %listener.local_addr()?, "listening; demo page at http://{}/", listener.local_addr()?);
    ssecast::run(listener, config, ssecast::shutdown::signal()).await?;
    Ok(())
}
