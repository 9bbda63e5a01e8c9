//! The response head written to a subscriber before its socket goes raw.
//!
//! The body is close-delimited (`Connection: close`, neither `Content-Length` nor chunked), so
//! the bytes after the head are plain SSE frames, the same for every subscriber, and the end of
//! the stream is the end of the connection. The head is built per subscribe, as it names the
//! id of the newest event history held (`Last-Event-ID`, as Mercure hubs send it) and, for
//! cross-origin access, the page's origin; it is dropped once written.

use bytes::{BufMut, Bytes, BytesMut};

/// Builds the `200` head naming `last_event_id`, with `Access-Control-Allow-Origin: origin`
/// when one is allowed, and `Access-Control-Allow-Credentials: true` (and `Vary: Origin`) when
/// it may send cookies.
pub fn encode(last_event_id: &[u8], cors_origin: Option<&[u8]>, credentials: bool) -> Bytes {
    let mut head = BytesMut::with_capacity(256);
    head.put_slice(
        b"HTTP/1.1 200 OK\r\n\
          Content-Type: text/event-stream\r\n\
          Cache-Control: no-cache\r\n\
          X-Accel-Buffering: no\r\n\
          Connection: close\r\n\
          Last-Event-ID: ",
    );
    head.put_slice(last_event_id);
    head.put_slice(b"\r\n");
    if let Some(origin) = cors_origin {
        head.put_slice(b"Access-Control-Allow-Origin: ");
        head.put_slice(origin);
        head.put_slice(b"\r\n");
        if credentials {
            head.put_slice(b"Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n");
        }
    }
    head.put_slice(b"\r\n");
    head.freeze()
}

#[cfg(test)]
mod tests {
    #[test]
    fn head_is_exact() {
        assert_eq!(
            &super::encode(b"7", Some(b"*"), false)[..],
            &b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
               X-Accel-Buffering: no\r\nConnection: close\r\nLast-Event-ID: 7\r\n\
               Access-Control-Allow-Origin: *\r\n\r\n"[..]
        );
        assert!(super::encode(b"earliest", None, false)
            .ends_with(b"Connection: close\r\nLast-Event-ID: earliest\r\n\r\n"));
        assert!(
            super::encode(b"7", Some(b"https://a.example"), true).ends_with(
                b"Access-Control-Allow-Origin: https://a.example\r\n\
              Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n\r\n"
            )
        );
    }
}
