//! Batch publish: a JSON array of events, published in order, all or nothing.

mod support;

use serde_json::{json, Value};
use support::{post, Server};

/// Publishes `body` (a JSON value) and returns the answer's status and JSON.
async fn publish(server: &Server, body: Value) -> (u16, Value) {
    let answer = post(server.addr, "application/json", body.to_string().as_bytes()).await;
    (answer.status, answer.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_published_in_order_with_its_ids() {
    let server = Server::start(&[]).await;
    let mut stream = server.subscribe("/events?topic=a&topic=b", "").await;
    server.wait_for_stat("subscribers", 1).await;
    let (status, answer) = publish(
        &server,
        json!([
            {"topic": "a", "id": "one", "data": "1"},
            {"topic": "b", "data": "2"},
            {"topic": ["a", "b"], "id": "three", "data": {"n": 3}},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let answers = answer.as_array().unwrap();
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0], json!({"id": "one", "subscribers": 1}));
    let assigned = answers[1]["id"].as_str().unwrap().to_owned();
    assert_eq!(answers[2]["id"], "three");
    for id in ["one", &assigned, "three"] {
        assert_eq!(stream.event_id().await, id);
    }
    assert_eq!(server.stats().await["events_published"], 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_one_bad_event_publishes_nothing() {
    let server = Server::start(&["--max-batch", "3"]).await;
    let mut stream = server.subscribe("/events?topic=t", "").await;
    server.wait_for_stat("subscribers", 1).await;
    server.publish_id("t", "held", "x").await;
    assert_eq!(stream.event_id().await, "held");
    let cases = [
        (
            json!([{"topic": "t", "data": "ok"}, {"topic": "t", "data": ""}]),
            400,
            "event 1 of the batch",
        ),
        (
            json!([{"topic": "t", "id": "x1", "data": "a"}, {"topic": "t", "id": "x1", "data": "b"}]),
            409,
            "unique",
        ),
        (
            json!([{"topic": "t", "data": "a"}, {"topic": "t", "id": "held", "data": "b"}]),
            409,
            "unique",
        ),
        (json!([]), 400, "1 to 3 events"),
        (
            json!([{"topic": "t", "data": "a"}, {"topic": "t", "data": "b"},
                   {"topic": "t", "data": "c"}, {"topic": "t", "data": "d"}]),
            400,
            "1 to 3 events",
        ),
        (
            json!([{"topic": "t", "data": "a"}, 7]),
            400,
            "malformed JSON",
        ),
    ];
    for (body, expected, error) in cases {
        let (status, answer) = publish(&server, body.clone()).await;
        assert_eq!(status, expected, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(error),
            "{answer}"
        );
    }
    // Nothing of them was published: the next event is the next one sent.
    server.publish_id("t", "after", "x").await;
    assert_eq!(stream.event_id().await, "after");
    assert_eq!(server.stats().await["events_published"], 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_and_single_publishes_share_one_total_order() {
    let server = Server::start(&[]).await;
    let mut stream = server.subscribe("/events?topic=t", "").await;
    server.wait_for_stat("subscribers", 1).await;
    let batches = {
        let server = support::Client { addr: server.addr };
        tokio::spawn(async move {
            for b in 0..20 {
                let events: Vec<Value> = (0..10)
                    .map(|e| json!({"topic": "t", "id": format!("b{b}-{e}"), "data": "x"}))
                    .collect();
                let answer = post(
                    server.addr,
                    "application/json",
                    Value::from(events).to_string().as_bytes(),
                )
                .await;
                assert_eq!(answer.status, 200);
            }
        })
    };
    for s in 0..100 {
        server.publish_id("t", &format!("s{s}"), "x").await;
    }
    batches.await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..300 {
        ids.push(stream.event_id().await);
    }
    // Each connection's events in its order, and each batch's ten together.
    let singles: Vec<&String> = ids.iter().filter(|id| id.starts_with('s')).collect();
    let expected: Vec<String> = (0..100).map(|s| format!("s{s}")).collect();
    assert_eq!(singles, expected.iter().collect::<Vec<_>>());
    for b in 0..20 {
        let first = ids.iter().position(|id| *id == format!("b{b}-0")).unwrap();
        let run: Vec<String> = (0..10).map(|e| format!("b{b}-{e}")).collect();
        assert_eq!(ids[first..first + 10], run[..], "batch {b} is contiguous");
    }
    server.stop().await;
}
