//! `POST /publish`: a form or JSON body becomes a validated event, handed to the broadcaster.
//!
//! The front end is one thread that also accepts every connection, so no body may hold it for
//! long: both parsers keep at most one topic past the limit and skip the rest unallocated, and a
//! body over [`BLOCKING_PARSE_BYTES`] is parsed and validated on tokio's blocking pool.
//!
//! Reading a body is bounded twice: it must arrive whole within the body timeout (else `408`
//! and the connection closes), and before reading, the bytes it may hold are taken from a budget
//! shared by every publish (else `503` with `Retry-After` at once, the body unread). The bytes
//! go back to the budget once the body is parsed, or when the request ends.

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use hyper::{Request, Response, StatusCode};
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::{timeout_at, Instant};

use super::budget::{Busy, Hold};
use super::error::{self, Challenge};
use super::{json, Context};
use crate::address::ClientAddress;
use crate::auth::{self, TokenError};
use crate::broadcast::{Broadcaster, Published, Refused};
use crate::cluster::{Cluster, ClusterError};
use crate::sse::event::{Draft, Event, EventError};
use crate::sse::topic::MAX_TOPICS;
use crate::urlencoded::{self, NotUtf8};

/// Bodies larger than this are parsed off the front-end thread. A 1 MiB form takes tens of
/// milliseconds to parse in a debug build; 64 KiB takes well under one.
pub const BLOCKING_PARSE_BYTES: usize = 64 * 1024;
/// What a publish refused for want of budget is told to wait, in seconds.
const RETRY_AFTER_SECONDS: &str = "1";

/// Why a publish was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("content type must be application/json or application/x-www-form-urlencoded")]
    UnsupportedMediaType,
    #[error("body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading body: {0}")]
    Body(String),
    #[error("body not received within {0:?}")]
    TimedOut(std::time::Duration),
    #[error("too many publish bodies in flight; retry shortly")]
    Busy,
    #[error("malformed form: {0}")]
    Form(#[from] NotUtf8),
    #[error("retry must be a whole number of milliseconds")]
    Retry,
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Event(#[from] EventError),
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Unauthorized(#[from] TokenError),
    #[error("a batch holds 1 to {0} events")]
    BatchSize(usize),
    #[error("event {index} of the batch: {error}")]
    InBatch { index: usize, error: EventError },
    #[error("the token does not allow publishing to {0:?}")]
    Forbidden(String),
    #[error("the body parser stopped before its end")]
    Interrupted,
    #[error("a Mercure publish is a form: content type application/x-www-form-urlencoded")]
    MercureMediaType,
    #[error("an id must not begin with #")]
    MercureId,
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl From<Busy> for PublishError {
    fn from(_: Busy) -> Self {
        Self::Busy
    }
}

impl PublishError {
    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnsupportedMediaType | Self::MercureMediaType => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unauthorized(why) => Challenge::from(*why).status(),
            Self::Forbidden(_) => Challenge::InsufficientScope.status(),
            Self::Refused(Refused::DuplicateId) | Self::Cluster(ClusterError::DuplicateId) => {
                StatusCode::CONFLICT
            }
            Self::Cluster(ClusterError::Unreachable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Refused(_) | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Interrupted => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The `WWW-Authenticate` challenge of a refusal about the token, if it is one.
    pub fn challenge(&self) -> Option<Challenge> {
        match self {
            Self::Unauthorized(why) => Some(Challenge::from(*why)),
            Self::Forbidden(_) => Some(Challenge::InsufficientScope),
            _ => None,
        }
    }
}

/// A publish's answer: the event's id and how many subscribers it was queued for.
#[derive(serde::Serialize)]
struct Answer<'a> {
    id: &'a str,
    subscribers: u64,
}

impl<'a> From<&'a Published> for Answer<'a> {
    fn from(published: &'a Published) -> Self {
        Self {
            id: &published.id,
            subscribers: published.subscribers,
        }
    }
}

/// The body formats a publish may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Form,
    Json,
    /// A form with Mercure's fields (`POST /.well-known/mercure`).
    MercureForm,
}

/// The protocol a publish speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `POST /publish`: a form or JSON (one event or a batch), answered with JSON.
    Ssecast,
    /// `POST /.well-known/mercure`: a form with Mercure's fields, answered with the event's id
    /// as text.
    Mercure,
}

