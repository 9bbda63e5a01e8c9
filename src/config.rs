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

    /// Bytes of history kept for all topics together; past it the oldest events go first.
    #[arg(long, env = "SSECAST_HISTORY_BYTES", default_value_t = 64 << 20,
          value_parser = clap::value_parser!(u64).range(1024..=(1 << 40)))]
    pub history_bytes: u64,

    /// A topic with no subscriber is forgotten, with its history, this long after its last
    /// publish or subscriber.
    #[arg(long, env = "SSECAST_TOPIC_IDLE", default_value = "1h", value_parser = parse_idle)]
    pub topic_idle: Duration,

    /// Most topics that one client address's subscribes may create and hold at once.
    #[arg(long, env = "SSECAST_MAX_TOPICS_PER_IP", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_topics_per_ip: u32,

    /// Most connections one client address may hold (an IPv6 client counts by its /64);
    /// 0 for no limit (behind a proxy every client has the proxy's address).
    #[arg(long, env = "SSECAST_MAX_CONNECTIONS_PER_IP", default_value_t = 1000)]
    pub max_connections_per_ip: u32,

    /// Most subscribers held at once; 0 for as many as the open-file limit allows while
    /// keeping descriptors for probes and publishers.
    #[arg(long, env = "SSECAST_MAX_SUBSCRIBERS", default_value_t = 0)]
    pub max_subscribers: usize,

    /// Send buffer asked for each subscriber socket (SO_SNDBUF, in bytes; the kernel doubles
    /// it); 0 for the kernel's default, which grows to megabytes.
    #[arg(long, env = "SSECAST_SEND_BUFFER", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u32).range(0..=(64 << 20)))]
    pub send_buffer: u32,

    /// On shutdown each stream is told to reconnect after 1s plus a random part of this.
    #[arg(long, env = "SSECAST_RECONNECT_SPREAD", default_value = "10s",
          value_parser = parse_spread)]
    pub reconnect_spread: Duration,
}

impl Config {
    /// The broadcaster's part of the settings; `max_subscribers` is what the open-file limit
    /// allows when the flag leaves it to that.
    pub fn broadcast(&self, max_subscribers: usize) -> broadcast::Settings {
        let shards = match self.shards {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        broadcast::Settings {
            shards,
            history: self.history as usize,
            history_bytes: usize::try_from(self.history_bytes).unwrap_or(usize::MAX),
            max_topics: self.max_topics as usize,
            max_topics_per_address: self.max_topics_per_ip as usize,
            topic_idle: self.topic_idle,
            max_subscribers: match self.max_subscribers {
                0 => max_subscribers,
                n => n,
            },
            keep_alive: self.keep_alive,
            send_buffer: self.send_buffer as usize,
            reconnect_spread: self.reconnect_spread,
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

fn parse_idle(text: &str) -> Result<Duration, String> {
    parse_within(
        text,
        Duration::from_millis(10),
        Duration::from_secs(365 * 86_400),
    )
}

fn parse_spread(text: &str) -> Result<Duration, String> {
    parse_within(text, Duration::ZERO, Duration::from_secs(3600))
}

/// A duration between `least` and `most`, so that no later arithmetic on it can overflow.
fn parse_within(text: &str, least: Duration, most: Duration) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration < least || duration > most {
        return Err(format!(
            "must be between {} and {}",
            humantime::format_duration(least),
            humantime::format_duration(most)
        ));
    }
    Ok(duration)
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

    #[test]
    fn limits_have_sane_ranges() {
        let config = Config::try_parse_from(["ssecast"]).unwrap();
        assert_eq!(config.topic_idle, Duration::from_secs(3600));
        assert_eq!(config.broadcast(500).max_subscribers, 500);
        let set = Config::try_parse_from(["ssecast", "--max-subscribers", "7"]).unwrap();
        assert_eq!(set.broadcast(500).max_subscribers, 7);
        for absurd in [
            ["--topic-idle", "1000000000y"],
            ["--topic-idle", "0s"],
            ["--reconnect-spread", "2h"],
            ["--history-bytes", "10"],
            ["--send-buffer", "1000000000"],
        ] {
            let flags = ["ssecast", absurd[0], absurd[1]];
            assert!(Config::try_parse_from(flags).is_err(), "{absurd:?}");
        }
    }
}
