//! Resuming with Last-Event-ID: replay from history with nothing skipped or repeated, and the
//! in-band `gap` event when history cannot fill in.

mod support;

use serde_json::{json, Value};
use support::{Client, Server, Stream};

async fn publish_many(server: &Client, topic: &str, ids: impl IntoIterator<Item = u32>) {
    for id in ids {
        server.publish_id(topic, &id.to_string(), "x").await;
    }
}

fn gap_data(frame: &str) -> Value {
    let data = frame
        .strip_prefix("event: gap\ndata: ")
        .unwrap_or_else(|| panic!("not a gap event: {frame:?}"));
    serde_json::from_str(data.trim_end()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_after_the_header_id() {
    let server = Server::start(&[]).await;
    publish_many(&server, "r", 1..=5).await;
    let mut stream = server
        .subscribe("/events?topic=r", "Last-Event-ID: 2\r\n")
        .await;
    for id in 3..=5 {
        assert_eq!(stream.event_id().await, id.to_string());
    }
    publish_many(&server, "r", 6..=6).await;
    assert_eq!(stream.event_id().await, "6");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_works_from_the_query_and_the_header_wins() {
    let server = Server::start(&[]).await;
    publish_many(&server, "r", 1..=4).await;
    let mut stream = server.subscribe("/events?topic=r&lastEventId=3", "").await;
    assert_eq!(stream.event_id().await, "4");
    let mut stream = server
        .subscribe("/events?topic=r&lastEventId=3", "Last-Event-ID: 1\r\n")
        .await;
    assert_eq!(stream.event_id().await, "2");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_merges_several_topics_in_publish_order() {
    let server = Server::start(&[]).await;
    server.publish_id("a", "1", "x").await;
    server.publish_id("b", "2", "x").await;
    server
        .publish(json!({"topic": ["a", "b"], "id": "3", "data": "x"}))
        .await;
    server.publish_id("c", "4", "x").await;
    server.publish_id("a", "5", "x").await;
    server.publish_id("b", "6", "x").await;
    let mut stream = server
        .subscribe("/events?topic=a&topic=b", "Last-Event-ID: 1\r\n")
        .await;
    for id in ["2", "3", "5", "6"] {
        assert_eq!(stream.event_id().await, id);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_during_a_publish_burst_skips_and_repeats_nothing() {
    let server = Server::start(&[]).await;
    let total = 400u32;
    let addr = server.addr;
    let mut stream = server.subscribe("/events?topic=burst", "").await;
    server.wait_for_stat("subscribers", 1).await;
    let client = *server;
    let publisher = tokio::spawn(async move { publish_many(&client, "burst", 1..=total).await });
    let mut received = Vec::new();
    // Drop and reconnect several times while the burst runs.
    for _ in 0..4 {
        for _ in 0..30 {
            received.push(stream.event_id().await.parse::<u32>().unwrap());
        }
        let last = received.last().unwrap().to_string();
        drop(stream);
        stream = Stream::open(
            addr,
            "/events?topic=burst",
            &format!("Last-Event-ID: {last}\r\n"),
        )
        .await;
    }
    while received.last() != Some(&total) {
        received.push(stream.event_id().await.parse::<u32>().unwrap());
    }
    publisher.await.unwrap();
    assert_eq!(received, (1..=total).collect::<Vec<_>>());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_that_fell_out_of_history_gets_a_gap_then_what_is_held() {
    let server = Server::start(&["--history", "3"]).await;
    // A live subscriber: once it has the last event, the pass that wrote it has run, and
    // history is down to 3 events (a ring keeps what it got until the pass after).
    let mut live = server.subscribe("/events?topic=g", "").await;
    server.wait_for_stat("subscribers", 1).await;
    publish_many(&server, "g", 1..=6).await;
    for id in 1..=6 {
        assert_eq!(live.event_id().await, id.to_string());
    }
    let mut stream = server
        .subscribe("/events?topic=g", "Last-Event-ID: 2\r\n")
        .await;
    let gap = gap_data(&stream.event().await);
    assert_eq!(gap, json!({"lastEventId": "2", "oldestId": "4"}));
    for id in 4..=6 {
        assert_eq!(stream.event_id().await, id.to_string());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_id_gets_a_gap_even_with_empty_history() {
    let server = Server::start(&[]).await;
    let mut stream = server
        .subscribe("/events?topic=new", "Last-Event-ID: from-before\r\n")
        .await;
    let gap = gap_data(&stream.frame().await);
    assert_eq!(gap, json!({"lastEventId": "from-before", "oldestId": null}));
    server.wait_for_stat("subscribers", 1).await;
    server.publish_id("new", "first", "x").await;
    assert_eq!(stream.event_id().await, "first");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_id_in_history_resumes_with_nothing_to_replay() {
    let server = Server::start(&["--history", "2"]).await;
    publish_many(&server, "h", 1..=5).await;
    let mut stream = server
        .subscribe("/events?topic=h", "Last-Event-ID: 5\r\n")
        .await;
    server.wait_for_stat("subscribers", 1).await;
    publish_many(&server, "h", 6..=6).await;
    assert_eq!(stream.event().await, "id: 6\ndata: x\n\n");
    server.stop().await;
}
