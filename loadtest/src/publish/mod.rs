//! The publisher: events stamped with their sequence and send time, on keep-alive connections.
//! [`Publisher`] sends one at a time and waits for each answer (`single`); `paced` pipelines
//! them at a steady rate on connections used in turn (`fanout`, `hostile`), and `burst` as fast
//! as a window of unanswered requests allows (`publish`), both over the pipelined connections
//! of `pipeline`.
//!
//! An event's data is `<seq> <unix-nanos> <stream>`, padded with ` xxx...` to `size` bytes: its
//! number within its stream (a burst's publishing connection; 0 otherwise), and a stamp taken
//! just before the request is written, so latency includes the server's publish path.

mod burst;
mod paced;
mod pipeline;

use std::time::{Duration, Instant};

use crate::client::thread::now_nanos;
use crate::error::Error;
use crate::http::HttpConn;
use crate::target::Target;

pub use burst::{run_burst, Burst, BurstReport};
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

    /// The request that publishes event `seq` of stream 0, stamped now.
    pub fn event(&self, seq: u64) -> Vec<u8> {
        let mut raw = Vec::new();
        self.append(&mut raw, 0, seq, 1);
        raw
    }

    /// Appends to `raw` the request that publishes events `first..first + count` of `stream`,
    /// stamped now: one event's body or, for more than one, a JSON array of them,
    /// `[body,body,...]` (a batch publish, which only some servers accept).
    pub fn append(&self, raw: &mut Vec<u8>, stream: u8, first: u64, count: u64) {
        let nanos = now_nanos();
        let body = |seq| {
            let data = event_data(seq, nanos, stream, self.size);
            self.target.publish.body(&self.topic, &data)
        };
        let body = if count <= 1 {
            body(first)
        } else {
            let bodies: Vec<String> = (first..first + count).map(body).collect();
            format!("[{}]", bodies.join(","))
        };
        raw.extend_from_slice(self.head.as_bytes());
        raw.extend_from_slice(body.len().to_string().as_bytes());
        raw.extend_from_slice(b"\r\n\r\n");
        raw.extend_from_slice(body.as_bytes());
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
    use super::{event_data, Requests};
    use crate::client::sse::{Frame, Parser};
    use crate::target::{Publish, Target, Url, DEFAULT_BODY};

    fn requests(body_template: &str) -> Requests {
        let url = |path| Url::parse(&format!("http://127.0.0.1:9{path}")).unwrap();
        let target = Target {
            name: "test".into(),
            subscribe: vec![url("/events?topic=load")],
            publish: Publish {
                url: url("/publish"),
                body_template: body_template.into(),
                content_type: "application/json".into(),
            },
            topic: "load".into(),
            pids: Vec::new(),
        };
        Requests::new(&target, 48)
    }

    /// The body of one request in `raw`, checked against its `Content-Length`.
    fn body(raw: &[u8]) -> String {
        let text = String::from_utf8(raw.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /publish HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        let length = head.rsplit_once("Content-Length: ").unwrap().1;
        assert_eq!(length.parse::<usize>().unwrap(), body.len());
        body.to_owned()
    }

    #[test]
    fn one_event_or_a_json_array_of_them() {
        let requests = requests(DEFAULT_BODY);
        let one: serde_json::Value = serde_json::from_str(&body(&requests.event(5))).unwrap();
        assert_eq!(one["topic"], "load");
        assert!(one["data"].as_str().unwrap().starts_with("5 "));
        let mut raw = Vec::new();
        requests.append(&mut raw, 3, 10, 4);
        let batch: Vec<serde_json::Value> = serde_json::from_str(&body(&raw)).unwrap();
        let data: Vec<&str> = batch.iter().map(|e| e["data"].as_str().unwrap()).collect();
        assert_eq!(data.len(), 4);
        for (seq, data) in (10..).zip(data) {
            let words: Vec<&str> = data.split(' ').collect();
            assert_eq!((words[0], words[2]), (seq.to_string().as_str(), "3"));
            assert_eq!(data.len(), 48);
        }
    }

    #[test]
    fn a_form_template_is_filled_in_too() {
        let requests = requests("topic={topic}&data={data}");
        let form = body(&requests.event(7));
        assert!(form.starts_with("topic=load&data=7 "), "{form}");
    }

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
