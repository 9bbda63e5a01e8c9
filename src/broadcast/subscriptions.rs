//! Mercure's active subscriptions (`--subscriptions`): which subscriber holds which selector,
//! and the documents that say so.
//!
//! Off (the default), nothing here exists: the hub holds no [`Subscriptions`], a shard's
//! [`Keys`] stay empty and a subscriber has no field for it. On, each subscribe is given an id
//! (`urn:uuid:` and a UUID v7) and an entry in the hub's slab ([`Active`]: the id, its
//! selectors' texts, its token's `mercure.payload`); for each selector the hub publishes a
//! private update to `/.well-known/mercure/subscriptions/{topic}/{subscriber}` through its
//! ordinary commit path, `active: true` when the subscribe is accepted and `active: false` when
//! the subscriber leaves, whatever the reason. A shard remembers its subscribers' entries by
//! slot: 4 bytes a slot.
//!
//! The update topics are topics like any other: each is held, under `--max-topics`, while
//! history holds its updates, which is most of what the feature costs per subscriber.

use std::sync::Arc;

use percent_encoding::{utf8_percent_encode, AsciiSet, PercentEncode, NON_ALPHANUMERIC};
use serde::Serialize;
use serde_json::value::RawValue;
use slab::Slab;
use uuid::Uuid;

/// The path of the subscriptions API, and what every update topic begins with.
pub const PATH: &str = "/.well-known/mercure/subscriptions";
/// The JSON-LD context of every document.
const CONTEXT: &str = "https://mercure.rocks/";
/// What RFC 6570's simple expansion encodes: everything but the unreserved characters, so a
/// value's `:`, `/`, `{` and `}` (and `%`) are encoded, once.
const EXPANDED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An entry of the hub's slab, which a shard keeps for each subscriber by slot.
pub type Key = u32;

/// A value as a URI template's simple expansion (`{topic}`) writes it.
pub fn expand(value: &str) -> PercentEncode<'_> {
    utf8_percent_encode(value, EXPANDED)
}

/// The update topic (and API path) of `subscriber`'s subscription to `topic`.
pub fn update_topic(topic: &str, subscriber: &str) -> String {
    format!("{PATH}/{}/{}", expand(topic), expand(subscriber))
}

/// One subscriber's subscriptions.
#[derive(Debug)]
pub struct Active {
    /// Its id, shown as `urn:uuid:` and the UUID.
    id: Uuid,
    /// The text of each of its selectors.
    topics: Box<[Box<str>]>,
    /// Its token's `mercure.payload`, as the token had it.
    payload: Option<Box<RawValue>>,
}

impl Active {
    /// A subscriber with a new id, subscribed to `topics` (selector texts); `payload` is its
    /// token's `mercure.payload` as raw JSON (dropped if it is not JSON).
    pub fn new(topics: impl IntoIterator<Item = Box<str>>, payload: Option<Box<str>>) -> Self {
        Self {
            id: Uuid::now_v7(),
            topics: topics.into_iter().collect(),
            payload: payload.and_then(|raw| RawValue::from_string(raw.into()).ok()),
        }
    }

    /// Its id: `urn:uuid:` and a UUID.
    pub fn subscriber(&self) -> String {
        self.id.urn().to_string()
    }

    /// Whether its id is `subscriber`.
    pub fn is(&self, subscriber: &str) -> bool {
        let mut text = [0u8; uuid::fmt::Urn::LENGTH];
        *self.id.urn().encode_lower(&mut text) == *subscriber
    }

    /// The update topic of each of its subscriptions.
    pub fn update_topics(&self) -> Vec<String> {
        let subscriber = self.subscriber();
        self.topics()
            .map(|topic| update_topic(topic, &subscriber))
            .collect()
    }

    /// The texts of its selectors.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.topics.iter().map(|topic| &**topic)
    }

    /// The document of its subscription to `topic` (one of [`Active::topics`]).
    pub fn document<'a>(&'a self, topic: &'a str, active: bool) -> Document<'a> {
        let subscriber = self.subscriber();
        Document {
            context: Some(CONTEXT),
            id: update_topic(topic, &subscriber),
            kind: "Subscription",
            topic,
            subscriber,
            active,
            payload: self.payload.as_deref(),
            last_event_id: None,
        }
    }
}

/// A subscription as Mercure's JSON-LD shows it, in an update or from the API.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    /// `https://mercure.rocks/`; left out inside a collection, which names it.
    #[serde(rename = "@context", skip_serializing_if = "Option::is_none")]
    pub context: Option<&'static str>,
    /// Its update topic.
    pub id: String,
    /// `Subscription`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The selector's text.
    pub topic: &'a str,
    /// The subscriber's id.
    pub subscriber: String,
    /// Whether the subscription is still on.
    pub active: bool,
    /// The subscriber's token's `mercure.payload`, if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'a RawValue>,
    /// From the API only: the newest event id history held when it answered.
    #[serde(rename = "lastEventID", skip_serializing_if = "Option::is_none")]
    pub last_event_id: Option<&'a str>,
}

/// A collection of subscriptions, as the API shows it.
#[derive(Debug, Serialize)]
pub struct Collection<'a> {
    /// `https://mercure.rocks/`.
    #[serde(rename = "@context")]
    pub context: &'static str,
    /// The path asked for.
    pub id: &'a str,
    /// `Subscriptions`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The newest event id history held when it answered, or `earliest`.
    #[serde(rename = "lastEventID")]
    pub last_event_id: &'a str,
    /// Its subscriptions, each without `@context`.
    pub subscriptions: Vec<Document<'a>>,
}

