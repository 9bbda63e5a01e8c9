//! Taking a keep-alive connection back from hyper at a request boundary.
//!
//! A browser often sends its `EventSource` request on the keep-alive connection that loaded the
//! page, so a subscribe can arrive on a connection hyper is serving. hyper 1.x hands a socket
//! back only after a `101` or a `CONNECT`, so [`serve`] puts an IO of its own, `Handback`,
//! between hyper and the socket. It frames requests itself (Content-Length, chunked, no body) and
//! gives hyper one request at a time, never a byte of the next. When the next head satisfies
//! `is_takeover` it keeps that head and answers hyper's read with EOF, so hyper ends as if the
//! client had closed while idle; the socket and the kept bytes go to the caller's raw subscribe
//! path. Anything the framer is not sure of (TE with CL, a non-chunked TE, a bad or repeated CL,
//! Upgrade or CONNECT, HTTP/1.0, `Connection: close`, an oversized head, a parse error) switches it
//! to plain pass-through for the rest of the connection, and hyper decides: a framing that
//! disagrees with hyper's would be a request-smuggling class of bug, so the framer stays strict.
//!
//! The EOF waits until every response body handed to hyper has been dropped and a `poll_flush`
//! has reached the IO after that: hyper reads while it writes (to notice a client that left) and
//! treats EOF then as an incomplete message, and `into_parts` drops whatever hyper had not
//! flushed. This leans on hyper behaviour that is not API, all checked by the tests below:
//! EOF at an idle boundary ends `poll_without_shutdown` with `Ok`; hyper calls the IO's
//! `poll_flush` only once its write buffer is empty; a response body is dropped only after its
//! last bytes were buffered; hyper parses a head and calls the service before it reads again;
//! after that last flush hyper does not read again by itself, so the flush wakes the task.
//! Pin hyper's minor version.
//!
//! After pass-through, a later subscribe on the same connection reaches the hyper service like
//! any request.

use std::error::Error as StdError;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The longest request head the framer follows; a longer one switches to pass-through.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Header slots for one head, on the stack; more headers switch to pass-through.
const MAX_HEADERS: usize = 64;
/// Bytes asked of the socket per read into the framer's own buffer.
const READ_BYTES: usize = 8 * 1024;
/// The most response bytes held back for one write while pipelined requests are served.
const MAX_HELD_BYTES: usize = 64 * 1024;
/// hyper refuses a longer Content-Length (`DecodedLength::MAX_LEN`).
const MAX_CONTENT_LENGTH: u64 = u64::MAX - 2;

/// What `serve` ended with.
#[derive(Debug)]
pub enum Served<T> {
    /// The connection reached a request boundary whose next request head satisfies `is_takeover`:
    /// here is the socket and every byte read from it but not given to hyper (starting with that head).
    TakenOver(T, BytesMut),
    /// hyper ended the connection itself (client closed, `Connection: close`, an error): nothing to take over.
    /// Also the end after `shutdown`.
    Closed,
}

/// hyper failed after the handback's EOF at a boundary it should have taken as an idle close:
/// its behaviour no longer matches what this module relies on, and the socket is dropped.
#[derive(Debug, thiserror::Error)]
#[error("hyper refused the handback at a request boundary: {0}")]
pub struct HandbackRefused(#[source] pub hyper::Error);

/// Serves HTTP/1.1 requests on `io` with hyper (`hyper::server::conn::http1`), `prefix` being bytes already
/// read from `io` that come first. Stops at a request boundary when the next head satisfies `is_takeover`.
/// On `shutdown` (a future that resolves when the server stops) it calls `graceful_shutdown` on the hyper
/// connection and returns `Closed` when hyper is done.
///
/// When hyper ends cleanly the socket is shut down, as hyper's own `Connection` future does; a
/// failure there is ignored, the peer being gone either way. The only `Err` is
/// [`HandbackRefused`]. Each request costs one allocation for its boxed response future.
pub async fn serve<T, S, B>(
    io: T,
    prefix: BytesMut,
    builder: &http1::Builder,
    service: S,
    is_takeover: fn(&httparse::Request<'_, '_>) -> bool,
    shutdown: impl Future<Output = ()>,
) -> io::Result<Served<T>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut framer = Framer::default();
    let first = framer.next_head(&prefix, is_takeover);
    // A subscribe as the first request never meets hyper, which would answer nothing anyway.
    if first == Head::Takeover {
        return Ok(Served::TakenOver(io, trim_leading_lines(prefix)));
    }
    let shared = Arc::new(Shared::default());
    let handback = Handback {
        io,
        buf: prefix,
        held: BytesMut::new(),
        given: usize::from(first == Head::Request),
        framer,
        is_takeover,
        shared: shared.clone(),
        io_eof: false,
        handed_back: false,
        parked: false,
        fed: false,
    };
    let service = Counted {
        inner: service,
        shared: shared.clone(),
    };
    let mut conn = builder.serve_connection(TokioIo::new(handback), service);
    let mut shutdown = pin!(shutdown);
    let mut stopping = false;
    // `poll_without_shutdown` rather than `without_shutdown()`: the latter owns the connection,
    // and `graceful_shutdown` needs it.
    let ended = poll_fn(|cx| {
        if !stopping && shutdown.as_mut().poll(cx).is_ready() {
            stopping = true;
            // Before hyper hears of it, so the handback cannot race its close.
            shared.stopping.store(true, Ordering::Release);
            Pin::new(&mut conn).graceful_shutdown();
        }
        conn.poll_without_shutdown(cx)
    })
    .await;
    let parts = conn.into_parts();
    let Handback {
        mut io,
        buf,
        held,
        handed_back,
        fed,
        ..
    } = parts.io.into_inner();
    // Before any request hyper takes EOF as an incomplete message, having written nothing.
    if handed_back && (ended.is_ok() || !fed) {
        let mut kept = buf;
        if !parts.read_buf.is_empty() {
            // Not seen with this framing, as hyper reads only with its buffer empty, but
            // `Parts` does not promise it.
            let mut joined = BytesMut::with_capacity(parts.read_buf.len() + kept.len());
            joined.extend_from_slice(&parts.read_buf);
            joined.extend_from_slice(&kept);
            kept = joined;
        }
        return Ok(Served::TakenOver(io, trim_leading_lines(kept)));
    }
    // The answers held back, an error's included; the socket's write deadline bounds this.
    if io.write_all(&held).await.is_err() {
        return Ok(Served::Closed);
    }
    match ended {
        Err(e) if handed_back => Err(io::Error::other(HandbackRefused(e))),
        Err(_) => Ok(Served::Closed),
        Ok(()) => {
            let _ = io.shutdown().await;
            Ok(Served::Closed)
        }
    }
}

