//! URL patterns (the URL Pattern standard, as Mercure 1.0 uses them) as topic selectors:
//! `https://example.com/books/:id` matches `https://example.com/books/1`.
//!
//! Parsing and matching are the `urlpattern` crate's, with the regular expressions of the
//! `regex-lite` crate ([`LiteRegex`]): matching takes time linear in the topic, and each of
//! a pattern's eight components costs about 3 kB instead of the `regex` crate's 11-25 kB. A
//! relative pattern or topic is resolved against [`BASE`], the hub's own URL, so relative
//! patterns match relative topics. A topic that is not a URL reference matches no pattern.

use urlpattern::parser::RegexSyntax;
use urlpattern::regexp::RegExp;
use urlpattern::{UrlPattern as Compiled, UrlPatternInit, UrlPatternMatchInput, UrlPatternOptions};

/// The most bytes one component's compiled expression may take: a pattern past it is refused
/// before it costs more (compiling runs on the front-end thread).
const COMPILED_BYTES: usize = 256 * 1024;

/// The URL relative patterns and topics are resolved against.
pub const BASE: &str = "https://localhost/.well-known/mercure";

/// A URL pattern, compiled.
#[derive(Debug)]
pub struct UrlPattern {
    compiled: Compiled<LiteRegex>,
}

/// A component's regular expression, as `regex-lite` compiles it.
#[derive(Debug)]
pub struct LiteRegex(regex_lite::Regex);

impl RegExp for LiteRegex {
    fn syntax() -> RegexSyntax {
        RegexSyntax::Rust
    }

    fn parse(pattern: &str, flags: &str, _force_eval: bool) -> Result<Self, ()> {
        regex_lite::RegexBuilder::new(pattern)
            .case_insensitive(flags.contains('i'))
            .size_limit(COMPILED_BYTES)
            .build()
            .map(Self)
            .map_err(|_| ())
    }

    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        let captures = self.0.captures(text)?;
        Some(
            captures
                .iter()
                .skip(1)
                .map(|group| group.map(|m| m.as_str()))
                .collect(),
        )
    }

    fn pattern_string(&self) -> &str {
        self.0.as_str()
    }
}

/// Why a text is not a URL pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a URL pattern: {0}")]
pub struct UrlPatternError(String);

fn base() -> url::Url {
    url::Url::parse(BASE).expect("the base URL is valid")
}

impl UrlPattern {
    /// Compiles `text`, an absolute or relative URL pattern (case-sensitive).
    pub fn parse(text: &str) -> Result<Self, UrlPatternError> {
        let refused = |e: urlpattern::Error| UrlPatternError(e.to_string());
        let init = UrlPatternInit::parse_constructor_string::<LiteRegex>(text, Some(base()))
            .map_err(refused)?;
        let compiled = Compiled::parse(init, UrlPatternOptions::default()).map_err(refused)?;
        Ok(Self { compiled })
    }

    /// Whether `topic`, read as a URL reference against [`BASE`], matches the pattern.
    pub fn matches(&self, topic: &str) -> bool {
        let Ok(url) = base().join(topic) else {
            return false;
        };
        self.compiled
            .test(UrlPatternMatchInput::Url(url))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, topic: &str) -> bool {
        UrlPattern::parse(pattern).unwrap().matches(topic)
    }

    #[test]
    fn named_groups_match_one_segment_and_wildcards_more() {
        let books = "https://example.com/books/:id";
        assert!(matches(books, "https://example.com/books/1"));
        assert!(!matches(books, "https://example.com/books/1/reviews"));
        assert!(!matches(books, "https://example.com/authors/1"));
        assert!(!matches(books, "http://example.com/books/1"));
        assert!(matches(
            "https://example.com/books/*",
            "https://example.com/books/1/reviews"
        ));
        assert!(matches(
            "https://example.com/books/:id(\\d+)",
            "https://example.com/books/12"
        ));
        assert!(!matches(
            "https://example.com/books/:id(\\d+)",
            "https://example.com/books/dune"
        ));
    }

    #[test]
    fn relative_patterns_match_relative_topics() {
        assert!(matches("/books/:id", "/books/1"));
        assert!(!matches("/books/:id", "https://example.com/books/1"));
        assert!(!matches(
            "https://example.com/books/:id",
            "not a url at all"
        ));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        assert!(UrlPattern::parse("https://example.com/books/:id(").is_err());
        // Look-around is not linear: the regex engine refuses it.
        assert!(UrlPattern::parse("https://example.com/(?=a)").is_err());
        // A pattern whose expression would be huge is refused, not compiled.
        assert!(UrlPattern::parse("/:a(((a{100}){100}){100})").is_err());
    }
}
