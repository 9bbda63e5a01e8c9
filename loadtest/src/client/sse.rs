//! A streaming SSE parser that keeps a few bytes of state per connection and never copies.
//!
//! It follows the event-stream grammar (lines end in CR, LF or CRLF; `:` starts a comment; a
//! blank line ends an event) but keeps only what the loadtest needs: whether an event had data,
//! and the `<seq> <unix-nanos>[ <stream>]` that starts the first `data:` line of the loadtest's
//! own events (a missing stream is stream 0). Digits are folded in as they arrive, so an event
//! split across reads needs no carry buffer.

/// What a completed frame was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// An event whose first data line starts with `<seq> <unix-nanos>[ <stream>]`.
    Event {
        /// The sequence number within its stream.
        seq: u64,
        /// When it was published, in nanoseconds since the Unix epoch.
        nanos: u64,
        /// The publishing stream (connection) that numbered it.
        stream: u64,
    },
    /// An event with other data (a `gap` notice, another publisher's event).
    Other,
    /// A comment line (keep-alives, Nchan's `: hi`).
    Comment,
}

/// Where the parser is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Nothing of this line seen yet.
    Start,
    /// In the field name; `matched` bytes of `data` so far, or [`NOT_DATA`].
    Name { matched: u8 },
    /// Just after the `:` of a data field: one space may follow.
    DataColon,
    /// In a data value.
    Data,
    /// In a comment or a field the loadtest ignores: skip to the end of the line.
    Skip,
}

const NOT_DATA: u8 = u8::MAX;
const DATA: &[u8; 4] = b"data";

/// How far the first data line of the event got as `<seq> <nanos>[ <stream>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stamp {
    Seq,
    Nanos,
    Stream,
    Done,
    Bad,
}

/// The parser state of one connection.
#[derive(Debug, Clone)]
pub struct Parser {
    /// Position within the current line.
    line: Line,
    /// The previous byte was a CR: a LF now is the same line end.
    after_cr: bool,
    /// Data lines seen in the current event.
    data_lines: u32,
    /// Progress of the `<seq> <nanos>[ <stream>]` stamp in the first data line.
    stamp: Stamp,
    /// Digits of the stamp part in progress.
    digits: u8,
    seq: u64,
    nanos: u64,
    stream: u64,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            line: Line::Start,
            after_cr: false,
            data_lines: 0,
            stamp: Stamp::Seq,
            digits: 0,
            seq: 0,
            nanos: 0,
            stream: 0,
        }
    }
}

impl Parser {
    /// Parses `input`, calling `on_frame` for each frame it completes.
    pub fn feed(&mut self, input: &[u8], on_frame: &mut impl FnMut(Frame)) {
        let mut i = 0;
        while i < input.len() {
            let byte = input[i];
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    i += 1;
                    continue;
                }
            }
            if byte == b'\r' || byte == b'\n' {
                self.after_cr = byte == b'\r';
                self.end_line(on_frame);
                i += 1;
                continue;
            }
            match self.line {
                Line::Start if byte == b':' => {
                    self.line = Line::Skip;
                    on_frame(Frame::Comment);
                }
                Line::Start | Line::Name { .. } => {
                    let matched = match self.line {
                        Line::Name { matched } => matched,
                        _ => 0,
                    };
                    self.line = if byte == b':' {
                        if matched as usize == DATA.len() {
                            self.start_data();
                            Line::DataColon
                        } else {
                            Line::Skip
                        }
                    } else if matched != NOT_DATA && DATA.get(matched as usize) == Some(&byte) {
                        Line::Name {
                            matched: matched + 1,
                        }
                    } else {
                        Line::Name { matched: NOT_DATA }
                    };
                }
                Line::DataColon => {
                    self.line = Line::Data;
                    if byte != b' ' && self.data_lines == 1 && self.stamp < Stamp::Done {
                        self.stamp_byte(byte);
                    }
                }
                Line::Data if self.data_lines == 1 && self.stamp < Stamp::Done => {
                    self.stamp_byte(byte);
                }
                Line::Data | Line::Skip => {
                    // Padding and ignored fields are skipped a run at a time.
                    let rest = &input[i..];
                    let skip = rest
                        .iter()
                        .position(|&b| b == b'\r' || b == b'\n')
                        .unwrap_or(rest.len());
                    i += skip;
                    continue;
                }
            }
            i += 1;
        }
    }

    /// A `data` field name ended: a field name alone (`data` with no colon) also counts.
    fn start_data(&mut self) {
        self.data_lines = self.data_lines.saturating_add(1);
    }

    fn stamp_byte(&mut self, byte: u8) {
        match (self.stamp, byte) {
            (Stamp::Seq, b'0'..=b'9') => self.seq = fold(self.seq, byte, &mut self.digits),
            (Stamp::Seq, b' ') if self.digits > 0 => {
                self.stamp = Stamp::Nanos;
                self.digits = 0;
            }
            (Stamp::Nanos, b'0'..=b'9') => self.nanos = fold(self.nanos, byte, &mut self.digits),
            (Stamp::Nanos, b' ') if self.digits > 0 => {
                self.stamp = Stamp::Stream;
                self.digits = 0;
            }
            (Stamp::Nanos, _) if self.digits > 0 => self.stamp = Stamp::Done,
            (Stamp::Stream, b'0'..=b'9') => self.stream = fold(self.stream, byte, &mut self.digits),
            // No stream (padding follows the stamp), or the end of one.
            (Stamp::Stream, _) => self.stamp = Stamp::Done,
            _ => self.stamp = Stamp::Bad,
        }
        if self.digits > 20 {
            self.stamp = Stamp::Bad;
        }
    }

    fn end_line(&mut self, on_frame: &mut impl FnMut(Frame)) {
        match self.line {
            Line::Start => self.dispatch(on_frame),
            // `data` with no colon is a data line with an empty value.
            Line::Name { matched } if matched as usize == DATA.len() => {
                self.start_data();
                self.end_first_data_line();
            }
            Line::DataColon | Line::Data => self.end_first_data_line(),
            Line::Name { .. } | Line::Skip => {}
        }
        self.line = Line::Start;
    }

    fn end_first_data_line(&mut self) {
        if self.data_lines == 1 && self.stamp < Stamp::Done {
            let ended = match self.stamp {
                Stamp::Nanos => self.digits > 0,
                Stamp::Stream => true,
                _ => false,
            };
            self.stamp = if ended { Stamp::Done } else { Stamp::Bad };
        }
    }

    fn dispatch(&mut self, on_frame: &mut impl FnMut(Frame)) {
        if self.data_lines > 0 {
            on_frame(match self.stamp {
                Stamp::Done => Frame::Event {
                    seq: self.seq,
                    nanos: self.nanos,
                    stream: self.stream,
                },
                _ => Frame::Other,
            });
        }
        *self = Parser {
            after_cr: self.after_cr,
            ..Parser::default()
        };
    }
}