/// Drops the empty lines a request may start with, as httparse and hyper skip them.
fn trim_leading_lines(mut kept: BytesMut) -> BytesMut {
    let lines = kept
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    kept.advance(lines);
    kept
}

// === impl Shared ===

/// What the response side tells the IO side about the responses hyper still owes.
#[derive(Debug, Default)]
struct Shared {
    /// Requests given to the service whose response body has not been dropped yet.
    owed: AtomicUsize,
    /// Requests given to the service, ever.
    called: AtomicUsize,
    /// Requests given to the service whose response has not come yet.
    awaited: AtomicUsize,
    /// A response ended and no `poll_flush` has reached the IO since, so hyper may still hold
    /// some of its bytes.
    unflushed: AtomicBool,
    /// The server is stopping: hyper closes after its current response, nothing is taken over.
    stopping: AtomicBool,
}

impl Shared {
    /// Every response was written out: hyper can take EOF without losing a byte.
    fn settled(&self) -> bool {
        self.owed.load(Ordering::Acquire) == 0 && !self.unflushed.load(Ordering::Acquire)
    }

    fn on_flush(&self) {
        if self.owed.load(Ordering::Acquire) == 0 {
            self.unflushed.store(false, Ordering::Release);
        }
    }

    /// Another answer will follow whatever the client does, and no response body is being
    /// streamed: request bytes are here (`waiting`), or hyper has a whole request (`given`
    /// requests were handed to it, the last one `whole`) that it has not answered. A request
    /// whose body is still to come (after an `Expect: 100-continue`, say) may wait for what is
    /// held, so it does not count.
    fn more_answers_follow(&self, waiting: bool, given: usize, whole: bool) -> bool {
        let awaited = self.awaited.load(Ordering::Acquire);
        let streaming = self.owed.load(Ordering::Acquire) > awaited;
        let uncalled = given > self.called.load(Ordering::Acquire);
        (waiting || (whole && (uncalled || awaited > 0))) && !streaming
    }
}

/// One response awaited: counted from the service call until the service answers.
struct Awaited(Arc<Shared>);

impl Awaited {
    fn new(shared: Arc<Shared>) -> Self {
        shared.awaited.fetch_add(1, Ordering::AcqRel);
        Awaited(shared)
    }
}

impl Drop for Awaited {
    fn drop(&mut self) {
        self.0.awaited.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One response owed: counted from the service call until its body is dropped.
struct Owed(Arc<Shared>);

impl Owed {
    fn new(shared: Arc<Shared>) -> Self {
        shared.owed.fetch_add(1, Ordering::AcqRel);
        Owed(shared)
    }
}

impl Drop for Owed {
    fn drop(&mut self) {
        // Mark first: whoever sees `owed` reach zero also sees that a flush is due.
        self.0.unflushed.store(true, Ordering::Release);
        self.0.owed.fetch_sub(1, Ordering::AcqRel);
    }
}

// === impl Counted ===

/// The caller's service, counting each response until hyper drops its body.
struct Counted<S> {
    /// The caller's service.
    inner: S,
    /// Shared with the `Handback` under the same connection.
    shared: Arc<Shared>,
}

// `inner` is never pinned: `poll_without_shutdown` wants an `Unpin` service.
impl<S> Unpin for Counted<S> {}

impl<S, B> Service<Request<Incoming>> for Counted<S>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
{
    type Response = Response<CountedBody<B>>;
    type Error = S::Error;
    type Future = Responding<S::Future>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        // Counted here, synchronously in hyper's `recv_msg`, before hyper can read again.
        let owed = Owed::new(self.shared.clone());
        self.shared.called.fetch_add(1, Ordering::AcqRel);
        Responding {
            inner: Box::pin(self.inner.call(req)),
            owed: Some(owed),
            awaited: Some(Awaited::new(self.shared.clone())),
        }
    }
}

/// The service's response future; hands its count to the response body.
struct Responding<F> {
    /// Boxed, as `poll_without_shutdown` wants an `Unpin` future.
    inner: Pin<Box<F>>,
    /// Moves into the body; dropped here if the service fails or hyper drops the future.
    owed: Option<Owed>,
    /// Dropped when the service answers, or with the future.
    awaited: Option<Awaited>,
}

impl<F, B, E> Future for Responding<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<CountedBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = ready!(self.inner.as_mut().poll(cx));
        self.awaited = None;
        let owed = self.owed.take();
        Poll::Ready(res.map(|res| res.map(|inner| CountedBody { inner, _owed: owed })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its response counted as owed until hyper drops it, which hyper
    /// does only after buffering the body's last bytes.
    struct CountedBody<B> {
        // The service's body. (pin-project-lite takes no doc comments on fields.)
        #[pin]
        inner: B,
        // Released when hyper drops the body.
        _owed: Option<Owed>,
    }
}

impl<B: Body> Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

// === impl Handback ===

/// The IO under hyper: replays the prefix, gives hyper one request at a time, holds back its
/// answers while more requests are already here, and answers EOF at a takeover boundary once
/// every response was written out.
///
/// hyper flushes after each response; a client that pipelines would pay a write (about 7 us
/// on loopback, and a wake-up of its reader) per answer. The answers hyper writes are held in
/// `held` while more answers follow whatever the client does (request bytes are in `buf`, or
/// the service has a whole request it has not answered) and no response is being streamed,
/// and written together once none follows, before the socket is read, at the end, or past
/// [`MAX_HELD_BYTES`]: one write per read of requests. An answer waits at most as long as the
/// requests already received take to serve.
struct Handback<T> {
    /// The socket.
    io: T,
    /// Bytes read from `io` (the prefix first) not given to hyper yet.
    buf: BytesMut,
    /// Response bytes hyper wrote, not yet written to `io`.
    held: BytesMut,
    /// Requests the framer handed (or is handing) to hyper.
    given: usize,
    /// Where the request stream stands.
    framer: Framer,
    /// Whether a head at a boundary ends hyper's part.
    is_takeover: fn(&httparse::Request<'_, '_>) -> bool,
    /// Responses still owed, shared with `Counted`.
    shared: Arc<Shared>,
    /// `io` reached end of stream.
    io_eof: bool,
    /// This IO answered hyper with its own EOF at a takeover head.
    handed_back: bool,
    /// A read is waiting at a takeover head for the flush that settles the last response; that
    /// flush must wake the task, as hyper will not read again on its own.
    parked: bool,
    /// hyper was given at least one byte.
    fed: bool,
}

impl<T: AsyncWrite + Unpin> Handback<T> {
    /// Writes the held answers to the socket unless more answers follow them.
    fn poll_write_answers(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let waiting = !self.buf.is_empty();
        let whole = self.framer.state == State::Boundary;
        if self.shared.more_answers_follow(waiting, self.given, whole) {
            return Poll::Ready(Ok(()));
        }
        self.poll_write_held(cx)
    }

    /// Writes every held response byte to the socket.
    fn poll_write_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.held.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.held))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.held.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Handback<T> {
    /// Reads the socket into `buf`, after writing what is held unless more answers follow;
    /// `io_eof` marks a read of zero bytes.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_answers(cx))?;
        let len = self.buf.len();
        self.buf.resize(len + READ_BYTES, 0);
        let mut dst = ReadBuf::new(&mut self.buf[len..]);
        let res = Pin::new(&mut self.io).poll_read(cx, &mut dst);
        let n = dst.filled().len();
        self.buf.truncate(len + n);
        ready!(res)?;
        self.io_eof = n == 0;
        Poll::Ready(Ok(()))
    }

