//! The subscribe request each connection makes: the server it goes to, dealt over the run's
//! URLs in turn (run connection `k` to URL `k mod n`), and its head, one shared by all the
//! connections to a URL, or with tokens one built for each connection as it starts, carrying
//! its token where `--token-in` says.
//!
//! A built head lives only until it is written (see `conn::Phase::Request`), so tokens cost
//! an idle subscriber nothing; the tokens themselves are held once per process ([`Tokens`]).

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::error::Error;
use crate::target::Url;
use crate::token::{Place, Tokens};

/// The requests of a client group.
#[derive(Debug, Clone)]
pub struct Requests {
    /// One per subscribe URL, never empty (`new` checks): run connection `k` uses
    /// `routes[k mod n]`.
    routes: Arc<[Route]>,
    /// The tokens and where they go, if subscribers send any.
    tokens: Option<(Tokens, Place)>,
}

/// One subscribe URL and its head.
#[derive(Debug)]
struct Route {
    /// The URL.
    url: Url,
    /// The head without a token, shared by every connection to this URL when there are no
    /// tokens.
    plain: Arc<[u8]>,
}

impl Requests {
    /// Requests for `GET` on each of `urls` in turn, with a token from `tokens` if given;
    /// an error if there is no URL.
    pub fn new(urls: &[Url], tokens: Option<(Tokens, Place)>) -> Result<Requests, Error> {
        if urls.is_empty() {
            return Err(Error::Flag("no subscribe URL".into()));
        }
        let routes = urls
            .iter()
            .map(|url| Route {
                url: url.clone(),
                plain: head(&url.path, &url.host, None).into_bytes().into(),
            })
            .collect();
        Ok(Requests { routes, tokens })
    }

    /// The route of run connection `index`.
    fn route(&self, index: usize) -> &Route {
        &self.routes[index % self.routes.len()]
    }

    /// The server run connection `index` connects to.
    pub fn addr(&self, index: usize) -> SocketAddr {
        self.route(index).url.addr
    }

    /// The head run connection `index` writes: with tokens, a new one carrying token
    /// `index mod N`.
    pub fn head(&self, index: usize) -> Arc<[u8]> {
        let route = self.route(index);
        match &self.tokens {
            None => route.plain.clone(),
            Some((tokens, place)) => head(
                &route.url.path,
                &route.url.host,
                Some((tokens.get(index), *place)),
            )
            .into_bytes()
            .into(),
        }
    }
}

/// A subscribe request head for `path` and `host`, with `token` in its place if given. The
/// token is a Bearer token (checked by `Tokens::parse`); in a query, its bytes outside
/// RFC 3986's unreserved set (`+`, `/`, `=`) are percent-encoded.
pub fn head(path: &str, host: &str, token: Option<(&str, Place)>) -> String {
    let mut head = String::with_capacity(128 + path.len() + token.map_or(0, |(t, _)| 3 * t.len()));
    head.push_str("GET ");
    head.push_str(path);
    if let Some((token, Place::Query)) = token {
        let separator = match path.find('?') {
            None => "?",
            Some(_) if path.ends_with(['?', '&']) => "",
            Some(_) => "&",
        };
        head.push_str(separator);
        head.push_str("authorization=");
        for byte in token.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                head.push(char::from(byte));
            } else {
                let _ = write!(head, "%{byte:02X}");
            }
        }
    }
    head.push_str(" HTTP/1.1\r\nHost: ");
    head.push_str(host);
    head.push_str("\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n");
    match token {
        Some((token, Place::Header)) => {
            head.push_str("Authorization: Bearer ");
            head.push_str(token);
            head.push_str("\r\n");
        }
        Some((token, Place::Cookie)) => {
            head.push_str("Cookie: mercureAuthorization=");
            head.push_str(token);
            head.push_str("\r\n");
        }
        Some((_, Place::Query)) | None => {}
    }
    head.push_str("\r\n");
    head
}

#[cfg(test)]
mod tests {
    use super::{head, Requests};
    use crate::target::Url;
    use crate::token::{Place, Tokens};

    const TAIL: &str = "Accept: text/event-stream\r\nCache-Control: no-cache\r\n";

