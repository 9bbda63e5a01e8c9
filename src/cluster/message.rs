//! An event as it crosses Redis: published on the channel and kept in the log, as the publish
//! script writes it (JSON, from Lua's `cjson`).

use bytes::Bytes;
use serde::Deserialize;

use crate::sse::event;
use crate::sse::topic::{TopicError, Topics};

/// One event from Redis.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Message {
    /// Its place in the deployment's one sequence, within its epoch.
    #[serde(rename = "s")]
    pub seq: u64,
    /// The epoch of the Redis that numbered it.
    #[serde(rename = "e")]
    pub epoch: String,
    /// Its id.
    #[serde(rename = "i")]
    pub id: String,
    /// Whether only subscribers whose token allows one of its topics may see it.
    #[serde(rename = "p")]
    pub private: bool,
    /// Its topics.
    #[serde(rename = "t")]
    pub topics: Vec<String>,
    /// Its frame without the `id:` line.
    #[serde(rename = "b")]
    pub body: String,
}

impl Message {
    /// Reads a message, as the channel or the log carries it.
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Its topics, checked as a publish's are (a node of another version may have sent them).
    pub fn topics(&self) -> Result<Topics, TopicError> {
        Topics::new(self.topics.clone())
    }

    /// Its frame, as every subscriber gets it.
    pub fn frame(&self) -> Bytes {
        event::with_id(&self.id, &self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_script_writes() {
        // As Lua's cjson writes it: slashes escaped, keys in any order.
        let text = br#"{"t":["a\/b","c"],"b":"data: x\n\n","s":7,"p":false,"i":"42","e":"1700000000000000"}"#;
        let message = Message::parse(text).unwrap();
        assert_eq!(message.seq, 7);
        assert_eq!(
            &*message.topics().unwrap(),
            ["a/b".to_owned(), "c".to_owned()]
        );
        assert_eq!(&message.frame()[..], b"id: 42\ndata: x\n\n");
        assert!(Message::parse(b"{\"s\":1}").is_err());
    }
}