    /// Reads the socket straight into hyper's buffer, at most `limit` bytes, all of the current
    /// request (or pass-through).
    fn poll_direct(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
        limit: u64,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_write_answers(cx))?;
        let before = dst.filled().len();
        match usize::try_from(limit) {
            Ok(limit) if limit < dst.remaining() => {
                let mut part = ReadBuf::new(dst.initialize_unfilled_to(limit));
                ready!(Pin::new(&mut self.io).poll_read(cx, &mut part))?;
                let n = part.filled().len();
                dst.advance(n);
            }
            _ => ready!(Pin::new(&mut self.io).poll_read(cx, dst))?,
        }
        let n = dst.filled().len() - before;
        if n == 0 {
            // hyper sees the client's own EOF, mid-message or not, and decides.
            self.io_eof = true;
            self.framer.state = State::Pass;
        } else {
            let given = self.framer.advance(&dst.filled()[before..]);
            debug_assert_eq!(given, n, "a direct read stays within the request");
            self.fed = true;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_takeover(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shared.settled() && !self.shared.stopping.load(Ordering::Acquire) {
            // The subscribe's own response head follows every answer before it.
            ready!(self.poll_write_held(cx))?;
            self.handed_back = true;
            return Poll::Ready(Ok(()));
        }
        // When stopping, hyper closes after its response without reading again (the tests pass
        // without this check), so no takeover can race the shutdown either way.
        self.parked = true;
        Poll::Pending
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Handback<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.handed_back || dst.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            match this.framer.state {
                State::Boundary => {
                    match this.framer.next_head(&this.buf, this.is_takeover) {
                        Head::Partial if this.io_eof => {
                            // A cut-off head: hyper answers or closes.
                            this.framer.state = State::Pass;
                        }
                        Head::Partial => ready!(this.poll_fill(cx))?,
                        Head::Request => this.given += 1,
                        Head::Takeover | Head::Pass => {}
                    }
                    continue;
                }
                State::Takeover => return this.poll_takeover(cx),
                State::Head { .. } | State::Body(_) | State::Pass => {}
            }
            if !this.buf.is_empty() {
                let n = this.buf.len().min(dst.remaining());
                let n = this.framer.advance(&this.buf[..n]);
                debug_assert!(n > 0, "a head, a body or pass-through takes a byte");
                dst.put_slice(&this.buf[..n]);
                this.buf.advance(n);
                this.fed = true;
                return Poll::Ready(Ok(()));
            }
            if this.io_eof {
                return Poll::Ready(Ok(()));
            }
            match this.framer.direct() {
                Some(limit) => return this.poll_direct(cx, dst, limit),
                None => ready!(this.poll_fill(cx))?,
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Handback<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(src)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let len: usize = bufs.iter().map(|buf| buf.len()).sum();
        if this.held.len() + len > MAX_HELD_BYTES {
            ready!(this.poll_write_held(cx))?;
            if len > MAX_HELD_BYTES {
                return Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
            }
        }
        for buf in bufs {
            this.held.extend_from_slice(buf);
        }
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // While more answers follow, they go out together, at the flush of the last. A
        // streamed body goes out as it comes.
        ready!(this.poll_write_answers(cx))?;
        if this.held.is_empty() {
            ready!(Pin::new(&mut this.io).poll_flush(cx))?;
        }
        // hyper flushes the IO only once its write buffer is empty.
        this.shared.on_flush();
        if this.parked && this.shared.settled() && !this.shared.stopping.load(Ordering::Acquire) {
            this.parked = false;
            cx.waker().wake_by_ref();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_held(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

// === impl Framer ===

/// Follows request framing as hyper does, byte for byte, so the IO never gives hyper a byte of
/// the next request.
#[derive(Debug, Default)]
pub(crate) struct Framer {
    /// Where the request stream stands.
    pub(crate) state: State,
}

/// Where the framer stands in the request stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// The next bytes begin a request head.
    #[default]
    Boundary,
    /// The bytes at the front of the buffer are a takeover head: hyper gets nothing more.
    Takeover,
    /// `left` bytes of a parsed head still go to hyper; `body` follows.
    Head { left: usize, body: BodyLen },
    /// Inside a request body.
    Body(BodyLen),
    /// hyper frames everything from here on.
    Pass,
}

/// How a request body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLen {
    /// This many bytes are still to come.
    Length(u64),
    /// A chunked body.
    Chunked(Chunk),
}

/// A chunked body's position, mirroring hyper's `ChunkedState` (`proto/h1/decode.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Which part of the chunked framing comes next.
    step: Step,
    /// The chunk's size while reading it, then its bytes still to come.
    size: u64,
}

/// hyper's `ChunkedState`, less `End` (which is a boundary here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Start,
    Size,
    SizeLws,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    Trailer,
    TrailerLf,
    EndCr,
    EndLf,
}

/// What the bytes at a boundary are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Head {
    /// Not a whole head yet.
    Partial,
    /// A takeover head.
    Takeover,
    /// A request for hyper, which the framer now follows.
    Request,
    /// Something the framer does not follow: pass-through from here on.
    Pass,
}

impl Framer {
    /// Looks at the head at the front of `buf`, at a boundary.
    pub(crate) fn next_head(
        &mut self,
        buf: &[u8],
        is_takeover: fn(&httparse::Request<'_, '_>) -> bool,
    ) -> Head {
        debug_assert_eq!(self.state, State::Boundary);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let (head, state) = match req.parse(buf) {
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => {
                return Head::Partial;
            }
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => {
                if is_takeover(&req) {
                    (Head::Takeover, State::Takeover)
                } else if let Some(body) = body_len(&req) {
                    (Head::Request, State::Head { left: len, body })
                } else {
                    (Head::Pass, State::Pass)
                }
            }
            _ => (Head::Pass, State::Pass),
        };
        self.state = state;
        head
    }