fn fold(value: u64, digit: u8, digits: &mut u8) -> u64 {
    *digits += 1;
    value
        .saturating_mul(10)
        .saturating_add(u64::from(digit - b'0'))
}

#[cfg(test)]
mod tests {
    use super::{Frame, Parser};

    fn parse_in(pieces: &[&[u8]]) -> Vec<Frame> {
        let mut parser = Parser::default();
        let mut frames = Vec::new();
        for piece in pieces {
            parser.feed(piece, &mut |frame| frames.push(frame));
        }
        frames
    }

    fn ev(seq: u64, nanos: u64) -> Frame {
        on(0, seq, nanos)
    }

    fn on(stream: u64, seq: u64, nanos: u64) -> Frame {
        Frame::Event { seq, nanos, stream }
    }

    /// A stream with every feature the parser handles, and what it must yield.
    const STREAM: &[u8] = b": hi\n\n\
        id: 17\ndata: 1 1700000000000000001 xxxxx\n\n\
        event: gap\ndata: {\"lastEventId\":\"3\"}\r\n\r\n\
        data: 2 1700000000000000002\rdata: second line\r\rid: 9\n\
        data:3 1700000000000000003 pad\r\n: keep-alive\r\n\r\n\
        retry: 10\ndata\n\n\
        data: 4 17\ndata: 5 18\n\n\
        :comment only\n\n\
        data: 6\n\n\
        data: x6 1\n\n\
        dat: 7 7\n\n\
        datum: 8 8\n\n\
        data: 9 1000 \n\n\
        data: 10 20 3 xx\n\n\
        data: 11 21 255\n\n\
        data: 12 22 7x\n\n\
        data: 13 23 12345678901234567890123\n\n";

    fn expected() -> Vec<Frame> {
        vec![
            Frame::Comment,
            ev(1, 1_700_000_000_000_000_001),
            Frame::Other,
            ev(2, 1_700_000_000_000_000_002),
            Frame::Comment,
            ev(3, 1_700_000_000_000_000_003),
            Frame::Other,
            ev(4, 17),
            Frame::Comment,
            Frame::Other,
            Frame::Other,
            ev(9, 1000),
            on(3, 10, 20),
            on(255, 11, 21),
            on(7, 12, 22),
            Frame::Other,
        ]
    }

    #[test]
    fn parses_whole_stream() {
        assert_eq!(parse_in(&[STREAM]), expected());
    }

    #[test]
    fn same_frames_when_split_at_every_byte() {
        for at in 0..=STREAM.len() {
            let (a, b) = STREAM.split_at(at);
            assert_eq!(parse_in(&[a, b]), expected(), "split at {at}");
        }
    }

    #[test]
    fn same_frames_when_split_at_every_pair_of_positions() {
        for at in 0..=STREAM.len() {
            for to in at..=STREAM.len() {
                let pieces = [&STREAM[..at], &STREAM[at..to], &STREAM[to..]];
                assert_eq!(parse_in(&pieces), expected(), "split at {at}, {to}");
            }
        }
    }

    #[test]
    fn same_frames_byte_by_byte() {
        let pieces: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(parse_in(&pieces), expected());
    }

    #[test]
    fn line_endings_all_end_events() {
        for end in ["\n", "\r", "\r\n"] {
            let text = format!("data: 5 6{end}{end}data: 7 8 pad{end}{end}data: 9 9 2{end}{end}");
            assert_eq!(
                parse_in(&[text.as_bytes()]),
                vec![ev(5, 6), ev(7, 8), on(2, 9, 9)],
                "{end:?}"
            );
        }
    }

    #[test]
    fn cr_then_lf_across_reads_is_one_line_end() {
        assert_eq!(
            parse_in(&[b"data: 1 2\r", b"\n", b"\r", b"\n"]),
            vec![ev(1, 2)]
        );
    }

    #[test]
    fn event_without_blank_line_is_not_dispatched() {
        assert_eq!(parse_in(&[b"data: 1 2\n"]), vec![]);
    }

    #[test]
    fn overlong_numbers_are_not_events() {
        let text = b"data: 123456789012345678901234 5\n\n";
        assert_eq!(parse_in(&[text]), vec![Frame::Other]);
    }
}
