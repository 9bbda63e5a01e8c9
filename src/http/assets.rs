//! The demo page: files from `static/`, built into the binary so it serves them from anywhere.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::Response;

/// Each file: its path, its media type and its bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("../../static/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/style.css"),
    ),
];

/// Whether `path` names a demo file.
pub fn exists(path: &str) -> bool {
    FILES.iter().any(|(file, _, _)| *file == path)
}

/// The demo file at `path`, if there is one.
pub fn get(path: &str) -> Option<Response<Full<Bytes>>> {
    let (_, media_type, bytes) = FILES.iter().find(|(file, _, _)| *file == path)?;
    let mut response = Response::new(Full::new(Bytes::from_static(bytes)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}
