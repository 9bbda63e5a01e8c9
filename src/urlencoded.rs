//! Strict `application/x-www-form-urlencoded` decoding, for query strings and form bodies.
//!
//! Unlike a lossy decoder, it refuses bytes that do not decode to UTF-8 instead of replacing
//! them, so a publisher learns of the mistake rather than its subscribers.

use std::borrow::Cow;

use percent_encoding::percent_decode;

/// Why a form or query string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("form field {0} is not valid UTF-8 once decoded")]
pub struct NotUtf8(pub usize);

/// Decodes `name=value&...` into pairs, in order; `+` is a space, `%XX` a byte.
pub fn parse(input: &[u8]) -> Result<Vec<(String, String)>, NotUtf8> {
    fields(input)
        .map(|field| Ok((field.name()?.into_owned(), field.value()?)))
        .collect()
}

/// The `name=value` fields of `input`, in order, not decoded yet: a caller decodes only the
/// fields it keeps, and can stop at any one.
pub fn fields(input: &[u8]) -> impl Iterator<Item = Field<'_>> {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .enumerate()
        .map(|(index, pair)| {
            let mut parts = pair.splitn(2, |&b| b == b'=');
            Field {
                index,
                name: parts.next().unwrap_or_default(),
                value: parts.next().unwrap_or_default(),
            }
        })
}

/// One field of a form or query string, as it came.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// Its place among the fields, for errors.
    index: usize,
    /// The encoded name.
    name: &'a [u8],
    /// The encoded value.
    value: &'a [u8],
}

impl<'a> Field<'a> {
    /// The decoded name, borrowed when it needs no decoding (as names usually do not).
    pub fn name(&self) -> Result<Cow<'a, str>, NotUtf8> {
        decode(self.name).ok_or(NotUtf8(self.index))
    }

    /// The decoded value.
    pub fn value(&self) -> Result<String, NotUtf8> {
        decode(self.value)
            .map(Cow::into_owned)
            .ok_or(NotUtf8(self.index))
    }
}

fn decode(raw: &[u8]) -> Option<Cow<'_, str>> {
    // Most fields have neither `+` nor `%`: they are taken as they are.
    if !raw.iter().any(|&b| b == b'+' || b == b'%') {
        return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
    }
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    String::from_utf8(percent_decode(&spaced).collect())
        .ok()
        .map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_in_order() {
        let pairs = parse(b"topic=a&topic=b+c&data=%C3%BC%0A&empty=&flag").unwrap();
        let expect = [
            ("topic", "a"),
            ("topic", "b c"),
            ("data", "ü\n"),
            ("empty", ""),
            ("flag", ""),
        ];
        let expect: Vec<(String, String)> = expect
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs, expect);
    }

    #[test]
    fn refuses_bytes_that_are_not_utf8() {
        assert_eq!(parse(b"a=1&data=%FF"), Err(NotUtf8(1)));
        assert_eq!(parse(b"data=\xff"), Err(NotUtf8(0)));
    }
}