/// Handles a publish request in `dialect`.
pub async fn handle(
    request: Request<Incoming>,
    context: &Context,
    client: Option<ClientAddress>,
    dialect: Dialect,
) -> Response<Full<Bytes>> {
    let deadline = Instant::now() + context.body_timeout;
    match publish(request, context, client, dialect, deadline).await {
        Ok(Outcome::One(published)) if dialect == Dialect::Mercure => text(published.id),
        Ok(Outcome::One(published)) => json(StatusCode::OK, &Answer::from(&published)),
        Ok(Outcome::Batch(published)) => {
            let answers: Vec<Answer> = published.iter().map(Answer::from).collect();
            json(StatusCode::OK, &answers)
        }
        Err(e) => {
            tracing::debug!(error = %e, "publish refused");
            let mut response = error::response(e.status(), &e.to_string());
            let headers = response.headers_mut();
            if let PublishError::Busy | PublishError::Cluster(ClusterError::Unreachable(_)) = e {
                headers.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
            }
            if let Some(challenge) = e.challenge() {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge.header()),
                );
            }
            // The body is left unread (part of it, or all): nothing else can follow on this
            // connection.
            if let PublishError::Busy | PublishError::TimedOut(_) | PublishError::Unauthorized(_) =
                e
            {
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    }
}

async fn publish(
    request: Request<Incoming>,
    context: &Context,
    client: Option<ClientAddress>,
    dialect: Dialect,
    deadline: Instant,
) -> Result<Outcome, PublishError> {
    // A publisher that may not publish at all is refused before its body is read. Only the
    // Authorization header is read: Mercure reads a cookie only from origins listed as allowed
    // to publish (none by default), and ssecast lists none.
    let grants = match &context.publisher {
        Some(verifier) => {
            let mut headers = request.headers().get_all(AUTHORIZATION).iter();
            let header = headers.next().ok_or(TokenError::Missing)?;
            if headers.next().is_some() {
                return Err(TokenError::BadHeader.into());
            }
            Some(verifier.verify(auth::bearer(header.as_bytes())?)?)
        }
        None => None,
    };
    let format = match (dialect, format(request.headers().get(CONTENT_TYPE))?) {
        (Dialect::Ssecast, format) => format,
        (Dialect::Mercure, Format::Form) => Format::MercureForm,
        (Dialect::Mercure, _) => return Err(PublishError::MercureMediaType),
    };
    let limit = context.max_body_bytes;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(PublishError::TooLarge(limit));
    }
    let mut permit = context.body_budget.hold(client);
    let body = request.into_body();
    let body = timeout_at(deadline, read_body(body, limit, &mut permit))
        .await
        .map_err(|_| PublishError::TimedOut(context.body_timeout))??;
    let max_batch = context.max_batch;
    let checked = if body.len() > BLOCKING_PARSE_BYTES {
        tokio::task::spawn_blocking(move || {
            let checked = checked(format, &body, max_batch);
            drop((body, permit));
            checked
        })
        .await
        .map_err(|_| PublishError::Interrupted)??
    } else {
        let checked = checked(format, &body, max_batch);
        drop((body, permit));
        checked?
    };
    let events = match &checked {
        Checked::One(event) => std::slice::from_ref(event),
        Checked::Batch(events) => events,
    };
    if let Some(grants) = grants {
        let topics = events.iter().flat_map(|event| event.topics().iter());
        if let Some(topic) = topics.into_iter().find(|t| !grants.publish.allows(t)) {
            return Err(PublishError::Forbidden(topic.clone()));
        }
    }
    if let Some(cluster) = &context.cluster {
        return through_redis(cluster, &context.broadcaster, checked).await;
    }
    Ok(match checked {
        Checked::One(event) => Outcome::One(context.broadcaster.publish(event).await?),
        Checked::Batch(events) => Outcome::Batch(context.broadcaster.publish_batch(&events).await?),
    })
}

