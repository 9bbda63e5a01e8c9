//! Topic names as clients and publishers give them, and the limits on them.

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

/// Checks a list of topic names and drops repeats, keeping first-seen order.
pub fn validate_all(mut names: Vec<String>) -> Result<Vec<String>, TopicError> {
    names.iter().try_for_each(|name| validate(name))?;
    let mut seen = 0;
    for i in 0..names.len() {
        if !names[..seen].contains(&names[i]) {
            names.swap(seen, i);
            seen += 1;
        }
    }
    names.truncate(seen);
    if names.len() > MAX_TOPICS {
        return Err(TopicError::TooMany);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn repeats_are_dropped_in_first_seen_order() {
        let names = validate_all(owned(&["b", "a", "b", "c", "a"])).unwrap();
        assert_eq!(names, owned(&["b", "a", "c"]));
    }

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(validate(""), Err(TopicError::Empty));
        assert_eq!(validate("a\nb"), Err(TopicError::ControlCharacter));
        assert_eq!(validate(&"x".repeat(257)), Err(TopicError::TooLong));
        assert!(validate("news/sport ünïcode").is_ok());
        let many: Vec<String> = (0..=MAX_TOPICS).map(|i| i.to_string()).collect();
        assert_eq!(validate_all(many), Err(TopicError::TooMany));
    }
}
