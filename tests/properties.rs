//! Properties of the parsers and the encoder, over generated input (`proptest`): an event comes
//! back from a real SSE parser as it was published, the head parser and the handback framer give
//! one answer however the input was split, the framer frames each request where hyper does, and
//! no parser panics on any input. The fuzz targets in `fuzz/` check the same properties, through
//! the same `ssecast::fuzzing` functions, for longer.

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use proptest::collection::vec;
use proptest::prelude::*;
use ssecast::fuzzing::{self, HeadParsed, Stop};
use ssecast::sse::event::{encode, Draft, MAX_FIELD_BYTES};

/// Cases per property: enough to find the shapes that matter, few enough that every property
/// here runs in a few seconds in a debug build. `PROPTEST_CASES` sets another count for all.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// === the encoder and an SSE parser ===

/// Data of valid UTF-8 with every kind of line end: pieces of text without CR or LF (spaces,
/// colons, NUL and non-ASCII included), CRLF, lone CR, LF, and empty lines between them.
fn data() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[^\r\n]{1,12}",
        1 => Just("\r\n".to_owned()),
        1 => Just("\r".to_owned()),
        1 => Just("\n".to_owned()),
        1 => Just(" ".to_owned()),
        1 => Just(": x".to_owned()),
    ];
    vec(piece, 1..16).prop_map(|pieces| pieces.concat())
}

/// An id or event type as `Draft::validate` accepts one: no CR, LF or NUL, no whitespace at
/// either end, not empty, at most `MAX_FIELD_BYTES`.
fn field() -> impl Strategy<Value = String> {
    "[^\r\n\0]{1,40}".prop_filter_map("validation refuses it", |text| {
        let text = text.trim();
        (!text.is_empty() && text.len() <= MAX_FIELD_BYTES).then(|| text.to_owned())
    })
}

fn draft() -> impl Strategy<Value = Draft> {
    (
        data(),
        field(),
        proptest::option::of(field()),
        any::<Option<u64>>(),
    )
        .prop_map(|(data, id, event, retry)| Draft {
            topics: vec!["t".to_owned()],
            data,
            event,
            id: Some(id),
            retry,
            private: false,
        })
}

/// Parses a stream's bytes with `eventsource-stream`, fed in pieces `split` bytes long.
fn parse_sse(stream: &[u8], split: usize) -> Vec<eventsource_stream::Event> {
    let chunks: Vec<Result<Bytes, std::convert::Infallible>> = stream
        .chunks(split)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    futures::executor::block_on(
        futures::stream::iter(chunks)
            .eventsource()
            .map(|event| event.expect("the stream parses"))
            .collect(),
    )
}

proptest! {
    #![proptest_config(config(256))]

    /// "Byte-exact" here means: the parser gives back the data exactly as published except that
    /// each CRLF and each lone CR is an LF, since the SSE line grammar ends a line at any of the
    /// three and a parser joins `data:` lines with LF; every other byte (leading spaces, colons,
    /// NUL, empty lines, a line end at the very end, non-ASCII) comes back as it was. The id and
    /// the event type (`message` when none is set) come back exactly, the retry delay as its
    /// milliseconds. Several frames in one stream, split anywhere, stay separate events.
    #[test]
    fn events_come_back_from_an_sse_parser_as_published(
        drafts in vec(draft(), 1..4),
        split in 1usize..64,
    ) {
        let mut stream = Vec::new();
        for draft in &drafts {
            let id = draft.id.clone().unwrap_or_default();
            let event = draft.clone().validate().expect("a valid draft");
            let frame = encode(&id, &event);
            let mut as_if_one = draft.clone();
            as_if_one.id = Some("1".to_owned());
            fuzzing::check_frame(&encode("1", &event), &as_if_one);
            stream.extend_from_slice(&frame);
        }
        let parsed = parse_sse(&stream, split);
        prop_assert_eq!(parsed.len(), drafts.len());
        for (draft, event) in drafts.iter().zip(&parsed) {
            let normalised = draft.data.replace("\r\n", "\n").replace('\r', "\n");
            prop_assert_eq!(&event.data, &normalised);
            prop_assert_eq!(Some(&event.id), draft.id.as_ref());
            prop_assert_eq!(&event.event, draft.event.as_deref().unwrap_or("message"));
            prop_assert_eq!(event.retry, draft.retry.map(std::time::Duration::from_millis));
        }
    }
}

// === the head parser ===