/// Publishes through Redis to every node. `subscribers` counts this node's subscribers of
/// each topic (one subscribed to several of them counts once for each): a node does not know
/// the others'.
async fn through_redis(
    cluster: &Cluster,
    broadcaster: &Broadcaster,
    checked: Checked,
) -> Result<Outcome, PublishError> {
    let events = match &checked {
        Checked::One(event) => std::slice::from_ref(event),
        Checked::Batch(events) => events,
    };
    let ids = cluster.publish(events).await?;
    let mut published = events.iter().zip(ids).map(|(event, id)| Published {
        id,
        subscribers: broadcaster.subscribers_of(event.topics()),
    });
    Ok(match checked {
        Checked::One(_) => Outcome::One(published.next().ok_or(PublishError::Interrupted)?),
        Checked::Batch(_) => Outcome::Batch(published.collect()),
    })
}

/// What a publish did: one event published, or a batch.
enum Outcome {
    One(Published),
    Batch(Vec<Published>),
}

/// Mercure's answer to a publish: the event's id, as text.
fn text(id: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(id)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// What a body holds, validated: one event, or a batch of them.
#[derive(Debug)]
enum Checked {
    One(Event),
    Batch(Vec<Event>),
}

/// Parses and validates a body: one event, or (a JSON array) a batch of up to `max_batch`.
fn checked(format: Format, body: &[u8], max_batch: usize) -> Result<Checked, PublishError> {
    if format == Format::Json && is_batch(body) {
        let drafts = parse_json_batch(body)?;
        if drafts.is_empty() || drafts.len() > max_batch {
            return Err(PublishError::BatchSize(max_batch));
        }
        let events = drafts
            .into_iter()
            .enumerate()
            .map(|(index, draft)| {
                draft
                    .validate()
                    .map_err(|error| PublishError::InBatch { index, error })
            })
            .collect::<Result<_, _>>()?;
        return Ok(Checked::Batch(events));
    }
    let draft = parse(format, body)?;
    let event = match format {
        Format::MercureForm => draft.validate_allowing_empty_data()?,
        _ => draft.validate()?,
    };
    Ok(Checked::One(event))
}

/// Reads the whole body, refusing more than `limit` bytes, with `hold` growing to the bytes
/// received as they arrive. A body in one frame (the usual case) is kept as it is; several are
/// joined into one buffer that grows with what arrives (to at most twice that), never with
/// what was declared, so that a body that stalls holds only what it sent.
async fn read_body(body: Incoming, limit: usize, hold: &mut Hold) -> Result<Bytes, PublishError> {
    let mut body = Limited::new(body, limit);
    let mut joined: Option<BytesMut> = None;
    let mut first: Option<Bytes> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| match e.downcast_ref::<LengthLimitError>() {
            Some(_) => PublishError::TooLarge(limit),
            None => PublishError::Body(e.to_string()),
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let held = match (&mut joined, first.take()) {
            (Some(joined), _) => {
                joined.extend_from_slice(&data);
                joined.len()
            }
            (None, None) => {
                first = Some(data);
                first.as_ref().map_or(0, Bytes::len)
            }
            (None, Some(earlier)) => {
                let mut buf = BytesMut::with_capacity(2 * (earlier.len() + data.len()));
                buf.extend_from_slice(&earlier);
                buf.extend_from_slice(&data);
                let held = buf.len();
                joined = Some(buf);
                held
            }
        };
        hold.grow_to(held)?;
    }
    Ok(joined.map(BytesMut::freeze).or(first).unwrap_or_default())
}

fn format(content_type: Option<&hyper::header::HeaderValue>) -> Result<Format, PublishError> {
    let essence = content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map_or("", str::trim);
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(Format::Json)
    } else if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(Format::Form)
    } else {
        Err(PublishError::UnsupportedMediaType)
    }
}

/// Turns a body into an unvalidated event.
fn parse(format: Format, body: &[u8]) -> Result<Draft, PublishError> {
    match format {
        Format::Form => parse_form(body),
        Format::Json => parse_json(body),
        Format::MercureForm => parse_mercure_form(body),
    }
}

pub(crate) fn parse_form(body: &[u8]) -> Result<Draft, PublishError> {
    read_form(body, Dialect::Ssecast)
}

