//! An event to publish, validated once, and its encoding to SSE wire bytes.
//!
//! A publisher's request is a [`Draft`]; [`Draft::validate`] is the only way to an [`Event`],
//! whose fields are private, so that nothing unvalidated is encoded or reaches the broadcaster.
//!
//! A frame is encoded exactly once per event and shared by every subscriber and every history
//! ring that holds it. Every frame starts with its `id:` line, so the id can be read back from
//! the bytes (see [`frame_id`]) and history need not store it twice.

use bytes::{BufMut, Bytes, BytesMut};

use super::topic::{TopicError, Topics};

/// The resume id (Mercure's) that asks for everything history holds: no event may have it.
pub const EARLIEST: &str = "earliest";

/// The longest event id or event type accepted, in bytes.
pub const MAX_FIELD_BYTES: usize = 1024;

/// The comment frame written to a subscriber that has been idle for the keep-alive interval.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// A publish request as the publisher sent it, not yet checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// The topics it goes to, repeats and all.
    pub topics: Vec<String>,
    /// The payload; one `data:` line per line.
    pub data: String,
    /// The event type (`event:`), if not the default `message`.
    pub event: Option<String>,
    /// The id the publisher chose; the broadcaster assigns one otherwise.
    pub id: Option<String>,
    /// The reconnection delay to tell clients (`retry:`), in milliseconds.
    pub retry: Option<u64>,
    /// Whether only subscribers whose token allows one of its topics may receive it.
    pub private: bool,
}