/// Bytes that look like a request head in places: request-line and header pieces, line ends,
/// stray CR, spaces, NUL and bytes past ASCII.
fn head_soup() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"GET ".to_vec()),
        Just(b"POST ".to_vec()),
        Just(b"/events?topic=a ".to_vec()),
        Just(b"HTTP/1.1".to_vec()),
        Just(b"HTTP/1.0".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"Host: t".to_vec()),
        Just(b"Content-Length: 3".to_vec()),
        Just(b"Transfer-Encoding: chunked".to_vec()),
        Just(b": ".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        vec(any::<u8>(), 1..8),
    ];
    vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// A valid request head: method, target, HTTP/1.1 or 1.0, headers, CRLF or LF line ends.
fn valid_head() -> impl Strategy<Value = Vec<u8>> {
    let header = ("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~]{0,30}")
        .prop_map(|(name, value)| format!("{name}: {}", value.trim()));
    (
        prop_oneof![Just("GET"), Just("POST"), Just("HEAD"), Just("OPTIONS")],
        "/[a-z0-9/?=&%.-]{0,60}",
        prop_oneof![Just("1.1"), Just("1.0")],
        vec(header, 0..12),
        prop_oneof![Just("\r\n"), Just("\n")],
    )
        .prop_map(|(method, target, version, headers, eol)| {
            let mut head = format!("{method} {target} HTTP/{version}{eol}");
            for header in headers {
                head.push_str(&header);
                head.push_str(eol);
            }
            head.push_str(eol);
            head.into_bytes()
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn head_parser_gives_one_answer_for_any_bytes(bytes in vec(any::<u8>(), 0..400)) {
        fuzzing::check_head(&bytes);
    }

    #[test]
    fn head_parser_gives_one_answer_for_head_like_bytes(bytes in head_soup()) {
        fuzzing::check_head(&bytes);
    }

    /// Whatever follows a valid head (a pipelined request, garbage), the parser finds exactly
    /// that head, and needs more at every split point before its end.
    #[test]
    fn every_split_point_of_a_valid_head_gives_the_same_head(
        head in valid_head(),
        after in vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = head.clone();
        bytes.extend_from_slice(&after);
        prop_assert_eq!(fuzzing::parse_head(&bytes, 8192), HeadParsed::Head(head.len()));
        for split in 0..head.len() {
            prop_assert_eq!(fuzzing::parse_head(&bytes[..split], 8192), HeadParsed::More);
        }
        fuzzing::check_head(&bytes);
    }
}

// === the handback framer and hyper ===

/// One generated request, and what hyper must read of it.
#[derive(Debug, Clone)]
struct Generated {
    wire: Vec<u8>,
    method: &'static str,
    target: String,
    body: Vec<u8>,
}

/// Body bytes, some of which look like framing: a request head, a last chunk.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => vec(any::<u8>(), 0..40),
        1 => Just(b"GET /events?topic=a HTTP/1.1\r\n\r\n".to_vec()),
        1 => Just(b"\r\n0\r\n\r\n".to_vec()),
    ]
}

/// How a chunk's size line is written: hex case, leading zeros, whitespace, an extension.
#[derive(Debug, Clone)]
struct SizeLine {
    upper: bool,
    zeros: usize,
    space: &'static str,
    extension: &'static str,
}

fn size_line() -> impl Strategy<Value = SizeLine> {
    (
        any::<bool>(),
        0usize..3,
        prop_oneof![Just(""), Just(" "), Just("\t "), Just("  ")],
        prop_oneof![
            Just(""),
            Just(";a=b"),
            Just(";x"),
            Just("; name=\"quoted value\""),
            Just(";a=b;c"),
            Just(";GET /events HTTP/1.1"),
        ],
    )
        .prop_map(|(upper, zeros, space, extension)| SizeLine {
            upper,
            zeros,
            space,
            extension,
        })
}

impl SizeLine {
    fn write(&self, size: usize, wire: &mut Vec<u8>) {
        let hex = if self.upper {
            format!("{size:X}")
        } else {
            format!("{size:x}")
        };
        let zeros = "0".repeat(self.zeros);
        wire.extend_from_slice(
            format!("{zeros}{hex}{}{}\r\n", self.space, self.extension).as_bytes(),
        );
    }
}

