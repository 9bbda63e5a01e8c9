//! Settings: command-line flags with environment fallbacks, checked once at start.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::Parser;

use jsonwebtoken::Algorithm;

use crate::auth::{Expected, KeyError, Secret, Verifier};
use crate::broadcast;

/// The largest `--max-body-bytes`.
const MAX_BODY_BYTES: u64 = 16 << 20;
/// The largest `--max-body-bytes-in-flight`: far above any memory, far below a semaphore's
/// limit.
const MAX_BODY_BYTES_IN_FLIGHT: u64 = 1 << 40;
/// The shortest duration any flag takes.
const MIN_DURATION: Duration = Duration::from_millis(10);
/// The longest keep-alive interval.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest timeout: a client may be given an hour, never enough to overflow a deadline.
const MAX_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// The longest a topic without subscribers is kept: a year.
const MAX_TOPIC_IDLE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Why settings are refused: a value that does not parse, or values that do not go together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("--max-body-bytes-in-flight ({0}) is below --max-body-bytes ({1}): a largest body could never be read")]
    BudgetBelowBody(usize, usize),
    #[error("expected host:port, such as 127.0.0.1:8080, localhost:8080 or [::1]:8080")]
    NotHostPort,
    #[error("cannot resolve {host}: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("--subscriber-jwt-required needs --subscriber-jwt-key")]
    RequiredWithoutKey,
    #[error("--subscriptions needs --subscriber-jwt-key: its updates are private and its API needs a token")]
    SubscriptionsWithoutKey,
    #[error("--subscriptions does not work with --redis yet: each node would announce on its own")]
    SubscriptionsWithRedis,
}

/// An address to listen on, as given (`127.0.0.1:8080`, `localhost:8080`, `[::1]:8080`), resolved
/// once at start: a name that does not resolve is refused with the flag, not at bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddress {
    /// The text given, for messages.
    text: String,
    /// What it resolved to, in the resolver's order; never empty.
    resolved: Vec<SocketAddr>,
}

// === impl ListenAddress ===

impl ListenAddress {
    /// The addresses to try binding, in order; the first that binds is used.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.resolved
    }
}

impl FromStr for ListenAddress {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, ConfigError> {
        let resolved = match text.parse::<SocketAddr>() {
            Ok(address) => vec![address],
            Err(_) => {
                let (host, port) = text.rsplit_once(':').ok_or(ConfigError::NotHostPort)?;
                let port: u16 = port.parse().map_err(|_| ConfigError::NotHostPort)?;
                if host.is_empty() {
                    return Err(ConfigError::NotHostPort);
                }
                let unresolvable = |reason: String| ConfigError::Unresolvable {
                    host: host.to_owned(),
                    reason,
                };
                let resolved: Vec<SocketAddr> = (host, port)
                    .to_socket_addrs()
                    .map_err(|e| unresolvable(e.to_string()))?
                    .collect();
                if resolved.is_empty() {
                    return Err(unresolvable("no address".into()));
                }
                resolved
            }
        };
        Ok(ListenAddress {
            text: text.to_owned(),
            resolved,
        })
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// How the server is set up. Every flag has an environment fallback and a default.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ssecast",
    version,
    about = "A Server-Sent Events broadcast server"
)]
pub struct Config {
    /// Address to listen on (host:port, a name such as localhost resolved at start); port 0
    /// picks a free one (the log says which).
    #[arg(long, env = "SSECAST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: ListenAddress,

    /// Share the listening port with other processes that set it too (`SO_REUSEPORT`): the
    /// kernel spreads new connections over them. Join them with `--redis` so that a publish to
    /// any reaches the subscribers of all.
    #[arg(long, env = "SSECAST_REUSE_PORT")]
    pub reuse_port: bool,

    /// A second address serving only publish, health and stats, kept reachable at the open-file
    /// limit; when set, the public address serves no publish.
    #[arg(long, env = "SSECAST_INTERNAL_LISTEN")]
    pub internal_listen: Option<ListenAddress>,

    /// Redis that joins this node to the others using it (`redis://host:port/db`): a publish
    /// on any node reaches every node's subscribers, in one order, with history shared.
    #[arg(long, env = "SSECAST_REDIS")]
    pub redis: Option<redis::ConnectionInfo>,

