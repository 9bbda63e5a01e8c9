//! One connection's life: read a request head; a subscribe gets its SSE head and its socket
//! goes to the broadcaster; anything else is served by hyper, which hands the connection back
//! if a subscribe follows on it. On the internal listener (`internal`) every request goes to
//! hyper.

pub mod accept;
mod deadline;
pub(crate) mod handback;
pub(crate) mod head;
pub mod internal;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use self::deadline::Deadline;
use self::handback::Served;
use self::head::{HeadError, MAX_HEADERS};
use crate::address::{Addresses, Admission};
use crate::auth::{Grants, TokenError, Verifier};
use crate::broadcast::{Broadcaster, Refused, TopicRefused};
use crate::http;
use crate::http::cors::Cors;
use crate::http::error::{self, Challenge};
use crate::sse::subscribe::{self, Subscribe, SubscribeError};

/// The most unread input a refused connection reads and discards before it closes.
const LINGER_BYTES: usize = 64 * 1024;
/// The longest a refusal takes to write, and then to wait for the client to close.
const LINGER_TIME: Duration = Duration::from_secs(1);

/// What every connection needs, shared.
pub struct FrontEnd {
    /// The hyper service's context.
    pub http: Arc<http::Context>,
    /// Where subscribers go.
    pub broadcaster: Broadcaster,
    /// The largest request head accepted.
    pub max_head_bytes: usize,
    /// The time a client has to send its request head.
    pub head_timeout: Duration,
    /// The longest a write to a connection hyper serves may wait before the connection is cut.
    pub write_timeout: Duration,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// hyper's HTTP/1 settings.
    pub builder: http1::Builder,
    /// The connections each client address holds.
    pub addresses: Arc<Addresses>,
    /// `SO_SNDBUF` for each accepted socket (0: the kernel's default): what a client that
    /// stops reading can make the kernel hold, subscriber or not.
    pub send_buffer: usize,
    /// The origins that may read a stream from another origin.
    pub cors: Cors,
    /// What subscriber tokens are verified with; `None`: tokens are not looked at.
    pub subscriber: Option<Arc<Verifier>>,
    /// Whether a subscribe needs a valid token.
    pub subscriber_required: bool,
}

/// What a client refused at a limit is told to wait before trying again, in seconds.
const RETRY_AFTER_SECONDS: &str = "5";

/// Serves one accepted connection from `peer`, counted by `admission`, to its end, or until its
/// socket goes to the broadcaster.
pub async fn serve(
    mut io: TcpStream,
    peer: SocketAddr,
    admission: Admission,
    front: Arc<FrontEnd>,
) {
    debug!(peer = %peer, "connection accepted");
    let mut buf = BytesMut::new();
    loop {
        let read = head::read(&mut io, &mut buf, front.max_head_bytes, front.head_timeout);
        let head_len = tokio::select! {
            read = read => match read {
                Ok(len) => len,
                Err(e) => return refuse(io, e).await,
            },
            _ = front.shutdown.cancelled() => return,
        };
        let subscribes = front.http.routes.subscribe();
        if let Some(request) = subscribes
            .then(|| subscribe_request(&buf[..head_len]))
            .flatten()
        {
            return match request {
                Ok(request) => start_stream(io, peer, request, admission, &front).await,
                Err(SubscribeError::Token(e)) => refuse_token(io, e).await,
                Err(e) => {
                    debug!(error = %e, "subscribe refused");
                    let answer = error::raw(StatusCode::BAD_REQUEST, &e.to_string(), &[]);
                    answer_and_close(io, &answer).await;
                }
            };
        }
        let context = front.http.clone();
        let client = admission.address();
        let service = service_fn(move |request: hyper::Request<_>| {
            http::serve(request, context.clone(), Some(client))
        });
        // Boxed: hyper's connection state is kilobytes, and a subscriber's task never needs it.
        let served = Box::pin(handback::serve(
            Deadline::new(io, front.write_timeout),
            buf,
            &front.builder,
            service,
            if subscribes {
                subscribe::is_subscribe
            } else {
                never
            },
            front.shutdown.clone().cancelled_owned(),
        ))
        .await;
        match served {
            Ok(Served::TakenOver(taken, kept)) => (io, buf) = (taken.into_inner(), kept),
            Ok(Served::Closed) => return debug!(peer = %peer, "connection closed"),
            Err(e) => return debug!(peer = %peer, error = %e, "connection failed"),
        }
    }
}

/// The takeover test of a listener that serves no subscribes.
fn never(_: &httparse::Request<'_, '_>) -> bool {
    false
}

/// The subscribe request in `head`, if it is one.
fn subscribe_request(head: &[u8]) -> Option<Result<Subscribe, subscribe::SubscribeError>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    // `head::read` has parsed these bytes already, so this parse completes.
    request.parse(head).ok()?;
    subscribe::is_subscribe(&request).then(|| subscribe::parse(&request))
}

