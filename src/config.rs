//! Settings: command-line flags with environment fallbacks, checked once at start.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use crate::broadcast;

/// How the server is set up. Every flag has an environment fallback and a default.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ssecast",
    version,
    about = "A Server-Sent Events broadcast server"
)]
pub struct Config {
    /// Address to listen on; port 0 picks a free one (the log says which).
    #[arg(long, env = "SSECAST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Silence after which a subscriber is sent a keep-alive comment (e.g. 15s, 500ms).
    #[arg(long, env = "SSECAST_KEEP_ALIVE", default_value = "15s", value_parser = parse_interval)]
    pub keep_alive: Duration,

    /// Events kept per topic for clients that resume with Last-Event-ID.
    #[arg(long, env = "SSECAST_HISTORY", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub history: u32,

    /// Most topics held; a subscribe or publish naming new topics past it gets 503.
    #[arg(long, env = "SSECAST_MAX_TOPICS", default_value_t = 100_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_topics: u32,

    /// Largest publish body accepted, in bytes.
    #[arg(long, env = "SSECAST_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,

    /// Largest request head accepted, in bytes.
    #[arg(long, env = "SSECAST_MAX_HEAD_BYTES", default_value_t = 8 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..=65536))]
    pub max_head_bytes: u32,

    /// Time a client has to send its whole request head.
    #[arg(long, env = "SSECAST_HEAD_TIMEOUT", default_value = "10s", value_parser = parse_interval)]
    pub head_timeout: Duration,

    /// Value of Access-Control-Allow-Origin on every response (e.g. * or https://app.example).
    #[arg(long, env = "SSECAST_CORS_ORIGIN", value_parser = parse_origin)]
    pub cors_origin: Option<String>,

    /// Broadcaster threads, each owning a share of the subscribers; 0 means one per CPU.
    #[arg(long, env = "SSECAST_SHARDS", default_value_t = 0)]
    pub shards: usize,
}

impl Config {
    /// The broadcaster's part of the settings.
    pub fn broadcast(&self) -> broadcast::Settings {
        let shards = match self.shards {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        broadcast::Settings {
            shards,
            history: self.history as usize,
            max_topics: self.max_topics as usize,
            keep_alive: self.keep_alive,
        }
    }
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if interval < Duration::from_millis(10) {
        return Err("must be at least 10ms".into());
    }
    Ok(interval)
}

fn parse_origin(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains(|c: char| c.is_control()) {
        return Err("must be a non-empty origin without control characters".into());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_human_durations() {
        let config = Config::try_parse_from(["ssecast", "--keep-alive", "500ms"]).unwrap();
        assert_eq!(config.keep_alive, Duration::from_millis(500));
        assert_eq!(config.history, 1000);
        assert_eq!(config.max_body_bytes, 1 << 20);
        assert!(Config::try_parse_from(["ssecast", "--keep-alive", "1ms"]).is_err());
        assert!(Config::try_parse_from(["ssecast", "--history", "0"]).is_err());
    }
}
