//! The loadtest's error type: a cause per variant, for the command line to print.

use std::io;

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A URL that is not plain HTTP on loopback.
    #[error("{0}: {1}")]
    Url(String, String),
    /// A flag value that makes no sense.
    #[error("{0}")]
    Flag(String),
    /// An operating system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// The server answered something the loadtest cannot use.
    #[error("{0}")]
    Http(String),
    /// A `/proc` file could not be read or parsed.
    #[error("reading {0}: {1}")]
    Proc(String, String),
    /// A worker process failed or said something unexpected.
    #[error("worker: {0}")]
    Worker(String),
    /// A token could not be made.
    #[error("making a token: {0}")]
    Token(jsonwebtoken::errors::Error),
    /// A phase did not finish in its time bound.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl Error {
    /// Wraps an IO error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
