//! Requests that could hold the server (huge topic lists, slow bodies, clients that never read,
//! heads over the limit) are bounded, and no one else waits on them.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{post, read_response, read_to_close, request, within, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

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

/// A publish head declaring `length` bytes of form body, and `sent` of them.
fn partial_publish(length: usize, sent: usize, extra: &str) -> Vec<u8> {
    let mut raw = format!(
        "POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: {FORM}\r\n\
         Content-Length: {length}\r\n{extra}\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(b"topic=t&data=");
    raw.resize(raw.len() - 13 + sent, b'x');
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_and_the_connection_closes() {
    let server = Server::start(&["--body-timeout", "300ms"]).await;
    let mut stream = server.subscribe("/events?topic=t", "").await;
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    socket
        .write_all(&partial_publish(100, 20, ""))
        .await
        .unwrap();
    let response = read_response(&mut socket).await;
    let took = started.elapsed();
    assert_eq!(response.status, 408, "{}", response.head);
    assert!(response.json()["error"].as_str().unwrap().contains("body"));
    assert!(response.head.to_lowercase().contains("connection: close"));
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
    let (rest, _) = read_to_close(&mut socket).await;
    assert!(rest.is_empty(), "{rest:?}");
    // Others were never held up.
    server.publish_id("t", "after", "x").await;
    assert_eq!(stream.event_id().await, "after");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbled_body_is_cut_at_the_timeout() {
    let server = Server::start(&["--body-timeout", "300ms"]).await;
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    socket
        .write_all(&partial_publish(1000, 13, ""))
        .await
        .unwrap();
    let (mut reader, mut writer) = socket.into_split();
    let dribble = tokio::spawn(async move {
        // One byte each 50 ms, as long as the server takes them.
        while writer.write_all(b"x").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut answer = Vec::new();
    let _ = support::timed("dribble cut", reader.read_to_end(&mut answer)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    if !answer.is_empty() {
        assert_eq!(support::parse_response(&answer).status, 408);
    }
    support::timed("dribble ends", dribble).await.unwrap();
    server.stop().await;
}

/// Sends, from `from`, a publish head declaring `length` bytes and `sent` of them.
async fn stall_body(server: &Server, from: [u8; 4], length: usize, sent: usize) -> TcpStream {
    let mut socket = support::connect_from(from, server.addr).await;
    socket
        .write_all(&partial_publish(length, sent, ""))
        .await
        .unwrap();
    socket
}

/// Expects `socket`'s publish to be refused at once with `503` and `Retry-After: 1`.
async fn expect_busy(socket: &mut TcpStream) {
    let response = within(
        "body refused",
        Duration::from_millis(1000),
        read_response(socket),
    )
    .await;
    assert_eq!(response.status, 503, "{}", response.head);
    assert!(
        response.head.to_lowercase().contains("retry-after: 1"),
        "{}",
        response.head
    );
    assert!(response.json()["error"].as_str().unwrap().contains("retry"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_hold_what_they_sent_and_no_more_than_the_budget() {
    let server = Server::start(&[
        "--max-body-bytes-in-flight",
        "100000",
        "--max-body-bytes",
        "60000",
        "--body-timeout",
        "1s",
    ])
    .await;
    let mut stream = server.subscribe("/events?topic=t", "").await;
    // Two bodies that declared 60,000 bytes each and stalled: they hold what they sent.
    let mut first = stall_body(&server, [127, 0, 0, 11], 60_000, 45_000).await;
    let _second = stall_body(&server, [127, 0, 0, 12], 60_000, 45_000).await;
    server.wait_for_stat("body_bytes_held", 90_000).await;
    // A third needs more than the 10,000 left: refused once its bytes arrive.
    let mut third = stall_body(&server, [127, 0, 0, 13], 60_000, 20_000).await;
    expect_busy(&mut third).await;
    // A small publish still fits, and the subscriber gets it.
    server.publish_id("t", "small", "x").await;
    assert_eq!(stream.event_id().await, "small");
    // Once the stalled ones time out their bytes are back: a large publish goes through.
    assert_eq!(read_response(&mut first).await.status, 408);
    server.wait_for_stat("body_bytes_held", 0).await;
    let big = format!("topic=t&id=big&data={}", "y".repeat(59_000));
    let response = post(server.addr, FORM, big.as_bytes()).await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(stream.event_id().await, "big");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_the_whole_body_budget() {
    // An address may hold an eighth of the 400,000 bytes: 50,000.
    let server = Server::start(&[
        "--max-body-bytes-in-flight",
        "400000",
        "--max-body-bytes",
        "40000",
        "--body-timeout",
        "2s",
    ])
    .await;
    let mut stream = server.subscribe("/events?topic=t", "").await;
    const GREEDY: [u8; 4] = [127, 0, 0, 21];
    let _held = stall_body(&server, GREEDY, 40_000, 30_000).await;
    server.wait_for_stat("body_bytes_held", 30_000).await;
    let mut more = stall_body(&server, GREEDY, 40_000, 30_000).await;
    expect_busy(&mut more).await;
    // Another address's publish of the same size goes through meanwhile.
    let mut other = support::connect_from([127, 0, 0, 22], server.addr).await;
    let body = format!("topic=t&id=other&data={}", "z".repeat(30_000));
    let head = format!(
        "POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: {FORM}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    other.write_all(head.as_bytes()).await.unwrap();
    other.write_all(body.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut other).await.status, 200);
    assert_eq!(stream.event_id().await, "other");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answers_is_cut() {
    let server = Server::start(&["--write-timeout", "500ms"]).await;
    let mut stream = server.subscribe("/events?topic=t", "").await;
    let asset = request(
        server.addr,
        "GET /app.js HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    const REQUESTS: usize = 1000;
    let all = REQUESTS * (asset.head.len() + 4 + asset.body.len());
    // A small receive buffer, so the server's writes wait soon.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8192).unwrap();
    let socket = support::timed("connect", socket.connect(server.addr))
        .await
        .unwrap();
    let (mut reader, mut writer) = socket.into_split();
    let pipelined = tokio::spawn(async move {
        let requests = "GET /app.js HTTP/1.1\r\nHost: t\r\n\r\n".repeat(REQUESTS);
        let _ = writer.write_all(requests.as_bytes()).await;
        writer
    });
    // Not reading is the point: the server has 500 ms to notice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut read = 0;
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match support::timed("read to the cut", reader.read(&mut chunk)).await {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    assert!(read < all / 2, "{read} of {all} bytes arrived: not cut");
    drop(support::timed("writer ends", pipelined).await);
    server.publish_id("t", "still", "x").await;
    assert_eq!(stream.event_id().await, "still");
    server.stop().await;
}

/// Sends `raw` in one write, then reads to the close: the whole answer must arrive, not a reset.
async fn refused_whole(server: &Server, raw: &[u8]) -> support::Response {
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    support::timed("write", socket.write_all(raw))
        .await
        .unwrap();
    let (answer, reset) = read_to_close(&mut socket).await;
    assert!(!reset, "reset after {:?}", String::from_utf8_lossy(&answer));
    let response = support::parse_response(&answer);
    assert!(response.json()["error"].is_string(), "{}", response.head);
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_hyper_are_delivered_whole() {
    let server = Server::start(&[]).await;
    let big = "x".repeat(20 * 1024);
    let oversized = format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n");
    assert_eq!(
        refused_whole(&server, oversized.as_bytes()).await.status,
        431
    );
    let subscribe = format!("GET /events?topic=t HTTP/1.1\r\nX-Big: {big}\r\n\r\n");
    assert_eq!(
        refused_whole(&server, subscribe.as_bytes()).await.status,
        431
    );
    let mut malformed = b"GET / HTTP/1.1\r\nBad Header\r\n\r\n".to_vec();
    malformed.extend_from_slice(big.as_bytes());
    assert_eq!(refused_whole(&server, &malformed).await.status, 400);
    let bad_subscribe = format!("GET /events?topic= HTTP/1.1\r\nHost: t\r\n\r\n{big}");
    assert_eq!(
        refused_whole(&server, bad_subscribe.as_bytes())
            .await
            .status,
        400
    );
    server.stop().await;
}

/// `GET path` on a new connection.
async fn get(addr: std::net::SocketAddr, path: &str) -> support::Response {
    request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_listener_takes_publishing_off_the_public_one() {
    let (server, internal) = Server::start_with_internal(&[]).await;
    let mut stream = server.subscribe("/events?topic=t", "").await;
    server.wait_for_stat("subscribers", 1).await;
    let health = get(internal.addr, "/healthz").await;
    assert_eq!((health.status, &health.body[..]), (200, &b"ok"[..]));
    assert_eq!(internal.stats().await["subscribers"], 1);
    // Publishing works on the internal listener only.
    internal.publish_id("t", "inside", "x").await;
    assert_eq!(stream.event_id().await, "inside");
    let outside = post(
        server.addr,
        "application/json",
        br#"{"topic":"t","data":"x"}"#,
    )
    .await;
    assert_eq!(outside.status, 404);
    let error = outside.json()["error"].as_str().unwrap().to_owned();
    assert!(error.contains("internal listener"), "{error}");
    // Health and the demo page stay on the public one; neither subscribes nor the page are
    // served inside.
    assert_eq!(get(server.addr, "/healthz").await.status, 200);
    assert_eq!(get(server.addr, "/").await.status, 200);
    for path in ["/", "/app.js", "/events?topic=t"] {
        let response = get(internal.addr, path).await;
        assert_eq!(response.status, 404, "{path}");
        assert!(response.json()["error"].is_string());
    }
    // A subscribe after a request on a keep-alive connection is not taken over inside either.
    let mut socket = TcpStream::connect(internal.addr).await.unwrap();
    for (path, status) in [("/healthz", 200), ("/events?topic=t", 404)] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        socket.write_all(raw.as_bytes()).await.unwrap();
        assert_eq!(read_response(&mut socket).await.status, status, "{path}");
    }
    assert_eq!(server.stats().await["subscribers"], 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_false_turns_the_demo_page_off() {
    let server = Server::start(&["--demo", "false"]).await;
    for path in ["/", "/app.js", "/style.css"] {
        let response = get(server.addr, path).await;
        assert_eq!(response.status, 404, "{path}");
        assert!(response.json()["error"].is_string());
    }
    assert_eq!(get(server.addr, "/healthz").await.status, 200);
    // Publishing stays on the public listener when there is no internal one.
    let mut stream = server.subscribe("/events?topic=t", "").await;
    server.wait_for_stat("subscribers", 1).await;
    server.publish_id("t", "1", "x").await;
    assert_eq!(stream.event_id().await, "1");
    server.stop().await;
}