/// A Mercure publish form: `topic` repeated (the first the canonical topic, the others
/// alternates: the update goes to subscribers of any), `data` (may be empty), `private` (set by
/// its presence, whatever its value), `id` (not beginning with `#`; `urn:uuid:` and a UUID v7
/// when absent, as Mercure's hub makes them), `type` (the event type) and `retry`.
pub(crate) fn parse_mercure_form(body: &[u8]) -> Result<Draft, PublishError> {
    let mut draft = read_form(body, Dialect::Mercure)?;
    if draft.id.as_deref().is_some_and(|id| id.starts_with('#')) {
        return Err(PublishError::MercureId);
    }
    let id = || format!("urn:uuid:{}", uuid::Uuid::now_v7());
    draft.id = Some(draft.id.take().unwrap_or_else(id));
    Ok(draft)
}

/// The fields of a form in `dialect`: the event type is `event` in ssecast's and `type` in
/// Mercure's; `private` is set by a non-empty value in ssecast's (`private=on`, as Mercure
/// publishers send it) and by its mere presence in Mercure's; an empty `id` or type is none in
/// Mercure's.
fn read_form(body: &[u8], dialect: Dialect) -> Result<Draft, PublishError> {
    let mercure = dialect == Dialect::Mercure;
    let mut event = Draft::default();
    for field in urlencoded::fields(body) {
        match (&*field.name()?, dialect) {
            ("topic", _) => {
                let full = keep_topic(&mut event.topics, field.value()?);
                if full {
                    // Validation refuses this list whatever follows: read no further.
                    break;
                }
            }
            ("data", _) => event.data = field.value()?,
            ("event", Dialect::Ssecast) | ("type", Dialect::Mercure) => {
                event.event = Some(field.value()?).filter(|value| !(mercure && value.is_empty()));
            }
            ("id", _) => {
                event.id = Some(field.value()?).filter(|value| !(mercure && value.is_empty()));
            }
            ("retry", _) => {
                event.retry = Some(field.value()?.parse().map_err(|_| PublishError::Retry)?);
            }
            ("private", _) => event.private = mercure || !field.value()?.is_empty(),
            _ => {}
        }
    }
    Ok(event)
}

/// Adds `topic` to `topics` unless it is there already; true once `topics` holds one past
/// [`MAX_TOPICS`], which is all validation needs to refuse it. Each call scans at most
/// `MAX_TOPICS` names, so a list costs time linear in its length.
fn keep_topic(topics: &mut Vec<String>, topic: String) -> bool {
    if !topics.contains(&topic) {
        topics.push(topic);
    }
    topics.len() > MAX_TOPICS
}

/// A JSON publish body. `data` may be any JSON value: a string is sent as it is, anything
/// else as the JSON text the publisher sent, byte for byte (key order, spacing and numbers as
/// written).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEvent {
    topic: Option<JsonTopics>,
    data: Option<Box<RawValue>>,
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    #[serde(default)]
    private: bool,
}

/// `topic` in JSON: one name or a list of names. Of a list it keeps what [`keep_topic`] keeps
/// and skips the rest without allocating.
struct JsonTopics(Vec<String>);

impl<'de> Deserialize<'de> for JsonTopics {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopicsVisitor)
    }
}

struct TopicsVisitor;

