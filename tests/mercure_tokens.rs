//! Mercure 1.0 access tokens (`typ: at+jwt`, grants in `authorization_details`) beside 0.x
//! ones: publishing, private updates live and on resume, the 1.0 cookie, `iss` and `aud`, and
//! the RFC 6750 challenge of every refusal, byte for byte.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::{request, Response, Server, Stream};

const PUBLISHER: &str = "a publisher secret";
const SUBSCRIBER: &str = "a subscriber secret";
const ISSUER: &str = "https://example.com";
const AUDIENCE: &str = "https://hub.example.com/.well-known/mercure";
const DETAIL: &str = "https://mercure.rocks/authorization-detail";
const BOOK: &str = "https://example.com/books/1";
const COOKIE: &str = "__Secure-mercure_access_token";

const BARE: &str = "\r\nwww-authenticate: Bearer\r\n";
const INVALID_TOKEN: &str = "\r\nwww-authenticate: Bearer error=\"invalid_token\"\r\n";
const INVALID_REQUEST: &str = "\r\nwww-authenticate: Bearer error=\"invalid_request\"\r\n";
const INSUFFICIENT_SCOPE: &str = "\r\nwww-authenticate: Bearer error=\"insufficient_scope\"\r\n";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token with `claims`, its header's `typ` being `typ`, signed with HS256 and `secret`.
fn signed(secret: &str, typ: &str, claims: &Value) -> String {
    let header = Header {
        typ: Some(typ.into()),
        ..Header::new(Algorithm::HS256)
    };
    let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
    encode(&header, claims, &key).unwrap()
}

/// 1.0 claims granting `action` on `topics` (`{match, match_type}` objects), issued by
/// [`ISSUER`] for [`AUDIENCE`], expiring in ten minutes.
fn access(action: &str, topics: Value) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6",
        "exp": now() + 600,
        "authorization_details": [{"type": DETAIL, "actions": [action], "topics": topics}],
    })
}

/// An `at+jwt` token of `secret` granting `action` on `topics`.
fn access_token(secret: &str, action: &str, topics: Value) -> String {
    signed(secret, "at+jwt", &access(action, topics))
}

/// A subscriber's `at+jwt` token granting `subscribe` on the exact topic `topic`.
fn subscriber(topic: &str) -> String {
    access_token(SUBSCRIBER, "subscribe", json!([{ "match": topic }]))
}

/// A publisher's `at+jwt` token granting `publish` on every topic.
fn publisher() -> String {
    access_token(PUBLISHER, "publish", json!([{"match": "*"}]))
}

