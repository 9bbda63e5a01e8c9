//! Error answers: a status and a JSON body `{"error": "..."}`, for hyper or for a raw socket.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

/// The JSON body of an error answer.
pub fn body(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// An error answer for hyper.
pub fn response(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body(message))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A whole HTTP/1.1 error answer that closes the connection, for requests refused before hyper
/// sees them (a head too large or malformed, a bad subscribe, the open-file limit), with any
/// `headers` added.
pub fn raw(status: StatusCode, message: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let body = body(message);
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
    );
    for (name, value) in headers {
        answer.push_str(&format!("{name}: {value}\r\n"));
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    answer.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_answer_is_a_whole_response() {
        let raw = raw(
            StatusCode::BAD_REQUEST,
            "bad \"topic\"",
            &[("retry-after", "5")],
        );
        let text = String::from_utf8(raw).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 25\r\n\
             connection: close\r\nretry-after: 5\r\n\r\n{\"error\":\"bad \\\"topic\\\"\"}"
        );
    }
}