    /// What this deployment's keys and channel in Redis begin with, so that several share one
    /// Redis.
    #[arg(long, env = "SSECAST_REDIS_PREFIX", default_value = "ssecast",
          value_parser = redis_prefix)]
    pub redis_prefix: String,

    /// Events kept in Redis's shared log (all topics together): what a node that starts or
    /// reconnects reads back.
    #[arg(long, env = "SSECAST_REDIS_HISTORY", default_value_t = 100_000,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub redis_history: u32,

    /// Serve the demo page and its assets at `/` (`--demo false` answers them 404).
    #[arg(long, env = "SSECAST_DEMO", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub demo: bool,

    /// Silence after which a subscriber is sent a keep-alive comment (e.g. 15s, 500ms); at most
    /// a day.
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

    /// Most pairs of a pattern (`*`, a URI template, a URL pattern) and a topic it matches held
    /// at once (4-8 bytes each); a subscribe or publish that would add more gets 503.
    #[arg(long, env = "SSECAST_MAX_PATTERN_PAIRS", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pattern_pairs: u32,

    /// Largest publish body accepted, in bytes; at most 16 MiB, as its encoded frame can be about
    /// seven times as large.
    #[arg(long, env = "SSECAST_MAX_BODY_BYTES", default_value_t = 1 << 20,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_BODY_BYTES))]
    pub max_body_bytes: usize,

    /// Time a publish body has to arrive whole, from the start of its request; past it the
    /// client gets 408 and the connection closes.
    #[arg(long, env = "SSECAST_BODY_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub body_timeout: Duration,

    /// Bytes that publish bodies being read may hold in all, counted before reading (the
    /// declared length, or --max-body-bytes for a chunked body); past it a publish gets 503.
    #[arg(long, env = "SSECAST_MAX_BODY_BYTES_IN_FLIGHT", default_value_t = 64 << 20,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_BODY_BYTES_IN_FLIGHT))]
    pub max_body_bytes_in_flight: usize,

    /// Largest request head accepted, in bytes.
    #[arg(long, env = "SSECAST_MAX_HEAD_BYTES", default_value_t = 8 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..=65536))]
    pub max_head_bytes: u32,

    /// Time a client has to send its whole request head.
    #[arg(long, env = "SSECAST_HEAD_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub head_timeout: Duration,

    /// Time a write to a client served by hyper (anything but a subscriber) may wait for its
    /// socket; past it the connection is cut.
    #[arg(long, env = "SSECAST_WRITE_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub write_timeout: Duration,

    /// Value of Access-Control-Allow-Origin on every response (e.g. * or https://app.example).
    #[arg(long, env = "SSECAST_CORS_ORIGIN", value_parser = parse_origin, value_delimiter = ',')]
    pub cors_origin: Vec<String>,

    /// Broadcaster threads, each owning a share of the subscribers; 0 means one per CPU.
    #[arg(long, env = "SSECAST_SHARDS", default_value_t = 0)]
    pub shards: usize,

    /// Key publish tokens must be signed with: an HMAC secret, or (with --jwt-algorithm RS256,
    /// ES256, ...) a PEM public key or its file. Without it anyone who reaches the port may
    /// publish.
    #[arg(long, env = "SSECAST_PUBLISHER_JWT_KEY", hide_env_values = true,
          value_parser = parse_secret)]
    pub publisher_jwt_key: Option<Secret>,

    /// Key subscriber tokens must be signed with, as --publisher-jwt-key.
    #[arg(long, env = "SSECAST_SUBSCRIBER_JWT_KEY", hide_env_values = true,
          value_parser = parse_secret)]
    pub subscriber_jwt_key: Option<Secret>,

    /// Most events in one batch publish (a JSON array).
    #[arg(long, env = "SSECAST_MAX_BATCH", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_batch: u32,

    /// Refuse subscribes without a valid token (with --subscriber-jwt-key).
    #[arg(long, env = "SSECAST_SUBSCRIBER_JWT_REQUIRED")]
    pub subscriber_jwt_required: bool,

    /// The algorithm tokens are signed with (HS256, HS384, HS512, RS256, ..., ES256, ES384,
    /// PS256, ..., EdDSA); a token naming another is refused.
    #[arg(long, env = "SSECAST_JWT_ALGORITHM", default_value = "HS256",
          value_parser = parse_algorithm)]
    pub jwt_algorithm: Algorithm,

    /// The issuer a Mercure 1.0 access token (header typ at+jwt) must name in its iss claim,
    /// exactly (e.g. https://example.com); unset, any. Mercure 0.x tokens are not checked.
    #[arg(long, env = "SSECAST_JWT_ISSUER", value_parser = parse_claim)]
    pub jwt_issuer: Option<String>,

    /// What a Mercure 1.0 access token's aud claim (a string or a list of strings) must
    /// include: this hub's identifier, e.g. https://hub.example.com/.well-known/mercure;
    /// unset, any. Mercure 0.x tokens are not checked.
    #[arg(long, env = "SSECAST_JWT_AUDIENCE", value_parser = parse_claim)]
    pub jwt_audience: Option<String>,

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

    /// Send buffer asked for each connection to the public listener (SO_SNDBUF, in bytes; the
    /// kernel doubles it); 0 for the kernel's default, which grows to megabytes.
    #[arg(long, env = "SSECAST_SEND_BUFFER", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u32).range(0..=(64 << 20)))]
    pub send_buffer: u32,

    /// On shutdown each stream is told to reconnect after 1s plus a random part of this.
    #[arg(long, env = "SSECAST_RECONNECT_SPREAD", default_value = "10s",
          value_parser = parse_spread)]
    pub reconnect_spread: Duration,

    /// Track Mercure's active subscriptions: a private update to
    /// /.well-known/mercure/subscriptions/{topic}/{subscriber} when each starts and ends, and
    /// the API at that path. Each subscription then holds a topic (see --max-topics).
    #[arg(long, env = "SSECAST_SUBSCRIPTIONS")]
    pub subscriptions: bool,
}

