//! Several nodes as one service over a real Redis (`--redis`): one order for every subscriber
//! of every node, resumes on another node, a node that starts late, and Redis going away.

mod support;

use serde_json::{json, Value};
use support::redis::Redis;
use support::{post, Proxy, Server, Stream};

/// Starts `count` nodes on `redis`, each with `flags` besides.
async fn nodes(redis: &Redis, count: usize, flags: &[&str]) -> Vec<Server> {
    let url = redis.url();
    let mut nodes = Vec::new();
    for _ in 0..count {
        let mut all = vec!["--redis", &url];
        all.extend_from_slice(flags);
        nodes.push(Server::start(&all).await);
    }
    for node in &nodes {
        node.wait_for_redis(true).await;
    }
    nodes
}

/// Publishes `body` and returns the answer's status and JSON.
async fn publish(node: &Server, body: Value) -> (u16, Value) {
    let response = post(node.addr, "application/json", body.to_string().as_bytes()).await;
    (response.status, response.json())
}

/// Two nodes on `redis`, and a subscriber of `a` on the second that got `before`, published on
/// the first.
async fn two_nodes_and_a_subscriber(redis: &Redis) -> (Vec<Server>, Stream) {
    let nodes = nodes(redis, 2, &[]).await;
    let mut subscriber = nodes[1].subscribe("/events?topic=a", "").await;
    nodes[1].wait_for_stat("subscribers", 1).await;
    nodes[0].publish_id("a", "before", "x").await;
    assert_eq!(subscriber.event_id().await, "before");
    (nodes, subscriber)
}

/// A publish to `node` while Redis is away.
async fn publish_without_redis(node: &Server) -> support::Response {
    post(
        node.addr,
        "application/json",
        br#"{"topic":"a","data":"x"}"#,
    )
    .await
}

