//! A subscribe request (`GET /events`, or Mercure's `GET /.well-known/mercure`): its topic
//! selectors and where it resumes.
//!
//! Selectors come from repeated query parameters, in any mix:
//! - `topic`: on `/events` an exact topic (none at all means [`DEFAULT_TOPIC`]); on Mercure's
//!   path a Mercure 0.x selector: `*`, a URI template, or else an exact topic;
//! - `match` (or `match_exact`): an exact topic, or `*` (Mercure 1.0);
//! - `match_urlpattern` (or the draft's `matchURLPattern`): a URL pattern, or `*`.
//!
//! Any other parameter whose name begins with `match` is refused, as Mercure 1.0 requires. A
//! resume
//! point comes from the `Last-Event-ID` header, which a browser's `EventSource` sends when it
//! reconnects, or from `lastEventId` in the query for clients that cannot set headers; the
//! header wins when both are present, since it is the newer of the two. A token comes from an
//! `Authorization: Bearer` header, else the `authorization` query parameter (Mercure 0.x), else
//! a cookie of [`TOKEN_COOKIES`] (a browser's `EventSource` can send only a cookie); cookies are
//! ignored when the header is present, as Mercure 1.0 asks.

use super::topic::{TopicError, DEFAULT_TOPIC};
use crate::auth::{self, TokenError};
use crate::selector::{Selection, Selector, SelectorError};
use crate::urlencoded::{self, NotUtf8};

/// The path a subscribe is made on.
pub const PATH: &str = "/events";
/// The path a Mercure hub serves (subscribe with `GET`, publish with `POST`).
pub const MERCURE_PATH: &str = "/.well-known/mercure";

/// A parsed subscribe request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The topic selectors, without repeats.
    pub selection: Selection,
    /// The id of the last event the client has, if it resumes.
    pub last_event_id: Option<String>,
    /// The token it presents, if any (unverified).
    pub token: Option<String>,
    /// The page's origin (the `Origin` header), for cross-origin access.
    pub origin: Option<String>,
}

/// The cookies a subscriber's token may come in, the first present winning: Mercure 1.0's
/// name, then Mercure 0.x's.
pub const TOKEN_COOKIES: [&str; 2] = ["__Secure-mercure_access_token", "mercureAuthorization"];

/// Why a subscribe request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error("query string: {0}")]
    Query(#[from] NotUtf8),
    #[error("Last-Event-ID is not valid UTF-8")]
    LastEventIdNotUtf8,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Selector(#[from] SelectorError),
    #[error("unknown topic matcher parameter {0:?}: use match, match_exact or match_urlpattern")]
    UnknownMatcher(String),
}

/// Whether a request head is a subscribe: `GET /events`, with or without a query.
pub fn is_subscribe(request: &httparse::Request<'_, '_>) -> bool {
    request.method == Some("GET")
        && request
            .path
            .and_then(|path| path.split('?').next())
            .is_some_and(|path| path == PATH || path == MERCURE_PATH)
}

/// Reads the topics and resume point of a subscribe request.
pub fn parse(request: &httparse::Request<'_, '_>) -> Result<Subscribe, SubscribeError> {
    let path = request.path.unwrap_or_default();
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mercure = path == MERCURE_PATH;
    let mut selectors = Vec::new();
    let mut last_event_id = None;
    let mut token = None;
    for (name, value) in urlencoded::parse(query.as_bytes())? {
        match name.as_str() {
            "topic" if mercure => selectors.push(Selector::topic_or_template(&value)),
            "topic" => selectors.push(Selector::topic(&value)),
            "match" | "match_exact" => selectors.push(Selector::exact(&value)),
            "match_urlpattern" | "matchURLPattern" => {
                selectors.push(Selector::url_pattern(&value)?)
            }
            other if other.len() >= 5 && other[..5].eq_ignore_ascii_case("match") => {
                return Err(SubscribeError::UnknownMatcher(name));
            }
            // Mercure spells it `lastEventID`.
            "lastEventId" | "lastEventID" if !value.is_empty() => last_event_id = Some(value),
            "authorization" if !value.is_empty() => token = Some(value),
            _ => {}
        }
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(move |h| h.name.eq_ignore_ascii_case(name))
    };
    let token = presented_token(request, token)?;
    if let Some(resume) = header("last-event-id").filter(|h| !h.value.is_empty()) {
        let value =
            std::str::from_utf8(resume.value).map_err(|_| SubscribeError::LastEventIdNotUtf8)?;
        last_event_id = Some(value.to_owned());
    }
    if selectors.is_empty() && !mercure {
        selectors.push(Selector::topic(DEFAULT_TOPIC));
    }
    let origin = header("origin").and_then(|h| String::from_utf8(h.value.to_vec()).ok());
    Ok(Subscribe {
        selection: Selection::new(selectors)?,
        last_event_id,
        token,
        origin,
    })
}

/// The token a request presents: its `Authorization` header's (one, and well formed), else
/// `in_query`, else a cookie's.
fn presented_token(
    request: &httparse::Request<'_, '_>,
    in_query: Option<String>,
) -> Result<Option<String>, TokenError> {
    let mut authorization = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("authorization"));
    if let Some(header) = authorization.next() {
        if authorization.next().is_some() {
            return Err(TokenError::BadHeader);
        }
        return Ok(Some(auth::bearer(header.value)?.to_owned()));
    }
    if in_query.is_some() {
        return Ok(in_query);
    }
    let cookies = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"));
    Ok(TOKEN_COOKIES.iter().find_map(|name| {
        cookies
            .clone()
            .find_map(|cookie| token_cookie(cookie.value, name))
    }))
}

