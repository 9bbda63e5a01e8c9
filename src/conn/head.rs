//! Reading one request head, with a size limit and a deadline, parsed by `httparse`.
//!
//! The bytes read are kept in the caller's buffer, head and anything after it, so that hyper
//! can be given them again when the request is not a subscribe.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{timeout_at, Instant};

/// Headers parsed per request; more is refused as too large.
pub const MAX_HEADERS: usize = 64;

/// Why no request head could be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("request head is larger than {0} bytes")]
    TooLarge(usize),
    #[error("request head not received within {0:?}")]
    TimedOut(Duration),
    #[error("connection closed before a request head")]
    Closed,
    #[error("malformed request head: {0}")]
    Malformed(httparse::Error),
    #[error("reading request head: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads until `buf` starts with a whole request head and returns its length.
pub async fn read<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    max_bytes: usize,
    timeout: Duration,
) -> Result<usize, HeadError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(len) = parse(buf, max_bytes)? {
            return Ok(len);
        }
        buf.reserve(1024.min(max_bytes + 1 - buf.len()));
        let read = timeout_at(deadline, io.read_buf(buf))
            .await
            .map_err(|_| HeadError::TimedOut(timeout))??;
        if read == 0 {
            return Err(HeadError::Closed);
        }
    }
}

/// The length of the head at the start of `buf`, or `None` if more bytes are needed.
pub(crate) fn parse(buf: &[u8], max_bytes: usize) -> Result<Option<usize>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= max_bytes => Ok(Some(len)),
        Ok(httparse::Status::Complete(_)) => Err(HeadError::TooLarge(max_bytes)),
        Ok(httparse::Status::Partial) if buf.len() > max_bytes => {
            Err(HeadError::TooLarge(max_bytes))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge(max_bytes)),
        Err(e) => Err(HeadError::Malformed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] =
        b"GET /events?topic=a HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n";

    #[test]
    fn every_split_point_needs_more_until_the_head_is_whole() {
        for split in 0..HEAD.len() {
            assert!(
                matches!(parse(&HEAD[..split], 8192), Ok(None)),
                "split {split}"
            );
        }
        assert!(matches!(parse(HEAD, 8192), Ok(Some(len)) if len == HEAD.len()));
        let mut pipelined = HEAD.to_vec();
        pipelined.extend_from_slice(b"GET /healthz HTTP/1.1\r\n");
        assert!(matches!(parse(&pipelined, 8192), Ok(Some(len)) if len == HEAD.len()));
    }

    #[test]
    fn limits_and_garbage_are_errors() {
        assert!(matches!(parse(HEAD, 20), Err(HeadError::TooLarge(20))));
        assert!(matches!(
            parse(&[b'a'; 100], 50),
            Err(HeadError::TooLarge(50))
        ));
        assert!(matches!(
            parse(b"\x16\x03\x01\x02\x00", 8192),
            Err(HeadError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn a_dribbled_head_is_read_whole() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for chunk in HEAD.chunks(3) {
                tokio::io::AsyncWriteExt::write_all(&mut client, chunk)
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
            client
        });
        let mut buf = BytesMut::new();
        let len = read(&mut server, &mut buf, 8192, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(&buf[..len], HEAD);
        drop(writer.await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_head_times_out() {
        let (_client, mut server) = tokio::io::duplex(64);
        let mut buf = BytesMut::new();
        let result = read(&mut server, &mut buf, 8192, Duration::from_secs(10)).await;
        assert!(matches!(result, Err(HeadError::TimedOut(_))));
    }
}