/// The ids of the next `count` events of `stream`.
async fn ids(stream: &mut Stream, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        ids.push(stream.event_id().await);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_on_any_node_reaches_every_subscriber_in_one_order() {
    let redis = Redis::start();
    let nodes = nodes(&redis, 3, &[]).await;
    let mut streams = Vec::new();
    for node in &nodes {
        streams.push(node.subscribe("/events?topic=a&topic=b", "").await);
        streams.push(node.subscribe("/events?topic=a", "").await);
        node.wait_for_stat("subscribers", 2).await;
    }
    // Publishers on every node at once, each its own ids.
    let mut publishers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let client = **node;
        publishers.push(tokio::spawn(async move {
            for k in 0..20 {
                let body = json!({"topic": "a", "id": format!("n{n}-{k}"), "data": "x"});
                client.publish(body).await;
            }
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let (status, answer) = publish(&nodes[1], json!({"topic": "b", "data": "only b"})).await;
    assert_eq!(status, 200, "{answer}");
    let generated = answer["id"].as_str().unwrap().to_owned();
    // The 60 events of a, then the one of b, as the first subscriber saw them.
    let order = ids(&mut streams[0], 61).await;
    assert_eq!(order[60], generated);
    for n in 0..3 {
        let own: Vec<&String> = order
            .iter()
            .filter(|id| id.starts_with(&format!("n{n}-")))
            .collect();
        let sent: Vec<String> = (0..20).map(|k| format!("n{n}-{k}")).collect();
        assert_eq!(
            own,
            sent.iter().collect::<Vec<_>>(),
            "each publisher's order, once each"
        );
    }
    // Every subscriber on every node: the same order (those of a alone, without b's event).
    for (index, stream) in streams.iter_mut().enumerate().skip(1) {
        let expected = if index % 2 == 0 {
            &order[..]
        } else {
            &order[..60]
        };
        assert_eq!(
            ids(stream, expected.len()).await,
            expected,
            "subscriber {index}"
        );
    }
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_on_another_node_gets_exactly_what_was_missed() {
    let redis = Redis::start();
    let nodes = nodes(&redis, 2, &[]).await;
    // 64 topics: a, b and 62 others.
    let path: String = (0..62).fold("/events?topic=a&topic=b".to_owned(), |path, n| {
        path + &format!("&topic=x{n}")
    });
    let mut reader = nodes[0].subscribe(&path, "").await;
    nodes[0].wait_for_stat("subscribers", 1).await;
    for k in 0..6 {
        let topic = ["a", "b", "c"][k % 3];
        nodes[k % 2].publish_id(topic, &format!("e{k}"), "x").await;
    }
    assert_eq!(ids(&mut reader, 2).await, ["e0", "e1"]);
    drop(reader);
    // Resumed on the other node after e1: what it missed of a and b, then live.
    let mut resumed = nodes[1].subscribe(&path, "Last-Event-ID: e1\r\n").await;
    nodes[0].publish_id("a", "e6", "x").await;
    assert_eq!(ids(&mut resumed, 3).await, ["e3", "e4", "e6"]);
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_later_serves_resumes_of_earlier_events() {
    let redis = Redis::start();
    let first = nodes(&redis, 1, &[]).await.remove(0);
    for k in 0..5 {
        first.publish_id("a", &format!("e{k}"), "x").await;
    }
    let (status, answer) =
        publish(&first, json!({"topic": "a", "id": "e2", "data": "again"})).await;
    assert_eq!(status, 409, "an id the shared log holds: {answer}");
    let late = nodes(&redis, 1, &[]).await.remove(0);
    let mut resumed = late
        .subscribe("/events?topic=a", "Last-Event-ID: e2\r\n")
        .await;
    assert_eq!(ids(&mut resumed, 2).await, ["e3", "e4"]);
    let mut gap = late
        .subscribe("/events?topic=a", "Last-Event-ID: never\r\n")
        .await;
    assert!(gap.event().await.starts_with("event: gap\n"));
    first.stop().await;
    late.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_publishes_wait_and_subscribers_stay() {
    let mut redis = Redis::start();
    let (nodes, subscriber) = two_nodes_and_a_subscriber(&redis).await;
    redis.stop();
    let response = publish_without_redis(&nodes[0]).await;
    assert_eq!(
        response.status,
        503,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(response
        .head
        .to_ascii_lowercase()
        .contains("retry-after: 1"));
    assert!(response.json()["error"].as_str().unwrap().contains("Redis"));
    let health = support::request(
        nodes[0].addr,
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(health.status, 503);
    let metrics = support::request(
        nodes[0].addr,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(metrics.contains("ssecast_redis_up 0"), "{metrics}");
    assert_eq!(nodes[1].stats().await["subscribers"], 1, "subscribers stay");

    // Back without its data: the node's streams end, so that each resumes and learns from
    // history that it may have missed something.
    redis.start_again();
    for node in &nodes {
        node.wait_for_redis(true).await;
    }
    let rest = String::from_utf8(subscriber.rest().await).unwrap();
    assert!(
        !rest.contains("data:"),
        "nothing arrives silently: {rest:?}"
    );
    let mut resumed = nodes[1]
        .subscribe("/events?topic=a", "Last-Event-ID: before\r\n")
        .await;
    nodes[0].publish_id("a", "after", "x").await;
    let first = resumed.event().await;
    assert!(first.starts_with("event: gap\n"), "{first:?}");
    assert_eq!(resumed.event_id().await, "after");
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_burst_loses_its_subscribers_nothing() {
    let redis = Redis::start();
    let flags = format!("--redis {}", redis.url());
    let (mut doomed, a, _log_a) = support::spawn_binary("", &flags).await;
    let (_survivor, b, _log_b) = support::spawn_binary("", &flags).await;
    let mut reader = a.subscribe("/events?topic=a&topic=b", "").await;
    a.wait_for_stat("subscribers", 1).await;
    // A burst on the survivor: a, b and c in turn; the reader wants a and b.
    let burst = tokio::spawn(async move {
        for k in 0..300 {
            let topic = ["a", "b", "c"][k % 3];
            b.publish_id(topic, &format!("p{k}"), "x").await;
        }
    });
    let wanted: Vec<String> = (0..300)
        .filter(|k| k % 3 != 2)
        .map(|k| format!("p{k}"))
        .collect();
    let mut seen = ids(&mut reader, 40).await;
    doomed.start_kill().unwrap();
    let _ = doomed.wait().await;
    // The browser reconnects to the other node with the last id it saw.
    let last = seen.last().unwrap().clone();
    let mut resumed = b
        .subscribe(
            "/events?topic=a&topic=b",
            &format!("Last-Event-ID: {last}\r\n"),
        )
        .await;
    seen.extend(ids(&mut resumed, wanted.len() - seen.len()).await);
    assert_eq!(seen, wanted, "nothing missing, nothing twice, one order");
    burst.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_back_with_its_data_loses_nothing() {
    let mut redis = Redis::start_persistent();
    let (nodes, mut subscriber) = two_nodes_and_a_subscriber(&redis).await;
    redis.stop();
    assert_eq!(publish_without_redis(&nodes[0]).await.status, 503);
    redis.start_again();
    for node in &nodes {
        node.wait_for_redis(true).await;
    }
    nodes[0].publish_id("a", "after", "x").await;
    assert_eq!(
        subscriber.event_id().await,
        "after",
        "the same stream goes on"
    );
    let (status, _) = publish(
        &nodes[1],
        json!({"topic": "a", "id": "before", "data": "x"}),
    )
    .await;
    assert_eq!(status, 409, "the log came back with its ids");
    // A resume on the other node across the outage: no gap.
    let mut resumed = nodes[0]
        .subscribe("/events?topic=a", "Last-Event-ID: before\r\n")
        .await;
    assert_eq!(resumed.event_id().await, "after");
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_redis_catches_up_from_the_log() {
    let redis = Redis::start();
    let link = Proxy::start(redis.addr).await;
    let cut_off = Server::start(&["--redis", &format!("redis://{}", link.addr)]).await;
    let other = nodes(&redis, 1, &[]).await.remove(0);
    cut_off.wait_for_redis(true).await;
    let mut subscriber = cut_off.subscribe("/events?topic=a", "").await;
    cut_off.wait_for_stat("subscribers", 1).await;
    other.publish_id("a", "e0", "x").await;
    assert_eq!(subscriber.event_id().await, "e0");
    link.cut();
    cut_off.wait_for_redis(false).await;
    for k in 1..4 {
        other.publish_id("a", &format!("e{k}"), "x").await;
    }
    link.restore();
    // Read back from the log on reconnecting: the same stream, nothing missing, no gap.
    assert_eq!(ids(&mut subscriber, 3).await, ["e1", "e2", "e3"]);
    other.publish_id("a", "e4", "x").await;
    assert_eq!(subscriber.event_id().await, "e4");
    cut_off.stop().await;
    other.stop().await;
}
