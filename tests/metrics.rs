//! `GET /metrics`: the Prometheus text format, read back by a Prometheus text parser, with the
//! figures the server's traffic must have made.

mod support;

use std::collections::HashMap;

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;
use support::{request, timed, Client, Server};

/// Scrapes `/metrics` and parses it.
async fn scrape(client: &Client) -> Scrape {
    let answer = request(
        client.addr,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .head
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        answer.head
    );
    let text = String::from_utf8(answer.body).unwrap();
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    Scrape::parse(lines).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The value of `name` with `labels`, as a number (a histogram gives its count).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name)
        .filter(|sample| labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?} in {:?}", scrape.samples);
    match &found[0].value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_server_did() {
    let server = Server::start(&["--max-subscribers", "1", "--shards", "2"]).await;
    let mut stream = server.subscribe("/events?topic=m", "").await;
    let refused = server.subscribe("/events?topic=m", "").await;
    assert!(refused.head.starts_with("HTTP/1.1 503"), "{}", refused.head);
    server.wait_for_stat("subscribers", 1).await;
    let mut bytes = 0;
    for id in ["a", "b", "c"] {
        server
            .publish(json!({"topic": "m", "id": id, "data": "hello"}))
            .await;
        bytes += stream.event().await.len();
    }
    // A shard records a publication's latency once its pass has written it: wait for both.
    let scrape = timed("latency observed", async {
        loop {
            let scrape = scrape(&server).await;
            let observed = ["0", "1"].map(|shard| {
                value(
                    &scrape,
                    "ssecast_delivery_latency_seconds",
                    &[("shard", shard)],
                )
            });
            if observed == [3.0, 3.0] {
                return scrape;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let expect: HashMap<&str, f64> = [
        ("ssecast_subscribers", 1.0),
        ("ssecast_subscribes_total", 1.0),
        ("ssecast_events_published_total", 3.0),
        ("ssecast_frames_delivered_total", 3.0),
        ("ssecast_topics", 1.0),
        ("ssecast_body_held_bytes", 0.0),
    ]
    .into();
    for (name, expected) in expect {
        assert_eq!(value(&scrape, name, &[]), expected, "{name}");
    }
    let refusals = [
        ("subscriber_limit", 1.0),
        ("topic_limit", 0.0),
        ("address_topic_limit", 0.0),
    ];
    for (reason, expected) in refusals {
        let labels = [("reason", reason)];
        assert_eq!(
            value(&scrape, "ssecast_subscribes_refused_total", &labels),
            expected
        );
    }
    assert_eq!(
        value(&scrape, "ssecast_delivered_bytes_total", &[]),
        bytes as f64,
        "the three frames, no keep-alive yet"
    );
    assert!(value(&scrape, "ssecast_connections_accepted_total", &[]) >= 6.0);
    assert!(value(&scrape, "ssecast_history_bytes", &[]) > 0.0);
    assert!(value(&scrape, "ssecast_resident_memory_bytes", &[]) > 1e6);
    for reason in ["lagged", "blocked"] {
        let labels = [("reason", reason)];
        assert_eq!(
            value(&scrape, "ssecast_subscribers_dropped_total", &labels),
            0.0
        );
    }
    server.stop().await;
}
