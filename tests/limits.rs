//! Every resource a client can make the server hold has a bound, and each bound answers
//! clearly: history in bytes, topics, subscribers, connections per address, full sockets,
//! ids, a failed shard; and well-behaved subscribers lose nothing meanwhile.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{connect_from, post, timed, wait_until, Server, Stream};
use tokio::io::AsyncReadExt;

fn gap_data(frame: &str) -> Value {
    let data = frame
        .strip_prefix("event: gap\ndata: ")
        .unwrap_or_else(|| panic!("not a gap event: {frame:?}"));
    serde_json::from_str(data.trim_end()).unwrap()
}

/// A raw answer's JSON body, checking its status and `Retry-After`.
fn refusal(stream: Stream, status: &str) -> impl std::future::Future<Output = Value> {
    assert!(
        stream.head.starts_with(&format!("HTTP/1.1 {status}")),
        "{}",
        stream.head
    );
    assert!(stream.head.contains("retry-after: "), "{}", stream.head);
    async move { serde_json::from_slice(&stream.rest().await).unwrap() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_bounded_in_bytes_and_resuming_before_it_gets_a_gap() {
    let server = Server::start(&["--history-bytes", "20000"]).await;
    let mut live = server.subscribe("/events?topic=h", "").await;
    let data = "x".repeat(1000);
    for id in 1..=40 {
        server.publish_id("h", &id.to_string(), &data).await;
    }
    for id in 1..=40 {
        assert_eq!(live.event_id().await, id.to_string(), "live loses nothing");
    }
    let stats = server.stats().await;
    let held = stats["history_bytes"].as_u64().unwrap();
    assert!(held > 15_000 && held <= 20_000, "{stats}");
    // About 17 events of 1 kB fit: the oldest are gone, the newest are held.
    let mut early = server
        .subscribe("/events?topic=h", "Last-Event-ID: 3\r\n")
        .await;
    let gap = gap_data(&early.event().await);
    assert_eq!(gap["lastEventId"], "3");
    let oldest: u32 = gap["oldestId"].as_str().unwrap().parse().unwrap();
    assert!((20..=30).contains(&oldest), "{gap}");
    assert_eq!(early.event_id().await, oldest.to_string());
    let mut recent = server
        .subscribe("/events?topic=h", "Last-Event-ID: 38\r\n")
        .await;
    assert_eq!(recent.event_id().await, "39");
    assert_eq!(recent.event_id().await, "40");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_history_holds_cannot_be_reused_and_ids_are_trimmed_of_nothing() {
    let server = Server::start(&[]).await;
    let mut stream = server.subscribe("/events?topic=i", "").await;
    server.publish_id("i", "42", "A").await;
    server.publish_id("i", "43", "B").await;
    let again = post(
        server.addr,
        "application/json",
        br#"{"topic": "other", "id": "42", "data": "C"}"#,
    )
    .await;
    assert_eq!(again.status, 409);
    assert!(again.json()["error"].as_str().unwrap().contains("unique"));
    let spaced = post(
        server.addr,
        "application/x-www-form-urlencoded",
        b"topic=i&id=+44&data=D",
    )
    .await;
    assert_eq!(spaced.status, 400);
    assert!(spaced.json()["error"]
        .as_str()
        .unwrap()
        .contains("whitespace"));
    server.publish_id("i", "44", "D").await;
    for id in ["42", "43", "44"] {
        assert_eq!(stream.event_id().await, id);
    }
    // Resuming from 42 skips nothing.
    let mut resumed = server
        .subscribe("/events?topic=i", "Last-Event-ID: 42\r\n")
        .await;
    assert_eq!(resumed.event_id().await, "43");
    assert_eq!(resumed.event_id().await, "44");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_that_leave_do_not_pin_their_topics() {
    let server = Server::start(&["--max-topics", "100"]).await;
    let mut control = server.subscribe("/events?topic=keep", "").await;
    // 20 subscribes of 64 new names each, which leave at once: far more names than the table
    // holds, and none of them stays.
    for round in 0..20 {
        let query: Vec<String> = (0..64).map(|i| format!("topic=r{round}-{i}")).collect();
        let mut socket = timed("connect", tokio::net::TcpStream::connect(server.addr))
            .await
            .unwrap();
        let head = format!("GET /events?{} HTTP/1.1\r\n\r\n", query.join("&"));
        tokio::io::AsyncWriteExt::write_all(&mut socket, head.as_bytes())
            .await
            .unwrap();
        drop(socket);
    }
    wait_until(&server, "topics freed", |s| {
        s["topics"] == 1 && s["subscribers"] == 1
    })
    .await;
    // New topics are still welcome, and the control subscriber lost nothing.
    server.publish_id("fresh", "f", "x").await;
    server.publish_id("keep", "k", "x").await;
    assert_eq!(control.event_id().await, "k");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_topics_are_forgotten_with_their_history() {
    let server = Server::start(&["--topic-idle", "300ms"]).await;
    server.publish_id("quiet", "q1", "x").await;
    let stats = server.stats().await;
    assert_eq!(stats["topics"], 1);
    assert!(stats["history_bytes"].as_u64().unwrap() > 0);
    let mut held = server.subscribe("/events?topic=busy", "").await;
    let stats = wait_until(&server, "the idle topic freed", |s| s["topics"] == 1).await;
    assert_eq!(stats["subscribers"], 1, "a topic with a subscriber is kept");
    let answer = server
        .publish(json!({"topic": "busy", "id": "b1", "data": "x"}))
        .await;
    assert_eq!(answer["subscribers"], 1, "{answer}");
    assert_eq!(held.event_id().await, "b1");
    let mut late = server
        .subscribe("/events?topic=quiet", "Last-Event-ID: q1\r\n")
        .await;
    let gap = gap_data(&late.event().await);
    assert_eq!(gap["oldestId"], Value::Null, "its history went with it");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_fill_the_topic_table() {
    let server = Server::start(&["--max-topics-per-ip", "3"]).await;
    let first = server.subscribe("/events?topic=a&topic=b", "").await;
    assert!(first.head.starts_with("HTTP/1.1 200"), "{}", first.head);
    let refused = server.subscribe("/events?topic=c&topic=d", "").await;
    let body = refusal(refused, "429").await;
    assert!(
        body["error"].as_str().unwrap().contains("limit of 3"),
        "{body}"
    );
    // Topics that exist cost nothing; another address has its own count.
    let existing = server.subscribe("/events?topic=a&topic=c", "").await;
    assert!(
        existing.head.starts_with("HTTP/1.1 200"),
        "{}",
        existing.head
    );
    let socket = connect_from([127, 0, 0, 2], server.addr).await;
    let other = Stream::on(
        socket,
        b"GET /events?topic=x&topic=y&topic=z HTTP/1.1\r\n\r\n",
    )
    .await;
    assert!(other.head.starts_with("HTTP/1.1 200"), "{}", other.head);
    // A publisher's topics do not count against any address.
    for i in 0..5 {
        server
            .publish_id(&format!("p{i}"), &format!("p{i}"), "x")
            .await;
    }
    assert_eq!(server.stats().await["subscribes_refused"], 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_past_its_connections_gets_429_at_once() {
    let server = Server::start(&["--max-connections-per-ip", "3"]).await;
    const CROWDED: [u8; 4] = [127, 0, 0, 5];
    let addr = server.addr;
    let subscribe = |from| async move {
        let socket = connect_from(from, addr).await;
        Stream::on(socket, b"GET /events?topic=c HTTP/1.1\r\n\r\n").await
    };
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(subscribe(CROWDED).await);
    }
    server.wait_for_stat("subscribers", 3).await;
    // The fourth is answered without a request being read.
    let mut fourth = connect_from(CROWDED, server.addr).await;
    let mut answer = Vec::new();
    timed("429", fourth.read_to_end(&mut answer)).await.unwrap();
    let answer = support::parse_response(&answer);
    assert_eq!(answer.status, 429);
    assert!(answer.head.contains("retry-after: "), "{}", answer.head);
    assert!(answer.json()["error"]
        .as_str()
        .unwrap()
        .contains("limit of 3"));
    // Another address is served, and one that leaves makes room.
    let mut other = subscribe([127, 0, 0, 6]).await;
    assert!(other.head.starts_with("HTTP/1.1 200"), "{}", other.head);
    server.wait_for_stat("subscribers", 4).await;
    drop(held.pop());
    server.wait_for_stat("subscribers", 3).await;
    let mut again = subscribe(CROWDED).await;
    assert!(again.head.starts_with("HTTP/1.1 200"), "{}", again.head);
    assert_eq!(server.stats().await["connections_refused_per_address"], 1);
    server.publish_id("c", "c1", "x").await;
    for stream in held.iter_mut().chain([&mut other, &mut again]) {
        assert_eq!(stream.event_id().await, "c1");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_subscriber_limit_a_subscribe_gets_503() {
    let server = Server::start(&["--max-subscribers", "2"]).await;
    let mut first = server.subscribe("/events?topic=s", "").await;
    let second = server.subscribe("/events?topic=s", "").await;
    let third = server.subscribe("/events?topic=s", "").await;
    let body = refusal(third, "503").await;
    assert!(
        body["error"].as_str().unwrap().contains("2 subscribers"),
        "{body}"
    );
    server.wait_for_stat("subscribers", 2).await;
    drop(second);
    server.wait_for_stat("subscribers", 1).await;
    let mut fourth = server.subscribe("/events?topic=s", "").await;
    assert!(fourth.head.starts_with("HTTP/1.1 200"), "{}", fourth.head);
    server.publish_id("s", "s1", "x").await;
    assert_eq!(first.event_id().await, "s1");
    assert_eq!(fourth.event_id().await, "s1");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_whose_socket_stays_full_is_dropped_on_a_quiet_topic() {
    let server = Server::start(&["--keep-alive", "100ms", "--send-buffer", "4096"]).await;
    let stalled = server.subscribe("/events?topic=q", "").await;
    let mut control = server.subscribe("/events?topic=q", "").await;
    // Enough to fill the stalled client's receive buffer and the server's send buffer; then
    // the topic goes quiet for good.
    let data = "y".repeat(60_000);
    let reader = tokio::spawn(async move {
        for id in 0..40 {
            assert_eq!(control.event_id().await, id.to_string());
        }
        control
    });
    for id in 0..40 {
        server.publish_id("q", &id.to_string(), &data).await;
    }
    let mut control = timed("control reads all", reader).await.unwrap();
    // The count falls once the shard has given back what the subscriber held.
    let stats = wait_until(&server, "the stalled subscriber dropped", |s| {
        s["subscribers_blocked"] == 1 && s["subscribers"] == 1
    })
    .await;
    assert_eq!(stats["subscribers_lagged"], 0, "{stats}");
    drop(stalled);
    assert_eq!(control.frame().await, ": keep-alive\n\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_shutdown_each_stream_is_told_its_own_reconnection_delay() {
    let server = Server::start(&["--reconnect-spread", "60s"]).await;
    let streams: Vec<Stream> =
        futures::future::join_all((0..8).map(|_| server.subscribe("/events?topic=s", ""))).await;
    server.wait_for_stat("subscribers", 8).await;
    server.stop().await;
    let mut delays = Vec::new();
    for stream in streams {
        let delay = stream.retry_delay().await;
        assert!((1000..=61_000).contains(&delay), "{delay}");
        delays.push(delay);
    }
    delays.sort();
    delays.dedup();
    assert!(delays.len() > 4, "spread out: {delays:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_shard_is_reported_at_once() {
    use clap::Parser;
    let flags = ["ssecast", "--shards", "2"];
    let settings = ssecast::config::Config::try_parse_from(flags)
        .unwrap()
        .broadcast(100);
    let stats = Arc::new(ssecast::stats::Stats::default());
    let addresses = ssecast::address::Addresses::new(0);
    let (broadcaster, shards) =
        ssecast::broadcast::Broadcaster::start(&settings, addresses, stats).unwrap();
    assert_eq!(broadcaster.failure(), None);
    broadcaster.fail_a_shard();
    let why = timed("failure", broadcaster.failed()).await;
    assert!(why.contains("panicked"), "{why}");
    assert_eq!(broadcaster.failure(), Some(why));
    broadcaster.close();
    for shard in shards {
        tokio::task::spawn_blocking(move || shard.join())
            .await
            .unwrap()
            .ok();
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
}
