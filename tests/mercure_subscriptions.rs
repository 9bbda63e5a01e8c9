//! Mercure's active subscriptions (`--subscriptions`): the private updates that announce each
//! subscription when it starts and ends, and the API that lists them.

mod support;

use serde_json::{json, Value};
use support::{request, Response, Server, Stream};

const SECRET: &str = "!ChangeThisMercureHubJWTSecretKey!";
/// What a watcher's token allows and what it subscribes to: every subscription's updates.
const UPDATES: &str = "/.well-known/mercure/subscriptions/{topic}{/subscriber}";
/// What an administrator's token allows: the whole API, the collection of all included.
const EVERYTHING: &str = "/.well-known/mercure/subscriptions{/topic}{/subscriber}";
const BOOKS: &str = "https://example.com/books/{id}";
const PAYLOAD: &str = r#"{"user":"https://example.com/users/dunglas"}"#;

fn token(claims: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

fn bearer(subscribe: &[&str]) -> String {
    let token = token(json!({"mercure": {"subscribe": subscribe}}));
    format!("Authorization: Bearer {token}\r\n")
}

/// RFC 6570's simple expansion: everything but unreserved characters percent-encoded.
fn expand(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A subscription's update topic, which is also its path in the API.
fn update_topic(topic: &str, subscriber: &str) -> String {
    format!(
        "/.well-known/mercure/subscriptions/{}/{}",
        expand(topic),
        expand(subscriber)
    )
}

/// The JSON of a subscription update, byte for byte.
fn update(topic: &str, subscriber: &str, active: bool, payload: Option<&str>) -> String {
    let id = update_topic(topic, subscriber);
    let payload = payload.map_or(String::new(), |p| format!(r#","payload":{p}"#));
    format!(
        r#"{{"@context":"https://mercure.rocks/","id":"{id}","type":"Subscription","topic":"{topic}","subscriber":"{subscriber}","active":{active}{payload}}}"#
    )
}

/// The next event of `stream`: its id and its data.
async fn next_update(stream: &mut Stream) -> (String, String) {
    let frame = stream.event().await;
    let (id, data) = frame
        .strip_prefix("id: ")
        .and_then(|rest| rest.strip_suffix("\n\n"))
        .and_then(|rest| rest.split_once("\ndata: "))
        .unwrap_or_else(|| panic!("not an update: {frame:?}"));
    assert!(!data.contains('\n'), "one data line: {frame:?}");
    (id.to_owned(), data.to_owned())
}

/// `GET path` with these header lines.
async fn get(server: &Server, path: &str, headers: &str) -> Response {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n");
    request(server.addr, raw).await
}

/// A `200` answer's JSON-LD document.
fn document(response: &Response) -> Value {
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let head = response.head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/ld+json"), "{head}");
    response.json()
}

/// Subscribes to every subscription's updates and reads its own, returning its id.
async fn watch(server: &Server) -> (Stream, String) {
    let path = format!("/.well-known/mercure?topic={}", expand(UPDATES));
    let mut watcher = server.subscribe(&path, &bearer(&[UPDATES])).await;
    let (_, own) = next_update(&mut watcher).await;
    let id = subscriber_of(&own);
    let own: Value = serde_json::from_str(&own).unwrap();
    assert_eq!(own["topic"], UPDATES, "a watcher sees its own subscription");
    (watcher, id)
}

/// The subscriber an update's document is about.
fn subscriber_of(update: &str) -> String {
    let document: Value = serde_json::from_str(update).unwrap();
    document["subscriber"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_announced_when_they_start_and_end_and_listed_meanwhile() {
    let server = Server::start(&["--subscriptions", "--subscriber-jwt-key", SECRET]).await;
    let (mut watcher, watcher_id) = watch(&server).await;
    let uuid = watcher_id.strip_prefix("urn:uuid:").unwrap();
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "7", "a UUID v7: {uuid}");

    // A reader of two topics, with a payload in its token.
    let reader_token = token(json!({"mercure": {"subscribe": [], "payload": {
        "user": "https://example.com/users/dunglas"}}}));
    let path = format!(
        "/.well-known/mercure?topic={}&topic=%2Fauthors%2F1",
        expand(BOOKS)
    );
    let reader = server
        .subscribe(&path, &format!("Authorization: Bearer {reader_token}\r\n"))
        .await;
    let (_, books) = next_update(&mut watcher).await;
    let reader_id = subscriber_of(&books);
    assert_ne!(reader_id, watcher_id);
    assert_eq!(books, update(BOOKS, &reader_id, true, Some(PAYLOAD)));
    let (last_id, authors) = next_update(&mut watcher).await;
    assert_eq!(
        authors,
        update("/authors/1", &reader_id, true, Some(PAYLOAD))
    );

    // The whole collection, for a token that allows it.
    let admin = bearer(&[EVERYTHING]);
    let all = document(&get(&server, "/.well-known/mercure/subscriptions", &admin).await);
    assert_eq!(all["@context"], "https://mercure.rocks/");
    assert_eq!(all["id"], "/.well-known/mercure/subscriptions");
    assert_eq!(all["type"], "Subscriptions");
    assert_eq!(all["lastEventID"], last_id, "the newest id history holds");
    let listed: Vec<(&str, &str)> = all["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["topic"].as_str().unwrap(),
                s["subscriber"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (UPDATES, &*watcher_id),
            (BOOKS, &*reader_id),
            ("/authors/1", &*reader_id)
        ]
    );
    let first = &all["subscriptions"][1];
    assert!(first.get("@context").is_none(), "named by the collection");
    assert_eq!(
        first["payload"],
        json!({"user": "https://example.com/users/dunglas"})
    );

    // One topic's subscriptions, for the watcher's own token.
    let watching = bearer(&[UPDATES]);
    let topic_path = format!("/.well-known/mercure/subscriptions/{}", expand(BOOKS));
    let of_books = document(&get(&server, &topic_path, &watching).await);
    assert_eq!(of_books["id"], topic_path);
    assert_eq!(of_books["subscriptions"].as_array().unwrap().len(), 1);
    assert_eq!(of_books["subscriptions"][0]["subscriber"], reader_id);

    // One subscription: the update's document, and `lastEventID`.
    let one_path = update_topic(BOOKS, &reader_id);
    let one = get(&server, &one_path, &watching).await;
    document(&one);
    let expected = update(BOOKS, &reader_id, true, Some(PAYLOAD));
    let expected = format!(
        "{},\"lastEventID\":\"{last_id}\"}}",
        expected.strip_suffix('}').unwrap()
    );
    assert_eq!(String::from_utf8(one.body).unwrap(), expected);
    let unknown = update_topic(BOOKS, "urn:uuid:0190d6a5-1c5e-7000-8000-000000000000");
    let missing = get(&server, &unknown, &watching).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "no such subscription");
    let other_topic = update_topic("/authors/2", &reader_id);
    assert_eq!(get(&server, &other_topic, &watching).await.status, 404);

    // The token may come in the query or the cookie, as a subscribe's does.
    let watcher_token = token(json!({"mercure": {"subscribe": [UPDATES]}}));
    let query = format!("{topic_path}?authorization={watcher_token}");
    document(&get(&server, &query, "").await);
    for name in ["mercureAuthorization", "__Secure-mercure_access_token"] {
        let cookie = format!("Cookie: a=b; {name}={watcher_token}\r\n");
        document(&get(&server, &topic_path, &cookie).await);
    }

    // The reader leaves: each of its subscriptions is announced inactive, and unlisted.
    drop(reader);
    let (_, books) = next_update(&mut watcher).await;
    assert_eq!(books, update(BOOKS, &reader_id, false, Some(PAYLOAD)));
    let (last_id, authors) = next_update(&mut watcher).await;
    assert_eq!(
        authors,
        update("/authors/1", &reader_id, false, Some(PAYLOAD))
    );
    let all = document(&get(&server, "/.well-known/mercure/subscriptions", &admin).await);
    assert_eq!(all["lastEventID"], last_id);
    assert_eq!(all["subscriptions"].as_array().unwrap().len(), 1);
    assert_eq!(get(&server, &one_path, &watching).await.status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_a_token_that_allows_the_path() {
    let server = Server::start(&["--subscriptions", "--subscriber-jwt-key", SECRET]).await;
    let all = "/.well-known/mercure/subscriptions";
    let missing = get(&server, all, "").await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["error"], "a token is required");
    assert!(missing
        .head
        .to_ascii_lowercase()
        .contains("www-authenticate: bearer"));
    let forged = get(&server, all, "Authorization: Bearer not.a.token\r\n").await;
    assert_eq!(forged.status, 401);
    for grants in [&["/books/{id}"][..], &[UPDATES]] {
        let refused = get(&server, all, &bearer(grants)).await;
        assert_eq!(refused.status, 403, "{grants:?}");
        let head = refused.head.to_ascii_lowercase();
        assert!(head.contains("insufficient_scope"), "{head}");
        let error = refused.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains("does not allow"), "{error}");
    }
    let empty = document(&get(&server, all, &bearer(&["*"])).await);
    assert_eq!(empty["lastEventID"], "earliest");
    assert_eq!(empty["subscriptions"], json!([]));
    let topic = format!("{all}/{}", expand(BOOKS));
    assert_eq!(
        get(&server, &topic, &bearer(&["/books/{id}"])).await.status,
        403
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_of_the_events_path_whose_token_expires_is_announced_inactive() {
    let server = Server::start(&["--subscriptions", "--subscriber-jwt-key", SECRET]).await;
    let (mut watcher, _) = watch(&server).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiring = token(json!({"mercure": {"subscribe": ["a"]}, "exp": now + 2}));
    let stream = server
        .subscribe(
            "/events?topic=a",
            &format!("Authorization: Bearer {expiring}\r\n"),
        )
        .await;
    let (_, started) = next_update(&mut watcher).await;
    let subscriber = subscriber_of(&started);
    assert_eq!(started, update("a", &subscriber, true, None));
    // The stream ends within seconds of the token's expiry (support's step is 5 s).
    stream.rest().await;
    let (_, ended) = next_update(&mut watcher).await;
    assert_eq!(ended, update("a", &subscriber, false, None));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_whose_updates_would_pass_the_topic_limit_is_refused_whole() {
    let flags = ["--subscriptions", "--subscriber-jwt-key", SECRET];
    let server = Server::start(&[&flags[..], &["--max-topics", "4"]].concat()).await;
    // The watcher's pattern and its own update topic: two topics.
    let (mut watcher, watcher_id) = watch(&server).await;
    let refused = get(&server, "/.well-known/mercure?topic=a&topic=b", "").await;
    assert_eq!(
        refused.status, 503,
        "a, b and their updates' topics: 4 more"
    );
    let accepted = server.subscribe("/.well-known/mercure?topic=a", "").await;
    assert!(
        accepted.head.starts_with("HTTP/1.1 200"),
        "{}",
        accepted.head
    );
    let (_, update) = next_update(&mut watcher).await;
    assert!(update.contains(r#""topic":"a""#), "{update}");
    let all = get(
        &server,
        "/.well-known/mercure/subscriptions",
        &bearer(&["*"]),
    )
    .await;
    let listed = document(&all)["subscriptions"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["subscriber"], watcher_id);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_nothing_is_announced_and_the_api_is_not_there() {
    let server = Server::start(&["--subscriber-jwt-key", SECRET]).await;
    let path = format!(
        "/.well-known/mercure?topic={}&topic=marker",
        expand(UPDATES)
    );
    let mut watcher = server.subscribe(&path, &bearer(&[UPDATES])).await;
    let reader = server.subscribe("/.well-known/mercure?topic=a", "").await;
    server.wait_for_stat("subscribers", 2).await;
    drop(reader);
    server.wait_for_stat("subscribers", 1).await;
    server.publish_id("marker", "m1", "x").await;
    assert_eq!(
        watcher.event_id().await,
        "m1",
        "no subscription update came before"
    );
    let admin = bearer(&["*"]);
    for path in [
        "/.well-known/mercure/subscriptions".to_owned(),
        format!("/.well-known/mercure/subscriptions/{}", expand("a")),
        update_topic("a", "urn:uuid:0190d6a5-1c5e-7000-8000-000000000000"),
    ] {
        let answer = get(&server, &path, &admin).await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.json()["error"], "not found");
    }
    server.stop().await;
}