    /// Takes bytes of the current request from the front of `avail`, stopping at its end.
    pub(crate) fn advance(&mut self, avail: &[u8]) -> usize {
        let mut at = 0;
        while at < avail.len() {
            let rest = avail.len() - at;
            match &mut self.state {
                State::Boundary | State::Takeover => break,
                State::Pass => return avail.len(),
                State::Head { left, body } => {
                    let n = (*left).min(rest);
                    *left -= n;
                    at += n;
                    if *left == 0 {
                        self.state = State::Body(*body).settle();
                    }
                }
                State::Body(BodyLen::Length(left)) => {
                    let n = usize::try_from(*left).map_or(rest, |left| left.min(rest));
                    *left -= n as u64;
                    at += n;
                    self.state = self.state.settle();
                }
                State::Body(BodyLen::Chunked(chunk)) if chunk.step == Step::Data => {
                    let n = usize::try_from(chunk.size).map_or(rest, |size| size.min(rest));
                    chunk.size -= n as u64;
                    at += n;
                    if chunk.size == 0 {
                        chunk.step = Step::DataCr;
                    }
                }
                State::Body(BodyLen::Chunked(chunk)) => {
                    at += 1;
                    match chunk.next(avail[at - 1]) {
                        Some(Some(step)) => chunk.step = step,
                        Some(None) => self.state = State::Boundary,
                        // hyper fails the body and stops reading the connection.
                        None => {
                            self.state = State::Pass;
                            return avail.len();
                        }
                    }
                }
            }
        }
        at
    }

    /// How many bytes hyper may read straight from the socket, with the buffer empty.
    pub(crate) fn direct(&self) -> Option<u64> {
        match self.state {
            State::Body(BodyLen::Length(left)) => Some(left),
            State::Body(BodyLen::Chunked(Chunk {
                step: Step::Data,
                size,
            })) => Some(size),
            State::Pass => Some(u64::MAX),
            _ => None,
        }
    }
}

impl State {
    /// A body with nothing left to come is a boundary.
    fn settle(self) -> State {
        match self {
            State::Body(BodyLen::Length(0)) => State::Boundary,
            other => other,
        }
    }
}

impl Chunk {
    fn new() -> Self {
        Chunk {
            step: Step::Start,
            size: 0,
        }
    }

    /// The step after `byte`: `Some(None)` ends the body, `None` is an error in hyper.
    fn next(&mut self, byte: u8) -> Option<Option<Step>> {
        if let (Step::Start | Step::Size, Some(digit)) = (self.step, hex(byte)) {
            // Overflow is an error in hyper too.
            self.size = self.size.checked_mul(16)?.checked_add(digit)?;
            return Some(Some(Step::Size));
        }
        let step = match (self.step, byte) {
            (Step::Size | Step::SizeLws, b'\t' | b' ') => Step::SizeLws,
            (Step::Size | Step::SizeLws, b';') => Step::Extension,
            (Step::Size | Step::SizeLws | Step::Extension, b'\r') => Step::SizeLf,
            // hyper rejects a bare LF in an extension, as some peers would end the line there.
            (Step::Extension, b'\n') => return None,
            (Step::Extension, _) => Step::Extension,
            (Step::SizeLf, b'\n') if self.size == 0 => Step::EndCr,
            (Step::SizeLf, b'\n') => Step::Data,
            (Step::DataCr, b'\r') => Step::DataLf,
            (Step::DataLf, b'\n') => Step::Start,
            (Step::Trailer, b'\r') => Step::TrailerLf,
            (Step::Trailer, _) => Step::Trailer,
            (Step::TrailerLf, b'\n') => Step::EndCr,
            (Step::EndCr, b'\r') => Step::EndLf,
            (Step::EndCr, _) => Step::Trailer,
            (Step::EndLf, b'\n') => return Some(None),
            _ => return None,
        };
        Some(Some(step))
    }
}

fn hex(byte: u8) -> Option<u64> {
    char::from(byte).to_digit(16).map(u64::from)
}

/// The body framing of a parsed request hyper would accept, or `None` when the framer should
/// not follow it. Stricter than hyper everywhere (`proto/h1/role.rs`, `Server::parse`).
fn body_len(req: &httparse::Request<'_, '_>) -> Option<BodyLen> {
    // HTTP/1.0 keep-alive rules differ, and CONNECT takes the connection over itself.
    if req.version != Some(1) || req.method?.eq_ignore_ascii_case("CONNECT") {
        return None;
    }
    let mut length = None;
    let mut chunked = false;
    for header in req.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return None;
            }
            length = Some(digits(header.value).filter(|&n| n <= MAX_CONTENT_LENGTH)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let value = header.value.trim_ascii();
            if chunked || !value.eq_ignore_ascii_case(b"chunked") {
                return None;
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("connection") && has_close(header.value)
        {
            return None;
        }
    }
    match (length, chunked) {
        (Some(_), true) => None,
        (None, true) => Some(BodyLen::Chunked(Chunk::new())),
        (length, false) => Some(BodyLen::Length(length.unwrap_or(0))),
    }
}

/// hyper's `from_digits`: ASCII digits only, no sign, no overflow.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        let digit = char::from(b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

fn has_close(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::convert::Infallible;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
    use hyper::{Method, StatusCode};
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::{mpsc, watch};

    const WAIT: Duration = Duration::from_secs(5);
    const BIG_BYTES: usize = 8 * 1024 * 1024;
    const EVENTS: &[u8] =
        b"GET /events?topic=a HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n";
    const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    const SSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: taken\n\n";

    fn is_events(req: &httparse::Request<'_, '_>) -> bool {
        req.method == Some("GET") && req.path.is_some_and(|p| p.starts_with("/events"))
    }

    async fn within<F: Future>(fut: F) -> F::Output {
        tokio::time::timeout(WAIT, fut).await.expect("timed out")
    }

    fn big_body() -> Bytes {
        (0..BIG_BYTES).map(|i| (i % 251) as u8).collect()
    }

    type TestBody = BoxBody<Bytes, Infallible>;

    fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<TestBody> {
        let mut res = Response::new(Full::new(body.into()).boxed());
        *res.status_mut() = status;
        res
    }

    async fn route(req: Request<Incoming>) -> Result<Response<TestBody>, Infallible> {
        let path = req.uri().path().to_owned();
        Ok(match (req.method().clone(), path.as_str()) {
            (Method::GET | Method::HEAD, "/healthz") => full(StatusCode::OK, "ok"),
            (Method::POST, "/echo") => match req.into_body().collect().await {
                Ok(body) => full(StatusCode::OK, body.to_bytes()),
                Err(_) => full(StatusCode::BAD_REQUEST, "bad body"),
            },
            (Method::GET, "/big") => full(StatusCode::OK, big_body()),
            (Method::GET, "/stream") => {
                let frames = futures::stream::unfold(0u8, |i| async move {
                    if i == 4 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(15)).await;
                    let frame = Frame::data(Bytes::from(format!("part {i}\n")));
                    Some((Ok::<_, Infallible>(frame), i + 1))
                });
                Response::new(StreamBody::new(frames).boxed())
            }
            _ => full(StatusCode::NOT_FOUND, "not found"),
        })
    }