/// Answers a subscribe whose token was refused with the status and challenge of RFC 6750.
async fn refuse_token(io: TcpStream, error: TokenError) {
    debug!(error = %error, "subscribe refused");
    let challenge = Challenge::from(error);
    let headers = [("www-authenticate", challenge.header())];
    let answer = error::raw(challenge.status(), &error.to_string(), &headers);
    answer_and_close(io, &answer).await;
}

/// What a subscribe's token allows: `None` for an anonymous subscriber (or when tokens are not
/// looked at); a bad token, or none where one is required, is an error.
fn authorize(request: &mut Subscribe, front: &FrontEnd) -> Result<Option<Grants>, TokenError> {
    let Some(verifier) = &front.subscriber else {
        return Ok(None);
    };
    match request.token.take() {
        Some(token) => verifier.verify(&token).map(Some),
        None if front.subscriber_required => Err(TokenError::Missing),
        None => Ok(None),
    }
}

/// Writes the SSE head and gives the bare socket to the broadcaster.
async fn start_stream(
    mut io: TcpStream,
    peer: SocketAddr,
    mut request: Subscribe,
    admission: Admission,
    front: &FrontEnd,
) {
    let topics = request.selection.len();
    let origin = request.origin.take();
    let grants = match authorize(&mut request, front) {
        Ok(grants) => grants,
        Err(e) => return refuse_token(io, e).await,
    };
    let prepared = front
        .broadcaster
        .prepare(request, Some(admission.address()), grants);
    let subscription = match prepared {
        Ok(subscription) => subscription,
        Err(Refused::Closed) => return,
        Err(e) => {
            debug!(error = %e, "subscribe refused");
            let stats = &front.http.stats;
            let (counter, status) = match e {
                Refused::Topics(TopicRefused::AddressFull(_)) => (
                    &stats.subscribes_refused_address_topics,
                    StatusCode::TOO_MANY_REQUESTS,
                ),
                Refused::Topics(_) => (
                    &stats.subscribes_refused_topics,
                    StatusCode::SERVICE_UNAVAILABLE,
                ),
                _ => (
                    &stats.subscribes_refused_subscribers,
                    StatusCode::SERVICE_UNAVAILABLE,
                ),
            };
            counter.fetch_add(1, Relaxed);
            let retry_after = [("retry-after", RETRY_AFTER_SECONDS)];
            let answer = error::raw(status, &e.to_string(), &retry_after);
            return answer_and_close(io, &answer).await;
        }
    };
    // A cross-origin page gets a head naming its origin; everyone else the shared one.
    let allowed = front.cors.allow(origin.as_deref().map(str::as_bytes));
    let last_event_id = subscription.last_event_id();
    let head = match allowed {
        Some(allowed) => crate::sse::head::encode(
            last_event_id,
            Some(allowed.origin.as_bytes()),
            allowed.credentials,
        ),
        None => crate::sse::head::encode(last_event_id, None, false),
    };
    let written = tokio::time::timeout(front.head_timeout, io.write_all(&head)).await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    let _ = io.set_nodelay(true);
    // `into_std` takes the socket out of tokio's reactor: from here it costs no tokio state.
    let socket = match io.into_std() {
        Ok(socket) => socket,
        Err(e) => return debug!(error = %e, "could not take over subscriber socket"),
    };
    let address = admission.into_key();
    debug!(peer = %peer, topics, "subscribe started");
    if front
        .broadcaster
        .subscribe(socket, subscription, address)
        .is_err()
    {
        debug!("subscribe during shutdown dropped");
    }
}

/// Answers a head that could not be read, when there is someone to answer.
async fn refuse(io: TcpStream, error: HeadError) {
    debug!(error = %error, "request head refused");
    let status = match error {
        HeadError::TooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        HeadError::Malformed(_) => StatusCode::BAD_REQUEST,
        HeadError::TimedOut(_) | HeadError::Closed | HeadError::Io(_) => return,
    };
    let answer = error::raw(status, &error.to_string(), &[]);
    answer_and_close(io, &answer).await;
}

/// Writes a refusal and closes so that the client gets to read it. Closing a socket with input
/// unread sends a reset, and a reset can make the client's kernel drop the answer before it is
/// read: so the answer is followed by a FIN, then input is read and thrown away until the client
/// closes too, at most [`LINGER_BYTES`] for at most [`LINGER_TIME`].
async fn answer_and_close(mut io: TcpStream, answer: &[u8]) {
    let written = tokio::time::timeout(LINGER_TIME, io.write_all(answer)).await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    if io.shutdown().await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER_TIME;
    // On the heap, and only now: a buffer here would be part of every connection's task,
    // pending heads included (4 KiB each).
    let mut discard = vec![0u8; 4096];
    let mut left = LINGER_BYTES;
    while left > 0 {
        let len = left.min(discard.len());
        match tokio::time::timeout_at(deadline, io.read(&mut discard[..len])).await {
            Ok(Ok(n)) if n > 0 => left -= n,
            _ => return,
        }
    }
}
