//! `GET /healthz`: `200 ok` while the server runs; `503` with the reason once a broadcaster
//! shard has failed (the server then stops with an error, so that a supervisor restarts it),
//! and while a node started with `--redis` cannot reach Redis.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::{error, Context};

/// The health answer.
pub fn handle(context: &Context) -> Response<Full<Bytes>> {
    if let Some(why) = context.broadcaster.failure() {
        return error::response(StatusCode::SERVICE_UNAVAILABLE, &why);
    }
    if context.stats.redis.is_up() == Some(false) {
        let why = "Redis is unreachable: publishes are refused until it is back";
        return error::response(StatusCode::SERVICE_UNAVAILABLE, why);
    }
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}
