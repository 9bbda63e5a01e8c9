//! Requests that could hold the server (huge topic lists, slow bodies, clients that never read,
//! heads over the limit) are bounded, and no one else waits on them.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{post, request, within, Server};

const FORM: &str = "application/x-www-form-urlencoded";

/// A form body of exactly 1 MiB naming 70,000 topics.
fn flood_body() -> Vec<u8> {
    let mut body: Vec<u8> = (0..70_000)
        .flat_map(|i| format!("topic=t{i}&").into_bytes())
        .collect();
    body.extend_from_slice(b"data=");
    body.resize(1 << 20, b'x');
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_topics_never_stalls_the_front_end() {
    let server = Server::start_single_threaded(&[]).await;
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let flood = tokio::spawn({
        let (stop, refused) = (stop.clone(), refused.clone());
        async move {
            let body = flood_body();
            while !stop.load(Ordering::Relaxed) {
                let response = post(addr, FORM, &body).await;
                assert_eq!(response.status, 400);
                let error = response.json()["error"].as_str().unwrap().to_owned();
                assert!(error.contains("at most 64 topics"), "{error}");
                refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let started = Instant::now();
    let mut probes = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let limit = Duration::from_millis(50);
        let health = within(
            "healthz",
            limit,
            request(
                addr,
                "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            ),
        )
        .await;
        assert_eq!((health.status, &health.body[..]), (200, &b"ok"[..]));
        let stream = within("subscribe", limit, server.subscribe("/events?topic=x", "")).await;
        assert!(
            stream.head.starts_with("HTTP/1.1 200 OK\r\n"),
            "{}",
            stream.head
        );
        probes += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    support::timed("flood ends", flood).await.unwrap();
    let refused = refused.load(Ordering::Relaxed);
    assert!(refused >= 3, "only {refused} floods were answered");
    assert!(probes >= 20, "only {probes} probes");
    server.stop().await;
}
