//! The `ssecast` binary: reads its settings, binds, and runs the server until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use tokio::net::TcpListener;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use ssecast::config::{Config, ListenAddress};
use ssecast::stats::Stats;
use ssecast::Listeners;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
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
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Binds the listeners and runs the server; an error is a sentence for the operator.
async fn serve(config: Config) -> Result<(), String> {
    let public = bind(
        &config.listen,
        "--listen or SSECAST_LISTEN",
        config.reuse_port,
    )?;
    let address = local_addr(&public)?;
    if config.demo {
        info!(address = %address, "listening; demo page at http://{address}/");
    } else {
        info!(address = %address, "listening");
    }
    let internal = match &config.internal_listen {
        Some(address) => {
            let flags = "--internal-listen or SSECAST_INTERNAL_LISTEN";
            let internal = bind(address, flags, false)?;
            info!(internal = %local_addr(&internal)?,
                  "internal listener for publish, stats and healthz; no publish on the public one");
            Some(internal)
        }
        None => None,
    };
    let listeners = Listeners { public, internal };
    let stats = Arc::new(Stats::default());
    ssecast::run_with(listeners, config, stats, ssecast::shutdown::signal())
        .await
        .map_err(|e| format!("server failed: {e}"))
}

/// How many connections may wait to be accepted (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// Binds `address` (the first of its resolved addresses that binds), sharing its port with
/// other processes when `reuse_port`, or says why not and which `flags` choose another.
fn bind(address: &ListenAddress, flags: &str, reuse_port: bool) -> Result<TcpListener, String> {
    let mut last = None;
    for addr in address.addrs() {
        match bind_one(*addr, reuse_port) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::other("no address to listen on"));
    let why = match e.kind() {
        io::ErrorKind::AddrInUse => "the address is already in use".to_owned(),
        _ => e.to_string(),
    };
    Err(format!(
        "cannot listen on {address}: {why}; choose another address with {flags}"
    ))
}

fn bind_one(addr: std::net::SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

fn local_addr(listener: &TcpListener) -> Result<std::net::SocketAddr, String> {
    listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))
}
