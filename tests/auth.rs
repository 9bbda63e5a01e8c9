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

/// How a test signs tokens: the server's key, another key of the same kind, and a key of
/// another algorithm.
struct Signer {
    key: EncodingKey,
    algorithm: Algorithm,
    wrong_key: EncodingKey,
    other: (EncodingKey, Algorithm),
}

impl Signer {
    fn sign(&self, claims: Value) -> String {
        format!("Bearer {}", token(claims, &self.key, self.algorithm))
    }
}

/// Every answer a publish gets from a server started with `flags`, whose key `signer` holds.
async fn every_publish_answer(flags: &[&str], signer: &Signer) {
    let server = Server::start(flags).await;
    let mut news = server.subscribe("/events?topic=news", "").await;
    let all = json!({"mercure": {"publish": ["*"]}});
    let invalid = "Bearer error=\"invalid_token\"";
    let cases: Vec<(Option<String>, u16, &str, &str)> = vec![
        (None, 401, "Bearer", "required"),
        (
            Some("Basic abc".into()),
            400,
            "Bearer error=\"invalid_request\"",
            "Authorization header",
        ),
        (Some("Bearer nonsense".into()), 401, invalid, "malformed"),
        (
            Some(format!(
                "Bearer {}",
                token(all.clone(), &signer.wrong_key, signer.algorithm)
            )),
            401,
            invalid,
            "signature",
        ),
        (
            Some(format!(
                "Bearer {}",
                token(all.clone(), &signer.other.0, signer.other.1)
            )),
            401,
            invalid,
            "algorithm",
        ),
        (
            Some(signer.sign(json!({"mercure": {"publish": ["*"]}, "exp": now() - 5}))),
            401,
            invalid,
            "expired",
        ),
        (
            Some(signer.sign(json!({"mercure": {"publish": ["*"]}, "nbf": now() + 60}))),
            401,
            invalid,
            "not valid yet",
        ),
        (
            Some(signer.sign(json!({"mercure": {"publish": ["sport"]}}))),
            403,
            "Bearer error=\"insufficient_scope\"",
            "news",
        ),
    ];
    for (authorization, status, challenge, error) in cases {
        let response = publish(&server, "news", authorization.as_deref()).await;
        assert_refused(&response, status, challenge, error);
    }
    // Allowed: it reaches the subscriber, and nothing refused did.
    let allowed =
        signer.sign(json!({"mercure": {"publish": ["news", "sport"]}, "exp": now() + 60}));
    let response = publish(&server, "news", Some(&allowed)).await;
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
async fn an_hs256_secret_verifies_publish_tokens() {
    let signer = Signer {
        key: EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        algorithm: Algorithm::HS256,
        wrong_key: EncodingKey::from_secret(b"another secret").unwrap(),
        other: (
            EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
            Algorithm::HS384,
        ),
    };
    every_publish_answer(&["--publisher-jwt-key", SECRET], &signer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_es256_public_key_verifies_publish_tokens() {
    let (private, public) = es256_key_pair("server");
    let (stranger, _) = es256_key_pair("stranger");
    let public_pem = std::fs::read(&public).unwrap();
    let signer = Signer {
        key: EncodingKey::from_ec_pem(&private).unwrap(),
        algorithm: Algorithm::ES256,
        wrong_key: EncodingKey::from_ec_pem(&stranger).unwrap(),
        // An HS256 token signed with the public key's text: the classic confusion attack.
        other: (
            EncodingKey::from_secret(&public_pem).unwrap(),
            Algorithm::HS256,
        ),
    };
    let public = public.to_str().unwrap();
    let flags = ["--publisher-jwt-key", public, "--jwt-algorithm", "ES256"];
    every_publish_answer(&flags, &signer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_publishing_stays_open() {
    let server = Server::start(&[]).await;
    assert_eq!(publish(&server, "news", None).await.status, 200);
    server.stop().await;
}

/// A fresh P-256 key pair from `openssl`: the private key in PKCS#8 PEM and the path of the
/// public key's PEM file.
fn es256_key_pair(name: &str) -> (Vec<u8>, PathBuf) {
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
    let dir = std::env::temp_dir().join(format!("ssecast-es256-{}-{name}", std::process::id()));
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

const SUBSCRIBER_SECRET: &str = "a subscriber secret";

fn subscriber_token(claims: Value) -> String {
    let key = EncodingKey::from_secret(SUBSCRIBER_SECRET.as_bytes()).unwrap();
    token(claims, &key, Algorithm::HS256)
}

/// Publishes `data` to `topic` with `id`, private or not; returns how many subscribers it was
/// queued for.
async fn publish_event(server: &Server, topic: &str, id: &str, private: bool) -> Value {
    server
        .publish(json!({"topic": topic, "id": id, "data": "x", "private": private}))
        .await["subscribers"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_events_reach_only_the_subscribers_their_topics_allow() {
    let server = Server::start(&["--subscriber-jwt-key", SUBSCRIBER_SECRET]).await;
    let allowed = subscriber_token(json!({"mercure": {"subscribe": ["t"]}}));
    let elsewhere = subscriber_token(json!({"mercure": {"subscribe": ["other"]}}));
    let mut anonymous = server.subscribe("/events?topic=t", "").await;
    let mut by_header = server
        .subscribe(
            "/events?topic=t",
            &format!("Authorization: Bearer {allowed}\r\n"),
        )
        .await;
    let mut by_query = server
        .subscribe(&format!("/events?topic=t&authorization={allowed}"), "")
        .await;
    let mut by_cookie = server
        .subscribe(
            "/events?topic=t",
            &format!("Cookie: theme=dark; mercureAuthorization={allowed}\r\n"),
        )
        .await;
    let mut other_token = server
        .subscribe(
            "/events?topic=t",
            &format!("Cookie: mercureAuthorization={elsewhere}\r\n"),
        )
        .await;
    server.wait_for_stat("subscribers", 5).await;
    assert_eq!(publish_event(&server, "t", "p1", false).await, 5);
    assert_eq!(
        publish_event(&server, "t", "s1", true).await,
        3,
        "a private event counts the subscribers that may see it"
    );
    assert_eq!(publish_event(&server, "t", "p2", false).await, 5);
    for stream in [&mut by_header, &mut by_query, &mut by_cookie] {
        for id in ["p1", "s1", "p2"] {
            assert_eq!(stream.event_id().await, id);
        }
    }
    for stream in [&mut anonymous, &mut other_token] {
        assert_eq!(stream.event_id().await, "p1");
        assert_eq!(
            stream.event_id().await,
            "p2",
            "the private event is not sent"
        );
    }
    // Resuming, history keeps the same rule.
    let mut resumed = server
        .subscribe(
            "/events?topic=t",
            &format!("Last-Event-ID: p1\r\nAuthorization: Bearer {allowed}\r\n"),
        )
        .await;
    assert_eq!(resumed.event_id().await, "s1");
    assert_eq!(resumed.event_id().await, "p2");
    let mut resumed = server
        .subscribe("/events?topic=t", "Last-Event-ID: p1\r\n")
        .await;
    assert_eq!(resumed.event_id().await, "p2");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_subscriber_token_gets_401_and_a_required_one_is_required() {
    let server = Server::start(&[
        "--subscriber-jwt-key",
        SUBSCRIBER_SECRET,
        "--subscriber-jwt-required",
    ])
    .await;
    let expired = subscriber_token(json!({"mercure": {"subscribe": ["*"]}, "exp": now() - 5}));
    // Signed with the publisher's secret, not the subscribers'.
    let forged = token(
        json!({"mercure": {"subscribe": ["*"]}}),
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        Algorithm::HS256,
    );
    let cases = [
        (String::new(), "401", "Bearer", "required"),
        (
            format!("Authorization: Bearer {expired}\r\n"),
            "401",
            "invalid_token",
            "expired",
        ),
        (
            format!("Cookie: mercureAuthorization={forged}\r\n"),
            "401",
            "invalid_token",
            "signature",
        ),
        (
            "Authorization: Basic abc\r\n".to_owned(),
            "400",
            "invalid_request",
            "Authorization header",
        ),
    ];
    for (headers, status, challenge, error) in cases {
        let stream = server.subscribe("/events?topic=t", &headers).await;
        let status = format!("HTTP/1.1 {status} ");
        assert!(stream.head.starts_with(&status), "{}", stream.head);
        assert!(
            stream.head.contains("www-authenticate: Bearer") && stream.head.contains(challenge),
            "{}",
            stream.head
        );
        let body: Value = serde_json::from_slice(&stream.rest().await).unwrap();
        assert!(body["error"].as_str().unwrap().contains(error), "{body}");
    }
    let good = subscriber_token(json!({"mercure": {"subscribe": ["t"]}}));
    let stream = server
        .subscribe(
            "/events?topic=t",
            &format!("Authorization: Bearer {good}\r\n"),
        )
        .await;
    assert!(stream.head.starts_with("HTTP/1.1 200"), "{}", stream.head);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_when_its_token_expires() {
    let server = Server::start(&["--subscriber-jwt-key", SUBSCRIBER_SECRET]).await;
    let expires = now() + 2;
    let short = subscriber_token(json!({"mercure": {"subscribe": ["t"]}, "exp": expires}));
    let lasting = subscriber_token(json!({"mercure": {"subscribe": ["t"]}, "exp": now() + 600}));
    let ending = server
        .subscribe(
            "/events?topic=t",
            &format!("Authorization: Bearer {short}\r\n"),
        )
        .await;
    let mut staying = server
        .subscribe(
            "/events?topic=t",
            &format!("Authorization: Bearer {lasting}\r\n"),
        )
        .await;
    server.wait_for_stat("subscribers", 2).await;
    ending.rest().await;
    assert!(now() >= expires, "ended before its token expired");
    // The count falls once the shard has given back what the subscriber held.
    server.wait_for_stat("subscribers", 1).await;
    assert_eq!(server.stats().await["subscribers_expired"], 1);
    publish_event(&server, "t", "after", true).await;
    assert_eq!(staying.event_id().await, "after");
    server.stop().await;
}

/// The answer to `method path` with these header lines.
async fn answer(server: &Server, method: &str, path: &str, headers: &str) -> support::Response {
    let raw = format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n");
    request(server.addr, raw).await
}

fn header<'a>(response: &'a support::Response, name: &str) -> Option<&'a str> {
    response.head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_origins_get_credentials_and_the_wildcard_does_not() {
    let server = Server::start(&[
        "--cors-origin",
        "https://app.example",
        "--cors-origin",
        "https://admin.example",
    ])
    .await;
    let preflight = answer(
        &server,
        "OPTIONS",
        "/publish",
        "Origin: https://admin.example\r\nAccess-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: authorization, content-type\r\n",
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        Some("https://admin.example")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-credentials"),
        Some("true")
    );
    let allowed = header(&preflight, "access-control-allow-headers").unwrap();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    let stranger = answer(&server, "GET", "/stats", "Origin: https://evil.example\r\n").await;
    assert_eq!(header(&stranger, "access-control-allow-origin"), None);
    let stream = server
        .subscribe("/events?topic=t", "Origin: https://evil.example\r\n")
        .await;
    assert!(!stream.head.contains("Access-Control"), "{}", stream.head);
    server.stop().await;

    let server = Server::start(&["--cors-origin", "*"]).await;
    let any = answer(&server, "GET", "/stats", "Origin: https://evil.example\r\n").await;
    assert_eq!(header(&any, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&any, "access-control-allow-credentials"), None);
    let stream = server
        .subscribe("/events?topic=t", "Origin: https://evil.example\r\n")
        .await;
    assert!(
        stream.head.contains("Access-Control-Allow-Origin: *\r\n"),
        "{}",
        stream.head
    );
    assert!(!stream.head.contains("Credentials"), "{}", stream.head);
    server.stop().await;
}
