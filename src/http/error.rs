//! Error answers: a status and a JSON body `{"error": "..."}`, for hyper or for a raw socket;
//! for a refused token, the status and `WWW-Authenticate` challenge of RFC 6750 ([`Challenge`]).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::auth::TokenError;

/// What a request refused for its token is told (RFC 6750 section 3, as Mercure 1.0 asks):
/// a status and a `WWW-Authenticate: Bearer` challenge, beside the JSON body saying why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// No token where one is needed: `401`, a challenge without an error code.
    Bare,
    /// The token's presentation is malformed (the `Authorization` header): `400`.
    InvalidRequest,
    /// A token was presented and is not valid: `401`.
    InvalidToken,
    /// A valid token does not allow the request: `403`.
    InsufficientScope,
}

impl Challenge {
    /// The status it answers with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Bare | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
        }
    }

    /// The value of its `WWW-Authenticate` header.
    pub fn header(self) -> &'static str {
        match self {
            Self::Bare => "Bearer",
            Self::InvalidRequest => "Bearer error=\"invalid_request\"",
            Self::InvalidToken => "Bearer error=\"invalid_token\"",
            Self::InsufficientScope => "Bearer error=\"insufficient_scope\"",
        }
    }
}

impl From<TokenError> for Challenge {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Missing => Self::Bare,
            TokenError::BadHeader => Self::InvalidRequest,
            _ => Self::InvalidToken,
        }
    }
}

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
    fn token_errors_get_the_challenges_of_rfc_6750() {
        let cases = [
            (TokenError::Missing, 401, "Bearer"),
            (
                TokenError::BadHeader,
                400,
                "Bearer error=\"invalid_request\"",
            ),
            (TokenError::Malformed, 401, "Bearer error=\"invalid_token\""),
            (TokenError::Expired, 401, "Bearer error=\"invalid_token\""),
            (
                TokenError::WrongAudience,
                401,
                "Bearer error=\"invalid_token\"",
            ),
        ];
        for (error, status, header) in cases {
            let challenge = Challenge::from(error);
            assert_eq!(challenge.status().as_u16(), status, "{error:?}");
            assert_eq!(challenge.header(), header, "{error:?}");
        }
        let scope = Challenge::InsufficientScope;
        assert_eq!(scope.status(), StatusCode::FORBIDDEN);
        assert_eq!(scope.header(), "Bearer error=\"insufficient_scope\"");
    }

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