    /// What one server connection ended with.
    #[derive(Debug)]
    enum Outcome {
        TakenOver(BytesMut),
        Closed,
        Failed(io::Error),
    }

    /// The real `serve` behind a loopback listener, as the server's connection task uses it.
    struct TestServer {
        addr: std::net::SocketAddr,
        outcomes: mpsc::UnboundedReceiver<Outcome>,
        stop: watch::Sender<bool>,
    }

    impl TestServer {
        /// A server whose front end reads the first head into the prefix.
        async fn start() -> Self {
            Self::start_with(true).await
        }

        async fn start_with(read_first_head: bool) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (tx, outcomes) = mpsc::unbounded_channel();
            let (stop, stopped) = watch::channel(false);
            tokio::spawn(async move {
                while let Ok((sock, _)) = listener.accept().await {
                    let (tx, stopped) = (tx.clone(), stopped.clone());
                    tokio::spawn(connection(sock, read_first_head, tx, stopped));
                }
            });
            TestServer {
                addr,
                outcomes,
                stop,
            }
        }

        async fn connect(&self) -> Client {
            let stream = within(TcpStream::connect(self.addr)).await.unwrap();
            Client {
                stream,
                acc: Vec::new(),
            }
        }

        async fn outcome(&mut self) -> Outcome {
            within(self.outcomes.recv()).await.expect("server gone")
        }

        /// The connection was taken over with `head` first in the kept bytes.
        async fn expect_takeover(&mut self, head: &[u8]) -> BytesMut {
            match self.outcome().await {
                Outcome::TakenOver(kept) => {
                    assert!(kept.starts_with(head), "kept {kept:?}");
                    kept
                }
                Outcome::Failed(e) => panic!("serve failed: {e}"),
                Outcome::Closed => panic!("expected a takeover, got closed"),
            }
        }

