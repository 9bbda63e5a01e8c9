//! URI templates (RFC 6570) as topic selectors, matched the way Mercure hubs match them: the
//! template becomes an anchored regular expression in which each expression may be absent or
//! hold any run of the characters its operator allows (or percent-encoded octets).
//!
//! `https://example.com/books/{id}` matches `https://example.com/books/1` and
//! `https://example.com/books/` but not `https://example.com/books/1/reviews` (`/` is reserved,
//! and a simple expression allows only unreserved characters, `,` and percent-encoding);
//! `{+path}` allows reserved characters too. The regular expressions are those of the
//! `regex-lite` crate, which matches in time linear in the topic whatever the template, and
//! costs a quarter of the `regex` crate's memory per pattern (about 3 kB compiled, 5 kB once
//! matched, against 11 and 25 kB), which counts when each of a thousand subscribers brings a
//! template of its own.

use regex_lite::{escape, Regex, RegexBuilder};

/// The most bytes a compiled template may take (the regular expression's size limit).
const COMPILED_BYTES: usize = 256 * 1024;

/// Unreserved characters (RFC 3986): ALPHA / DIGIT / "-" / "." / "_" / "~".
const UNRESERVED: &str = r"\-.0-9A-Z_a-z~";
/// Reserved characters (RFC 3986): gen-delims and sub-delims.
const RESERVED: &str = r"!#$&-,/:;=?@\[\]";

/// A URI template, compiled.
#[derive(Debug, Clone)]
pub struct Template {
    /// The text before its first expression, which every topic it matches begins with: most
    /// topics are told apart by it without running the expression (regex-lite's matcher
    /// takes about a microsecond a topic).
    prefix: Box<str>,
    regex: Regex,
}

/// Why a text is not a URI template (a selector that is not one is an exact topic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("an unclosed or stray brace")]
    Brace,
    #[error("an expression names no variable, or a bad one")]
    Variable,
    #[error("the template is too large to match")]
    TooLarge,
}

/// What an expression's operator (`{+x}`, `{/x}`, ...) puts before and between values, and
/// which characters its values hold.
struct Operator {
    first: &'static str,
    separator: &'static str,
    /// Whether values are `name=value` pairs.
    named: bool,
    /// Whether values may hold reserved characters unencoded.
    reserved: bool,
}

impl Operator {
    fn of(expression: &str) -> (Self, &str) {
        let operator = |first, separator, named, reserved| Operator {
            first,
            separator,
            named,
            reserved,
        };
        let mut chars = expression.chars();
        let found = match chars.next() {
            Some('+') => operator("", ",", false, true),
            Some('#') => operator("#", ",", false, true),
            Some('.') => operator(".", ".", false, false),
            Some('/') => operator("/", "/", false, false),
            Some(';') => operator(";", ";", true, false),
            Some('?') => operator("?", "&", true, false),
            Some('&') => operator("&", "&", true, false),
            _ => return (operator("", ",", false, false), expression),
        };
        (found, chars.as_str())
    }

    /// A run of the characters one value may hold; `named` values and exploded lists may also
    /// hold `=`.
    fn value(&self, named: bool) -> String {
        let mut class = String::from("[");
        if self.reserved {
            class.push_str(UNRESERVED);
            class.push_str(RESERVED);
        } else {
            class.push(',');
            if named {
                class.push('=');
            }
            class.push_str(UNRESERVED);
        }
        format!("(?:{class}]|%[0-9A-Fa-f]{{2}})*")
    }
}

/// One variable of an expression: `name`, `name:3` or `name*`.
struct Variable {
    explode: bool,
}

impl Variable {
    fn parse(spec: &str) -> Result<Self, TemplateError> {
        let (name, explode) = match spec.strip_suffix('*') {
            Some(name) => (name, true),
            None => (spec, false),
        };
        let name = match name.split_once(':') {
            Some((name, length)) => {
                let valid = !length.is_empty()
                    && length.len() <= 4
                    && !length.starts_with('0')
                    && length.bytes().all(|b| b.is_ascii_digit());
                if !valid || explode {
                    return Err(TemplateError::Variable);
                }
                name
            }
            None => name,
        };
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && !name.ends_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'%');
        if !valid {
            return Err(TemplateError::Variable);
        }
        Ok(Self { explode })
    }
}