impl<'de> Visitor<'de> for TopicsVisitor {
    type Value = JsonTopics;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a topic name or a list of topic names")
    }

    fn visit_str<E: de::Error>(self, topic: &str) -> Result<JsonTopics, E> {
        Ok(JsonTopics(vec![topic.to_owned()]))
    }

    fn visit_string<E: de::Error>(self, topic: String) -> Result<JsonTopics, E> {
        Ok(JsonTopics(vec![topic]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonTopics, A::Error> {
        let mut topics = Vec::new();
        while let Some(topic) = seq.next_element::<String>()? {
            if keep_topic(&mut topics, topic) {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                break;
            }
        }
        Ok(JsonTopics(topics))
    }
}

pub(crate) fn parse_json(body: &[u8]) -> Result<Draft, PublishError> {
    draft(serde_json::from_slice(body)?)
}

/// A batch: a JSON array of events, each as a single event's body.
fn parse_json_batch(body: &[u8]) -> Result<Vec<Draft>, PublishError> {
    let events: Vec<JsonEvent> = serde_json::from_slice(body)?;
    events.into_iter().map(draft).collect()
}

/// Whether a JSON body is a batch: an array.
fn is_batch(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

fn draft(json: JsonEvent) -> Result<Draft, PublishError> {
    let topics = json
        .topic
        .map_or_else(Vec::new, |JsonTopics(topics)| topics);
    let data = match json.data.as_deref().map(RawValue::get) {
        None | Some("null") => String::new(),
        Some(text) if text.starts_with('"') => serde_json::from_str(text)?,
        Some(text) => text.to_owned(),
    };
    Ok(Draft {
        topics,
        data,
        event: json.event,
        id: json.id,
        retry: json.retry,
        private: json.private,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn media_type_parameters_are_accepted() {
        let form = HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8");
        assert_eq!(format(Some(&form)).unwrap(), Format::Form);
        let json = HeaderValue::from_static("Application/JSON;charset=UTF-8");
        assert_eq!(format(Some(&json)).unwrap(), Format::Json);
        let text = HeaderValue::from_static("text/plain");
        assert!(matches!(
            format(Some(&text)),
            Err(PublishError::UnsupportedMediaType)
        ));
        assert!(matches!(
            format(None),
            Err(PublishError::UnsupportedMediaType)
        ));
    }

    #[test]
    fn form_and_json_give_the_same_event() {
        let form = parse(
            Format::Form,
            b"topic=a&topic=b&data=x%0Ay&event=e&id=1&retry=5",
        )
        .unwrap();
        let json = parse(
            Format::Json,
            br#"{"topic":["a","b"],"data":"x\ny","event":"e","id":"1","retry":5}"#,
        )
        .unwrap();
        assert_eq!(form, json);
        assert_eq!(form.topics, vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn parsers_keep_one_topic_past_the_limit_and_skip_the_rest() {
        let names: Vec<String> = (0..1000).map(|i| format!("t{}", i % 100)).collect();
        let form: String = names.iter().map(|n| format!("topic={n}&")).collect();
        let form = parse(Format::Form, format!("{form}data=x").as_bytes()).unwrap();
        assert_eq!(form.topics.len(), MAX_TOPICS + 1);
        assert_eq!(form.data, "", "nothing past the topics is read");
        let json = serde_json::json!({ "topic": names, "data": "x" }).to_string();
        let json = parse(Format::Json, json.as_bytes()).unwrap();
        assert_eq!(json.topics, form.topics);
        assert_eq!(json.data, "x");
        assert!(matches!(
            json.validate(),
            Err(EventError::Topic(crate::sse::topic::TopicError::TooMany))
        ));
        let repeats = parse(Format::Form, b"topic=a&topic=a&topic=b&data=x").unwrap();
        assert_eq!(repeats.topics, vec!["a".to_string(), "b".to_string()]);
        assert!(matches!(
            parse(Format::Json, br#"{"topic": 5, "data": "x"}"#),
            Err(PublishError::Json(_))
        ));
    }

    #[test]
    fn json_data_that_is_not_a_string_is_sent_as_json() {
        let event = parse(Format::Json, br#"{"topic":"a","data":{"n":1}}"#).unwrap();
        assert_eq!(event.data, r#"{"n":1}"#);
    }

    #[test]
    fn json_data_is_forwarded_as_the_publisher_wrote_it() {
        let written = [
            r#"{"home":2,"away":1}"#,
            "{ \"b\" : [1, 2.50, 1e3],\n  \"a\": \"\\u00e9\\n\" }",
            "12345678901234567890.000",
            "[true,false]",
        ];
        for text in written {
            let body = format!(r#"{{"topic":"a","data":{text}}}"#);
            let event = parse(Format::Json, body.as_bytes()).unwrap();
            assert_eq!(event.data, text);
        }
        let string = parse(Format::Json, br#"{"topic":"a","data":"line\nand \u00e9"}"#);
        assert_eq!(string.unwrap().data, "line\nand \u{e9}");
        let null = parse(Format::Json, br#"{"topic":"a","data":null}"#);
        assert_eq!(null.unwrap().data, "");
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert!(matches!(
            parse(Format::Form, b"data=x&retry=soon"),
            Err(PublishError::Retry)
        ));
        assert!(matches!(
            parse(Format::Form, b"data=%FF"),
            Err(PublishError::Form(_))
        ));
        assert!(matches!(
            parse(Format::Json, b"{\"data\":"),
            Err(PublishError::Json(_))
        ));
        assert!(matches!(
            parse(Format::Json, br#"{"retry":"3000"}"#),
            Err(PublishError::Json(_))
        ));
    }
}
