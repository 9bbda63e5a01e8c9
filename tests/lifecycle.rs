//! Connections over time: many at once, clients that leave, laggards, and shutdown.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{timed, Server, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_subscribers_each_get_all_hundred_events_in_order() {
    let server = Server::start(&["--max-connections-per-ip", "0"]).await;
    let mut streams = Vec::new();
    for _ in 0..2000 {
        streams.push(server.subscribe("/events?topic=many", "").await);
    }
    server.wait_for_stat("subscribers", 2000).await;
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut ids = Vec::with_capacity(100);
                for _ in 0..100 {
                    ids.push(stream.event_id().await.parse::<u32>().unwrap());
                }
                ids
            })
        })
        .collect();
    for id in 0..100 {
        let answer = server
            .publish(json!({"topic": "many", "id": id.to_string(), "data": "x"}))
            .await;
        assert_eq!(answer["subscribers"], 2000);
    }
    let expected: Vec<u32> = (0..100).collect();
    for reader in readers {
        assert_eq!(timed("reader", reader).await.unwrap(), expected);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_is_freed_on_a_topic_that_never_publishes() {
    let server = Server::start(&["--keep-alive", "60s"]).await;
    let stay = server.subscribe("/events?topic=silent", "").await;
    let leave = server.subscribe("/events?topic=silent", "").await;
    let reset = server
        .subscribe("/events?topic=silent&topic=other", "")
        .await;
    server.wait_for_stat("subscribers", 3).await;
    drop(leave);
    server.wait_for_stat("subscribers", 2).await;
    reset.socket.set_zero_linger().unwrap();
    drop(reset);
    server.wait_for_stat("subscribers", 1).await;
    drop(stay);
    server.wait_for_stat("subscribers", 0).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_further_behind_than_history_is_disconnected() {
    // No keep-alive comment comes between the frames: the stream is the events alone.
    let server = Server::start(&["--history", "4", "--keep-alive", "60s"]).await;
    let mut reader = server.subscribe("/events?topic=big", "").await;
    // A small receive window, so the stalled subscriber fills its socket sooner.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let socket = timed("connect", socket.connect(server.addr)).await.unwrap();
    let request = b"GET /events?topic=big HTTP/1.1\r\nHost: t\r\n\r\n";
    let stalled = Stream::on(socket, request).await;
    server.wait_for_stat("subscribers", 2).await;
    // Frames small enough that several fit in the socket buffers (16 KiB sent, 4 KiB received,
    // each doubled by the kernel), and 120 of them far more than fit.
    let data = "z".repeat(4 * 1024);
    // Every frame as the encoder writes it, in publish order.
    let frames: Vec<String> = (0..120)
        .map(|id| format!("id: {id}\ndata: {data}\n\n"))
        .collect();
    // In step with the reader, so only the stalled subscriber falls behind.
    for (id, frame) in frames.iter().enumerate() {
        server
            .publish(json!({"topic": "big", "id": id.to_string(), "data": data}))
            .await;
        assert_eq!(
            &reader.frame().await,
            frame,
            "the reader gets frame {id} whole"
        );
    }
    server.wait_for_stat("subscribers_lagged", 1).await;
    server.wait_for_stat("subscribers", 1).await;
    // The stalled client finds its stream closed once it reads what was sent before: whole
    // frames in publish order, ids consecutive from the first, then at most the start of the
    // next one (a subscriber is dropped wherever its socket stopped taking bytes; an SSE parser
    // discards an event cut short).
    let received = stalled.rest().await;
    let stream = frames.concat();
    assert!(received.len() < stream.len(), "it lagged");
    assert!(
        stream.as_bytes().starts_with(&received),
        "the stalled client got a prefix of the stream ({} bytes)",
        received.len()
    );
    let whole = received.len() / frames[0].len();
    assert!(
        whole >= 2,
        "several frames arrived whole before the close, not {whole}"
    );
    // Once the stalled subscriber is gone the reader is served as before.
    server
        .publish(json!({"topic": "big", "id": "after", "data": "x"}))
        .await;
    assert_eq!(reader.frame().await, "id: after\ndata: x\n\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_every_stream_cleanly_and_returns_within_five_seconds() {
    let server = Server::start(&[]).await;
    let streams: Vec<Stream> =
        futures::future::join_all((0..10).map(|_| server.subscribe("/events?topic=s", ""))).await;
    // An idle keep-alive connection and one that has not finished its head.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 256];
    let n = timed("healthz", idle.read(&mut answer)).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200 OK"));
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"GET /events?topic=s HTTP/1.1\r\n")
        .await
        .unwrap();
    server.wait_for_stat("subscribers", 10).await;
    let took = server.stop().await;
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    for mut stream in streams {
        let mut rest = Vec::new();
        let read = timed("stream end", stream.socket.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "a clean end, not a reset: {read:?}");
    }
    let mut rest = Vec::new();
    assert!(timed("idle closed", idle.read_to_end(&mut rest))
        .await
        .is_ok());
    let _ = timed("half closed", half.read_to_end(&mut rest)).await;
}