/// `POST /.well-known/mercure` with a form and these header lines.
async fn mercure_publish(server: &Server, form: &str, headers: &str) -> Response {
    let raw = format!(
        "POST /.well-known/mercure HTTP/1.1\r\nHost: t\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n{headers}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    request(server.addr, raw).await
}

/// Publishes `id` to [`BOOK`], private or not, with a 1.0 publisher token.
async fn publish_book(server: &Server, id: &str, private: bool) {
    let private = if private { "&private=on" } else { "" };
    let form = format!("topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&data=x&id={id}{private}");
    let bearer = format!("Authorization: Bearer {}\r\n", publisher());
    let response = mercure_publish(server, &form, &bearer).await;
    assert_eq!(response.status, 200, "{}", body(&response));
    assert_eq!(response.body, id.as_bytes());
}

fn body(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// Asserts a hyper answer's status, `WWW-Authenticate` line and error message.
fn assert_refused(response: &Response, status: u16, challenge: &str, error: &str) {
    assert_eq!(
        response.status,
        status,
        "{}\n{}",
        response.head,
        body(response)
    );
    let head = format!("{}\r\n", response.head);
    assert_eq!(
        head.matches("www-authenticate").count(),
        1,
        "{}",
        response.head
    );
    assert!(
        head.contains(challenge),
        "{challenge:?} in\n{}",
        response.head
    );
    let message = response.json()["error"].as_str().unwrap().to_owned();
    assert!(message.contains(error), "{message}");
}

/// The whole answer to a subscribe refused on the raw socket: `status`, the challenge line
/// `challenge`, and the JSON body `{"error": message}`, byte for byte.
async fn assert_subscribe_refused(stream: Stream, status: &str, challenge: &str, message: &str) {
    let body = json!({ "error": message }).to_string();
    let expected = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close{challenge}\r\n",
        body.len()
    );
    assert_eq!(stream.head, expected);
    assert_eq!(String::from_utf8(stream.rest().await).unwrap(), body);
}

fn keys() -> Vec<&'static str> {
    vec![
        "--publisher-jwt-key",
        PUBLISHER,
        "--subscriber-jwt-key",
        SUBSCRIBER,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_0_token_publishes_to_the_topics_it_grants() {
    let server = Server::start(&keys()).await;
    let mut books = server.subscribe(&format!("/events?topic={BOOK}"), "").await;
    server.wait_for_stat("subscribers", 1).await;
    let form = "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&data=x";
    let bearer = |token: String| format!("Authorization: Bearer {token}\r\n");
    let exact = access_token(PUBLISHER, "publish", json!([{ "match": BOOK }]));
    let pattern = access_token(
        PUBLISHER,
        "publish",
        json!([{"match": "https://example.com/books/:id", "match_type": "urlpattern"}]),
    );
    let legacy = signed(PUBLISHER, "JWT", &json!({"mercure": {"publish": [BOOK]}}));
    for token in [exact, pattern, legacy] {
        let response = mercure_publish(&server, form, &bearer(token)).await;
        assert_eq!(response.status, 200, "{}", body(&response));
        assert_eq!(books.event_id().await, body(&response));
    }
    // Valid tokens that do not allow it: 403.
    let elsewhere = access_token(
        PUBLISHER,
        "publish",
        json!([{"match": "https://example.com/authors/:id", "match_type": "urlpattern"}]),
    );
    let reader = access_token(PUBLISHER, "subscribe", json!([{"match": "*"}]));
    let unknown_action = access_token(PUBLISHER, "purge", json!([{"match": "*"}]));
    for token in [elsewhere, reader, unknown_action] {
        let response = mercure_publish(&server, form, &bearer(token)).await;
        assert_refused(&response, 403, INSUFFICIENT_SCOPE, BOOK);
    }
    // Invalid tokens: 401.
    let regexp = access_token(
        PUBLISHER,
        "publish",
        json!([{"match": "*", "match_type": "regexp"}]),
    );
    let response = mercure_publish(&server, form, &bearer(regexp)).await;
    assert_refused(&response, 401, INVALID_TOKEN, "match_type");
    let bad_pattern = access_token(
        PUBLISHER,
        "publish",
        json!([{"match": "https://example.com/:id(", "match_type": "urlpattern"}]),
    );
    let response = mercure_publish(&server, form, &bearer(bad_pattern)).await;
    assert_refused(&response, 401, INVALID_TOKEN, "URL pattern");
    let mut endless = access("publish", json!([{"match": "*"}]));
    endless.as_object_mut().unwrap().remove("exp");
    let response = mercure_publish(
        &server,
        form,
        &bearer(signed(PUBLISHER, "at+jwt", &endless)),
    )
    .await;
    assert_refused(&response, 401, INVALID_TOKEN, "exp");
    // The same claims in a 0.x token need no exp, and grant nothing there.
    let response =
        mercure_publish(&server, form, &bearer(signed(PUBLISHER, "JWT", &endless))).await;
    assert_refused(&response, 403, INSUFFICIENT_SCOPE, BOOK);
    // A subscriber's key does not sign publishes.
    let response = mercure_publish(&server, form, &bearer(subscriber("*"))).await;
    assert_refused(&response, 401, INVALID_TOKEN, "signature");
    assert_eq!(server.stats().await["events_published"], 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_updates_reach_the_subscribers_their_1_0_tokens_allow() {
    let server = Server::start(&keys()).await;
    let path = format!("/events?topic={BOOK}");
    let exact = subscriber(BOOK);
    let pattern = access_token(
        SUBSCRIBER,
        "subscribe",
        json!([{"match": "https://example.com/books/:id", "match_type": "urlpattern"}]),
    );
    let other = access_token(
        SUBSCRIBER,
        "subscribe",
        json!([
            {"match": "https://example.com/authors/1"},
            {"match": "https://example.com/authors/:id", "match_type": "urlpattern"},
        ]),
    );
    let by_header = |token: &str| format!("Authorization: Bearer {token}\r\n");
    let by_cookie = |token: &str| format!("Cookie: theme=dark; {COOKIE}={token}\r\n");
    let mut allowed = vec![
        server.subscribe(&path, &by_header(&exact)).await,
        server.subscribe(&path, &by_cookie(&exact)).await,
        server.subscribe(&path, &by_header(&pattern)).await,
        server.subscribe(&path, &by_cookie(&pattern)).await,
    ];
    let mut refused = vec![
        server.subscribe(&path, "").await,
        server.subscribe(&path, &by_header(&other)).await,
        server.subscribe(&path, &by_cookie(&other)).await,
    ];
    for stream in allowed.iter().chain(&refused) {
        assert!(stream.head.starts_with("HTTP/1.1 200"), "{}", stream.head);
    }
    server.wait_for_stat("subscribers", 7).await;
    publish_book(&server, "public-1", false).await;
    publish_book(&server, "private", true).await;
    publish_book(&server, "public-2", false).await;
    for stream in &mut allowed {
        for id in ["public-1", "private", "public-2"] {
            assert_eq!(stream.event_id().await, id);
        }
    }
    for stream in &mut refused {
        assert_eq!(stream.event_id().await, "public-1");
        assert_eq!(stream.event_id().await, "public-2", "no private update");
    }
    // Resuming, history keeps the same rule.
    for token in [&exact, &pattern] {
        let headers = format!("Last-Event-ID: public-1\r\n{}", by_cookie(token));
        let mut resumed = server.subscribe(&path, &headers).await;
        assert_eq!(resumed.event_id().await, "private");
        assert_eq!(resumed.event_id().await, "public-2");
    }
    for headers in [String::new(), by_header(&other)] {
        let headers = format!("Last-Event-ID: public-1\r\n{headers}");
        let mut resumed = server.subscribe(&path, &headers).await;
        assert_eq!(resumed.event_id().await, "public-2");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_header_beats_the_cookies() {
    let server = Server::start(&keys()).await;
    let path = format!("/events?topic={BOOK}");
    let book = subscriber(BOOK);
    let other = subscriber("https://example.com/authors/1");
    let both = |header: &str, cookie: &str| {
        format!("Authorization: Bearer {header}\r\nCookie: {COOKIE}={cookie}\r\n")
    };
    let mut header_allows = server.subscribe(&path, &both(&book, &other)).await;
    let mut cookie_allows = server.subscribe(&path, &both(&other, &book)).await;
    // The 1.0 cookie before the 0.x one.
    let cookies = format!("Cookie: mercureAuthorization={other}; {COOKIE}={book}\r\n");
    let mut new_cookie_allows = server.subscribe(&path, &cookies).await;
    server.wait_for_stat("subscribers", 3).await;
    publish_book(&server, "private", true).await;
    publish_book(&server, "public", false).await;
    assert_eq!(header_allows.event_id().await, "private");
    assert_eq!(new_cookie_allows.event_id().await, "private");
    assert_eq!(cookie_allows.event_id().await, "public");
    // A good cookie does not save a bad header.
    let forged = access_token("another secret", "subscribe", json!([{"match": "*"}]));
    let refused = server.subscribe(&path, &both(&forged, &book)).await;
    let message = "the token's signature is not valid";
    assert_subscribe_refused(refused, "401 Unauthorized", INVALID_TOKEN, message).await;
    let basic = format!("Authorization: Basic abc\r\nCookie: {COOKIE}={book}\r\n");
    let refused = server.subscribe(&path, &basic).await;
    let message = "expected one Authorization header: Bearer and a token";
    assert_subscribe_refused(refused, "400 Bad Request", INVALID_REQUEST, message).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_and_audience_are_checked_when_set() {
    let mut flags = keys();
    flags.extend(["--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE]);
    let server = Server::start(&flags).await;
    let path = format!("/events?topic={BOOK}");
    let topics = json!([{ "match": BOOK }]);
    let with = |secret: &str, action: &str, iss: Value, aud: Value| {
        let mut claims = access(action, topics.clone());
        claims["iss"] = iss;
        claims["aud"] = aud;
        format!(
            "Authorization: Bearer {}\r\n",
            signed(secret, "at+jwt", &claims)
        )
    };
    let refusals = [
        (json!("https://evil.example"), json!(AUDIENCE), "iss"),
        (json!(null), json!(AUDIENCE), "iss"),
        (json!(ISSUER), json!("https://other-hub.example"), "aud"),
        (json!(ISSUER), json!(["https://other-hub.example"]), "aud"),
        (json!(ISSUER), json!(null), "aud"),
    ];
    for (iss, aud, claim) in refusals {
        let headers = with(SUBSCRIBER, "subscribe", iss.clone(), aud.clone());
        let stream = server.subscribe(&path, &headers).await;
        let message = match claim {
            "iss" => "the token's iss is not the issuer this server trusts",
            _ => "the token's aud does not name this server",
        };
        assert_subscribe_refused(stream, "401 Unauthorized", INVALID_TOKEN, message).await;
        let headers = with(PUBLISHER, "publish", iss, aud);
        let response = mercure_publish(&server, "topic=x&data=x", &headers).await;
        assert_refused(&response, 401, INVALID_TOKEN, claim);
    }
    let mut streams = Vec::new();
    for aud in [
        json!(AUDIENCE),
        json!(["https://other-hub.example", AUDIENCE]),
    ] {
        let headers = with(SUBSCRIBER, "subscribe", json!(ISSUER), aud);
        let stream = server.subscribe(&path, &headers).await;
        assert!(stream.head.starts_with("HTTP/1.1 200"), "{}", stream.head);
        streams.push(stream);
    }
    // 0.x tokens carry neither and are not asked for them.
    let legacy = signed(
        SUBSCRIBER,
        "JWT",
        &json!({"mercure": {"subscribe": [BOOK]}}),
    );
    let headers = format!("Authorization: Bearer {legacy}\r\n");
    streams.push(server.subscribe(&path, &headers).await);
    server.wait_for_stat("subscribers", 3).await;
    let form = "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&data=x&id=private&private=on";
    let response = mercure_publish(
        &server,
        form,
        &with(PUBLISHER, "publish", json!(ISSUER), json!(AUDIENCE)),
    )
    .await;
    assert_eq!(response.status, 200, "{}", body(&response));
    for stream in &mut streams {
        assert_eq!(stream.event_id().await, "private");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_token_refusal_carries_its_challenge() {
    let mut flags = keys();
    flags.push("--subscriber-jwt-required");
    let server = Server::start(&flags).await;
    let path = format!("/events?topic={BOOK}");
    let mut endless = access("subscribe", json!([{ "match": BOOK }]));
    endless.as_object_mut().unwrap().remove("exp");
    let regexp = access_token(
        SUBSCRIBER,
        "subscribe",
        json!([{"match": BOOK, "match_type": "regexp"}]),
    );
    let subscribes = [
        (
            String::new(),
            "401 Unauthorized",
            BARE,
            "a token is required",
        ),
        (
            "Authorization: Bearer nonsense\r\n".to_owned(),
            "401 Unauthorized",
            INVALID_TOKEN,
            "the token is malformed",
        ),
        (
            format!(
                "Authorization: Bearer {}\r\n",
                signed(SUBSCRIBER, "at+jwt", &endless)
            ),
            "401 Unauthorized",
            INVALID_TOKEN,
            "an access token (typ at+jwt) must have an exp",
        ),
        (
            format!("Cookie: {COOKIE}={regexp}\r\n"),
            "401 Unauthorized",
            INVALID_TOKEN,
            "the token's authorization_details: a topic's match_type must be exact or urlpattern",
        ),
        (
            "Authorization: Bearer\r\n".to_owned(),
            "400 Bad Request",
            INVALID_REQUEST,
            "expected one Authorization header: Bearer and a token",
        ),
        (
            format!(
                "Authorization: Bearer {0}\r\nAuthorization: Bearer {0}\r\n",
                subscriber(BOOK)
            ),
            "400 Bad Request",
            INVALID_REQUEST,
            "expected one Authorization header: Bearer and a token",
        ),
    ];
    for (headers, status, challenge, message) in subscribes {
        let stream = server.subscribe(&path, &headers).await;
        assert_subscribe_refused(stream, status, challenge, message).await;
    }
    // A publish's answer comes from hyper, with a date: its challenge line is checked whole.
    let form = "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&data=x";
    let publishes = [
        (String::new(), 401, BARE, "a token is required"),
        (
            "Authorization: Bearer nonsense\r\n".to_owned(),
            401,
            INVALID_TOKEN,
            "malformed",
        ),
        (
            "Authorization: Basic abc\r\n".to_owned(),
            400,
            INVALID_REQUEST,
            "Authorization",
        ),
        (
            format!(
                "Authorization: Bearer {0}\r\nAuthorization: Bearer {0}\r\n",
                publisher()
            ),
            400,
            INVALID_REQUEST,
            "Authorization",
        ),
        (
            format!(
                "Authorization: Bearer {}\r\n",
                access_token(
                    PUBLISHER,
                    "publish",
                    json!([{"match": "https://example.com/books/2"}])
                )
            ),
            403,
            INSUFFICIENT_SCOPE,
            "does not allow publishing",
        ),
        // A cookie never authorizes a publish.
        (
            format!("Cookie: {COOKIE}={}\r\n", publisher()),
            401,
            BARE,
            "a token is required",
        ),
    ];
    for (headers, status, challenge, message) in publishes {
        let response = mercure_publish(&server, form, &headers).await;
        assert_refused(&response, status, challenge, message);
        let json = json!({"topic": BOOK, "data": "x"}).to_string();
        let response = request(
            server.addr,
            format!(
                "POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                 {headers}Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            ),
        )
        .await;
        assert_refused(&response, status, challenge, message);
    }
    assert_eq!(server.stats().await["events_published"], 0);
    server.stop().await;
}
