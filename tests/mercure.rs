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
    for query in ["topic=*", "topic=https://example.com/books/{id}", ""] {
        let head = format!("GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: t\r\n\r\n");
        let answer = request(server.addr, head).await;
        assert_eq!(
            answer.status,
            400,
            "{query}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    server.stop().await;
}