        async fn expect_closed(&mut self) {
            match self.outcome().await {
                Outcome::Closed => {}
                Outcome::Failed(e) => panic!("serve failed: {e}"),
                Outcome::TakenOver(kept) => panic!("expected closed, got a takeover of {kept:?}"),
            }
        }
    }

    /// Reads the first head as the server's front end does, then serves the rest.
    async fn connection(
        mut sock: TcpStream,
        read_first_head: bool,
        outcomes: mpsc::UnboundedSender<Outcome>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut prefix = BytesMut::new();
        let mut reading = read_first_head;
        while reading {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            reading = match httparse::Request::new(&mut headers).parse(&prefix) {
                Ok(httparse::Status::Partial) if prefix.len() < MAX_HEAD_BYTES => {
                    sock.read_buf(&mut prefix).await.unwrap_or(0) > 0
                }
                _ => false,
            };
        }
        let builder = http1::Builder::new();
        let service = hyper::service::service_fn(route);
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let outcome = match serve(sock, prefix, &builder, service, is_events, shutdown).await {
            Ok(Served::TakenOver(mut sock, kept)) => {
                assert!(kept.starts_with(b"GET /events"), "kept {kept:?}");
                sock.write_all(SSE).await.unwrap();
                sock.shutdown().await.unwrap();
                Outcome::TakenOver(kept)
            }
            Ok(Served::Closed) => Outcome::Closed,
            Err(e) => Outcome::Failed(e),
        };
        let _ = outcomes.send(outcome);
    }

    /// One parsed response.
    #[derive(Debug)]
    struct Res {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Res {
        fn header(&self, name: &str) -> Option<&str> {
            let mut values = self.headers.iter().filter(|(n, _)| n == name);
            values.next().map(|(_, v)| v.as_str())
        }

        /// A `200` with `body` on a connection that stays open.
        fn assert_ok(&self, body: &[u8]) {
            assert_eq!(self.status, 200, "{self:?}");
            assert_eq!(self.body, body);
            self.assert_keep_alive();
        }

        fn assert_keep_alive(&self) {
            assert!(
                !self
                    .header("connection")
                    .is_some_and(|c| c.contains("close")),
                "{self:?}"
            );
        }
    }

    /// Parses one response for `method` from the front of `bytes`, with the bytes it took.
    fn parse_response(bytes: &[u8], method: &str) -> Option<(Res, usize)> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut headers);
        let head = match res.parse(bytes).expect("a valid response head") {
            httparse::Status::Complete(head) => head,
            httparse::Status::Partial => return None,
        };
        let parsed = Res {
            status: res.code.unwrap(),
            headers: res
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8(h.value.to_vec()).unwrap();
                    (h.name.to_ascii_lowercase(), value)
                })
                .collect(),
            body: Vec::new(),
        };
        let rest = &bytes[head..];
        if method == "HEAD" || parsed.status == 100 {
            return Some((parsed, head));
        }
        if let Some(len) = parsed.header("content-length") {
            let len: usize = len.parse().unwrap();
            let body = rest.get(..len)?.to_vec();
            return Some((Res { body, ..parsed }, head + len));
        }
        if parsed.header("transfer-encoding") == Some("chunked") {
            let (body, used) = dechunk(rest)?;
            return Some((Res { body, ..parsed }, head + used));
        }
        Some((parsed, head))
    }

    fn dechunk(mut bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
        let start = bytes.len();
        let mut body = Vec::new();
        loop {
            let line = bytes.windows(2).position(|w| w == b"\r\n")?;
            let size = std::str::from_utf8(&bytes[..line]).unwrap();
            let size = usize::from_str_radix(size.split(';').next().unwrap(), 16).unwrap();
            bytes = &bytes[line + 2..];
            if size == 0 {
                assert!(bytes.get(..2)? == b"\r\n", "no trailers expected");
                return Some((body, start - bytes.len() + 2));
            }
            body.extend_from_slice(bytes.get(..size)?);
            assert_eq!(bytes.get(size..size + 2)?, b"\r\n");
            bytes = &bytes[size + 2..];
        }
    }

    /// A raw client socket.
    struct Client {
        stream: TcpStream,
        acc: Vec<u8>,
    }

    impl Client {
        async fn send(&mut self, bytes: &[u8]) {
            within(self.stream.write_all(bytes)).await.unwrap();
        }

        /// Reads until `n` more bytes arrived, or EOF; returns whether it was EOF.
        async fn read_more(&mut self, step: usize) -> bool {
            let mut chunk = vec![0; step];
            let n = within(self.stream.read(&mut chunk)).await.unwrap();
            self.acc.extend_from_slice(&chunk[..n]);
            n == 0
        }

        /// The next final response (interim `100 Continue` skipped: see `interim`).
        async fn response(&mut self, method: &str) -> Res {
            loop {
                if let Some((res, used)) = parse_response(&self.acc, method) {
                    self.acc.drain(..used);
                    if res.status != 100 {
                        return res;
                    }
                    continue;
                }
                assert!(!self.read_more(64 * 1024).await, "EOF inside a response");
            }
        }

        /// An interim `100 Continue`.
        async fn interim(&mut self) {
            loop {
                if let Some((res, used)) = parse_response(&self.acc, "GET") {
                    assert_eq!(res.status, 100);
                    self.acc.drain(..used);
                    return;
                }
                assert!(!self.read_more(1024).await, "EOF before 100 Continue");
            }
        }

        /// Everything until the server closes.
        async fn rest(&mut self) -> Vec<u8> {
            while !self.read_more(64 * 1024).await {}
            std::mem::take(&mut self.acc)
        }

        /// After the responses, exactly the fake stream, then EOF.
        async fn expect_sse(&mut self) {
            let rest = self.rest().await;
            assert_eq!(String::from_utf8_lossy(&rest), String::from_utf8_lossy(SSE));
        }
    }

    fn post(path: &str, body: &[u8]) -> Vec<u8> {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        req
    }

    fn concat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[tokio::test]
    async fn takeover_after_healthz() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(HEALTHZ).await;
        c.response("GET").await.assert_ok(b"ok");
        c.send(EVENTS).await;
        c.expect_sse().await;
        assert_eq!(&srv.expect_takeover(EVENTS).await[..], EVENTS);
    }

    #[tokio::test]
    async fn takeover_after_two_healthz() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        for _ in 0..2 {
            c.send(HEALTHZ).await;
            c.response("GET").await.assert_ok(b"ok");
        }
        c.send(EVENTS).await;
        c.expect_sse().await;
        srv.expect_takeover(EVENTS).await;
    }

    #[tokio::test]
    async fn takeover_after_post_with_content_length() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(&post("/echo", b"hello world")).await;
        c.response("POST").await.assert_ok(b"hello world");
        c.send(EVENTS).await;
        c.expect_sse().await;
        srv.expect_takeover(EVENTS).await;
    }

    #[tokio::test]
    async fn takeover_after_head() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await;
        let res = c.response("HEAD").await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-length"), Some("2"));
        res.assert_keep_alive();
        c.send(EVENTS).await;
        c.expect_sse().await;
        srv.expect_takeover(EVENTS).await;
    }

    #[tokio::test]
    async fn takeover_after_expect_continue() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        )
        .await;
        c.interim().await;
        c.send(b"hello").await;
        c.response("POST").await.assert_ok(b"hello");
        c.send(EVENTS).await;
        c.expect_sse().await;
        srv.expect_takeover(EVENTS).await;
    }

    #[tokio::test]
    async fn takeover_of_a_dribbled_head() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(HEALTHZ).await;
        c.response("GET").await.assert_ok(b"ok");
        for piece in EVENTS.chunks(3) {
            c.send(piece).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        c.expect_sse().await;
        srv.expect_takeover(EVENTS).await;
    }

    #[tokio::test]
    async fn takeover_as_first_request_skips_hyper() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(EVENTS).await;
        c.expect_sse().await;
        assert_eq!(&srv.expect_takeover(EVENTS).await[..], EVENTS);
    }

    #[tokio::test]
    async fn takeover_as_first_request_read_by_the_handback() {
        let mut srv = TestServer::start_with(false).await;
        let mut c = srv.connect().await;
        for piece in EVENTS.chunks(5) {
            c.send(piece).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        c.expect_sse().await;
        assert_eq!(&srv.expect_takeover(EVENTS).await[..], EVENTS);
    }

    #[tokio::test]
    async fn pass_through_lasts_for_the_rest_of_the_connection() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        // hyper accepts a repeated equal Content-Length; the framer does not follow it.
        let repeated = b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi";
        c.send(&concat(&[repeated, EVENTS])).await;
        c.response("POST").await.assert_ok(b"hi");
        let res = c.response("GET").await;
        assert_eq!(res.status, 404, "hyper serves the subscribe: {res:?}");
        res.assert_keep_alive();
        within(c.stream.shutdown()).await.unwrap();
        assert_eq!(c.rest().await, b"");
        srv.expect_closed().await;
    }

    #[tokio::test]
    async fn takeover_of_a_head_behind_a_body_tail() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        let req = post("/echo", b"0123456789");
        let (first, tail) = req.split_at(req.len() - 6);
        c.send(first).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.send(&concat(&[tail, EVENTS])).await;
        c.response("POST").await.assert_ok(b"0123456789");
        c.expect_sse().await;
        srv.expect_takeover(EVENTS).await;
    }

    #[tokio::test]
    async fn takeover_after_pipelined_requests() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(&concat(&[HEALTHZ, HEALTHZ, EVENTS])).await;
        c.response("GET").await.assert_ok(b"ok");
        c.response("GET").await.assert_ok(b"ok");
        c.expect_sse().await;
        assert_eq!(&srv.expect_takeover(EVENTS).await[..], EVENTS);
    }

    #[tokio::test]
    async fn takeover_after_pipelined_chunked_post_with_trailer() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        let chunked = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n";
        c.send(&concat(&[chunked, EVENTS])).await;
        c.response("POST").await.assert_ok(b"hello world");
        c.expect_sse().await;
        srv.expect_takeover(EVENTS).await;
    }

    #[tokio::test]
    async fn takeover_after_a_large_response_read_slowly() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(&concat(&[b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n", EVENTS]))
            .await;
        // Small reads with pauses keep hyper's writes blocked on a full socket.
        while c.acc.len() < 1024 * 1024 {
            assert!(!c.read_more(16 * 1024).await);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let res = c.response("GET").await;
        assert_eq!(res.status, 200);
        assert!(res.body == big_body(), "the big body arrived whole");
        res.assert_keep_alive();
        c.expect_sse().await;
        srv.expect_takeover(EVENTS).await;
    }

    #[tokio::test]
    async fn takeover_after_a_streaming_response() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(&concat(&[
            b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n",
            EVENTS,
        ]))
        .await;
        let res = c.response("GET").await;
        assert_eq!(res.header("transfer-encoding"), Some("chunked"));
        res.assert_ok(b"part 0\npart 1\npart 2\npart 3\n");
        c.expect_sse().await;
        srv.expect_takeover(EVENTS).await;
    }

    #[tokio::test]
    async fn bodies_that_look_like_a_subscribe_are_not_sniffed() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        let chunked = concat(&[
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
            format!("{:x}\r\n", EVENTS.len()).as_bytes(),
            EVENTS,
            b"\r\n0\r\n\r\n",
        ]);
        c.send(&concat(&[&post("/echo", EVENTS), &chunked, HEALTHZ]))
            .await;
        c.response("POST").await.assert_ok(EVENTS);
        c.response("POST").await.assert_ok(EVENTS);
        c.response("GET").await.assert_ok(b"ok");
        c.send(EVENTS).await;
        c.expect_sse().await;
        assert_eq!(&srv.expect_takeover(EVENTS).await[..], EVENTS);
    }

    #[tokio::test]
    async fn connection_close_is_honoured() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(&concat(&[
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            EVENTS,
        ]))
        .await;
        let res = c.response("GET").await;
        assert_eq!(res.body, b"ok");
        assert_eq!(res.header("connection"), Some("close"));
        assert_eq!(c.rest().await, b"", "nothing after the closing response");
        srv.expect_closed().await;
    }

    #[tokio::test]
    async fn a_bad_request_gets_400_and_no_takeover() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(HEALTHZ).await;
        c.response("GET").await.assert_ok(b"ok");
        c.send(&concat(&[
            b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n",
            EVENTS,
        ]))
        .await;
        let res = c.response("GET").await;
        assert_eq!(res.status, 400);
        assert_eq!(c.rest().await, b"");
        srv.expect_closed().await;
    }

    #[tokio::test]
    async fn client_close_ends_as_closed() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(HEALTHZ).await;
        c.response("GET").await.assert_ok(b"ok");
        within(c.stream.shutdown()).await.unwrap();
        srv.expect_closed().await;
    }

    #[tokio::test]
    async fn shutdown_closes_an_idle_connection() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(HEALTHZ).await;
        c.response("GET").await.assert_ok(b"ok");
        srv.stop.send_replace(true);
        assert_eq!(c.rest().await, b"");
        srv.expect_closed().await;
    }

    #[tokio::test]
    async fn shutdown_finishes_the_response_and_takes_nothing_over() {
        let mut srv = TestServer::start().await;
        let mut c = srv.connect().await;
        c.send(&concat(&[
            b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n",
            EVENTS,
        ]))
        .await;
        // The stream's first part is out: hyper is mid-response, the subscribe waits behind it.
        while !c.acc.windows(6).any(|w| w == b"part 0") {
            assert!(!c.read_more(1024).await);
        }
        srv.stop.send_replace(true);
        let res = c.response("GET").await;
        assert_eq!(res.body, b"part 0\npart 1\npart 2\npart 3\n");
        assert_eq!(c.rest().await, b"");
        srv.expect_closed().await;
    }

    /// An IO that counts the writes that reach it.
    struct CountingWrites {
        io: tokio::io::DuplexStream,
        writes: Arc<AtomicUsize>,
    }

    impl AsyncRead for CountingWrites {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            dst: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_read(cx, dst)
        }
    }

    impl AsyncWrite for CountingWrites {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            src: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes.fetch_add(1, Ordering::Relaxed);
            Pin::new(&mut self.io).poll_write(cx, src)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn pipelined_answers_leave_together() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let writes = Arc::new(AtomicUsize::new(0));
        let io = CountingWrites {
            io: server,
            writes: writes.clone(),
        };
        client.write_all(&HEALTHZ.repeat(20)).await.unwrap();
        let serving = tokio::spawn(async move {
            let builder = http1::Builder::new();
            let service = hyper::service::service_fn(route);
            let never = std::future::pending();
            serve(io, BytesMut::new(), &builder, service, is_events, never).await
        });
        let mut acc = Vec::new();
        let answered = |acc: &mut Vec<u8>| {
            let mut count = 0;
            while let Some((res, used)) = parse_response(acc, "GET") {
                res.assert_ok(b"ok");
                acc.drain(..used);
                count += 1;
            }
            count
        };
        let mut count = 0;
        while count < 20 {
            within(client.read_buf(&mut acc)).await.unwrap();
            count += answered(&mut acc);
        }
        assert_eq!(
            writes.load(Ordering::Relaxed),
            1,
            "twenty answers, one write"
        );
        // A request that comes alone is answered at once.
        client.write_all(HEALTHZ).await.unwrap();
        while answered(&mut acc) == 0 {
            within(client.read_buf(&mut acc)).await.unwrap();
        }
        assert_eq!(writes.load(Ordering::Relaxed), 2);
        drop(client);
        assert!(matches!(within(serving).await.unwrap(), Ok(Served::Closed)));
    }

    // === the framer alone ===

    /// A socket that yields `segments` one read at a time, then EOF.
    struct Script {
        segments: std::collections::VecDeque<Vec<u8>>,
    }

    impl AsyncRead for Script {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            dst: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some(mut segment) = self.segments.pop_front() {
                let n = segment.len().min(dst.remaining());
                dst.put_slice(&segment[..n]);
                if n < segment.len() {
                    self.segments.push_front(segment.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    /// The framer tests write nothing.
    impl AsyncWrite for Script {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            unreachable!("nothing is written")
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// What hyper would see: each request's bytes, then either the kept takeover bytes or a
    /// pass-through tail.
    #[derive(Debug, PartialEq)]
    struct Seen {
        requests: Vec<Vec<u8>>,
        kept: Option<Vec<u8>>,
        passed: Vec<u8>,
    }

    /// Reads a `Handback` over `segments` the way hyper does, `window` bytes at most per read,
    /// with every response already written out.
    fn drive(segments: Vec<Vec<u8>>, window: usize) -> Seen {
        let mut io = Handback {
            // A socket never reads zero bytes before its end.
            io: Script {
                segments: segments.into_iter().filter(|s| !s.is_empty()).collect(),
            },
            buf: BytesMut::new(),
            held: BytesMut::new(),
            given: 0,
            framer: Framer::default(),
            is_takeover: is_events,
            shared: Arc::new(Shared::default()),
            io_eof: false,
            handed_back: false,
            parked: false,
            fed: false,
        };
        let mut seen = Seen {
            requests: vec![Vec::new()],
            kept: None,
            passed: Vec::new(),
        };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        loop {
            let mut space = vec![0; window];
            let mut dst = ReadBuf::new(&mut space);
            match Pin::new(&mut io).poll_read(&mut cx, &mut dst) {
                Poll::Ready(Ok(())) => {}
                other => panic!("read gave {other:?}"),
            }
            let filled = dst.filled();
            if filled.is_empty() {
                break;
            }
            if io.framer.state == State::Pass {
                seen.passed.extend_from_slice(filled);
            } else if let Some(request) = seen.requests.last_mut() {
                request.extend_from_slice(filled);
            }
            if io.framer.state == State::Boundary || io.framer.state == State::Takeover {
                seen.requests.push(Vec::new());
            }
        }
        seen.requests.retain(|r| !r.is_empty());
        if io.handed_back {
            // What the subscribe path gets: the kept bytes, then the socket's unread ones.
            let unread = io.io.segments.iter().flatten().copied();
            seen.kept = Some(io.buf.iter().copied().chain(unread).collect());
        }
        seen
    }

    const CHUNKED: &[u8] = b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;a=b\r\nhello\r\n6 ; ext\r\n world\r\nA\r\nGET /event\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n";

    fn takeover_cases() -> Vec<(&'static str, Vec<&'static [u8]>)> {
        vec![
            ("healthz", vec![HEALTHZ]),
            ("two healthz", vec![HEALTHZ, HEALTHZ]),
            (
                "content-length",
                vec![b"POST /echo HTTP/1.1\r\nContent-Length: 13\r\n\r\nGET /events\r\n"],
            ),
            ("chunked", vec![CHUNKED]),
            (
                "chunked, no trailer",
                vec![b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"],
            ),
            ("leading empty line", vec![b"\r\nGET /a HTTP/1.1\r\n\r\n"]),
            (
                "mixed",
                vec![
                    HEALTHZ,
                    CHUNKED,
                    b"HEAD /x HTTP/1.1\r\ncontent-length: 0\r\n\r\n",
                ],
            ),
        ]
    }

    #[test]
    fn framer_splits_pipelined_requests_at_every_position() {
        for (name, requests) in takeover_cases() {
            let mut wire = requests.concat();
            wire.extend_from_slice(EVENTS);
            wire.extend_from_slice(b"after");
            let expected = Seen {
                requests: requests.iter().map(|r| r.to_vec()).collect(),
                kept: Some(concat(&[EVENTS, b"after"])),
                passed: Vec::new(),
            };
            for split in 0..=wire.len() {
                for window in [1, 7, 64, 8192] {
                    let segments = vec![wire[..split].to_vec(), wire[split..].to_vec()];
                    let seen = drive(segments, window);
                    assert_eq!(seen, expected, "{name}: split at {split}, window {window}");
                }
            }
            let bytes = wire.iter().map(|&b| vec![b]).collect();
            assert_eq!(drive(bytes, 8192), expected, "{name}: byte by byte");
        }
    }

    #[test]
    fn framer_passes_through_what_it_does_not_follow() {
        let cases: &[(&str, &[u8])] = &[
            ("te and cl", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
            ("te gzip", b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            ("te twice", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ("bad cl", b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n"),
            ("cl overflow", b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"),
            ("repeated cl", b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"),
            ("upgrade", b"GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
            ("connect", b"CONNECT a:443 HTTP/1.1\r\n\r\n"),
            ("http/1.0", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            ("connection close", b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n"),
            ("parse error", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"),
            ("h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            ("bad chunk", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            ("lf in extension", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a\n"),
        ];
        for (name, head) in cases {
            let wire = concat(&[HEALTHZ, head, EVENTS]);
            let seen = drive(vec![wire.clone()], 8192);
            assert_eq!(
                seen.requests.first().map(Vec::as_slice),
                Some(HEALTHZ),
                "{name}"
            );
            assert_eq!(seen.kept, None, "{name}: taken over");
            let given = concat(&[&seen.requests.concat(), &seen.passed]);
            assert_eq!(given, wire, "{name}: hyper gets every byte");
        }
    }

    #[test]
    fn framer_passes_an_oversized_head_through() {
        let mut head = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        head.resize(MAX_HEAD_BYTES + 10, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        let wire = concat(&[&head, EVENTS]);
        let seen = drive(vec![wire.clone()], 4096);
        assert_eq!(seen.kept, None);
        assert_eq!(seen.passed, wire);
    }

    #[test]
    fn framer_hands_eof_mid_message_to_hyper() {
        let wire = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc".to_vec();
        let seen = drive(vec![wire.clone()], 8192);
        assert_eq!(seen.requests.concat(), wire);
        assert_eq!(seen.kept, None);
        let cut = drive(vec![b"GET /events HTTP/1.1\r\nHost:".to_vec()], 8192);
        assert_eq!(cut.passed, b"GET /events HTTP/1.1\r\nHost:");
    }

    #[test]
    fn content_length_digits_match_hyper() {
        assert_eq!(digits(b"0"), Some(0));
        assert_eq!(digits(b"0012"), Some(12));
        assert_eq!(digits(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"1 2",
            b"0x10",
            b"18446744073709551616",
        ] {
            assert_eq!(digits(bad), None, "{bad:?}");
        }
    }
}
