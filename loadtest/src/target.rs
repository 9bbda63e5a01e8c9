//! The server under test: where to subscribe, how to publish, which processes to measure.
//!
//! Only `http://` URLs on loopback are accepted (`127.0.0.0/8`, `::1`, `localhost`): the
//! loadtest sends its traffic to this machine only. Nothing here knows ssecast beyond the
//! defaults; another server needs a subscribe URL, a publish URL and body template, and `--pid`.
//! A server may be a cluster: several nodes, each with its subscribe URL, the subscribers
//! dealt over them in turn, and every node's process measured.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A parsed `http://host:port/path?query` URL on loopback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Url {
    /// The resolved socket address.
    pub addr: SocketAddr,
    /// The `Host` header to send (`host` or `host:port` as written).
    pub host: String,
    /// The path and query, at least `/`.
    pub path: String,
}

impl Url {
    /// Parses `text`, refusing anything that is not plain HTTP on loopback.
    pub fn parse(text: &str) -> Result<Url, Error> {
        let bad = |why: &str| Error::Url(text.to_owned(), why.to_owned());
        let rest = text
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are supported"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        if authority.contains('@') {
            return Err(bad("user info is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(|| bad("unclosed ["))?;
            let port = v6[end + 1..].strip_prefix(':');
            (&v6[..end], port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(port) => port.parse::<u16>().map_err(|_| bad("bad port"))?,
            None => 80,
        };
        let ip = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse::<IpAddr>()
                .map_err(|_| bad("the host must be a loopback IP address or localhost"))?
        };
        if !ip.is_loopback() {
            return Err(bad("only loopback targets are allowed (127.0.0.0/8, ::1)"));
        }
        Ok(Url {
            addr: SocketAddr::new(ip, port),
            host: authority.to_owned(),
            path,
        })
    }
}

/// How to publish one event.
#[derive(Debug, Clone)]
pub struct Publish {
    /// Where to `POST`; `{topic}` in its path is replaced.
    pub url: Url,
    /// The body, with `{data}` and `{topic}` replaced.
    pub body_template: String,
    /// The request's `Content-Type`.
    pub content_type: String,
}

impl Publish {
    /// The request path for `topic`.
    pub fn path(&self, topic: &str) -> String {
        self.url.path.replace("{topic}", topic)
    }

    /// The request body carrying `data` to `topic`. The data the loadtest makes is digits,
    /// spaces and `x`, so it needs no escaping in JSON, a form or a raw body.
    pub fn body(&self, topic: &str, data: &str) -> String {
        self.body_template
            .replace("{topic}", topic)
            .replace("{data}", data)
    }
}

/// Everything the loadtest knows about one server.
#[derive(Debug, Clone)]
pub struct Target {
    /// A short name for reports (`ssecast`, `floor`, `nchan`).
    pub name: String,
    /// Where subscribers connect, at least one (the clients refuse none): subscriber `k` of
    /// a run connects to `subscribe[k mod n]`, so a cluster's nodes get equal shares.
    pub subscribe: Vec<Url>,
    /// How events are published.
    pub publish: Publish,
    /// The topic events go to.
    pub topic: String,
    /// The server processes whose memory and CPU are measured (summed).
    pub pids: Vec<u32>,
}

impl Target {
    /// The one subscribe URL of a scenario that drives a single node (`hostile`), or why not.
    pub fn single_node(&self, scenario: &str) -> Result<&Url, Error> {
        match self.subscribe.as_slice() {
            [url] => Ok(url),
            urls => Err(Error::Flag(format!(
                "{scenario} drives one node: give one --url, not {}",
                urls.len()
            ))),
        }
    }
}

/// The ssecast JSON publish body.
pub const DEFAULT_BODY: &str = r#"{"topic":"{topic}","data":"{data}"}"#;

#[cfg(test)]
mod tests {
    use super::Url;
    use std::net::SocketAddr;

    #[test]
    fn parses_loopback_urls() {
        let url = Url::parse("http://127.0.0.1:8080/events?topic=load").unwrap();
        assert_eq!(url.addr, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
        assert_eq!(url.host, "127.0.0.1:8080");
        assert_eq!(url.path, "/events?topic=load");
        let url = Url::parse("http://localhost:9").unwrap();
        assert_eq!((url.addr.port(), url.path.as_str()), (9, "/"));
        assert_eq!(Url::parse("http://127.0.0.5?x=1").unwrap().path, "/?x=1");
        let url = Url::parse("http://[::1]:19001/sub").unwrap();
        assert_eq!(url.addr, "[::1]:19001".parse::<SocketAddr>().unwrap());
        assert_eq!(Url::parse("http://127.1.2.3/").unwrap().addr.port(), 80);
    }

    #[test]
    fn refuses_other_targets() {
        for bad in [
            "https://127.0.0.1/",
            "http://10.0.0.1:80/",
            "http://192.168.1.1/",
            "http://example.com/",
            "http://0.0.0.0:80/",
            "http://[::2]:80/",
            "http://u@127.0.0.1/",
            "http://127.0.0.1:99999/",
            "ftp://127.0.0.1/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}
