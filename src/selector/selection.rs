//! [`Selection`]: the selectors of one subscribe, validated: 1 to [`MAX_TOPICS`] of them,
//! without repeats, exact ones valid topic names.

use super::Selector;
use crate::sse::topic::{validate, TopicError, MAX_TOPICS};

/// The selectors of one subscribe. Only [`Selection::new`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection(Vec<Selector>);

impl Selection {
    /// Checks a subscribe's selectors and drops repeats, keeping first-seen order; stops at the
    /// first refused, or at the first distinct one past [`MAX_TOPICS`].
    pub fn new(selectors: Vec<Selector>) -> Result<Self, TopicError> {
        let mut kept: Vec<Selector> = Vec::with_capacity(selectors.len().min(MAX_TOPICS));
        for selector in selectors {
            if let Some(name) = selector.as_exact() {
                validate(name)?;
            }
            if kept.contains(&selector) {
                continue;
            }
            if kept.len() == MAX_TOPICS {
                return Err(TopicError::TooMany);
            }
            kept.push(selector);
        }
        if kept.is_empty() {
            return Err(TopicError::None);
        }
        Ok(Self(kept))
    }
}

impl std::ops::Deref for Selection {
    type Target = [Selector];

    fn deref(&self) -> &[Selector] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_go_and_limits_hold() {
        let template = || Selector::topic_or_template("/b/{id}");
        let selection = Selection::new(vec![
            Selector::topic("a"),
            template(),
            Selector::topic("a"),
            template(),
            Selector::topic("/b/{id}"),
        ])
        .unwrap();
        assert_eq!(
            selection.len(),
            3,
            "a template and its text as a topic differ"
        );
        assert_eq!(Selection::new(vec![]), Err(TopicError::None));
        assert_eq!(
            Selection::new(vec![Selector::topic("")]),
            Err(TopicError::Empty)
        );
        let many = (0..=MAX_TOPICS).map(|n| Selector::topic(&n.to_string()));
        assert_eq!(Selection::new(many.collect()), Err(TopicError::TooMany));
    }
}