#[derive(Debug, Clone)]
enum BodyKind {
    None,
    Length(&'static str, usize),
    Chunked(
        &'static str,
        Vec<(Vec<u8>, SizeLine)>,
        SizeLine,
        Vec<String>,
    ),
}

fn body_kind() -> impl Strategy<Value = (BodyKind, Vec<u8>)> {
    let length_name = prop_oneof![
        Just("Content-Length"),
        Just("content-length"),
        Just("CONTENT-LENGTH"),
    ];
    let chunked = prop_oneof![Just("chunked"), Just("Chunked"), Just("CHUNKED")];
    let chunk = (vec(any::<u8>(), 1..24), size_line());
    let trailer = "[A-Za-z][A-Za-z-]{0,8}: [a-z0-9 ]{0,10}".prop_map(|t| t.trim().to_owned());
    prop_oneof![
        1 => Just((BodyKind::None, Vec::new())),
        2 => (length_name, 0usize..3, body_bytes()).prop_map(|(name, zeros, body)| {
            (BodyKind::Length(name, zeros), body)
        }),
        2 => (chunked, vec(chunk, 0..5), size_line(), vec(trailer, 0..3)).prop_map(
            |(value, chunks, last, trailers)| {
                let body = chunks.iter().flat_map(|(data, _)| data.clone()).collect();
                (BodyKind::Chunked(value, chunks, last, trailers), body)
            }
        ),
    ]
}

fn request(index: usize) -> impl Strategy<Value = Generated> {
    let method = prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("PUT"),
        Just("DELETE"),
        Just("HEAD"),
        Just("PATCH"),
    ];
    let extra = prop_oneof![
        Just("Host: t\r\n"),
        Just("Accept: */*\r\n"),
        Just("Connection: keep-alive\r\n"),
        Just("X-Note: GET /events HTTP/1.1\r\n"),
        Just("Content-Type: application/json\r\n"),
    ];
    (
        method,
        "(\\?[a-z0-9=&%]{0,12})?",
        vec(extra, 0..4),
        body_kind(),
        0usize..2,
    )
        .prop_map(move |(method, query, extras, (kind, body), empty_lines)| {
            let target = format!("/r{index}{query}");
            let mut wire = "\r\n".repeat(empty_lines).into_bytes();
            wire.extend_from_slice(format!("{method} {target} HTTP/1.1\r\n").as_bytes());
            for extra in extras {
                wire.extend_from_slice(extra.as_bytes());
            }
            match &kind {
                BodyKind::None => wire.extend_from_slice(b"\r\n"),
                BodyKind::Length(name, zeros) => {
                    let zeros = "0".repeat(*zeros);
                    let head = format!("{name}: {zeros}{}\r\n\r\n", body.len());
                    wire.extend_from_slice(head.as_bytes());
                    wire.extend_from_slice(&body);
                }
                BodyKind::Chunked(value, chunks, last, trailers) => {
                    wire.extend_from_slice(
                        format!("Transfer-Encoding: {value}\r\n\r\n").as_bytes(),
                    );
                    for (data, line) in chunks {
                        line.write(data.len(), &mut wire);
                        wire.extend_from_slice(data);
                        wire.extend_from_slice(b"\r\n");
                    }
                    last.write(0, &mut wire);
                    for trailer in trailers {
                        wire.extend_from_slice(trailer.as_bytes());
                        wire.extend_from_slice(b"\r\n");
                    }
                    wire.extend_from_slice(b"\r\n");
                }
            }
            Generated {
                wire,
                method,
                target,
                body,
            }
        })
}

/// A keep-alive pipeline of one to six valid HTTP/1.1 requests.
fn pipeline() -> impl Strategy<Value = Vec<Generated>> {
    (1usize..7).prop_flat_map(|count| (0..count).map(request).collect::<Vec<_>>())
}

