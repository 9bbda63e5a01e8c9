//! Topic selectors: what a subscriber asks for and what a token's grants name.
//!
//! A selector is an exact topic, `*` (every topic), a URI template (Mercure 0.x:
//! `https://example.com/books/{id}`) or a URL pattern (Mercure 1.0:
//! `https://example.com/books/:id`). Only the constructors below make one, so a pattern held is
//! always compiled. Matching a pattern runs a regular expression; the broadcaster matches each
//! distinct pattern against each topic once (see `broadcast::topic`), not once per event.

mod selection;
mod template;
mod url_pattern;

use std::fmt;
use std::sync::Arc;

pub use self::selection::Selection;
pub use self::template::Template;
pub use self::url_pattern::{UrlPattern, UrlPatternError, BASE};

/// The longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1024;

/// One topic selector.
#[derive(Debug, Clone)]
pub struct Selector {
    /// The text it was given, which identifies it.
    text: Box<str>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Any,
    Exact,
    Template(Arc<Template>),
    UrlPattern(Arc<UrlPattern>),
}

/// Why a selector was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error(transparent)]
    UrlPattern(#[from] UrlPatternError),
    #[error("a pattern is longer than {MAX_PATTERN_BYTES} bytes")]
    TooLong,
}

impl Selector {
    /// Exactly the topic `name`, `*` included (ssecast's own `topic` parameter).
    pub fn topic(name: &str) -> Self {
        Self {
            text: name.into(),
            kind: Kind::Exact,
        }
    }

    /// `*` or an exact topic, as Mercure 1.0's `match` names it.
    pub fn exact(text: &str) -> Self {
        let kind = match text {
            "*" => Kind::Any,
            _ => Kind::Exact,
        };
        Self {
            text: text.into(),
            kind,
        }
    }

    /// A selector as Mercure 0.x names it (a `topic` parameter, a token's claim): `*`, a URI
    /// template, or else an exact topic (a text that does not parse as a template is a topic).
    pub fn topic_or_template(text: &str) -> Self {
        if text.contains('{') && text.len() <= MAX_PATTERN_BYTES {
            if let Ok(template) = Template::parse(text) {
                return Self {
                    text: text.into(),
                    kind: Kind::Template(Arc::new(template)),
                };
            }
        }
        Self::exact(text)
    }

    /// `*` or a URL pattern, as Mercure 1.0's `match_urlpattern` names it.
    pub fn url_pattern(text: &str) -> Result<Self, SelectorError> {
        if text == "*" {
            return Ok(Self::exact(text));
        }
        if text.len() > MAX_PATTERN_BYTES {
            return Err(SelectorError::TooLong);
        }
        Ok(Self {
            text: text.into(),
            kind: Kind::UrlPattern(Arc::new(UrlPattern::parse(text)?)),
        })
    }

    /// The topic it names, if it is exact.
    pub fn as_exact(&self) -> Option<&str> {
        matches!(self.kind, Kind::Exact).then_some(&*self.text)
    }

    /// The text it was given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A name for it that no topic and no selector of another kind has (topics hold no
    /// control characters), under which the broadcaster keeps its subscribers.
    pub fn key(&self) -> String {
        match self.tag() {
            None => self.text.to_string(),
            Some(tag) => format!("\u{1}{tag}{}", self.text),
        }
    }

    /// What tells its kind apart in its key: none for an exact topic.
    fn tag(&self) -> Option<char> {
        match self.kind {
            Kind::Any => Some('*'),
            Kind::Exact => None,
            Kind::Template(_) => Some('t'),
            Kind::UrlPattern(_) => Some('u'),
        }
    }

    /// Whether this selector matches `topic`.
    pub fn matches(&self, topic: &str) -> bool {
        match &self.kind {
            Kind::Any => true,
            Kind::Exact => *self.text == *topic,
            Kind::Template(template) => template.matches(topic),
            Kind::UrlPattern(pattern) => pattern.matches(topic),
        }
    }
}

impl PartialEq for Selector {
    fn eq(&self, other: &Self) -> bool {
        self.tag() == other.tag() && self.text == other.text
    }
}

impl Eq for Selector {}

impl std::hash::Hash for Selector {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.tag(), &self.text).hash(state);
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The selectors of one grant, in the order the token gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selectors(Box<[Selector]>);

impl Selectors {
    /// A list of selectors.
    pub fn new(selectors: Vec<Selector>) -> Self {
        Self(selectors.into_boxed_slice())
    }

    /// The selectors of a Mercure 0.x claim's list.
    pub fn from_claim<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        Self(texts.into_iter().map(Selector::topic_or_template).collect())
    }

    /// Whether one of them matches `topic`.
    pub fn allows(&self, topic: &str) -> bool {
        self.0.iter().any(|selector| selector.matches(topic))
    }

    /// Whether they allow no topic at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_matches_its_way() {
        let exact = Selector::exact("https://example.com/books/{id}");
        assert_eq!(exact.as_exact(), Some("https://example.com/books/{id}"));
        assert!(!exact.matches("https://example.com/books/1"));
        let template = Selector::topic_or_template("https://example.com/books/{id}");
        assert_eq!(template.as_exact(), None);
        assert!(template.matches("https://example.com/books/1"));
        let pattern = Selector::url_pattern("https://example.com/books/:id").unwrap();
        assert!(pattern.matches("https://example.com/books/1"));
        assert!(!pattern.matches("https://example.com/books/1/2"));
        assert!(Selector::exact("*").matches("anything"));
        assert!(Selector::url_pattern("*").unwrap().matches("anything"));
        assert!(Selector::topic_or_template("*").matches("anything"));
        assert_eq!(
            Selector::topic_or_template("/books/{").as_exact(),
            Some("/books/{"),
            "not a template: an exact topic"
        );
        assert!(Selector::url_pattern(&"a".repeat(MAX_PATTERN_BYTES + 1)).is_err());
    }

    #[test]
    fn kinds_have_distinct_keys() {
        let text = "/books/{id}";
        let keys = [
            Selector::exact(text).key(),
            Selector::topic_or_template(text).key(),
            Selector::url_pattern(text).unwrap().key(),
            Selector::exact("*").key(),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(keys[0], text, "an exact selector is keyed by its topic");
    }

    #[test]
    fn grants_allow_what_one_of_their_selectors_matches() {
        let some = Selectors::from_claim(["news", "https://example.com/books/{id}"]);
        assert!(some.allows("news"));
        assert!(some.allows("https://example.com/books/1"));
        assert!(!some.allows("new"));
        assert!(!some.allows("https://example.com/authors/2"));
        assert!(Selectors::from_claim(["news", "*"]).allows("anything at all"));
        assert!(Selectors::from_claim([]).is_empty());
        assert!(!Selectors::default().allows("news"));
    }
}