impl Config {
    /// Checks what clap cannot check flag by flag.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.subscriber_jwt_required && self.subscriber_jwt_key.is_none() {
            return Err(ConfigError::RequiredWithoutKey);
        }
        if self.subscriptions && self.subscriber_jwt_key.is_none() {
            return Err(ConfigError::SubscriptionsWithoutKey);
        }
        if self.subscriptions && self.redis.is_some() {
            return Err(ConfigError::SubscriptionsWithRedis);
        }
        if self.max_body_bytes_in_flight < self.max_body_bytes {
            return Err(ConfigError::BudgetBelowBody(
                self.max_body_bytes_in_flight,
                self.max_body_bytes,
            ));
        }
        Ok(())
    }

    /// How to reach Redis, with `--redis`.
    pub fn cluster(&self) -> Option<crate::cluster::Settings> {
        self.redis.clone().map(|redis| crate::cluster::Settings {
            redis,
            prefix: self.redis_prefix.clone(),
            history: self.redis_history,
        })
    }

    /// The verifier of subscriber tokens, if subscribers may present one.
    pub fn subscriber_verifier(&self) -> Result<Option<Verifier>, KeyError> {
        self.verifier(self.subscriber_jwt_key.as_ref())
    }

    /// The verifier of publish tokens, if publishing needs one.
    pub fn publisher_verifier(&self) -> Result<Option<Verifier>, KeyError> {
        self.verifier(self.publisher_jwt_key.as_ref())
    }

    /// A verifier with `key`, if there is one.
    fn verifier(&self, key: Option<&Secret>) -> Result<Option<Verifier>, KeyError> {
        let expected = || Expected {
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
        };
        key.map(|key| Verifier::new(key, self.jwt_algorithm, expected()))
            .transpose()
    }

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
            max_pattern_pairs: self.max_pattern_pairs as usize,
            topic_idle: self.topic_idle,
            max_subscribers: match self.max_subscribers {
                0 => max_subscribers,
                n => n,
            },
            keep_alive: self.keep_alive,
            reconnect_spread: self.reconnect_spread,
            subscriptions: self.subscriptions,
        }
    }
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    parse_duration(text, MIN_DURATION, MAX_INTERVAL)
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    parse_duration(text, MIN_DURATION, MAX_TIMEOUT)
}

fn parse_idle(text: &str) -> Result<Duration, String> {
    parse_duration(text, MIN_DURATION, MAX_TOPIC_IDLE)
}