    #[test]
    fn without_a_token_the_head_is_unchanged() {
        assert_eq!(
            head("/events?topic=load", "127.0.0.1:8080", None),
            format!("GET /events?topic=load HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n{TAIL}\r\n")
        );
    }

    #[test]
    fn a_header_token_is_a_bearer_authorization() {
        assert_eq!(
            head("/events?topic=load", "h", Some(("a.b.c", Place::Header))),
            format!(
                "GET /events?topic=load HTTP/1.1\r\nHost: h\r\n{TAIL}\
                 Authorization: Bearer a.b.c\r\n\r\n"
            )
        );
    }

    #[test]
    fn a_cookie_token_is_mercure_authorization() {
        assert_eq!(
            head("/events?topic=load", "h", Some(("a.b.c", Place::Cookie))),
            format!(
                "GET /events?topic=load HTTP/1.1\r\nHost: h\r\n{TAIL}\
                 Cookie: mercureAuthorization=a.b.c\r\n\r\n"
            )
        );
    }

    #[test]
    fn a_query_token_is_appended_with_the_right_separator() {
        let cases = [
            (
                "/events?topic=load",
                "/events?topic=load&authorization=a.b.c",
            ),
            ("/events", "/events?authorization=a.b.c"),
            ("/events?", "/events?authorization=a.b.c"),
            (
                "/events?topic=load&",
                "/events?topic=load&authorization=a.b.c",
            ),
            ("/", "/?authorization=a.b.c"),
        ];
        for (path, target) in cases {
            assert_eq!(
                head(path, "h", Some(("a.b.c", Place::Query))),
                format!("GET {target} HTTP/1.1\r\nHost: h\r\n{TAIL}\r\n"),
                "{path}"
            );
        }
    }

    #[test]
    fn a_query_token_percent_encodes_what_a_query_would_misread() {
        let got = head("/e", "h", Some(("a+b/c~_-.d==", Place::Query)));
        assert!(got.starts_with("GET /e?authorization=a%2Bb%2Fc~_-.d%3D%3D HTTP/1.1\r\n"));
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn each_connection_gets_its_token_and_no_tokens_share_one_head() {
        let tokens = Tokens::parse("t0\nt1\nt2\n").unwrap();
        let urls = [url("http://127.0.0.1:9/events?topic=load")];
        let requests = Requests::new(&urls, Some((tokens, Place::Header))).unwrap();
        for (index, token) in [(0, "t0"), (1, "t1"), (5, "t2"), (15_000, "t0")] {
            let got = String::from_utf8(requests.head(index).to_vec()).unwrap();
            assert!(
                got.contains(&format!("\r\nAuthorization: Bearer {token}\r\n")),
                "{got}"
            );
        }
        let plain = Requests::new(&urls, None).unwrap();
        assert!(std::sync::Arc::ptr_eq(&plain.head(0), &plain.head(1)));
        assert!(!String::from_utf8_lossy(&plain.head(0)).contains("uthorization"));
    }

    #[test]
    fn connections_are_dealt_over_the_urls_in_turn() {
        let urls = [
            url("http://127.0.0.1:7001/events?topic=a"),
            url("http://127.0.0.1:7002/sub?topic=a"),
            url("http://localhost:7003/events?topic=a"),
        ];
        let tokens = Tokens::parse("t0\nt1\n").unwrap();
        let requests = Requests::new(&urls, Some((tokens, Place::Header))).unwrap();
        for index in [0, 1, 2, 3, 4, 5, 76_000] {
            let url = &urls[index % 3];
            assert_eq!(requests.addr(index), url.addr, "{index}");
            let got = String::from_utf8(requests.head(index).to_vec()).unwrap();
            let start = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", url.path, url.host);
            assert!(got.starts_with(&start), "{index}: {got}");
            let token = format!("Bearer t{}\r\n", index % 2);
            assert!(
                got.contains(&token),
                "the token follows the run index: {got}"
            );
        }
        let plain = Requests::new(&urls, None).unwrap();
        assert!(std::sync::Arc::ptr_eq(&plain.head(1), &plain.head(4)));
        assert!(Requests::new(&[], None).is_err());
    }
}
