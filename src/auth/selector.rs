//! Topic selectors: what a token's `mercure.publish` and `mercure.subscribe` claims name.
//!
//! A selector is an exact topic name or `*`, any topic; the type is open for the patterns
//! (URI templates, URL patterns) that the Mercure protocol adds.

/// One topic selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// `*`: every topic.
    Any,
    /// One topic, by its exact name.
    Exact(Box<str>),
}

/// The selectors of one claim, in the order the token gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selectors(Box<[Selector]>);

impl Selector {
    /// Reads one selector from a claim.
    pub fn parse(text: &str) -> Self {
        match text {
            "*" => Self::Any,
            name => Self::Exact(name.into()),
        }
    }

    /// Whether this selector matches `topic`.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(name) => **name == *topic,
        }
    }
}

impl Selectors {
    /// The selectors of a claim's list.
    pub fn parse<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        Self(texts.into_iter().map(Selector::parse).collect())
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
    fn exact_names_and_the_wildcard() {
        let some = Selectors::parse(["news", "https://example.com/books/1"]);
        assert!(some.allows("news"));
        assert!(some.allows("https://example.com/books/1"));
        assert!(!some.allows("new"));
        assert!(!some.allows("https://example.com/books/2"));
        let all = Selectors::parse(["news", "*"]);
        assert!(all.allows("anything at all"));
        assert!(Selectors::parse([]).is_empty());
        assert!(!Selectors::default().allows("news"));
    }
}
