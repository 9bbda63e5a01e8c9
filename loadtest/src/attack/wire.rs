//! The bytes hostile clients send, and the one thing they read back: a status code.
//!
//! Everything here is pure: requests are built once per attacker (or per iteration for the
//! few that name new topics) and the status is parsed from whatever prefix of an answer came.

use std::fmt::Write;

/// The bytes of a topic flood's form publish: `topics` names of one width
/// (`topic=t00000&...`) and a `data` field padded with `x` to exactly `max_bytes`, the
/// server's `--max-body-bytes`, so that the body is refused for its topics and not its size.
/// Fewer names are written if `topics` of them would not fit.
pub fn topic_flood_body(topics: usize, max_bytes: usize) -> Vec<u8> {
    let width = topics.saturating_sub(1).max(1).to_string().len();
    let tail = "data=";
    let mut body = String::with_capacity(max_bytes);
    for i in 0..topics {
        // "topic=t" + name + "&"
        if body.len() + 8 + width + tail.len() > max_bytes {
            break;
        }
        let _ = write!(body, "topic=t{i:0width$}&");
    }
    body.push_str(tail);
    let pad = max_bytes.saturating_sub(body.len());
    body.extend(std::iter::repeat_n('x', pad));
    body.into_bytes()
}

/// A `POST` head for a body of `length` bytes.
pub fn post_head(path: &str, host: &str, content_type: &str, length: usize) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {length}\r\n\r\n"
    )
    .into_bytes()
}

/// A token whose header and claims are well formed (HS256, `mercure.publish` and
/// `mercure.subscribe` of `*`) but signed with a key no server holds.
pub const FORGED_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
    eyJtZXJjdXJlIjp7InB1Ymxpc2giOlsiKiJdLCJzdWJzY3JpYmUiOlsiKiJdfX0.\
    6RBZc8OMgzs5N7iKyuW_7PC3WblgHuI54MsEw61HbM0";

/// A subscribe to `topic` with `token` as its bearer token.
pub fn subscribe_with_token(host: &str, topic: &str, token: &str) -> Vec<u8> {
    format!(
        "GET /events?topic={topic} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    )
    .into_bytes()
}

/// A small form publish to `topic` with `token` as its bearer token.
pub fn publish_with_token(path: &str, host: &str, topic: &str, token: &str) -> Vec<u8> {
    let body = format!("topic={topic}&data=forged");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());
    request
}

/// A plain `GET`, kept alive.
pub fn get(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// A subscribe to `topics`, resuming from `last_event_id` if given.
pub fn subscribe<'a>(
    host: &str,
    topics: impl IntoIterator<Item = &'a str>,
    last_event_id: Option<&str>,
) -> Vec<u8> {
    let mut raw = String::from("GET /events");
    for (i, topic) in topics.into_iter().enumerate() {
        raw.push(if i == 0 { '?' } else { '&' });
        raw.push_str("topic=");
        raw.push_str(topic);
    }
    let _ = write!(
        raw,
        " HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
    );
    if let Some(id) = last_event_id {
        let _ = write!(raw, "Last-Event-ID: {id}\r\n");
    }
    raw.push_str("\r\n");
    raw.into_bytes()
}

/// `n` topic names that no one else uses: `{prefix}-{i}`.
pub fn topic_names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// The prefix of a request head that a slowloris client sends one byte at a time.
const SLOW_PREFIX: &[u8] = b"GET /events?topic=load HTTP/1.1\r\nHost: slow\r\nX-Slow: ";

/// Byte `at` of a request head that never ends: a prefix, then a header value of `a`s.
pub fn slow_byte(at: usize) -> u8 {
    SLOW_PREFIX.get(at).copied().unwrap_or(b'a')
}

/// `len` bytes of noise from `seed` (xorshift), ending in a blank line so that the server
/// has a whole "head" to refuse rather than one to wait for.
pub fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes: Vec<u8> = (0..len.saturating_sub(4))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes
}

/// The status code of an answer that begins with `bytes`, once its status line has come.
pub fn status(bytes: &[u8]) -> Option<u16> {
    let rest = bytes
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| bytes.strip_prefix(b"HTTP/1.0 "))?;
    let digits = rest.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Whether `bytes` hold a whole answer head.
