//! The bytes on the wire: response head, frames, keep-alives, and a real SSE parser's view.

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use support::{timed, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_frames_are_byte_exact() {
    let server = Server::start(&["--cors-origin", "https://app.example"]).await;
    let mut stream = server
        .subscribe("/events?topic=news", "Origin: https://app.example\r\n")
        .await;
    assert_eq!(
        stream.head,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
         X-Accel-Buffering: no\r\nConnection: close\r\nLast-Event-ID: earliest\r\n\
         Access-Control-Allow-Origin: https://app.example\r\n\
         Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n\r\n"
    );
    server.wait_for_stat("subscribers", 1).await;
    let answer = server
        .publish(
            json!({"topic": "news", "id": "n1", "event": "headline", "retry": 2500,
                        "data": "line one\nline two\r\nline three\rend"}),
        )
        .await;
    assert_eq!(answer, json!({"id": "n1", "subscribers": 1}));
    assert_eq!(
        stream.frame().await,
        "id: n1\nevent: headline\nretry: 2500\ndata: line one\ndata: line two\n\
         data: line three\ndata: end\n\n"
    );
    let answer = server
        .publish(json!({"topic": "news", "data": "plain"}))
        .await;
    let id = answer["id"].as_str().unwrap();
    assert_eq!(stream.frame().await, format!("id: {id}\ndata: plain\n\n"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigned_ids_increase() {
    let server = Server::start(&[]).await;
    let mut last = 0u64;
    for _ in 0..20 {
        let answer = server.publish(json!({"topic": "t", "data": "x"})).await;
        let id: u64 = answer["id"].as_str().unwrap().parse().unwrap();
        assert!(id > last, "{id} after {last}");
        last = id;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_line_and_unicode_data_round_trip_through_an_sse_parser() {
    let server = Server::start(&[]).await;
    let stream = server.subscribe("/events?topic=u", "").await;
    server.wait_for_stat("subscribers", 1).await;
    let payloads = [
        "single",
        "two\nlines",
        "crlf\r\nand cr\rmixed\nendings",
        "ünïcödé ✓ 日本語 🎉",
        "  leading spaces and trailing  ",
        "data: looks like a field\n: looks like a comment",
        "trailing newline\n",
    ];
    for (index, data) in payloads.iter().enumerate() {
        server
            .publish(json!({"topic": "u", "id": index.to_string(), "event": "e", "data": data}))
            .await;
    }
    let bytes = Box::pin(futures::stream::unfold(
        stream.socket,
        |mut socket| async move {
            let mut chunk = vec![0u8; 1024];
            let n = tokio::io::AsyncReadExt::read(&mut socket, &mut chunk)
                .await
                .ok()?;
            chunk.truncate(n);
            (n > 0).then(|| (Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)), socket))
        },
    ));
    // The head was already read off this socket by `subscribe`; what remains is the body.
    let mut events = eventsource_stream::EventStream::new(bytes);
    for (index, data) in payloads.iter().enumerate() {
        let event = timed("parsed event", events.next()).await.unwrap().unwrap();
        assert_eq!(event.id, index.to_string());
        assert_eq!(event.event, "e");
        // An SSE parser turns CR and CRLF line ends into LF.
        let expected = data.replace("\r\n", "\n").replace('\r', "\n");
        assert_eq!(event.data, expected);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_subscribers_get_keep_alive_comments_each_interval() {
    let server = Server::start(&["--keep-alive", "1s"]).await;
    let mut stream = server.subscribe("/events?topic=quiet", "").await;
    let opened = Instant::now();
    assert_eq!(stream.frame().await, ": keep-alive\n\n");
    let first = opened.elapsed();
    assert_eq!(stream.frame().await, ": keep-alive\n\n");
    let second = opened.elapsed();
    assert!(
        first >= Duration::from_millis(900),
        "first keep-alive after {first:?}"
    );
    assert!(
        first < Duration::from_millis(1500),
        "first keep-alive after {first:?}"
    );
    let gap = second - first;
    assert!(
        gap >= Duration::from_millis(900) && gap < Duration::from_millis(1500),
        "{gap:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_postpones_the_keep_alive() {
    let server = Server::start(&["--keep-alive", "1s"]).await;
    let mut stream = server.subscribe("/events?topic=busy", "").await;
    server.wait_for_stat("subscribers", 1).await;
    let opened = Instant::now();
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.publish_id("busy", "1", "x").await;
    assert_eq!(stream.frame().await, "id: 1\ndata: x\n\n");
    assert_eq!(stream.frame().await, ": keep-alive\n\n");
    assert!(
        opened.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        opened.elapsed()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_data_arrives_as_the_publisher_wrote_it() {
    let server = Server::start(&[]).await;
    let mut stream = server.subscribe("/events?topic=score", "").await;
    server.wait_for_stat("subscribers", 1).await;
    // Key order, spacing, numbers as written and escapes, sent as raw JSON text.
    let data = "{\"home\": 2, \"away\":1,\n \"odds\": 1.50, \"note\": \"\\u00e9\"}";
    let body = format!(r#"{{"topic": "score", "id": "s1", "data": {data}}}"#);
    let answer = support::post(server.addr, "application/json", body.as_bytes()).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(
        stream.frame().await,
        "id: s1\ndata: {\"home\": 2, \"away\":1,\ndata:  \"odds\": 1.50, \"note\": \"\\u00e9\"}\n\n"
    );
    server.stop().await;
}
