//! Topics: isolation, several per connection, and how many subscribers a publish reached.

mod support;

use serde_json::json;
use support::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_isolated() {
    let server = Server::start(&[]).await;
    let mut news = server.subscribe("/events?topic=news", "").await;
    let mut sport = server.subscribe("/events?topic=sport", "").await;
    let mut default = server.subscribe("/events", "").await;
    server.wait_for_stat("subscribers", 3).await;
    assert_eq!(
        server
            .publish(json!({"topic": "news", "id": "n", "data": "x"}))
            .await["subscribers"],
        1
    );
    server.publish_id("sport", "s", "x").await;
    server.publish_id("default", "d", "x").await;
    server.publish_id("nobody", "z", "x").await;
    server.publish_id("news", "n2", "x").await;
    assert_eq!(news.event_id().await, "n");
    assert_eq!(news.event_id().await, "n2");
    assert_eq!(sport.event_id().await, "s");
    assert_eq!(default.event_id().await, "d");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_in_several_subscribed_topics_arrives_once() {
    let server = Server::start(&[]).await;
    let mut both = server
        .subscribe("/events?topic=a&topic=b&topic=a", "")
        .await;
    let mut only_b = server.subscribe("/events?topic=b", "").await;
    server.wait_for_stat("subscribers", 2).await;
    let answer = server
        .publish(json!({"topic": ["a", "b"], "id": "ab", "data": "x"}))
        .await;
    assert_eq!(answer["subscribers"], 2, "distinct connections");
    server.publish_id("a", "a1", "x").await;
    server.publish_id("b", "b1", "x").await;
    let answer = server
        .publish(json!({"topic": ["b", "a", "b"], "id": "ba", "data": "x"}))
        .await;
    assert_eq!(answer["subscribers"], 2);
    let answer = server
        .publish(json!({"topic": ["nobody", "b"], "id": "nb", "data": "x"}))
        .await;
    assert_eq!(answer["subscribers"], 2, "one topic with subscribers");
    for expected in ["ab", "a1", "b1", "ba", "nb"] {
        assert_eq!(both.event_id().await, expected);
    }
    for expected in ["ab", "b1", "ba", "nb"] {
        assert_eq!(only_b.event_id().await, expected);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_spread_over_shards_all_get_every_event() {
    let server = Server::start(&["--shards", "3"]).await;
    let mut streams = Vec::new();
    for _ in 0..7 {
        streams.push(server.subscribe("/events?topic=t", "").await);
    }
    server.wait_for_stat("subscribers", 7).await;
    for id in 0..5 {
        let answer = server
            .publish(json!({"topic": "t", "id": id.to_string(), "data": "x"}))
            .await;
        assert_eq!(answer["subscribers"], 7);
    }
    for stream in &mut streams {
        for id in 0..5 {
            assert_eq!(stream.event_id().await, id.to_string());
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_reach_every_shard_in_one_order() {
    let server = Server::start(&["--shards", "3"]).await;
    let mut streams = Vec::new();
    for _ in 0..6 {
        streams.push(server.subscribe("/events?topic=t", "").await);
    }
    server.wait_for_stat("subscribers", 6).await;
    let publishers: Vec<_> = (0..4)
        .map(|p| {
            let client = *server;
            tokio::spawn(async move {
                for n in 0..50 {
                    client.publish_id("t", &format!("{p}-{n}"), "x").await;
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let mut orders = Vec::new();
    for stream in &mut streams {
        let mut order = Vec::with_capacity(200);
        for _ in 0..200 {
            order.push(stream.event_id().await);
        }
        orders.push(order);
    }
    // Each publisher's events in its own order, and every subscriber the same interleaving.
    for p in 0..4 {
        let mine: Vec<&String> = orders[0]
            .iter()
            .filter(|id| id.starts_with(&format!("{p}-")))
            .collect();
        let expected: Vec<String> = (0..50).map(|n| format!("{p}-{n}")).collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>());
    }
    for order in &orders[1..] {
        assert_eq!(order, &orders[0]);
    }
    server.stop().await;
}