pub fn head_complete(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|w| w == b"\r\n\r\n")
}

/// Whether `bytes` hold an SSE `gap` event's name line.
pub fn has_gap_event(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"event: gap\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_flood_body_is_exactly_the_limit_with_every_topic() {
        let body = topic_flood_body(70_000, 1 << 20);
        assert_eq!(body.len(), 1 << 20);
        let text = std::str::from_utf8(&body).unwrap();
        assert_eq!(text.matches("topic=").count(), 70_000);
        assert!(text.starts_with("topic=t00000&topic=t00001&"));
        assert!(text.contains("&topic=t69999&data=xx"));
        assert!(text.ends_with('x'));
    }

    #[test]
    fn topic_flood_body_drops_names_that_do_not_fit() {
        let body = topic_flood_body(100, 64);
        assert_eq!(body.len(), 64);
        let text = std::str::from_utf8(&body).unwrap();
        // 10 bytes a name ("topic=t00&"), then "data=" and 9 bytes of padding.
        assert_eq!(text.matches("topic=").count(), 5);
        assert!(text.ends_with("&data=xxxxxxxxx"));
        assert_eq!(topic_flood_body(0, 10), b"data=xxxxx");
    }

    #[test]
    fn resume_names_every_topic_and_the_id() {
        let names = topic_names("r", 64);
        let raw = subscribe("h:1", names.iter().map(String::as_str), Some("nope"));
        let text = String::from_utf8(raw).unwrap();
        assert!(text.starts_with("GET /events?topic=r-0&topic=r-1&"));
        assert_eq!(text.matches("topic=").count(), 64);
        assert!(text.contains("&topic=r-63 HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(text.ends_with("Last-Event-ID: nope\r\n\r\n"));
        let plain = String::from_utf8(subscribe("h", ["a"], None)).unwrap();
        assert_eq!(
            plain,
            "GET /events?topic=a HTTP/1.1\r\nHost: h\r\nAccept: text/event-stream\r\n\r\n"
        );
    }

    #[test]
    fn slow_head_never_ends() {
        let head: Vec<u8> = (0..200).map(slow_byte).collect();
        assert!(head.starts_with(b"GET /events?topic=load HTTP/1.1\r\n"));
        assert!(!head_complete(&head));
        assert!(head.ends_with(b"aaaa"));
    }

    #[test]
    fn forged_tokens_are_well_formed_jwts_in_both_requests() {
        let parts: Vec<&str> = FORGED_TOKEN.split('.').collect();
        assert_eq!(parts.len(), 3);
        let subscribe = String::from_utf8(subscribe_with_token("h", "t", FORGED_TOKEN)).unwrap();
        assert!(subscribe.contains(&format!("Authorization: Bearer {FORGED_TOKEN}\r\n")));
        assert!(subscribe.ends_with("\r\n\r\n"));
        let publish = String::from_utf8(publish_with_token("/publish", "h", "t", "x.y.z")).unwrap();
        let (head, body) = publish.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        assert_eq!(body, "topic=t&data=forged");
    }

    #[test]
    fn garbage_is_noise_then_a_blank_line() {
        let a = garbage(7, 4096);
        assert_eq!(a.len(), 4096);
        assert!(a.ends_with(b"\r\n\r\n"));
        assert_ne!(a, garbage(8, 4096));
        assert_eq!(a, garbage(7, 4096));
        assert!(a.iter().filter(|&&b| b == 0).count() < 100);
    }

    #[test]
    fn status_comes_from_any_prefix_with_the_status_line() {
        let answer = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\n\r\n";
        for cut in 0..answer.len() {
            let expected = (cut >= 12).then_some(429);
            assert_eq!(status(&answer[..cut]), expected, "cut at {cut}");
        }
        assert_eq!(status(b"HTTP/1.0 400 Bad"), Some(400));
        assert_eq!(status(b"HTTP/1.1 4x0 "), None);
        assert_eq!(status(b"SSH-2.0 400"), None);
        assert!(head_complete(answer));
        assert!(!head_complete(&answer[..answer.len() - 1]));
        assert!(has_gap_event(
            b"HTTP/1.1 200 OK\r\n\r\nevent: gap\ndata: {}\n\n"
        ));
        assert!(!has_gap_event(b"event: gapx\n"));
    }
}
