//! Authorization: publish tokens in the format Mercure hubs use, signed with HS256 or with an
//! ES256 key pair the test makes, and every answer a bad or narrow token gets.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::apt::{self, Need};
use support::{request, Server};

const SECRET: &str = "a publisher secret";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token with `claims`, signed with `key` and `algorithm`.
fn token(claims: Value, key: &EncodingKey, algorithm: Algorithm) -> String {
    encode(&Header::new(algorithm), &claims, key).unwrap()
}

fn hs256(claims: Value) -> String {
    token(
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        Algorithm::HS256,
    )
}

/// A publish of one event to `topic`, with `authorization` as its header line if any.
async fn publish(server: &Server, topic: &str, authorization: Option<&str>) -> support::Response {
    let body = format!("topic={topic}&data=x");
    let header = authorization.map_or(String::new(), |value| format!("Authorization: {value}\r\n"));
    let raw = format!(
        "POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         {header}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    request(server.addr, raw).await
}

fn assert_refused(response: &support::Response, status: u16, challenge: &str, error: &str) {
    assert_eq!(response.status, status, "{}", response.head);
    if !challenge.is_empty() {
        let line = format!("www-authenticate: {challenge}");
        assert!(
            response.head.to_lowercase().contains(&line.to_lowercase()),
            "{}",
            response.head
        );
    }
    let body = response.json();
    let message = body["error"].as_str().unwrap();
    assert!(message.contains(error), "{message}");
    assert!(!message.contains("eyJ"), "no token in errors: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_needs_a_token_allowing_every_topic() {
    let server = Server::start(&["--publisher-jwt-key", SECRET]).await;
    let mut news = server.subscribe("/events?topic=news", "").await;
    let allowed = hs256(json!({"mercure": {"publish": ["news", "sport"]}, "exp": now() + 60}));
    let cases: Vec<(Option<String>, u16, &str, &str)> = vec![
        (None, 401, "Bearer", "required"),
        (
            Some("Basic abc".into()),
            401,
            "Bearer error=\"invalid_token\"",
            "malformed",
        ),
        (
            Some("Bearer nonsense".into()),
            401,
            "Bearer error=\"invalid_token\"",
            "malformed",
        ),
        (
            Some(format!(
                "Bearer {}",
                token(
                    json!({"mercure": {"publish": ["*"]}}),
                    &EncodingKey::from_secret(b"another secret").unwrap(),
                    Algorithm::HS256
                )
            )),
            401,
            "Bearer error=\"invalid_token\"",
            "signature",
        ),
        (
            Some(format!(
                "Bearer {}",
                token(
                    json!({"mercure": {"publish": ["*"]}}),
                    &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
                    Algorithm::HS384
                )
            )),
            401,
            "",
            "algorithm",
        ),
        (
            Some(format!(
                "Bearer {}",
                hs256(json!({"mercure": {"publish": ["*"]}, "exp": now() - 5}))
            )),
            401,
            "",
            "expired",
        ),
        (
            Some(format!(
                "Bearer {}",
                hs256(json!({"mercure": {"publish": ["*"]}, "nbf": now() + 60}))
            )),
            401,
            "",
            "not valid yet",
        ),
    ];
    for (authorization, status, challenge, error) in cases {
        let response = publish(&server, "news", authorization.as_deref()).await;
        assert_refused(&response, status, challenge, error);
    }
    // A valid token for other topics: 403, naming the topic.
    let narrow = hs256(json!({"mercure": {"publish": ["sport"]}}));
    let response = publish(&server, "news", Some(&format!("Bearer {narrow}"))).await;
    assert_refused(&response, 403, "", "news");
    // Allowed: it reaches the subscriber, and nothing refused did.
    let response = publish(&server, "news", Some(&format!("Bearer {allowed}"))).await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let id = response.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(news.event_id().await, id);
    assert_eq!(server.stats().await["events_published"], 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_publishing_stays_open() {
    let server = Server::start(&[]).await;
    assert_eq!(publish(&server, "news", None).await.status, 200);
    server.stop().await;
}

/// A fresh P-256 key pair from `openssl`: the private key in PKCS#8 PEM and the path of the
/// public key's PEM file.
fn es256_key_pair() -> (Vec<u8>, PathBuf) {
    apt::ensure(
        "the ES256 test",
        &[Need {
            what: "openssl",
            packages: &["openssl"],
            present: || {
                Command::new("openssl")
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            },
        }],
    );
    let dir = std::env::temp_dir().join(format!("ssecast-es256-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let private = dir.join("private.pem");
    let public = dir.join("public.pem");
    let run = |args: &[&str]| {
        let status = Command::new("openssl").args(args).status().unwrap();
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        private.to_str().unwrap(),
    ]);
    run(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (std::fs::read(&private).unwrap(), public)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_es256_public_key_verifies_publish_tokens() {
    let (private, public) = es256_key_pair();
    let key = EncodingKey::from_ec_pem(&private).unwrap();
    let public = public.to_str().unwrap();
    let server = Server::start(&["--publisher-jwt-key", public, "--jwt-algorithm", "ES256"]).await;
    let mut stream = server.subscribe("/events?topic=t", "").await;
    let good = token(
        json!({"mercure": {"publish": ["t"]}}),
        &key,
        Algorithm::ES256,
    );
    let response = publish(&server, "t", Some(&format!("Bearer {good}"))).await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    stream.event().await;
    // An HS256 token, even one signed with the public key's text, is refused.
    let forged = token(
        json!({"mercure": {"publish": ["*"]}}),
        &EncodingKey::from_secret(&std::fs::read(public).unwrap()).unwrap(),
        Algorithm::HS256,
    );
    let response = publish(&server, "t", Some(&format!("Bearer {forged}"))).await;
    assert_refused(&response, 401, "", "algorithm");
    server.stop().await;
}
