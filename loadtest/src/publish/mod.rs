//! The publisher: events stamped with their sequence and send time, on keep-alive connections.
//! [`Publisher`] sends one at a time and waits for each answer (`single`); `paced` pipelines
//! them at a steady rate on connections used in turn (`fanout`, `hostile`), over the pipelined
//! connections of `pipeline`.
//!
//! An event's data is `<seq> <unix-nanos> <stream>`, padded with ` xxx...` to `size` bytes: its
//! number within its stream (the publishing connection, always 0 here), and a stamp taken just
//! before the request is written, so latency includes the server's publish path.

mod paced;
mod pipeline;

use std::time::{Duration, Instant};

use crate::client::thread::now_nanos;
use crate::error::Error;
use crate::http::HttpConn;
use crate::target::Target;

pub use paced::{run_paced, Pace, Published};

/// Makes the data of event `seq` of `stream` stamped `nanos`, at least `size` bytes.
pub fn event_data(seq: u64, nanos: u64, stream: u8, size: usize) -> String {
    let mut data = format!("{seq} {nanos} {stream}");
    if data.len() < size {
        data.push(' ');
        data.extend(std::iter::repeat_n('x', size - data.len()));
    }
    data
}

/// Builds publish requests for one server.
#[derive(Debug, Clone)]
pub struct Requests {
    /// The request head up to `Content-Length: `.
    head: String,
    topic: String,
    target: Target,
    size: usize,
}

impl Requests {
    /// Requests for events of `size` bytes to `target`.
    pub fn new(target: &Target, size: usize) -> Requests {
        let publish = &target.publish;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: ",
            publish.path(&target.topic),
            publish.url.host,
            publish.content_type
        );
        Requests {
            head,
            topic: target.topic.clone(),
            target: target.clone(),
            size,
        }
    }

    /// The request that publishes event `seq`, stamped now.
    pub fn event(&self, seq: u64) -> Vec<u8> {
        let data = event_data(seq, now_nanos(), 0, self.size);
        let body = self.target.publish.body(&self.topic, &data);
        let mut raw = String::with_capacity(self.head.len() + body.len() + 16);
        raw.push_str(&self.head);
        raw.push_str(&body.len().to_string());
        raw.push_str("\r\n\r\n");
        raw.push_str(&body);
        raw.into_bytes()
    }
}

/// Publishes events one at a time, waiting for each answer.
pub struct Publisher {
    conn: HttpConn,
    requests: Requests,
}

impl Publisher {
    /// A publisher of events of `size` bytes to `target`.
    pub fn new(target: &Target, size: usize) -> Publisher {
        Publisher {
            conn: HttpConn::new(target.publish.url.addr),
            requests: Requests::new(target, size),
        }
    }

    /// Publishes event `seq`; returns the round trip.
    pub fn publish(&mut self, seq: u64) -> Result<Duration, Error> {
        let started = Instant::now();
        let response = self.conn.send(&self.requests.event(seq))?;
        if !(200..300).contains(&response.status) {
            return Err(Error::Http(format!(
                "publish answered {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            )));
        }
        Ok(started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::event_data;
    use crate::client::sse::{Frame, Parser};

    #[test]
    fn data_is_stamped_and_padded() {
        assert_eq!(event_data(7, 123, 0, 0), "7 123 0");
        assert_eq!(event_data(7, 123, 4, 12), "7 123 4 xxxx");
        assert_eq!(event_data(7, 123, 4, 12).len(), 12);
        assert_eq!(event_data(7, 123, 255, 12), "7 123 255 xx");
        assert_eq!(event_data(7, 123, 4, 8), "7 123 4 ");
    }

    #[test]
    fn subscribers_read_the_stamp_back() {
        for size in [0, 64] {
            let text = format!("data: {}\n\n", event_data(7, 123, 4, size));
            let mut frames = Vec::new();
            Parser::default().feed(text.as_bytes(), &mut |frame| frames.push(frame));
            let stamp = Frame::Event {
                seq: 7,
                nanos: 123,
                stream: 4,
            };
            assert_eq!(frames, vec![stamp], "{text}");
        }
    }
}