/// The value of the cookie `name` in a `Cookie` header's value, if it has one.
pub(crate) fn token_cookie(cookies: &[u8], name: &str) -> Option<String> {
    let cookies = std::str::from_utf8(cookies).ok()?;
    cookies.split(';').find_map(|cookie| {
        let (key, value) = cookie.trim().split_once('=')?;
        (key == name && !value.is_empty()).then(|| value.trim_matches('"').to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(head: &[u8]) -> (bool, Result<Subscribe, SubscribeError>) {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut headers);
        assert!(request.parse(head).unwrap().is_complete());
        (is_subscribe(&request), parse(&request))
    }

    #[test]
    fn topics_and_resume_point_come_from_query_and_header() {
        let (is, sub) = parsed(b"GET /events?topic=a&topic=b%20c&lastEventId=5 HTTP/1.1\r\n\r\n");
        assert!(is);
        let sub = sub.unwrap();
        assert_eq!(
            &*sub.selection,
            [Selector::topic("a"), Selector::topic("b c")]
        );
        assert_eq!(sub.last_event_id.as_deref(), Some("5"));

        let (_, sub) = parsed(b"GET /events?lastEventId=5 HTTP/1.1\r\nLast-Event-ID: 9\r\n\r\n");
        let sub = sub.unwrap();
        assert_eq!(&*sub.selection, [Selector::topic(DEFAULT_TOPIC)]);
        assert_eq!(sub.last_event_id.as_deref(), Some("9"));
    }

    #[test]
    fn only_get_on_the_events_path_is_a_subscribe() {
        assert!(!parsed(b"POST /events HTTP/1.1\r\n\r\n").0);
        assert!(!parsed(b"GET /eventsx HTTP/1.1\r\n\r\n").0);
        assert!(!parsed(b"GET /events/x HTTP/1.1\r\n\r\n").0);
        assert!(parsed(b"GET /events HTTP/1.1\r\n\r\n").0);
    }

    #[test]
    fn a_token_comes_from_the_header_then_the_query_then_the_cookie() {
        let token = |head: &[u8]| parsed(head).1.map(|sub| sub.token);
        let cookie = "Cookie: a=b; mercureAuthorization=c.o.okie; x=y\r\n";
        let query = "GET /events?authorization=q.u.ery HTTP/1.1\r\n";
        assert_eq!(
            token(format!("{query}Authorization: Bearer h.ea.der\r\n{cookie}\r\n").as_bytes()),
            Ok(Some("h.ea.der".into()))
        );
        assert_eq!(
            token(format!("{query}{cookie}\r\n").as_bytes()),
            Ok(Some("q.u.ery".into()))
        );
        assert_eq!(
            token(format!("GET /events HTTP/1.1\r\n{cookie}\r\n").as_bytes()),
            Ok(Some("c.o.okie".into()))
        );
        assert_eq!(
            token(b"GET /events HTTP/1.1\r\nCookie: a=b\r\n\r\n"),
            Ok(None)
        );
        assert_eq!(
            token(b"GET /events HTTP/1.1\r\nAuthorization: Basic x\r\n\r\n"),
            Err(SubscribeError::Token(TokenError::BadHeader))
        );
        assert_eq!(
            token(b"GET /events HTTP/1.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n"),
            Err(SubscribeError::Token(TokenError::BadHeader))
        );
    }

    #[test]
    fn mercure_1_0s_cookie_comes_before_0_x_s_and_after_the_header() {
        let token = |head: &str| parsed(head.as_bytes()).1.map(|sub| sub.token);
        let new = "__Secure-mercure_access_token=n.e.w";
        let old = "mercureAuthorization=o.l.d";
        let get = "GET /events HTTP/1.1\r\n";
        assert_eq!(
            token(&format!("{get}Cookie: a=b; {new}\r\n\r\n")),
            Ok(Some("n.e.w".into()))
        );
        for cookies in [format!("{old}; {new}"), format!("{new}; {old}")] {
            assert_eq!(
                token(&format!("{get}Cookie: {cookies}\r\n\r\n")),
                Ok(Some("n.e.w".into())),
                "{cookies}"
            );
        }
        assert_eq!(
            token(&format!("{get}Cookie: {old}\r\nCookie: {new}\r\n\r\n")),
            Ok(Some("n.e.w".into()))
        );
        assert_eq!(
            token(&format!(
                "{get}Cookie: {new}\r\nAuthorization: Bearer h.ea.der\r\n\r\n"
            )),
            Ok(Some("h.ea.der".into()))
        );
        assert_eq!(
            token(&format!(
                "{get}Cookie: __Secure-mercure_access_token=\r\n\r\n"
            )),
            Ok(None)
        );
    }

    #[test]
    fn selectors_of_both_mercure_lines_and_of_ssecast() {
        let selection = |head: &str| parsed(head.as_bytes()).1.map(|sub| sub.selection);
        let mercure = selection(
            "GET /.well-known/mercure?topic=%2Fb%2F%7Bid%7D&topic=*&topic=x\
             &match=y&match_urlpattern=%2Fc%2F%3Aid&matchURLPattern=* HTTP/1.1\r\n\r\n",
        )
        .unwrap();
        let expected = [
            Selector::topic_or_template("/b/{id}"),
            Selector::exact("*"),
            Selector::topic("x"),
            Selector::topic("y"),
            Selector::url_pattern("/c/:id").unwrap(),
        ];
        assert_eq!(&*mercure, expected, "the two `*` are one");
        assert_eq!(mercure[0].as_exact(), None, "a template");
        let own = selection("GET /events?topic=%2Fb%2F%7Bid%7D&topic=* HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(&*own, [Selector::topic("/b/{id}"), Selector::topic("*")]);
        assert_eq!(
            own[1].as_exact(),
            Some("*"),
            "ssecast's `topic` is always exact"
        );
        assert_eq!(
            selection("GET /events?MATCH_regex=a HTTP/1.1\r\n\r\n"),
            Err(SubscribeError::UnknownMatcher("MATCH_regex".into()))
        );
        assert!(matches!(
            selection("GET /events?match_urlpattern=%2F%3Aid( HTTP/1.1\r\n\r\n"),
            Err(SubscribeError::Selector(_))
        ));
        assert_eq!(
            selection("GET /.well-known/mercure HTTP/1.1\r\n\r\n"),
            Err(SubscribeError::Topic(TopicError::None))
        );
    }

    #[test]
    fn bad_topics_are_refused() {
        let (_, sub) = parsed(b"GET /events?topic= HTTP/1.1\r\n\r\n");
        assert_eq!(sub, Err(SubscribeError::Topic(TopicError::Empty)));
        let (_, sub) = parsed(b"GET /events?topic=%FF HTTP/1.1\r\n\r\n");
        assert_eq!(sub, Err(SubscribeError::Query(NotUtf8(0))));
    }
}
