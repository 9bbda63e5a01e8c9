//! The claims ssecast reads from a verified token, in Mercure 0.x's shape and in Mercure 1.0's,
//! each turned into the same [`Grants`].
//!
//! 0.x: `mercure.publish` and `mercure.subscribe`, lists of topics and URI templates.
//! 1.0 (an RFC 9068 access token): `authorization_details` (RFC 9396), whose entries of type
//! [`MERCURE_DETAIL`] name `actions` and the `topics` they apply to. A 1.0 token is refused
//! whole when one of its Mercure entries is malformed: acting on the others would silently
//! change what it allows. Signatures, `exp` and `nbf` are checked before these are read.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::Grants;
use crate::selector::{Selector, Selectors};

/// The `type` of the `authorization_details` entries Mercure defines; other types are
/// skipped, whatever their shape.
pub const MERCURE_DETAIL: &str = "https://mercure.rocks/authorization-detail";

/// The most topic matchers a 1.0 token's Mercure entries may hold together, as Mercure's hub
/// allows: each URL pattern is compiled as the token is verified, on the front-end thread.
pub const MAX_GRANTED_TOPICS: usize = 100;

/// Why a 1.0 token's `authorization_details` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DetailError {
    #[error("must be a list of objects, each with a type")]
    NotAList,
    #[error("a Mercure entry's actions must be a non-empty list of strings")]
    Actions,
    #[error("a Mercure entry's topics must be a non-empty list of {{match, match_type}} objects")]
    Topics,
    #[error("a topic's match must be a non-empty string")]
    Match,
    #[error("a topic's match_type must be exact or urlpattern")]
    MatchType,
    #[error("a topic's match is not a valid URL pattern")]
    UrlPattern,
    #[error("more than {MAX_GRANTED_TOPICS} topics")]
    TooMany,
}

/// A Mercure 0.x token's claims.
#[derive(Debug, Deserialize)]
pub struct Legacy {
    #[serde(default)]
    mercure: Mercure,
    exp: Option<u64>,
}

/// The `mercure` claim of a 0.x token.
#[derive(Debug, Default, Deserialize)]
struct Mercure {
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    subscribe: Vec<String>,
    payload: Option<Box<serde_json::value::RawValue>>,
}

impl Legacy {
    /// What the token allows.
    pub fn grants(self) -> Grants {
        let Self { mercure, exp } = self;
        Grants {
            publish: Selectors::from_claim(mercure.publish.iter().map(String::as_str)),
            subscribe: Selectors::from_claim(mercure.subscribe.iter().map(String::as_str)),
            expires: exp,
            payload: mercure.payload.map(|raw| raw.get().into()),
        }
    }
}

/// A Mercure 1.0 access token's claims. `iss` and `aud` are kept as given, to be compared by
/// the verifier: `aud` may be a string or a list of them.
#[derive(Debug, Deserialize)]
pub struct Access {
    pub exp: Option<u64>,
    pub iss: Option<Value>,
    pub aud: Option<Value>,
    authorization_details: Option<Value>,
}

impl Access {
    /// What the token allows: nothing without Mercure entries in `authorization_details`.
    pub fn grants(&self) -> Result<Grants, DetailError> {
        let (publish, subscribe) = match &self.authorization_details {
            Some(details) => read_details(details)?,
            None => Default::default(),
        };
        Ok(Grants {
            publish,
            subscribe,
            expires: self.exp,
            // A 1.0 token's payloads are per topic matcher: not read yet.
            payload: None,
        })
    }
}

/// The topics `authorization_details` grants `publish` on and those it grants `subscribe` on.
fn read_details(details: &Value) -> Result<(Selectors, Selectors), DetailError> {
    let details = details.as_array().ok_or(DetailError::NotAList)?;
    let (mut publish, mut subscribe) = (Vec::new(), Vec::new());
    let mut granted = 0;
    for detail in details {
        let detail = detail.as_object().ok_or(DetailError::NotAList)?;
        let kind = detail.get("type").and_then(Value::as_str);
        match kind.ok_or(DetailError::NotAList)? {
            MERCURE_DETAIL => {}
            _ => continue,
        }
        let (publishes, subscribes) = actions(detail)?;
        let topics = detail.get("topics").and_then(Value::as_array);
        let topics = topics
            .filter(|topics| !topics.is_empty())
            .ok_or(DetailError::Topics)?;
        // Counted before any pattern is compiled.
        granted += topics.len();
        if granted > MAX_GRANTED_TOPICS {
            return Err(DetailError::TooMany);
        }
        for topic in topics {
            let selector = matcher(topic)?;
            if publishes {
                publish.push(selector.clone());
            }
            if subscribes {
                subscribe.push(selector);
            }
        }
    }
    Ok((Selectors::new(publish), Selectors::new(subscribe)))
}

