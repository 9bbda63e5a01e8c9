//! Bad input gets a clear error (status and JSON body) and disturbs no one else.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{post, request, timed, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Posts and checks the status and that the body is `{"error": "..."}` mentioning `hint`.
async fn refused(server: &Server, content_type: &str, body: &[u8], status: u16, hint: &str) {
    let response = post(server.addr, content_type, body).await;
    assert_eq!(
        response.status,
        status,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let error = response.json()["error"].as_str().unwrap().to_owned();
    assert!(error.contains(hint), "{error:?} should mention {hint:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_publishes_get_400_and_reach_no_one() {
    let server = Server::start(&[]).await;
    let mut stream = server.subscribe("/events?topic=t", "").await;
    server.wait_for_stat("subscribers", 1).await;
    const FORM: &str = "application/x-www-form-urlencoded";
    const JSON: &str = "application/json";
    let cases: &[(&str, &[u8], u16, &str)] = &[
        (FORM, &b"data=x"[..], 400, "topic"),
        (JSON, &br#"{"topic": [], "data": "x"}"#[..], 400, "topic"),
        (JSON, &br#"{"topic": "", "data": "x"}"#[..], 400, "empty"),
        (FORM, &b"topic=t"[..], 400, "data"),
        (FORM, &b"topic=t&data="[..], 400, "data"),
        (JSON, &br#"{"topic": "t"}"#[..], 400, "data"),
        (FORM, &b"topic=t&data=x&id=a%0Ab"[..], 400, "id"),
        (FORM, &b"topic=t&data=x&id=a%0Db"[..], 400, "id"),
        (FORM, &b"topic=t&data=x&id=a%00b"[..], 400, "id"),
        (
            JSON,
            &br#"{"topic": "t", "data": "x", "event": "a\nb"}"#[..],
            400,
            "event",
        ),
        (
            JSON,
            &br#"{"topic": "t", "data": "x", "event": "a\u0000"}"#[..],
            400,
            "event",
        ),
        (FORM, &b"topic=t&data=x&retry=soon"[..], 400, "retry"),
        (
            JSON,
            &br#"{"topic": "t", "data": "x", "retry": "3000"}"#[..],
            400,
            "JSON",
        ),
        (
            JSON,
            &br#"{"topic": "t", "data": "x", "retry": -1}"#[..],
            400,
            "JSON",
        ),
        (JSON, &br#"{"topic": "t", "data": "#[..], 400, "JSON"),
        (
            JSON,
            &b"{\"topic\": \"t\", \"data\": \"\xff\"}"[..],
            400,
            "JSON",
        ),
        (FORM, &b"topic=t&data=%FF%FE"[..], 400, "UTF-8"),
        (FORM, &b"topic=t&data=\xff"[..], 400, "UTF-8"),
        ("text/plain", &b"hello"[..], 415, "content type"),
        ("", &b"topic=t&data=x"[..], 415, "content type"),
    ];
    for &(content_type, body, status, hint) in cases {
        refused(&server, content_type, body, status, hint).await;
    }
    // The one good publish after all that is the first event the subscriber sees.
    server.publish_id("t", "good", "x").await;
    assert_eq!(stream.event_id().await, "good");
    assert_eq!(server.stats().await["events_published"], 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_type_parameters_are_accepted() {
    let server = Server::start(&[]).await;
    let form = post(
        server.addr,
        "application/x-www-form-urlencoded; charset=utf-8",
        b"topic=t&data=x",
    )
    .await;
    assert_eq!(form.status, 200);
    let json = post(
        server.addr,
        "application/json;charset=UTF-8",
        br#"{"topic":"t","data":"x"}"#,
    )
    .await;
    assert_eq!(json.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_sized_or_chunked() {
    let server = Server::start(&["--max-body-bytes", "1000"]).await;
    let body = format!("topic=t&data={}", "x".repeat(2000));
    refused(
        &server,
        "application/x-www-form-urlencoded",
        body.as_bytes(),
        413,
        "larger",
    )
    .await;
    let chunk = "y".repeat(600);
    let chunked = format!(
        "POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\ntopic=t&data={chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        13 + chunk.len(),
        chunk.len()
    );
    let response = request(server.addr, chunked).await;
    assert_eq!(response.status, 413);
    assert!(response.json()["error"].is_string());
    // A body just under the limit is fine.
    let body = format!("topic=t&data={}", "x".repeat(900));
    let response = post(
        server.addr,
        "application/x-www-form-urlencoded",
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_get_404_and_wrong_methods_405() {
    let server = Server::start(&[]).await;
    for (raw, status, allow) in [
        ("GET /nowhere HTTP/1.1\r\n", 404, None),
        ("GET /publish HTTP/1.1\r\n", 405, Some("POST")),
        (
            "POST /events HTTP/1.1\r\nContent-Length: 0\r\n",
            405,
            Some("GET"),
        ),
        ("DELETE /healthz HTTP/1.1\r\n", 405, Some("GET, HEAD")),
        (
            "PUT / HTTP/1.1\r\nContent-Length: 0\r\n",
            405,
            Some("GET, HEAD"),
        ),
    ] {
        let response = request(
            server.addr,
            format!("{raw}Host: t\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(response.status, status, "{raw}");
        assert!(response.json()["error"].is_string(), "{raw}");
        if let Some(allow) = allow {
            assert!(
                response
                    .head
                    .to_lowercase()
                    .contains(&format!("allow: {}", allow.to_lowercase())),
                "{raw}: {}",
                response.head
            );
        }
    }
    let healthz = request(
        server.addr,
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((healthz.status, &healthz.body[..]), (200, &b"ok"[..]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_subscribe_gets_400() {
    let server = Server::start(&[]).await;
    for path in ["/events?topic=", "/events?topic=%FF", "/events?topic=a%0Ab"] {
        let response = request(
            server.addr,
            format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"),
        )
        .await;
        assert_eq!(response.status, 400, "{path}");
        assert!(response.json()["error"].is_string());
    }
    let many: String = (0..65).map(|i| format!("topic=t{i}&")).collect();
    let response = request(
        server.addr,
        format!("GET /events?{many} HTTP/1.1\r\nHost: t\r\n\r\n"),
    )
    .await;
    assert_eq!(response.status, 400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_without_accept_is_served() {
    let server = Server::start(&[]).await;
    let socket = TcpStream::connect(server.addr).await.unwrap();
    let mut stream =
        support::Stream::on(socket, b"GET /events?topic=c HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert!(stream.head.starts_with("HTTP/1.1 200 OK\r\n"));
    server.wait_for_stat("subscribers", 1).await;
    server.publish_id("c", "1", "x").await;
    assert_eq!(stream.event_id().await, "1");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_the_limit_gets_431() {
    let server = Server::start(&[]).await;
    let big = "x".repeat(9000);
    for raw in [
        format!("GET /events?topic=t HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n"),
        format!("GET /healthz HTTP/1.1\r\nX-Big: {big}\r\n\r\n"),
        format!("GET /{big} HTTP/1.1\r\n\r\n"),
    ] {
        let response = request(server.addr, raw).await;
        assert_eq!(response.status, 431);
        assert!(response.json()["error"].is_string());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_head_is_dropped_after_the_timeout() {
    let server = Server::start(&["--head-timeout", "300ms"]).await;
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"GET /events?topic=t HTTP/1.1\r\nHost:")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let started = std::time::Instant::now();
    let read = timed("slow head dropped", socket.read_to_end(&mut rest)).await;
    assert!(read.is_ok() || rest.is_empty());
    assert!(rest.is_empty(), "no answer, just a close: {rest:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.stop().await;
}

/// What a connection that sent `bytes` gets back: the bytes before the server closed, and
/// whether it closed with a reset.
async fn answer_to(server: &Server, bytes: &[u8], then_shut_down: bool) -> (Vec<u8>, bool) {
    let mut socket = timed("connect", TcpStream::connect(server.addr))
        .await
        .unwrap();
    timed("write", socket.write_all(bytes)).await.unwrap();
    if then_shut_down {
        timed("shut down", socket.shutdown()).await.unwrap();
    }
    support::read_to_close(&mut socket).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_400_or_a_close() {
    let server = Server::start(&[]).await;
    // Each of these is refused by the head parser at a byte it cannot take, before any route is
    // looked at: a `400` with a JSON body and `connection: close`, then a clean close. The TLS
    // ClientHello is answered too, in plain text: its first byte already says it is not HTTP,
    // the answer costs nothing, and the TLS client reports a wrong version number, as it would
    // from any plain HTTP server (hyper and nginx answer `400` alike); a person trying the port
    // with netcat or a mistyped `https://` gets a reason instead of a silent close.
    let malformed: &[(&str, &[u8])] = &[
        (
            "tls client hello",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ),
        ("no request line", b"HELLO\r\n\r\n"),
        ("unknown version", b"GET /events HTTP/9.9\r\n\r\n"),
        ("nul bytes", b"\0\0\0\0\r\n\r\n"),
        (
            "header without a colon",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        ),
        ("http/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ("space in the target", b"GET /a b HTTP/1.1\r\n\r\n"),
    ];
    for (what, bytes) in malformed {
        let (answer, reset) = answer_to(&server, bytes, false).await;
        assert!(!reset, "{what}: the answer ends with a close, not a reset");
        let response = support::parse_response(&answer);
        assert_eq!(response.status, 400, "{what}: {}", response.head);
        let head = response.head.to_lowercase();
        assert!(
            head.contains("content-type: application/json"),
            "{what}: {head}"
        );
        assert!(head.contains("connection: close"), "{what}: {head}");
        let length = format!("content-length: {}", response.body.len());
        assert!(
            head.contains(&length),
            "{what}: the whole body arrives: {head}"
        );
        let error = response.json()["error"].as_str().unwrap().to_owned();
        assert!(
            error.starts_with("malformed request head"),
            "{what}: {error}"
        );
    }
    // No answer where there is no request to answer: a client that connects and leaves, and one
    // that stops sending halfway through a head. The server learns only that the client is
    // done; what it sent is not a request, and it may have stopped reading too.
    let unanswerable: &[(&str, &[u8])] = &[
        ("nothing", b""),
        ("half a head", b"GET /events?topic=t HTTP/1.1\r\nHost:"),
    ];
    for (what, bytes) in unanswerable {
        let (answer, reset) = answer_to(&server, bytes, true).await;
        assert_eq!(answer, b"", "{what}: closed without an answer");
        assert!(!reset, "{what}: a clean close");
    }
    // None of it reached the broadcaster, and the server still serves a subscriber and a
    // publish.
    let stats = server.stats().await;
    assert_eq!(stats["subscribers"], 0);
    assert_eq!(stats["subscribes_total"], 0);
    let mut stream = server.subscribe("/events?topic=after", "").await;
    server.wait_for_stat("subscribers", 1).await;
    server.publish_id("after", "after-garbage", "x").await;
    assert_eq!(stream.event_id().await, "after-garbage");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_reset_mid_request_or_mid_stream_harm_no_one() {
    let server = Server::start(&[]).await;
    let mut steady = server.subscribe("/events?topic=t", "").await;
    // Mid-request: half a publish body, then a reset.
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"topic\":")
        .await
        .unwrap();
    socket.set_zero_linger().unwrap();
    drop(socket);
    // Mid-stream: subscribers that vanish with a reset.
    for _ in 0..5 {
        let gone = server.subscribe("/events?topic=t", "").await;
        gone.socket.set_zero_linger().unwrap();
        drop(gone);
    }
    for id in 0..20 {
        server
            .publish(json!({"topic": "t", "id": id.to_string(), "data": "x".repeat(1000)}))
            .await;
    }
    for id in 0..20 {
        assert_eq!(steady.event_id().await, id.to_string());
    }
    server.wait_for_stat("subscribers", 1).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_topics_past_the_limit_get_503_and_existing_ones_still_work() {
    let server = Server::start(&["--max-topics", "3"]).await;
    let mut stream = server.subscribe("/events?topic=a&topic=b", "").await;
    server.wait_for_stat("subscribers", 1).await;
    server.publish_id("c", "c1", "x").await;
    // A publish naming one new topic past the limit is refused whole.
    let refused = post(
        server.addr,
        "application/json",
        br#"{"topic": ["a", "d"], "data": "x"}"#,
    )
    .await;
    assert_eq!(refused.status, 503);
    assert!(refused.json()["error"]
        .as_str()
        .unwrap()
        .contains("limit of 3 topics"));
    let response = request(
        server.addr,
        "GET /events?topic=e HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 503);
    assert!(response.json()["error"].is_string());
    assert_eq!(server.stats().await["topics"], 3);
    server.publish_id("a", "a1", "x").await;
    assert_eq!(stream.event_id().await, "a1");
    server.stop().await;
}
