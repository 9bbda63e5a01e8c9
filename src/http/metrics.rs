//! `GET /metrics`: every metric in the Prometheus text format.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;

use super::Context;

/// The metrics answer.
pub fn handle(context: &Context) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(context.metrics.encode())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}