impl Template {
    /// Compiles `text` if it is a URI template with at least one expression.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut pattern = String::from("^");
        let mut rest = text;
        let mut expressions = 0;
        while !rest.is_empty() {
            let Some(open) = rest.find(['{', '}']) else {
                pattern.push_str(&escape(rest));
                break;
            };
            if rest.as_bytes()[open] == b'}' {
                return Err(TemplateError::Brace);
            }
            pattern.push_str(&escape(&rest[..open]));
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or(TemplateError::Brace)?;
            let expression = &after[..close];
            if expression.contains('{') {
                return Err(TemplateError::Brace);
            }
            push_expression(&mut pattern, expression)?;
            expressions += 1;
            rest = &after[close + 1..];
        }
        if expressions == 0 {
            return Err(TemplateError::Variable);
        }
        pattern.push('$');
        let regex = RegexBuilder::new(&pattern)
            .size_limit(COMPILED_BYTES)
            .build()
            .map_err(|_| TemplateError::TooLarge)?;
        let prefix = text[..text.find('{').unwrap_or(text.len())].into();
        Ok(Self { prefix, regex })
    }

    /// Whether `topic` matches the template.
    pub fn matches(&self, topic: &str) -> bool {
        topic.starts_with(&*self.prefix) && self.regex.is_match(topic)
    }
}

/// Appends the regular expression of one expression (what is between its braces).
fn push_expression(pattern: &mut String, expression: &str) -> Result<(), TemplateError> {
    let (operator, list) = Operator::of(expression);
    let variables = list
        .split(',')
        .map(Variable::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let exploded = variables.iter().any(|variable| variable.explode);
    let first = &variables[0];
    pattern.push_str("(?:");
    pattern.push_str(&escape(operator.first));
    pattern.push_str(&operator.value(operator.named || first.explode));
    if variables.len() > 1 || exploded {
        pattern.push_str("(?:");
        pattern.push_str(&escape(operator.separator));
        pattern.push_str(&operator.value(operator.named || exploded));
        pattern.push(')');
        match exploded {
            true => pattern.push('*'),
            false => pattern.push_str(&format!("{{0,{}}}", variables.len() - 1)),
        }
    }
    pattern.push_str(")?");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(template: &str, topic: &str) -> bool {
        Template::parse(template).unwrap().matches(topic)
    }

    #[test]
    fn a_simple_expression_matches_one_path_segment() {
        let books = "https://example.com/books/{id}";
        assert!(matches(books, "https://example.com/books/1"));
        assert!(matches(books, "https://example.com/books/dune-1965"));
        assert!(matches(books, "https://example.com/books/a%20b"));
        assert!(matches(books, "https://example.com/books/"));
        assert!(!matches(books, "https://example.com/books/1/reviews"));
        assert!(!matches(books, "https://example.com/books"));
        assert!(!matches(books, "https://example.com/authors/1"));
        assert!(!matches(books, "xhttps://example.com/books/1"));
        // The literal's dot is a dot, not "any character".
        assert!(!matches(books, "https://exampleXcom/books/1"));
    }

    #[test]
    fn operators_allow_what_rfc_6570_expands() {
        assert!(matches("/files{+path}", "/files/a/b.txt"));
        assert!(!matches("/files{path}", "/files/a/b.txt"));
        assert!(matches("/users{/id,tab}", "/users/1/posts"));
        assert!(!matches("/users{/id,tab}", "/users/1/posts/2"));
        assert!(matches("/users{/path*}", "/users/1/posts/2"));
        assert!(matches(
            "/books{?author,year}",
            "/books?author=herbert&year=1965"
        ));
        assert!(!matches(
            "/books{?author}",
            "/books?author=herbert&year=1965"
        ));
        assert!(matches("/doc{#section}", "/doc#part/2"));
        assert!(matches("/map{;x,y}", "/map;x=1;y=2"));
        assert!(matches("/v{.major,minor}", "/v.1.2"));
    }

    #[test]
    fn texts_that_are_not_templates_are_refused() {
        for text in [
            "https://example.com/books/1",
            "/books/{",
            "/books/}",
            "/books/{}",
            "/books/{a{b}}",
            "/books/{id:0}",
            "/books/{id:12345}",
            "/books/{id:3*}",
            "/books/{a b}",
        ] {
            assert!(Template::parse(text).is_err(), "{text}");
        }
        assert!(Template::parse("/books/{id:3}").is_ok());
    }
}