/// A validated event, ready to encode: made only by [`Draft::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The topics it goes to.
    topics: Topics,
    /// The payload, not empty.
    data: String,
    /// The event type, without CR, LF, NUL or surrounding whitespace.
    event: Option<String>,
    /// The publisher's id, likewise.
    id: Option<String>,
    /// The reconnection delay, in milliseconds.
    retry: Option<u64>,
    /// Whether it goes only to subscribers whose token allows one of its topics.
    private: bool,
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error("data is required and must not be empty")]
    NoData,
    #[error("{0} must not contain CR, LF or NUL")]
    LineBreak(&'static str),
    #[error("{0} must not be empty")]
    EmptyField(&'static str),
    #[error("{0} is longer than {MAX_FIELD_BYTES} bytes")]
    FieldTooLong(&'static str),
    #[error("{0} must not begin or end with whitespace")]
    Whitespace(&'static str),
    #[error("id must not be \"earliest\": a resume from it asks for all of history")]
    ReservedId,
}

impl Draft {
    /// Checks every field and drops repeated topics. An empty `data` is refused because a
    /// browser's `EventSource` never dispatches an event whose data is empty.
    pub fn validate(self) -> Result<Event, EventError> {
        self.check(true)
    }

    /// As [`Draft::validate`], but an empty `data` is sent as one empty `data:` line, as
    /// Mercure's hub does (its publishers may leave `data` out).
    pub fn validate_allowing_empty_data(self) -> Result<Event, EventError> {
        self.check(false)
    }

    fn check(self, data_required: bool) -> Result<Event, EventError> {
        let topics = Topics::new(self.topics)?;
        if data_required && self.data.is_empty() {
            return Err(EventError::NoData);
        }
        check_field("id", self.id.as_deref())?;
        if self.id.as_deref() == Some(EARLIEST) {
            return Err(EventError::ReservedId);
        }
        check_field("event", self.event.as_deref())?;
        Ok(Event {
            topics,
            data: self.data,
            event: self.event,
            id: self.id,
            retry: self.retry,
            private: self.private,
        })
    }
}

impl Event {
    /// The topics it goes to.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The id the publisher chose, if any.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Whether it goes only to subscribers whose token allows one of its topics.
    pub fn is_private(&self) -> bool {
        self.private
    }
}

fn check_field(name: &'static str, value: Option<&str>) -> Result<(), EventError> {
    let Some(value) = value else { return Ok(()) };
    if value.is_empty() {
        return Err(EventError::EmptyField(name));
    }
    if value.len() > MAX_FIELD_BYTES {
        return Err(EventError::FieldTooLong(name));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(EventError::LineBreak(name));
    }
    // HTTP trims a header value, so such an id would come back altered in `Last-Event-ID`.
    if value.trim() != value {
        return Err(EventError::Whitespace(name));
    }
    Ok(())
}

/// Encodes a validated event under `id`: `id:`, then `event:` and `retry:` when set, then one
/// `data: ` line per line of data (CR, LF and CRLF each end a line), then a blank line.
pub fn encode(id: &str, event: &Event) -> Bytes {
    let mut frame = BytesMut::with_capacity(5 + id.len() + body_len(event));
    put_field(&mut frame, "id", id);
    put_body(&mut frame, event);
    frame.freeze()
}

/// Encodes a validated event without its `id:` line: what a node sends through Redis, and
/// every node puts after the id the event was given there (see [`with_id`]).
pub fn encode_body(event: &Event) -> String {
    let mut body = BytesMut::with_capacity(body_len(event));
    put_body(&mut body, event);
    // Made of the event's own strings and ASCII.
    String::from_utf8(body.to_vec()).unwrap_or_default()
}

/// The frame of an event given `id`, from its body as [`encode_body`] made it.
pub fn with_id(id: &str, body: &str) -> Bytes {
    let mut frame = BytesMut::with_capacity(5 + id.len() + body.len());
    put_field(&mut frame, "id", id);
    frame.put_slice(body.as_bytes());
    frame.freeze()
}

/// The bytes [`put_body`] writes for `event`.
fn body_len(event: &Event) -> usize {
    event.event.as_ref().map_or(0, |e| 8 + e.len())
        + event.retry.map_or(0, |_| 28)
        + event.data.len()
        + 7 * split_lines(&event.data).count()
        + 1
}

/// Writes everything of a frame after its `id:` line.
fn put_body(frame: &mut BytesMut, event: &Event) {
    if let Some(event_type) = &event.event {
        put_field(frame, "event", event_type);
    }
    if let Some(retry) = event.retry {
        put_field(frame, "retry", &retry.to_string());
    }
    for line in split_lines(&event.data) {
        put_field(frame, "data", line);
    }
    frame.put_u8(b'\n');
}

/// The frame that opens a resumed stream whose `Last-Event-ID` is no longer in history: type
/// `gap`, no `id:` (so the browser keeps the id it asked with), data naming the id asked for
/// and the oldest id still held.
pub fn gap_frame(asked: &str, oldest: Option<&[u8]>) -> Bytes {
    let oldest = oldest.map(String::from_utf8_lossy);
    let data = serde_json::json!({ "lastEventId": asked, "oldestId": oldest });
    let mut frame = BytesMut::new();
    put_field(&mut frame, "event", "gap");
    put_field(&mut frame, "data", &data.to_string());
    frame.put_u8(b'\n');
    frame.freeze()
}

/// The id of a frame made by [`encode`]: the rest of its first line.
pub fn frame_id(frame: &[u8]) -> &[u8] {
    let line = frame.split(|&b| b == b'\n').next().unwrap_or_default();
    line.strip_prefix(b"id: ").unwrap_or_default()
}

fn put_field(frame: &mut BytesMut, name: &str, value: &str) {
    frame.put_slice(name.as_bytes());
    frame.put_slice(b": ");
    frame.put_slice(value.as_bytes());
    frame.put_u8(b'\n');
}

/// Splits on CRLF, CR and LF alike, as an SSE parser reads them.
fn split_lines(data: &str) -> impl Iterator<Item = &str> + Clone {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let text = rest?;
        match memchr::memchr2(b'\r', b'\n', text.as_bytes()) {
            Some(end) => {
                let skip = if text[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&text[end + skip..]);
                Some(&text[..end])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(data: &str) -> Draft {
        Draft {
            topics: vec!["t".into()],
            data: data.into(),
            ..Draft::default()
        }
    }

    fn event(data: &str) -> Event {
        draft(data).validate().unwrap()
    }

    #[test]
    fn a_body_under_an_id_is_the_frame_encode_makes() {
        let full = Draft {
            event: Some("score".into()),
            retry: Some(3000),
            ..draft("one\r\ntwo\nthree")
        }
        .validate()
        .unwrap();
        for event in [full, event("x")] {
            assert_eq!(with_id("42", &encode_body(&event)), encode("42", &event));
        }
    }

    #[test]
    fn encodes_every_field_in_order() {
        let mut e = draft("hello");
        e.event = Some("greeting".into());
        e.retry = Some(3000);
        assert_eq!(
            &encode("7", &e.validate().unwrap())[..],
            b"id: 7\nevent: greeting\nretry: 3000\ndata: hello\n\n"
        );
    }

    #[test]
    fn every_line_ending_starts_a_data_line() {
        let frame = encode("1", &event("a\nb\r\nc\rd\n"));
        assert_eq!(
            &frame[..],
            b"id: 1\ndata: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"
        );
        assert_eq!(
            &encode("1", &event("\r\n"))[..],
            b"id: 1\ndata: \ndata: \n\n"
        );
    }

    #[test]
    fn capacity_estimate_is_exact_or_generous() {
        for data in ["x", "a\nb", "\r\r\r", "ünï\r\ncode"] {
            let mut e = draft(data);
            e.retry = Some(u64::MAX);
            let frame = encode("123", &e.validate().unwrap());
            assert!(frame.len() <= 5 + 3 + 28 + data.len() + 7 * split_lines(data).count() + 1);
        }
    }

    #[test]
    fn frame_id_reads_back_the_id() {
        assert_eq!(frame_id(&encode("abc-1", &event("x"))), b"abc-1");
        assert_eq!(frame_id(b"event: gap\n"), b"");
    }

    #[test]
    fn gap_frame_names_both_ids() {
        assert_eq!(
            &gap_frame("9", Some(b"12"))[..],
            b"event: gap\ndata: {\"lastEventId\":\"9\",\"oldestId\":\"12\"}\n\n"
        );
        assert_eq!(
            &gap_frame("9", None)[..],
            b"event: gap\ndata: {\"lastEventId\":\"9\",\"oldestId\":null}\n\n"
        );
    }

    #[test]
    fn validation_refuses_what_would_break_the_stream() {
        let mut e = draft("x");
        e.id = Some("a\nb".into());
        assert_eq!(e.validate(), Err(EventError::LineBreak("id")));
        for spaced in [" 42", "42 ", "\t42"] {
            let mut e = draft("x");
            e.id = Some(spaced.into());
            assert_eq!(e.validate(), Err(EventError::Whitespace("id")));
        }
        let mut e = draft("x");
        e.event = Some("a\0".into());
        assert_eq!(e.validate(), Err(EventError::LineBreak("event")));
        assert_eq!(draft("").validate(), Err(EventError::NoData));
        assert_eq!(
            Draft {
                topics: vec![],
                ..draft("x")
            }
            .validate(),
            Err(EventError::Topic(TopicError::None))
        );
        let mut e = draft("x");
        e.topics = vec!["a".into(), "a".into()];
        assert_eq!(&**e.validate().unwrap().topics(), ["a".to_string()]);
    }
}
