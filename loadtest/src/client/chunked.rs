//! `Transfer-Encoding: chunked` decoding for subscriber streams, a few bytes per connection.
//!
//! ssecast's streams are close-delimited, but nginx (Nchan) frames an HTTP/1.1 response body in
//! chunks. The decoder hands out slices of the input it was given, so it copies nothing.

/// Where the decoder is in the chunk framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the hex size of the next chunk.
    Size {
        value: u64,
        digits: u8,
    },
    /// In a chunk extension (`;name=value`), skipped to the end of the line.
    Extension {
        value: u64,
    },
    /// After the CR of a size line.
    SizeLf {
        value: u64,
    },
    /// In chunk data, with this many bytes left.
    Data {
        left: u64,
    },
    /// After chunk data, expecting CR LF.
    DataCr,
    DataLf,
    /// After the last chunk, at the start of a trailer line (an empty one ends the body).
    TrailerStart,
    /// In a trailer line.
    Trailer,
    /// After the CR of the empty line that ends the trailer.
    TrailerLf,
    /// The body ended.
    Done,
}

/// The chunk framing is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct ChunkError;

/// The decoder state of one connection.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size {
                value: 0,
                digits: 0,
            },
        }
    }
}

impl Chunked {
    /// True once the last chunk and its trailer have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, calling `on_data` with each run of body bytes; returns the bytes used,
    /// which is all of them unless the body ended within `input`.
    pub fn feed(
        &mut self,
        input: &[u8],
        on_data: &mut impl FnMut(&[u8]),
    ) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let byte = input[i];
            self.state = match self.state {
                State::Data { left } => {
                    let take = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    on_data(&input[i..i + take]);
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { left }
                    };
                    continue;
                }
                State::Size { value, digits } => match byte {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' if digits < 15 => State::Size {
                        value: value << 4 | u64::from(hex(byte)),
                        digits: digits + 1,
                    },
                    b';' | b' ' | b'\t' if digits > 0 => State::Extension { value },
                    b'\r' if digits > 0 => State::SizeLf { value },
                    b'\n' if digits > 0 => size_line_end(value),
                    _ => return Err(ChunkError),
                },
                State::Extension { value } => match byte {
                    b'\r' => State::SizeLf { value },
                    b'\n' => size_line_end(value),
                    _ => State::Extension { value },
                },
                State::SizeLf { value } => match byte {
                    b'\n' => size_line_end(value),
                    _ => return Err(ChunkError),
                },
                State::DataCr => match byte {
                    b'\r' => State::DataLf,
                    b'\n' => Chunked::default().state,
                    _ => return Err(ChunkError),
                },
                State::DataLf => match byte {
                    b'\n' => Chunked::default().state,
                    _ => return Err(ChunkError),
                },
                State::TrailerStart => match byte {
                    b'\r' => State::TrailerLf,
                    b'\n' => State::Done,
                    _ => State::Trailer,
                },
                State::Trailer => match byte {
                    b'\n' => State::TrailerStart,
                    _ => State::Trailer,
                },
                State::TrailerLf => match byte {
                    b'\n' => State::Done,
                    _ => return Err(ChunkError),
                },
                // Bytes after the body belong to whatever follows it.
                State::Done => return Ok(i),
            };
            i += 1;
        }
        Ok(i)
    }
}

fn size_line_end(value: u64) -> State {
    if value == 0 {
        State::TrailerStart
    } else {
        State::Data { left: value }
    }
}

fn hex(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        _ => byte - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::{ChunkError, Chunked};

    fn decode(pieces: &[&[u8]]) -> Result<(Vec<u8>, bool), ChunkError> {
        let mut decoder = Chunked::default();
        let mut body = Vec::new();
        for piece in pieces {
            let used = decoder.feed(piece, &mut |data| body.extend_from_slice(data))?;
            assert!(used == piece.len() || decoder.is_done());
        }
        Ok((body, decoder.is_done()))
    }

    const BODY: &[u8] =
        b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\nb\nworld\r\nand\n\n0\r\nX-Trailer: 1\r\n\r\n";

    #[test]
    fn decodes_at_every_split() {
        for at in 0..=BODY.len() {
            let (a, b) = BODY.split_at(at);
            assert_eq!(
                decode(&[a, b]),
                Ok((b"hello 0123456789world\r\nand\n".to_vec(), true)),
                "split at {at}"
            );
        }
    }

    #[test]
    fn stops_at_the_end_of_the_body() {
        let mut decoder = Chunked::default();
        let input = b"1\r\na\r\n0\r\n\r\nHTTP/1.1 200 OK";
        assert_eq!(decoder.feed(input, &mut |_| {}), Ok(11));
        assert!(decoder.is_done());
    }

    #[test]
    fn open_stream_is_not_done() {
        assert_eq!(decode(&[b"3\r\nabc\r\n"]), Ok((b"abc".to_vec(), false)));
    }

    #[test]
    fn rejects_malformed_framing() {
        for bad in [&b"x\r\n"[..], b"\r\n", b"3\r\nabcX", b"3\rX", b"0\r\n\rX"] {
            assert_eq!(
                decode(&[bad]),
                Err(ChunkError),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
