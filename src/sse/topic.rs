//! Topic names as clients and publishers give them, the limits on them, and [`Topics`]: a
//! request's topic set, which only validation makes, so that nothing past a limit reaches the
//! broadcaster.

/// The topic of a subscribe or publish that names none.
pub const DEFAULT_TOPIC: &str = "default";
/// The longest topic name accepted, in bytes.
pub const MAX_TOPIC_BYTES: usize = 256;
/// The most topics one subscribe or one publish may name.
pub const MAX_TOPICS: usize = 64;

/// Why a list of topic names was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic must not be empty")]
    Empty,
    #[error("topic is longer than {MAX_TOPIC_BYTES} bytes")]
    TooLong,
    #[error("topic must not contain control characters")]
    ControlCharacter,
    #[error("at most {MAX_TOPICS} topics per request")]
    TooMany,
    #[error("at least one topic is required")]
    None,
}

/// The topics of one subscribe or publish: 1 to [`MAX_TOPICS`] valid names, without repeats, in
/// first-named order. Only [`Topics::new`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics(Vec<String>);

impl Topics {
    /// Checks a list of names and drops repeats, keeping first-seen order.
    ///
    /// Linear in the names given, and it stops at the first name refused or at the first
    /// distinct name past [`MAX_TOPICS`]: a request naming thousands of topics costs no more
    /// than 65 of them.
    pub fn new(mut names: Vec<String>) -> Result<Self, TopicError> {
        // The names kept move to the front, in place.
        let mut kept = 0;
        for next in 0..names.len() {
            validate(&names[next])?;
            // At most MAX_TOPICS names are kept, so this scan is bounded by a constant.
            if names[..kept].contains(&names[next]) {
                continue;
            }
            if kept == MAX_TOPICS {
                return Err(TopicError::TooMany);
            }
            names.swap(kept, next);
            kept += 1;
        }
        if kept == 0 {
            return Err(TopicError::None);
        }
        names.truncate(kept);
        Ok(Self(names))
    }

    /// The one topic of an update the hub itself makes (a Mercure subscription's): not
    /// checked, as it may be longer than a client may name; it holds a checked selector,
    /// percent-encoded, so it is bounded all the same.
    pub(crate) fn hub_made(name: String) -> Self {
        Self(vec![name])
    }
}

impl std::ops::Deref for Topics {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.0
    }
}

/// Checks one topic name.
pub fn validate(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > MAX_TOPIC_BYTES {
        return Err(TopicError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(TopicError::ControlCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn repeats_are_dropped_in_first_seen_order() {
        let names = Topics::new(owned(&["b", "a", "b", "c", "a"])).unwrap();
        assert_eq!(&*names, owned(&["b", "a", "c"]));
        assert_eq!(Topics::new(Vec::new()), Err(TopicError::None));
    }

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(validate(""), Err(TopicError::Empty));
        assert_eq!(validate("a\nb"), Err(TopicError::ControlCharacter));
        assert_eq!(validate(&"x".repeat(257)), Err(TopicError::TooLong));
        assert!(validate("news/sport ünïcode").is_ok());
        let many: Vec<String> = (0..=MAX_TOPICS).map(|i| i.to_string()).collect();
        assert_eq!(Topics::new(many), Err(TopicError::TooMany));
    }

    #[test]
    fn repeats_do_not_count_toward_the_limit() {
        let mut names: Vec<String> = (0..MAX_TOPICS).map(|i| i.to_string()).collect();
        names.extend((0..10_000).map(|i| (i % MAX_TOPICS).to_string()));
        assert_eq!(Topics::new(names).unwrap().len(), MAX_TOPICS);
    }

    #[test]
    fn a_bad_name_is_refused_wherever_it_is_before_the_limit() {
        assert_eq!(Topics::new(owned(&["a", "b", ""])), Err(TopicError::Empty));
        let mut names: Vec<String> = (0..70_000).map(|i| format!("t{i}")).collect();
        assert_eq!(Topics::new(names.clone()), Err(TopicError::TooMany));
        names[3] = "a\nb".into();
        assert_eq!(Topics::new(names), Err(TopicError::ControlCharacter));
    }
}