/// A change to a valid pipeline: a byte replaced, inserted or removed.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        Just(b'\r'),
        Just(b'\n'),
        Just(b' '),
        Just(b'0'),
        Just(b'9'),
        Just(b'f'),
        Just(b';'),
        Just(b':'),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(at, b)| Mutation::Replace(at, b)),
        (any::<usize>(), byte).prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn mutate(wire: &mut Vec<u8>, mutation: &Mutation) {
    match *mutation {
        Mutation::Replace(at, byte) => {
            let at = at % wire.len();
            wire[at] = byte;
        }
        Mutation::Insert(at, byte) => wire.insert(at % (wire.len() + 1), byte),
        Mutation::Remove(at) => {
            wire.remove(at % wire.len());
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// The framer follows every request of a valid pipeline, whatever the reads, to the byte
    /// the generator ended it at; hyper reads the same requests, bodies and all; and
    /// `check_framer` finds the two agree, read by read.
    #[test]
    fn framer_ends_each_request_where_hyper_does(
        requests in pipeline(),
        reads in vec(1usize..40, 0..4),
    ) {
        let wire: Vec<u8> = requests.iter().flat_map(|r| r.wire.clone()).collect();
        let framing = fuzzing::frame(&wire, &reads);
        prop_assert_eq!(framing.stop, Stop::End);
        let mut end = 0;
        for (framed, generated) in framing.requests.iter().zip(&requests) {
            prop_assert_eq!(framed.start, end);
            end += generated.wire.len();
            prop_assert_eq!(framed.end, end);
            prop_assert_eq!(&framed.body, &generated.body);
        }
        prop_assert_eq!(framing.requests.len(), requests.len());
        let served = fuzzing::hyper_requests(&wire);
        let expected: Vec<fuzzing::Served> = requests
            .iter()
            .map(|r| fuzzing::Served {
                method: r.method.to_owned(),
                target: r.target.clone(),
                body: Some(r.body.clone()),
            })
            .collect();
        prop_assert_eq!(served, expected);
        fuzzing::check_framer(&wire);
    }

    /// A pipeline with one byte changed: whatever the framer still follows, hyper reads alike.
    #[test]
    fn framer_agrees_with_hyper_on_damaged_pipelines(
        requests in pipeline(),
        mutations in vec(mutation(), 1..3),
    ) {
        let mut wire: Vec<u8> = requests.iter().flat_map(|r| r.wire.clone()).collect();
        for mutation in &mutations {
            mutate(&mut wire, mutation);
        }
        fuzzing::check_framer(&wire);
    }

    #[test]
    fn framer_agrees_with_hyper_on_head_like_bytes(bytes in head_soup()) {
        fuzzing::check_framer(&bytes);
    }

    #[test]
    fn framer_agrees_with_hyper_on_any_bytes(bytes in vec(any::<u8>(), 0..300)) {
        fuzzing::check_framer(&bytes);
    }
}

// === the publish parsers ===

/// Form bodies made of the fields a publish uses, values percent-encoded or not.
fn form_soup() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"topic=".to_vec()),
        Just(b"data=".to_vec()),
        Just(b"id=".to_vec()),
        Just(b"event=".to_vec()),
        Just(b"retry=".to_vec()),
        Just(b"&".to_vec()),
        Just(b"%0D%0A".to_vec()),
        Just(b"%0A".to_vec()),
        Just(b"%0D".to_vec()),
        Just(b"%00".to_vec()),
        Just(b"%FF".to_vec()),
        Just(b"%C3%BC".to_vec()),
        Just(b"+".to_vec()),
        Just(b"%".to_vec()),
        "[a-z0-9 ]{1,6}".prop_map(String::into_bytes),
        vec(any::<u8>(), 1..4),
    ];
    vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// JSON bodies with the publish fields, of the right types or not.
fn json_soup() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        "[^\"\\\\]{0,8}".prop_map(serde_json::Value::String),
        Just(serde_json::json!("a\r\nb\rc\n")),
        Just(serde_json::json!(" x ")),
        Just(serde_json::json!("")),
        any::<i64>().prop_map(serde_json::Value::from),
        Just(serde_json::json!(null)),
        Just(serde_json::json!(["a", "b", "a"])),
        Just(serde_json::json!({"n": [1, 2]})),
    ];
    let key = prop_oneof![
        Just("topic"),
        Just("data"),
        Just("id"),
        Just("event"),
        Just("retry"),
        Just("other"),
    ];
    (vec((key, text), 0..6), any::<bool>()).prop_map(|(fields, truncate)| {
        let map: serde_json::Map<String, serde_json::Value> = fields
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        let mut body = serde_json::Value::Object(map).to_string().into_bytes();
        if truncate {
            body.truncate(body.len() / 2);
        }
        body
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn form_parser_never_panics(body in prop_oneof![form_soup(), vec(any::<u8>(), 0..200)]) {
        fuzzing::check_publish_form(&body);
    }

    #[test]
    fn json_parser_never_panics(body in prop_oneof![json_soup(), vec(any::<u8>(), 0..200)]) {
        fuzzing::check_publish_json(&body);
    }

    /// A form with a topic and data always publishes, and its frame checks out.
    #[test]
    fn a_form_with_topic_and_data_publishes(data in data()) {
        let encoded: String = url_encode(&data);
        let body = format!("topic=t&data={encoded}");
        prop_assert!(fuzzing::check_publish_form(body.as_bytes()).is_some());
    }
}

fn url_encode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}