fn parse_spread(text: &str) -> Result<Duration, String> {
    parse_duration(text, Duration::ZERO, MAX_TIMEOUT)
}

/// A human duration between `least` and `most`, so that no deadline built from it can
/// overflow an `Instant`.
fn parse_duration(text: &str, least: Duration, most: Duration) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if !(least..=most).contains(&duration) {
        return Err(format!(
            "must be between {} and {}",
            humantime::format_duration(least),
            humantime::format_duration(most)
        ));
    }
    Ok(duration)
}

/// A Redis key prefix: it becomes a hash tag (`{prefix}`), so that every key a publish touches
/// is in one slot.
fn redis_prefix(text: &str) -> Result<String, String> {
    let fits = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '{' && c != '}');
    match fits {
        true => Ok(text.to_owned()),
        false => Err("1 to 64 printable ASCII characters, without braces".into()),
    }
}

fn parse_secret(text: &str) -> Result<Secret, String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(Secret::new(text.to_owned()))
}

/// An expected `iss` or `aud`: compared exactly, so surrounding spaces are a mistake.
fn parse_claim(text: &str) -> Result<String, String> {
    if text.is_empty() || text.trim() != text || text.contains(|c: char| c.is_control()) {
        return Err("must be non-empty, without surrounding spaces or control characters".into());
    }
    Ok(text.to_owned())
}

fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    Algorithm::from_str(text).map_err(|_| format!("{text} is not a JWT signing algorithm"))
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
        let config = Config::try_parse_from(["ssecast"]).unwrap();
        assert_eq!(config.body_timeout, Duration::from_secs(10));
        assert_eq!(config.max_body_bytes_in_flight, 64 << 20);
        assert_eq!(config.check(), Ok(()));
        assert!(config.demo && config.internal_listen.is_none());
        let config = Config::try_parse_from([
            "ssecast",
            "--demo",
            "false",
            "--internal-listen",
            "127.0.0.1:9000",
        ])
        .unwrap();
        assert!(!config.demo);
        assert_eq!(
            config.internal_listen,
            Some("127.0.0.1:9000".parse().unwrap())
        );
        assert!(Config::try_parse_from(["ssecast", "--internal-listen", "nowhere"]).is_err());
    }

    #[test]
    fn listen_addresses_take_ips_and_names() {
        let v4: ListenAddress = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(v4.addrs(), ["0.0.0.0:8080".parse().unwrap()]);
        let v6: ListenAddress = "[::1]:8080".parse().unwrap();
        assert_eq!(v6.addrs(), ["[::1]:8080".parse().unwrap()]);
        assert_eq!(v6.to_string(), "[::1]:8080");
        let name: ListenAddress = "localhost:0".parse().unwrap();
        assert!(!name.addrs().is_empty());
        assert!(name
            .addrs()
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 0));
        assert_eq!(name.to_string(), "localhost:0");
        let config = Config::try_parse_from(["ssecast", "--listen", "localhost:8080"]).unwrap();
        assert!(config.listen.addrs().iter().all(|a| a.port() == 8080));
        let config = Config::try_parse_from(["ssecast"]).unwrap();
        assert_eq!(config.listen.addrs(), ["127.0.0.1:8080".parse().unwrap()]);
    }

    #[test]
    fn listen_addresses_without_a_port_or_a_known_host_are_refused() {
        for text in [
            "",
            "localhost",
            "8080",
            ":8080",
            "localhost:",
            "localhost:http",
            "localhost:65536",
            "::1:8080x",
            "127.0.0.1",
        ] {
            let refused = text.parse::<ListenAddress>();
            assert_eq!(refused, Err(ConfigError::NotHostPort), "{text:?}");
        }
        // `.invalid` never resolves (RFC 6761).
        match "nowhere.invalid:8080".parse::<ListenAddress>() {
            Err(ConfigError::Unresolvable { host, .. }) => assert_eq!(host, "nowhere.invalid"),
            other => panic!("{other:?}"),
        }
        for flag in ["--listen", "--internal-listen"] {
            let error = refused(&[flag, "nowhere.invalid:8080"]);
            assert!(
                error.contains(flag) && error.contains("cannot resolve nowhere.invalid"),
                "{error}"
            );
            let error = refused(&[flag, "8080"]);
            assert!(error.contains("expected host:port"), "{error}");
        }
    }

    fn refused(flags: &[&str]) -> String {
        let args = std::iter::once("ssecast").chain(flags.iter().copied());
        match Config::try_parse_from(args) {
            Ok(config) => panic!("{flags:?} accepted: {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn absurd_durations_are_refused_at_start() {
        for flag in [
            "--keep-alive",
            "--head-timeout",
            "--body-timeout",
            "--write-timeout",
        ] {
            for value in [
                "0s",
                "0",
                "5ms",
                "1000000000y",
                "100000000000000000000s",
                "soon",
            ] {
                let error = refused(&[flag, value]);
                assert!(error.contains(flag), "{flag} {value}: {error}");
            }
            assert!(refused(&[flag, "2d"]).contains("between 10ms and"));
        }
        let day = Config::try_parse_from(["ssecast", "--keep-alive", "1day"]).unwrap();
        assert_eq!(day.keep_alive, MAX_INTERVAL);
        let hour = Config::try_parse_from(["ssecast", "--head-timeout", "1h"]).unwrap();
        assert_eq!(hour.head_timeout, MAX_TIMEOUT);
        assert!(refused(&["--head-timeout", "61m"]).contains("between 10ms and 1h"));
    }

    #[test]
    fn body_sizes_have_ranges() {
        for value in ["0", "16777217", "-1", "1e9"] {
            refused(&["--max-body-bytes", value]);
        }
        let largest = Config::try_parse_from(["ssecast", "--max-body-bytes", "16777216"]).unwrap();
        assert_eq!(largest.max_body_bytes, 16 << 20);
        refused(&["--max-body-bytes-in-flight", "0"]);
        let small = Config::try_parse_from([
            "ssecast",
            "--max-body-bytes-in-flight",
            "100",
            "--max-body-bytes",
            "200",
        ])
        .unwrap();
        assert_eq!(small.check(), Err(ConfigError::BudgetBelowBody(100, 200)));
    }

    #[test]
    fn issuer_and_audience_are_expected_of_both_verifiers() {
        let config = Config::try_parse_from(["ssecast", "--subscriber-jwt-key", "s"]).unwrap();
        assert_eq!((config.jwt_issuer, config.jwt_audience), (None, None));
        let config = Config::try_parse_from([
            "ssecast",
            "--jwt-issuer",
            "https://example.com",
            "--jwt-audience",
            "https://hub.example.com/.well-known/mercure",
            "--publisher-jwt-key",
            "p",
            "--subscriber-jwt-key",
            "s",
        ])
        .unwrap();
        for verifier in [config.publisher_verifier(), config.subscriber_verifier()] {
            let shown = format!("{:?}", verifier.unwrap().unwrap());
            assert!(
                shown.contains("\"https://example.com\"")
                    && shown.contains("\"https://hub.example.com/.well-known/mercure\""),
                "{shown}"
            );
        }
        for flag in ["--jwt-issuer", "--jwt-audience"] {
            for value in ["", " https://example.com", "a\tb"] {
                assert!(refused(&[flag, value]).contains(flag), "{flag} {value:?}");
            }
        }
    }

    #[test]
    fn subscriptions_are_off_by_default_and_need_a_subscriber_key() {
        let config = Config::try_parse_from(["ssecast"]).unwrap();
        assert!(!config.subscriptions && !config.broadcast(1).subscriptions);
        let alone = Config::try_parse_from(["ssecast", "--subscriptions"]).unwrap();
        assert_eq!(alone.check(), Err(ConfigError::SubscriptionsWithoutKey));
        let keyed = ["ssecast", "--subscriptions", "--subscriber-jwt-key", "k"];
        let keyed = Config::try_parse_from(keyed).unwrap();
        assert_eq!(keyed.check(), Ok(()));
        assert!(keyed.broadcast(1).subscriptions);
        let clustered = [
            "ssecast",
            "--subscriptions",
            "--subscriber-jwt-key",
            "k",
            "--redis",
            "redis://127.0.0.1:6379",
        ];
        let clustered = Config::try_parse_from(clustered).unwrap();
        assert_eq!(clustered.check(), Err(ConfigError::SubscriptionsWithRedis));
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
