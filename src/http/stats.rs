//! `GET /stats`: the server's counters and resident memory as JSON.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

use super::{json, Context};

/// The stats answer.
pub fn handle(context: &Context) -> Response<Full<Bytes>> {
    json(StatusCode::OK, &context.stats.snapshot())
}
