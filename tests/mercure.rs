//! Mercure's endpoints, `/.well-known/mercure`: a publisher's form and a page's subscribe, as
//! Mercure's own clients send them.

mod support;

use support::{request, Response, Server};

/// `POST /.well-known/mercure` with a form body.
async fn mercure_publish(server: &Server, form: &str) -> Response {
    let raw = format!(
        "POST /.well-known/mercure HTTP/1.1\r\nHost: t\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    request(server.addr, raw).await
}

/// The id a Mercure publish answered, checking the answer is `200` text.
fn answered_id(response: &Response) -> String {
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(
        response
            .head
            .to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{}",
        response.head
    );
    String::from_utf8(response.body.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mercure_publisher_reaches_mercure_subscribers() {
    let server = Server::start(&[]).await;
    let mut books = server
        .subscribe("/.well-known/mercure?topic=https://example.com/books/1", "")
        .await;
    let mut alternate = server
        .subscribe("/.well-known/mercure?topic=%2Fbooks%2F1", "")
        .await;
    server.wait_for_stat("subscribers", 2).await;
    // The canonical topic and an alternate; an id made by the hub; a type and a retry.
    let form = "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&topic=%2Fbooks%2F1\
                &data=%7B%22title%22%3A%22Dune%22%7D&type=update&retry=2000";
    let id = answered_id(&mercure_publish(&server, form).await);
    let uuid = id.strip_prefix("urn:uuid:").expect("a urn:uuid id");
    assert_eq!(uuid.len(), 36, "{id}");
    let frame = format!("id: {id}\nevent: update\nretry: 2000\ndata: {{\"title\":\"Dune\"}}\n\n");
    assert_eq!(books.event().await, frame);
    assert_eq!(
        alternate.event().await,
        frame,
        "an alternate topic reaches its subscribers"
    );
    // A publisher's id is kept; no data is an empty data line; `private` with no value is set.
    let given = "topic=%2Fbooks%2F1&id=rev-2";
    assert_eq!(answered_id(&mercure_publish(&server, given).await), "rev-2");
    assert_eq!(alternate.event().await, "id: rev-2\ndata: \n\n");
    let private = "topic=%2Fbooks%2F1&data=secret&private=";
    answered_id(&mercure_publish(&server, private).await);
    let public = "topic=%2Fbooks%2F1&data=public&id=rev-4";
    answered_id(&mercure_publish(&server, public).await);
    assert_eq!(
        alternate.event().await,
        "id: rev-4\ndata: public\n\n",
        "a private update does not reach a subscriber without a token"
    );
    // Resume with Mercure's spelling of the query parameter.
    let mut resumed = server
        .subscribe(
            "/.well-known/mercure?topic=%2Fbooks%2F1&lastEventID=rev-2",
            "",
        )
        .await;
    assert_eq!(resumed.event_id().await, "rev-4");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_mercure_endpoints_refuse() {
    let server = Server::start(&[]).await;
    let refused = mercure_publish(&server, "topic=a&data=x&id=%23fragment").await;
    assert_eq!(refused.status, 400);
    assert!(refused.json()["error"].as_str().unwrap().contains('#'));
    assert_eq!(
        mercure_publish(&server, "data=x").await.status,
        400,
        "no topic"
    );
    let raw = request(
        server.addr,
        "POST /.well-known/mercure HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .await;
    assert_eq!(raw.status, 415);
    let refusals = [
        ("", "at least one topic"),
        ("match_regexp=a", "match_regexp"),
        ("MatchFoo=a", "MatchFoo"),
        (
            "match_urlpattern=https%3A%2F%2Fa.example%2F%3Aid(",
            "URL pattern",
        ),
        ("match_urlpattern=%2F(%3F%3Da)", "URL pattern"),
    ];
    for (query, says) in refusals {
        let head = format!("GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: t\r\n\r\n");
        let answer = request(server.addr, head).await;
        assert_eq!(answer.status, 400, "{query}");
        let error = answer.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(says), "{query}: {error}");
    }
    let reserved = mercure_publish(&server, "topic=a&data=x&id=earliest").await;
    assert_eq!(reserved.status, 400, "`earliest` is not an event id");
    server.stop().await;
}

/// Publishes `data` to `topic` with the id `id` through Mercure's endpoint.
async fn publish_to(server: &Server, topic: &str, id: &str) {
    let form = format!("topic={}&data={id}&id={id}", encode(topic));
    answered_id(&mercure_publish(server, &form).await);
}

/// The ids of the next `count` events of `stream`.
async fn ids(stream: &mut support::Stream, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..count {
        ids.push(stream.event_id().await);
    }
    ids
}

/// Percent-encodes a query or form value.
fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_url_patterns_select_the_topics_they_match_and_no_others() {
    let server = Server::start(&[]).await;
    let template = encode("https://example.com/books/{id}");
    let pattern = encode("https://example.com/books/:id");
    let mut by_template = server
        .subscribe(&format!("/.well-known/mercure?topic={template}"), "")
        .await;
    let mut by_pattern = server
        .subscribe(
            &format!("/.well-known/mercure?match_urlpattern={pattern}"),
            "",
        )
        .await;
    let mut by_draft_spelling = server
        .subscribe(
            &format!("/.well-known/mercure?matchURLPattern={pattern}"),
            "",
        )
        .await;
    let mut everything = server.subscribe("/.well-known/mercure?topic=*", "").await;
    let mut exact_and_template = server
        .subscribe(
            &format!(
                "/events?topic={}&match_urlpattern={pattern}",
                encode("https://example.com/books/1")
            ),
            "",
        )
        .await;
    server.wait_for_stat("subscribers", 5).await;
    let topics = [
        ("https://example.com/books/1", "b1"),
        ("https://example.com/books/1/reviews", "reviews"),
        ("https://example.com/authors/1", "a1"),
        ("https://example.com/books/", "empty-id"),
        ("http://example.com/books/2", "http"),
        ("https://example.com/books/2", "b2"),
    ];
    for (topic, id) in topics {
        publish_to(&server, topic, id).await;
    }
    // A URI template's simple expression may be empty, as Mercure's templates match; a URL
    // pattern's named group may not.
    assert_eq!(ids(&mut by_template, 3).await, ["b1", "empty-id", "b2"]);
    assert_eq!(ids(&mut by_pattern, 2).await, ["b1", "b2"]);
    assert_eq!(ids(&mut by_draft_spelling, 2).await, ["b1", "b2"]);
    assert_eq!(
        ids(&mut everything, 6).await,
        ["b1", "reviews", "a1", "empty-id", "http", "b2"]
    );
    assert_eq!(
        ids(&mut exact_and_template, 2).await,
        ["b1", "b2"],
        "a subscriber of a topic and of a pattern matching it gets its event once"
    );
    let stats = server.stats().await;
    assert!(stats["topics"].as_u64().unwrap() >= 6, "{stats}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_pattern_resumes_from_history_and_earliest_replays_all_of_it() {
    let server = Server::start(&[]).await;
    let mut head = server
        .subscribe("/.well-known/mercure?topic=unrelated", "")
        .await;
    assert!(
        head.head.contains("\r\nLast-Event-ID: earliest\r\n"),
        "nothing published yet: {}",
        head.head
    );
    for n in 1..=3 {
        publish_to(&server, &format!("/books/{n}"), &format!("b{n}")).await;
        publish_to(&server, &format!("/authors/{n}"), &format!("a{n}")).await;
    }
    let template = encode("/books/{id}");
    let mut resumed = server
        .subscribe(
            &format!("/.well-known/mercure?topic={template}"),
            "Last-Event-ID: b1\r\n",
        )
        .await;
    assert!(
        resumed.head.contains("\r\nLast-Event-ID: a3\r\n"),
        "the newest id history holds: {}",
        resumed.head
    );
    assert_eq!(
        resumed.event_id().await,
        "b2",
        "no gap: the pattern took the topics' history"
    );
    assert_eq!(resumed.event_id().await, "b3");
    let mut earliest = server
        .subscribe(
            &format!(
                "/events?match_urlpattern={}&lastEventId=earliest",
                encode("/authors/:id")
            ),
            "",
        )
        .await;
    for id in ["a1", "a2", "a3"] {
        assert_eq!(earliest.event_id().await, id);
    }
    // Both go on live, and `head` never got a thing.
    publish_to(&server, "/books/4", "b4").await;
    publish_to(&server, "/authors/4", "a4").await;
    publish_to(&server, "unrelated", "u").await;
    assert_eq!(resumed.event_id().await, "b4");
    assert_eq!(earliest.event_id().await, "a4");
    assert_eq!(head.event_id().await, "u");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_updates_reach_subscribers_whose_template_grant_matches_live_and_on_resume() {
    let secret = "!ChangeThisMercureHubJWTSecretKey!";
    let server = Server::start(&["--subscriber-jwt-key", secret]).await;
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap();
    let claims = serde_json::json!({"mercure": {"subscribe": ["/books/{id}"]}});
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let template = encode("/books/{id}");
    let path = format!("/.well-known/mercure?topic={template}&topic=%2Fauthors%2F1");
    let mut allowed = server.subscribe(&path, &bearer).await;
    let mut anonymous = server.subscribe(&path, "").await;
    server.wait_for_stat("subscribers", 2).await;
    let private =
        |topic: &str, id: &str| format!("topic={}&data=x&id={id}&private=on", encode(topic));
    answered_id(&mercure_publish(&server, &private("/books/1", "p1")).await);
    answered_id(&mercure_publish(&server, &private("/authors/1", "p2")).await);
    publish_to(&server, "/books/2", "public").await;
    assert_eq!(allowed.event_id().await, "p1");
    assert_eq!(
        allowed.event_id().await,
        "public",
        "its grant does not match /authors/1"
    );
    assert_eq!(anonymous.event_id().await, "public");
    let mut resumed = server
        .subscribe(&path, &format!("{bearer}Last-Event-ID: earliest\r\n"))
        .await;
    assert_eq!(resumed.event_id().await, "p1");
    assert_eq!(resumed.event_id().await, "public");
    let mut anonymous_resumed = server.subscribe(&path, "Last-Event-ID: earliest\r\n").await;
    assert_eq!(anonymous_resumed.event_id().await, "public");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_of_patterns_and_topics_are_bounded() {
    let server = Server::start(&["--max-pattern-pairs", "2"]).await;
    let mut everything = server.subscribe("/.well-known/mercure?topic=*", "").await;
    publish_to(&server, "a", "1").await;
    publish_to(&server, "b", "2").await;
    let refused = mercure_publish(&server, "topic=c&data=x").await;
    assert_eq!(refused.status, 503);
    assert!(refused.json()["error"].as_str().unwrap().contains("pairs"));
    publish_to(&server, "a", "3").await;
    let head = "GET /.well-known/mercure?topic=%7Bname%7D HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_eq!(
        request(server.addr, head).await.status,
        503,
        "a new pattern matching two held topics"
    );
    for id in ["1", "2", "3"] {
        assert_eq!(everything.event_id().await, id);
    }
    server.stop().await;
}
