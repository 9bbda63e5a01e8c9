//! The response head written to a subscriber before its socket goes raw.
//!
//! The body is close-delimited (`Connection: close`, neither `Content-Length` nor chunked), so
//! the bytes after the head are plain SSE frames, the same for every subscriber, and the end of
//! the stream is the end of the connection. The head is built once at start and shared, or
//! per subscribe when it must name the page's origin (cross-origin access).

use bytes::{BufMut, Bytes, BytesMut};

/// Builds the `200` head, with `Access-Control-Allow-Origin: origin` when one is allowed, and
/// `Access-Control-Allow-Credentials: true` (and `Vary: Origin`) when it may send cookies.
pub fn encode(cors_origin: Option<&[u8]>, credentials: bool) -> Bytes {
    let mut head = BytesMut::with_capacity(192);
    head.put_slice(
        b"HTTP/1.1 200 OK\r\n\
          Content-Type: text/event-stream\r\n\
          Cache-Control: no-cache\r\n\
          X-Accel-Buffering: no\r\n\
          Connection: close\r\n",
    );
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
            &super::encode(Some(b"*"), false)[..],
            &b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
               X-Accel-Buffering: no\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\n\r\n"[..]
        );
        assert!(super::encode(None, false).ends_with(b"Connection: close\r\n\r\n"));
        assert!(super::encode(Some(b"https://a.example"), true).ends_with(
            b"Access-Control-Allow-Origin: https://a.example\r\n\
              Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n\r\n"
        ));
    }
}