/// Whether an entry's `actions` include `publish` and `subscribe`. Other actions grant
/// nothing and are no error, so that issuers may name actions defined later.
fn actions(detail: &Map<String, Value>) -> Result<(bool, bool), DetailError> {
    let actions = detail.get("actions").and_then(Value::as_array);
    let actions = actions
        .filter(|actions| !actions.is_empty())
        .ok_or(DetailError::Actions)?;
    let (mut publish, mut subscribe) = (false, false);
    for action in actions {
        match action.as_str().ok_or(DetailError::Actions)? {
            "publish" => publish = true,
            "subscribe" => subscribe = true,
            _ => {}
        }
    }
    Ok((publish, subscribe))
}

/// A topic matcher: `{"match": text, "match_type": "exact" | "urlpattern"}`, exact when
/// `match_type` is absent. `*` matches every topic whatever its type.
fn matcher(topic: &Value) -> Result<Selector, DetailError> {
    let topic = topic.as_object().ok_or(DetailError::Topics)?;
    let text = topic.get("match").and_then(Value::as_str);
    let text = text
        .filter(|text| !text.is_empty())
        .ok_or(DetailError::Match)?;
    match topic.get("match_type").unwrap_or(&Value::Null) {
        Value::Null => Ok(Selector::exact(text)),
        Value::String(kind) if kind == "exact" => Ok(Selector::exact(text)),
        Value::String(kind) if kind == "urlpattern" => {
            Selector::url_pattern(text).map_err(|_| DetailError::UrlPattern)
        }
        _ => Err(DetailError::MatchType),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn details(details: Value) -> Result<Grants, DetailError> {
        let claims = json!({"exp": 1, "authorization_details": details});
        Access::deserialize(&claims).unwrap().grants()
    }

    fn mercure(actions: Value, topics: Value) -> Value {
        json!([{"type": MERCURE_DETAIL, "actions": actions, "topics": topics}])
    }

    #[test]
    fn actions_grant_their_topics() {
        let grants = details(json!([
            {"type": MERCURE_DETAIL, "actions": ["publish"], "topics": [{"match": "p"}]},
            {"type": MERCURE_DETAIL, "actions": ["subscribe"], "topics": [
                {"match": "s", "match_type": "exact"},
                {"match": "https://example.com/books/:id", "match_type": "urlpattern"},
            ]},
            {"type": MERCURE_DETAIL, "actions": ["subscribe", "publish", "purge"],
             "topics": [{"match": "both", "match_type": null}]},
        ]))
        .unwrap();
        assert!(grants.publish.allows("p") && grants.publish.allows("both"));
        assert!(!grants.publish.allows("s"));
        assert!(grants.subscribe.allows("s") && grants.subscribe.allows("both"));
        assert!(grants.subscribe.allows("https://example.com/books/1"));
        assert!(!grants.subscribe.allows("https://example.com/books/1/2"));
        assert!(!grants.subscribe.allows("p"));
        assert_eq!(grants.expires, Some(1));
    }

    #[test]
    fn exact_is_the_default_and_star_matches_everything() {
        let grants = details(mercure(
            json!(["subscribe"]),
            json!([{"match": "/books/:id"}]),
        ));
        let grants = grants.unwrap();
        assert!(grants.subscribe.allows("/books/:id"));
        assert!(!grants.subscribe.allows("/books/1"), "exact, not a pattern");
        for kind in [json!(null), json!("exact"), json!("urlpattern")] {
            let topics = json!([{"match": "*", "match_type": kind}]);
            let grants = details(mercure(json!(["publish"]), topics)).unwrap();
            assert!(grants.publish.allows("anything"), "{kind}");
        }
    }

    #[test]
    fn what_grants_nothing_is_no_error() {
        let none = [
            json!([]),
            json!([{"type": "https://example.com/other", "topics": "any shape", "actions": 5}]),
            mercure(json!(["purge"]), json!([{"match": "t"}])),
        ];
        for claim in none {
            assert_eq!(
                details(claim.clone()),
                Ok(Grants {
                    expires: Some(1),
                    ..Grants::default()
                }),
                "{claim}"
            );
        }
        let absent = Access::deserialize(&json!({})).unwrap().grants();
        assert_eq!(absent, Ok(Grants::default()));
    }

    #[test]
    fn a_malformed_mercure_entry_refuses_the_token() {
        let subscribe = json!(["subscribe"]);
        let exact = json!([{"match": "t"}]);
        let cases = [
            (json!({"type": MERCURE_DETAIL}), DetailError::NotAList),
            (json!(["not an object"]), DetailError::NotAList),
            (json!([{"actions": ["subscribe"]}]), DetailError::NotAList),
            (json!([{"type": 5}]), DetailError::NotAList),
            (mercure(json!([]), exact.clone()), DetailError::Actions),
            (
                mercure(json!("subscribe"), exact.clone()),
                DetailError::Actions,
            ),
            (
                mercure(json!(["subscribe", 1]), exact.clone()),
                DetailError::Actions,
            ),
            (
                json!([{"type": MERCURE_DETAIL, "topics": exact}]),
                DetailError::Actions,
            ),
            (
                json!([{"type": MERCURE_DETAIL, "actions": subscribe}]),
                DetailError::Topics,
            ),
            (mercure(subscribe.clone(), json!([])), DetailError::Topics),
            (
                mercure(subscribe.clone(), json!(["t"])),
                DetailError::Topics,
            ),
            (
                mercure(subscribe.clone(), json!([{"match": ""}])),
                DetailError::Match,
            ),
            (
                mercure(subscribe.clone(), json!([{"match_type": "exact"}])),
                DetailError::Match,
            ),
            (
                mercure(subscribe.clone(), json!([{"match": 5}])),
                DetailError::Match,
            ),
            (
                mercure(
                    subscribe.clone(),
                    json!([{"match": "t", "match_type": "regexp"}]),
                ),
                DetailError::MatchType,
            ),
            (
                mercure(
                    subscribe.clone(),
                    json!([{"match": "t", "match_type": "Exact"}]),
                ),
                DetailError::MatchType,
            ),
            (
                mercure(subscribe.clone(), json!([{"match": "t", "match_type": 1}])),
                DetailError::MatchType,
            ),
            (
                mercure(
                    subscribe.clone(),
                    json!([{"match": "https://example.com/:id(", "match_type": "urlpattern"}]),
                ),
                DetailError::UrlPattern,
            ),
        ];
        for (claim, expected) in cases {
            assert_eq!(details(claim.clone()), Err(expected), "{claim}");
        }
        // One bad entry refuses the token, though another is good.
        let mut both = mercure(subscribe.clone(), json!([{"match": "t"}]));
        both.as_array_mut().unwrap().push(json!({"type": MERCURE_DETAIL, "actions": ["publish"], "topics": [{"match": "t", "match_type": "glob"}]}));
        assert_eq!(details(both), Err(DetailError::MatchType));
    }

    #[test]
    fn too_many_topics_are_refused_before_compiling() {
        let topic = json!({"match": "https://example.com/:id(", "match_type": "urlpattern"});
        let many = Value::Array(vec![topic; MAX_GRANTED_TOPICS + 1]);
        assert_eq!(
            details(mercure(json!(["subscribe"]), many)),
            Err(DetailError::TooMany)
        );
        let half = Value::Array(vec![json!({"match": "t"}); MAX_GRANTED_TOPICS / 2 + 1]);
        let mut split = mercure(json!(["subscribe"]), half.clone());
        split.as_array_mut().unwrap().extend(
            mercure(json!(["publish"]), half)
                .as_array()
                .unwrap()
                .clone(),
        );
        assert_eq!(details(split), Err(DetailError::TooMany));
        let most = Value::Array(vec![json!({"match": "t"}); MAX_GRANTED_TOPICS]);
        assert!(details(mercure(json!(["subscribe"]), most)).is_ok());
    }
}
