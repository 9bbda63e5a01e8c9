//! HTTP/1.1 heads, parsed with httparse: the answers the loadtest reads (a subscriber's event
//! stream, a publish or `/stats` answer) and the requests the floor server reads. Only what the
//! callers use is kept: where the body starts and how it is framed.

/// The longest head accepted, request or response.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Headers read at most.
const MAX_HEADERS: usize = 64;

/// Not an HTTP/1.x head, or longer than [`MAX_HEAD_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed head")]
pub struct Malformed;

/// A complete response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// Bytes of the head, up to and including the blank line.
    pub len: usize,
    /// The status code.
    pub status: u16,
    /// `Content-Length`, if given.
    pub content_length: Option<usize>,
    /// The body is chunked.
    pub chunked: bool,
    /// The server closes the connection after this answer (`Connection: close`, HTTP/1.0).
    pub close: bool,
    /// `Content-Type: text/event-stream`.
    pub event_stream: bool,
}

/// A complete request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Bytes of the head, up to and including the blank line.
    pub len: usize,
    /// The method.
    pub method: String,
    /// The path, without its query.
    pub path: String,
    /// `Content-Length`, 0 if not given.
    pub content_length: usize,
}

/// Parses the response head at the start of `bytes`: `Ok(None)` means more bytes are needed.
pub fn response(bytes: &[u8]) -> Result<Option<ResponseHead>, Malformed> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let Some(len) = complete(response.parse(bytes), bytes.len())? else {
        return Ok(None);
    };
    let mut head = ResponseHead {
        len,
        status: response.code.unwrap_or(0),
        content_length: None,
        chunked: false,
        close: response.version == Some(0),
        event_stream: false,
    };
    for h in response.headers.iter() {
        let value = || String::from_utf8_lossy(h.value).to_ascii_lowercase();
        let name = |name: &str| h.name.eq_ignore_ascii_case(name);
        if name("content-length") {
            head.content_length = value().trim().parse().ok();
        } else if name("transfer-encoding") {
            head.chunked = value().contains("chunked");
        } else if name("connection") {
            head.close = value().contains("close");
        } else if name("content-type") {
            head.event_stream = value().contains("text/event-stream");
        }
    }
    Ok(Some(head))
}

/// Parses the request head at the start of `bytes`: `Ok(None)` means more bytes are needed.
pub fn request(bytes: &[u8]) -> Result<Option<RequestHead>, Malformed> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let Some(len) = complete(request.parse(bytes), bytes.len())? else {
        return Ok(None);
    };
    let content_length = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let path = request.path.expect("httparse completed");
    Ok(Some(RequestHead {
        len,
        method: request.method.expect("httparse completed").to_owned(),
        path: path.split('?').next().unwrap_or(path).to_owned(),
        content_length,
    }))
}

/// The head's length once httparse has it all; `None` while more bytes may complete it.
fn complete(parsed: httparse::Result<usize>, read: usize) -> Result<Option<usize>, Malformed> {
    match parsed {
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Ok(httparse::Status::Partial) if read < MAX_HEAD_BYTES => Ok(None),
        _ => Err(Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::{request, response, Malformed, RequestHead, MAX_HEAD_BYTES};

    const SSECAST: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
        Cache-Control: no-cache\r\nConnection: close\r\n\r\ndata: 1 2\n\n";

    #[test]
    fn response_heads_complete_at_every_split() {
        let len = SSECAST.len() - b"data: 1 2\n\n".len();
        let head = response(SSECAST).unwrap().unwrap();
        assert_eq!((head.len, head.status), (len, 200));
        assert!(head.event_stream && head.close && !head.chunked);
        assert_eq!(head.content_length, None);
        for cut in 0..len {
            assert_eq!(response(&SSECAST[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn response_framing() {
        let nginx = b"HTTP/1.1 200 OK\r\nServer: nginx\r\ncontent-type: text/event-stream; \
            charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n";
        let head = response(nginx).unwrap().unwrap();
        assert!(head.chunked && head.event_stream && !head.close);
        let sized = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
            Content-Length: 12\r\n\r\n";
        let head = response(sized).unwrap().unwrap();
        assert_eq!((head.status, head.content_length), (404, Some(12)));
        assert!(!head.event_stream);
        let old = response(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert!(old.close, "HTTP/1.0 closes");
        assert_eq!(response(b"SSH-2.0-x\r\n\r\n"), Err(Malformed));
        assert_eq!(response(&vec![b'a'; MAX_HEAD_BYTES]), Err(Malformed));
    }

    #[test]
    fn request_heads() {
        let raw = b"POST /publish?topic=a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
        let expected = RequestHead {
            len: raw.len() - 5,
            method: "POST".into(),
            path: "/publish".into(),
            content_length: 5,
        };
        assert_eq!(request(raw), Ok(Some(expected)));
        for cut in 0..raw.len() - 5 {
            assert_eq!(request(&raw[..cut]), Ok(None), "cut at {cut}");
        }
        let get = request(b"GET /events HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!((get.path.as_str(), get.content_length), ("/events", 0));
        assert_eq!(request(b"\x16\x03\x01 garbage\r\n\r\n"), Err(Malformed));
    }
}
