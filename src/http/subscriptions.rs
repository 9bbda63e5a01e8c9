//! Mercure's subscriptions API (with `--subscriptions`): `GET /.well-known/mercure/subscriptions`,
//! `.../{topic}` and `.../{topic}/{subscriber}`, answered in JSON-LD to a subscriber whose
//! token's `mercure.subscribe` selectors match the path asked for.
//!
//! The token is read where a subscribe reads it: an `Authorization: Bearer` header, else the
//! `authorization` query parameter, else a cookie of `TOKEN_COOKIES`; a refusal about it has
//! RFC 6750's status and challenge, as a subscribe's has. Every answer is one
//! snapshot of the broadcaster's subscriptions, taken with the newest event id history held at
//! that instant (`lastEventID`): a client that subscribes to the updates from that id misses
//! none.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use percent_encoding::percent_decode_str;

use super::error::{self, Challenge};
use super::Context;
use crate::auth::{self, TokenError};
use crate::broadcast::subscriptions::{Collection, Document, PATH};
use crate::sse::subscribe::{token_cookie, TOKEN_COOKIES};
use crate::urlencoded;

/// Why the API refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Unauthorized(#[from] TokenError),
    #[error("the token does not allow reading {0}")]
    Forbidden(String),
    #[error("no such subscription")]
    NotFound,
}

impl ApiError {
    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self.challenge() {
            Some(challenge) => challenge.status(),
            None => StatusCode::NOT_FOUND,
        }
    }

    /// The `WWW-Authenticate` challenge of a refusal about the token, if it is one.
    pub fn challenge(&self) -> Option<Challenge> {
        match self {
            Self::Unauthorized(why) => Some(Challenge::from(*why)),
            Self::Forbidden(_) => Some(Challenge::InsufficientScope),
            Self::NotFound => None,
        }
    }
}

/// What a path under [`PATH`] asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Asked {
    /// Every subscription.
    All,
    /// The subscriptions to one selector.
    Topic(String),
    /// One subscriber's subscription to one selector.
    One { topic: String, subscriber: String },
}

/// Whether `path` is the API's, whatever it asks for.
pub fn is_api(path: &str) -> bool {
    path.strip_prefix(PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Answers a `GET` of a path under [`PATH`]; `None` when subscriptions are not tracked.
pub fn handle(request: &Request<Incoming>, context: &Context) -> Option<Response<Full<Bytes>>> {
    let snapshot = context.broadcaster.subscriptions()?;
    let path = request.uri().path();
    let answer = authorize(request, context).and_then(|()| {
        let asked = parse(path).ok_or(ApiError::NotFound)?;
        let active = snapshot.active.iter();
        let last_event_id = &*snapshot.last_event_id;
        let body = match &asked {
            Asked::All => {
                let documents = active
                    .flat_map(|a| a.topics().map(move |topic| a.document(topic, true)))
                    .collect();
                to_json(&Collection::new(path, last_event_id, documents))
            }
            Asked::Topic(topic) => {
                let documents = active
                    .filter(|a| a.topics().any(|held| held == topic))
                    .map(|a| a.document(topic, true))
                    .collect();
                to_json(&Collection::new(path, last_event_id, documents))
            }
            Asked::One { topic, subscriber } => {
                let mut found = active
                    .filter(|a| a.is(subscriber) && a.topics().any(|held| held == topic))
                    .map(|a| a.document(topic, true));
                let document = found.next().ok_or(ApiError::NotFound)?;
                to_json(&Document {
                    last_event_id: Some(last_event_id),
                    ..document
                })
            }
        };
        Ok(body)
    });
    Some(match answer {
        Ok(body) => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/ld+json"),
            );
            response
        }
        Err(e) => {
            tracing::debug!(error = %e, "subscriptions refused");
            let mut response = error::response(e.status(), &e.to_string());
            if let Some(challenge) = e.challenge() {
                let challenge = HeaderValue::from_static(challenge.header());
                response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
            }
            response
        }
    })
}

/// Checks that the request's token allows its path, as a topic.
fn authorize(request: &Request<Incoming>, context: &Context) -> Result<(), ApiError> {
    let path = request.uri().path();
    // Without a subscriber key no token can be checked (`--subscriptions` requires one).
    let verifier = context
        .subscriber
        .as_ref()
        .ok_or_else(|| ApiError::Forbidden(path.to_owned()))?;
    let token = token(request)?.ok_or(TokenError::Missing)?;
    let grants = verifier.verify(&token)?;
    match grants.subscribe.allows(path) {
        true => Ok(()),
        false => Err(ApiError::Forbidden(path.to_owned())),
    }
}

/// The request's token, where a subscribe would find it: its `Authorization` header's (one,
/// and well formed), else the query's, else a cookie's.
fn token(request: &Request<Incoming>) -> Result<Option<String>, TokenError> {
    let headers = request.headers();
    let mut authorization = headers.get_all(AUTHORIZATION).iter();
    if let Some(header) = authorization.next() {
        if authorization.next().is_some() {
            return Err(TokenError::BadHeader);
        }
        return Ok(Some(auth::bearer(header.as_bytes())?.to_owned()));
    }
    let query = request.uri().query().unwrap_or_default();
    for field in urlencoded::fields(query.as_bytes()) {
        if field.name().is_ok_and(|name| name == "authorization") {
            let value = field.value().map_err(|_| TokenError::Malformed)?;
            if !value.is_empty() {
                return Ok(Some(value));
            }
        }
    }
    let cookies = headers.get_all(COOKIE);
    Ok(TOKEN_COOKIES.iter().find_map(|name| {
        cookies
            .iter()
            .find_map(|cookie| token_cookie(cookie.as_bytes(), name))
    }))
}

/// What a path under [`PATH`] asks for: `None` if it names nothing the API has.
fn parse(path: &str) -> Option<Asked> {
    let rest = path.strip_prefix(PATH)?;
    if rest.is_empty() {
        return Some(Asked::All);
    }
    let mut segments = rest.strip_prefix('/')?.split('/');
    let decode = |segment: &str| {
        let decoded = percent_decode_str(segment).decode_utf8().ok()?;
        (!decoded.is_empty()).then(|| decoded.into_owned())
    };
    let topic = decode(segments.next()?)?;
    let Some(subscriber) = segments.next() else {
        return Some(Asked::Topic(topic));
    };
    let subscriber = decode(subscriber)?;
    match segments.next() {
        None => Some(Asked::One { topic, subscriber }),
        Some(_) => None,
    }
}

fn to_json(value: &impl serde::Serialize) -> Vec<u8> {
    // Documents of strings, booleans and raw JSON always serialize.
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_all_a_topic_or_one_subscription() {
        let base = "/.well-known/mercure/subscriptions";
        assert_eq!(parse(base), Some(Asked::All));
        assert_eq!(
            parse(&format!(
                "{base}/https%3A%2F%2Fexample.com%2F%7Bselector%7D"
            )),
            Some(Asked::Topic("https://example.com/{selector}".into()))
        );
        assert_eq!(
            parse(&format!("{base}/a%20b/urn%3Auuid%3A1")),
            Some(Asked::One {
                topic: "a b".into(),
                subscriber: "urn:uuid:1".into()
            })
        );
        for nothing in ["/", "//x", "/a/", "/a/b/c", "/%FF", "s"] {
            assert_eq!(parse(&format!("{base}{nothing}")), None, "{nothing}");
        }
        assert!(is_api(base) && is_api(&format!("{base}/x")));
        assert!(!is_api("/.well-known/mercure/subscriptionsx"));
        assert!(!is_api("/.well-known/mercure"));
    }
}