impl<'a> Collection<'a> {
    /// The collection at `id` of `subscriptions`.
    pub fn new(id: &'a str, last_event_id: &'a str, mut subscriptions: Vec<Document<'a>>) -> Self {
        for document in &mut subscriptions {
            document.context = None;
        }
        Self {
            context: CONTEXT,
            id,
            kind: "Subscriptions",
            last_event_id,
            subscriptions,
        }
    }
}

/// The frame body (everything after its `id:` line) of an update carrying `document`.
pub fn update_body(document: &Document<'_>) -> String {
    // Serializing a struct of strings and a raw value cannot fail; compact JSON has no newline.
    let json = serde_json::to_string(document).unwrap_or_default();
    format!("data: {json}\n\n")
}

/// Every subscriber's subscriptions, in the hub.
#[derive(Debug, Default)]
pub struct Subscriptions {
    /// One entry per subscriber accepted and not yet gone; shared with API answers in flight.
    active: Slab<Arc<Active>>,
}

impl Subscriptions {
    /// Holds a subscriber's subscriptions.
    pub fn insert(&mut self, active: Arc<Active>) -> Key {
        self.active.insert(active) as Key
    }

    /// Takes out the subscriptions of a subscriber that left.
    pub fn remove(&mut self, key: Key) -> Option<Arc<Active>> {
        let removed = self.active.try_remove(key as usize);
        if self.active.is_empty() {
            self.active = Slab::new();
        } else if self.active.len() < self.active.capacity() / 4 {
            self.active.shrink_to_fit();
        }
        removed
    }

    /// Every subscriber's subscriptions, in key order.
    pub fn all(&self) -> Vec<Arc<Active>> {
        self.active
            .iter()
            .map(|(_, active)| active.clone())
            .collect()
    }
}

/// What the subscriptions API reads, as of one instant.
#[derive(Debug)]
pub struct Snapshot {
    /// The newest event id history held, or `earliest`.
    pub last_event_id: String,
    /// Every subscriber's subscriptions.
    pub active: Vec<Arc<Active>>,
}

/// Each of a shard's subscribers' [`Key`], by slot; empty while subscriptions are off.
#[derive(Debug, Default)]
pub struct Keys(Vec<Key>);

/// A slot without a key.
const NO_KEY: Key = Key::MAX;

impl Keys {
    /// Records the key of the subscriber at `slot`.
    pub fn insert(&mut self, slot: u32, key: Key) {
        let slot = slot as usize;
        if self.0.len() <= slot {
            self.0.resize(slot + 1, NO_KEY);
        }
        self.0[slot] = key;
    }

    /// Takes the key of the subscriber at `slot`, if it has one.
    pub fn take(&mut self, slot: u32) -> Option<Key> {
        let key = std::mem::replace(self.0.get_mut(slot as usize)?, NO_KEY);
        while self.0.last() == Some(&NO_KEY) {
            self.0.pop();
        }
        if self.0.len() < self.0.capacity() / 4 {
            self.0.shrink_to(self.0.len() * 2);
        }
        (key != NO_KEY).then_some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_and_subscriber_are_encoded_as_the_spec_example() {
        let topic = update_topic(
            "https://example.com/{selector}",
            "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6",
        );
        assert_eq!(
            topic,
            "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2F%7Bselector%7D\
             /urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6"
        );
    }

    #[test]
    fn expansion_keeps_only_unreserved_characters_and_encodes_percent_once() {
        let cases = [
            ("aZ09-._~", "aZ09-._~"),
            ("a b+c", "a%20b%2Bc"),
            ("/books/%7Bid%7D", "%2Fbooks%2F%257Bid%257D"),
            ("?x=1&y=[2]#f", "%3Fx%3D1%26y%3D%5B2%5D%23f"),
            ("ü:é", "%C3%BC%3A%C3%A9"),
        ];
        for (value, expanded) in cases {
            assert_eq!(expand(value).to_string(), expanded, "{value}");
        }
    }

    #[test]
    fn a_document_has_the_fields_of_the_spec_in_order() {
        let payload = Some(r#"{"foo": "bar"}"#.into());
        let active = Active::new(["https://example.com/{selector}".into()], payload);
        let subscriber = active.subscriber();
        assert!(subscriber.starts_with("urn:uuid:") && subscriber.len() == 45);
        assert_eq!(active.id.get_version_num(), 7);
        assert!(active.is(&subscriber) && !active.is("urn:uuid:x"));
        let document = active.document("https://example.com/{selector}", true);
        let expected = format!(
            r#"{{"@context":"https://mercure.rocks/","id":"{}","type":"Subscription","topic":"https://example.com/{{selector}}","subscriber":"{subscriber}","active":true,"payload":{{"foo": "bar"}}}}"#,
            update_topic("https://example.com/{selector}", &subscriber)
        );
        assert_eq!(update_body(&document), format!("data: {expected}\n\n"));
        let bare = Active::new(["a".into()], Some("not json".into()));
        let json = serde_json::to_value(bare.document("a", false)).unwrap();
        assert_eq!(json["active"], false);
        assert!(json.get("payload").is_none());
    }

    #[test]
    fn keys_are_kept_by_slot_and_give_memory_back() {
        let mut keys = Keys::default();
        assert_eq!(keys.take(3), None);
        keys.insert(0, 7);
        keys.insert(1000, 8);
        assert_eq!(keys.take(5), None);
        assert_eq!(keys.take(1000), Some(8));
        assert_eq!(keys.take(1000), None);
        assert!(keys.0.capacity() < 1000);
        assert_eq!(keys.take(0), Some(7));
        assert!(keys.0.is_empty());
    }
}
