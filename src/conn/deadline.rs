//! A write deadline for the connections hyper serves: a socket that stays unwritable for the
//! write timeout fails its write with `TimedOut`, and hyper closes the connection.
//!
//! Without it a client that sends requests and never reads its answers holds a task, hyper's
//! buffers and two full socket buffers for as long as it likes. The timer is allocated the first
//! time a write waits and re-armed (not allocated again) each time a wait starts; any progress
//! disarms it. A connection whose writes never wait costs a `Duration`, an `Option` and a flag.
//! Reads pass through untouched: a quiet client is the head and body timeouts' business.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{sleep_until, Instant, Sleep};

/// A write waited longer than the write timeout.
#[derive(Debug, thiserror::Error)]
#[error("socket not writable for {0:?}")]
pub struct WriteTimedOut(pub Duration);

/// An IO whose writes fail once one has waited for `timeout`.
#[derive(Debug)]
pub struct Deadline<T> {
    /// The socket.
    io: T,
    /// How long a write may wait.
    timeout: Duration,
    /// The timer, allocated at the first write that waits.
    sleep: Option<Pin<Box<Sleep>>>,
    /// `sleep` is counting the current wait.
    armed: bool,
}

impl<T> Deadline<T> {
    /// Wraps `io`, whose writes may wait at most `timeout`.
    pub fn new(io: T, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            sleep: None,
            armed: false,
        }
    }

    /// The socket, to be used without a deadline.
    pub fn into_inner(self) -> T {
        self.io
    }

    /// Called when a write or flush waits: starts the timer unless it counts this wait
    /// already, and fails once it has run out.
    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let sleep = match &mut self.sleep {
            Some(sleep) if self.armed => sleep,
            Some(sleep) => {
                sleep.as_mut().reset(Instant::now() + self.timeout);
                sleep
            }
            None => self
                .sleep
                .insert(Box::pin(sleep_until(Instant::now() + self.timeout))),
        };
        self.armed = true;
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                WriteTimedOut(self.timeout),
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Disarms the timer on any answer from the socket, and starts or checks it on a wait.
    fn guard<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(result) => {
                self.armed = false;
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_wait(cx).map(Err),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Deadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Deadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, src);
        this.guard(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.guard(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.guard(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        this.guard(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_that_waits_too_long_fails() {
        let (mut client, server) = tokio::io::duplex(16);
        let mut io = Deadline::new(server, Duration::from_secs(10));
        io.write_all(&[0; 16]).await.unwrap();
        assert!(io.sleep.is_none(), "no timer until a write waits");
        let started = Instant::now();
        let error = io.write_all(&[0; 16]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        let mut drained = [0; 16];
        client.read_exact(&mut drained).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn progress_restarts_the_clock() {
        let (mut client, server) = tokio::io::duplex(16);
        let mut io = Deadline::new(server, Duration::from_secs(10));
        let reader = tokio::spawn(async move {
            // Takes 16 bytes every 6 s: each wait is shorter than the timeout, their sum is not.
            let mut total = 0;
            let mut chunk = [0; 16];
            while total < 64 {
                tokio::time::sleep(Duration::from_secs(6)).await;
                total += client.read(&mut chunk).await.unwrap();
            }
        });
        io.write_all(&[0; 64]).await.unwrap();
        assert!(io.sleep.is_some() && !io.armed);
        reader.await.unwrap();
        drop(io.into_inner());
    }
}
