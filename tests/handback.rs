//! A subscribe on a keep-alive connection hyper is serving: the connection comes back to the
//! raw path and streams like any other. (The framing cases are unit tests of `conn::handback`.)

mod support;

use serde_json::json;
use support::{find, timed, Server, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads whole responses (sized bodies) off `socket` until `count` have arrived.
async fn read_responses(socket: &mut TcpStream, count: usize) -> Vec<String> {
    let mut buf = Vec::new();
    let mut responses = Vec::new();
    while responses.len() < count {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                let whole: Vec<u8> = buf.drain(..end + 4 + length).collect();
                responses.push(String::from_utf8_lossy(&whole).into_owned());
                continue;
            }
        }
        let mut chunk = [0u8; 65536];
        let n = timed("read responses", socket.read(&mut chunk))
            .await
            .unwrap();
        assert!(
            n > 0,
            "connection closed after {} responses",
            responses.len()
        );
        buf.extend_from_slice(&chunk[..n]);
    }
    assert!(buf.is_empty(), "nothing after the responses yet");
    responses
}

async fn subscribe_after(
    server: &Server,
    requests: &str,
    responses: usize,
) -> (Vec<String>, Stream) {
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket.write_all(requests.as_bytes()).await.unwrap();
    let answers = read_responses(&mut socket, responses).await;
    for answer in &answers {
        assert!(
            !answer.to_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
    let stream = Stream::on(
        socket,
        b"GET /events?topic=kept HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await;
    (answers, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_then_events_on_one_connection() {
    let server = Server::start(&[]).await;
    let (answers, mut stream) =
        subscribe_after(&server, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 1).await;
    assert!(answers[0].starts_with("HTTP/1.1 200 OK"));
    assert!(
        answers[0].contains("<html")
            || answers[0].contains("<!doctype")
            || answers[0].contains("<!DOCTYPE")
    );
    assert!(stream
        .head
        .starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"));
    server.wait_for_stat("subscribers", 1).await;
    server.publish_id("kept", "1", "after handback").await;
    assert_eq!(stream.event().await, "id: 1\ndata: after handback\n\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_publish_and_stats_then_events() {
    let server = Server::start(&[]).await;
    let body = json!({"topic": "kept", "id": "0", "data": "before"}).to_string();
    let requests = format!(
        "POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}GET /stats HTTP/1.1\r\nHost: t\r\n\r\n",
        body.len()
    );
    let (answers, mut stream) = subscribe_after(&server, &requests, 2).await;
    assert!(
        answers[0].ends_with(r#"{"id":"0","subscribers":0}"#),
        "{}",
        answers[0]
    );
    assert!(answers[1].contains("\"subscribers\":0"));
    server.wait_for_stat("subscribers", 1).await;
    server.publish_id("kept", "1", "x").await;
    assert_eq!(stream.event_id().await, "1");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_on_a_kept_connection_replays_history() {
    let server = Server::start(&[]).await;
    for id in 1..=3 {
        server.publish_id("kept", &id.to_string(), "x").await;
    }
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    read_responses(&mut socket, 1).await;
    let mut stream = Stream::on(
        socket,
        b"GET /events?topic=kept HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 1\r\n\r\n",
    )
    .await;
    assert_eq!(stream.event_id().await, "2");
    assert_eq!(stream.event_id().await, "3");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_hyper_cannot_hand_back_is_redirected_to_a_new_connection() {
    let server = Server::start(&[]).await;
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /events?topic=a HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = timed("answers", socket.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(text.starts_with("http/1.0 200 ok"), "{text}");
    assert!(
        text.contains("307 temporary redirect") && text.contains("location: /events?topic=a"),
        "{text}"
    );
    server.stop().await;
}
