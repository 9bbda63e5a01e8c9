//! The `ssecast` binary itself: port 0, listen addresses, signals, logs, and the open-file
//! limit.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{spawn_binary, timed, Client, Stream};
use tokio::process::Command;

/// Held by the tests that run a server at its open-file limit: run side by side, one's load
/// can delay the other's shard in closing the subscribers it drops, so that its next request
/// still meets the limit.
static AT_THE_LIMIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the binary with `args` until it exits, and returns its exit status and stderr.
async fn run_to_exit(args: &[&str]) -> (std::process::ExitStatus, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ssecast"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("SSECAST_LOG", "info")
        .env_remove("SSECAST_LISTEN")
        .env_remove("SSECAST_INTERNAL_LISTEN")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = timed("exit", output).await.unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Opens `count` connections that never send a request: those the server keeps, and how many
/// it refused at once with `503` (at the open-file limit).
async fn connect_idle(client: Client, count: usize) -> (Vec<tokio::net::TcpStream>, usize) {
    let mut idle = Vec::new();
    let mut refused = 0;
    for _ in 0..count {
        let mut socket = tokio::net::TcpStream::connect(client.addr).await.unwrap();
        let mut first = [0u8; 64];
        let read = tokio::time::timeout(
            Duration::from_millis(150),
            tokio::io::AsyncReadExt::read(&mut socket, &mut first),
        )
        .await;
        match read {
            Err(_) => idle.push(socket),
            Ok(read) => {
                let n = read.unwrap();
                let text = String::from_utf8_lossy(&first[..n]);
                assert!(text.starts_with("HTTP/1.1 503"), "{text}");
                refused += 1;
            }
        }
    }
    (idle, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_zero_is_logged_and_sigterm_ends_streams_within_five_seconds() {
    let (mut child, client, _log) = spawn_binary("", "").await;
    let stream = client.subscribe("/events?topic=t", "").await;
    client.wait_for_stat("subscribers", 1).await;
    let pid = child.id().unwrap().to_string();
    let started = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = timed("exit", child.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The stream ends with a reconnection delay of 1 s plus up to the default spread of 10 s.
    let retry = stream.retry_delay().await;
    assert!((1000..=11_000).contains(&retry), "{retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_never_take_the_descriptors_probes_and_publishers_need() {
    let _alone = AT_THE_LIMIT.lock().await;
    let (_child, client, _log) = spawn_binary("ulimit -n 64;", "--keep-alive 100ms").await;
    // More subscribers than the open-file limit allows: the first ones stream, the rest are
    // refused by the subscriber limit, which keeps descriptors free.
    let mut served = Vec::new();
    let mut refused = 0;
    for _ in 0..80 {
        let stream = client.subscribe("/events?topic=t", "").await;
        if stream.head.starts_with("HTTP/1.1 200 OK") {
            served.push(stream);
            continue;
        }
        assert!(stream.head.starts_with("HTTP/1.1 503"), "{}", stream.head);
        assert!(stream.head.contains("retry-after: 5"), "{}", stream.head);
        let body = String::from_utf8(stream.rest().await).unwrap();
        assert!(body.contains("limit of"), "{body}");
        refused += 1;
        // Probes and publishers are still answered.
        let health = support::request(
            client.addr,
            "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(health.status, 200);
    }
    assert!(!served.is_empty() && refused > 0, "{} served", served.len());
    let answer = client
        .publish(serde_json::json!({"topic": "t", "id": "e1", "data": "x"}))
        .await;
    assert_eq!(answer["subscribers"], served.len() as u64);
    for stream in &mut served {
        assert_eq!(stream.event_id().await, "e1");
    }
    assert_eq!(client.stats().await["subscribes_refused"], refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_open_file_limit_newcomers_get_503_at_once() {
    let _alone = AT_THE_LIMIT.lock().await;
    let (_child, client, mut log) = spawn_binary("ulimit -n 48;", "").await;
    let started = Instant::now();
    // Connections that never send a request hold descriptors until the limit is reached.
    let (idle, refused) = connect_idle(client, 60).await;
    assert!(!idle.is_empty() && refused > 0, "{} held", idle.len());
    // Once they leave, newcomers are served again.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let socket = tokio::net::TcpStream::connect(client.addr).await.unwrap();
        let stream = Stream::on(socket, b"GET /events?topic=t HTTP/1.1\r\n\r\n").await;
        if stream.head.starts_with("HTTP/1.1 200 OK") {
            break;
        }
        assert!(Instant::now() < deadline, "{}", stream.head);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed().as_secs() + 1;
    let mut warnings = 0;
    while let Ok(line) = log.try_recv() {
        warnings += line.contains("open-file limit") as u64;
    }
    assert!(
        warnings >= 1 && warnings <= elapsed + 1,
        "{warnings} warnings in {elapsed} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_open_file_limit_the_internal_listener_still_serves() {
    let _alone = AT_THE_LIMIT.lock().await;
    let (_child, client, mut log) = spawn_binary(
        "ulimit -n 64;",
        "--internal-listen 127.0.0.1:0 --keep-alive 100ms",
    )
    .await;
    let line = timed("internal listener line", async {
        loop {
            let line = log.recv().await.expect("server exited");
            if line.contains("internal=") {
                return line;
            }
        }
    })
    .await;
    let internal = Client {
        addr: line
            .split("internal=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .unwrap(),
    };
    // Subscribers take what the subscriber limit allows, and connections that never send a
    // request take every other descriptor the public listener can get.
    let mut served = Vec::new();
    for _ in 0..10 {
        let socket = tokio::net::TcpStream::connect(client.addr).await.unwrap();
        let stream = Stream::on(socket, b"GET /events?topic=t HTTP/1.1\r\n\r\n").await;
        assert!(
            stream.head.starts_with("HTTP/1.1 200 OK"),
            "{}",
            stream.head
        );
        served.push(stream);
    }
    let (_idle, refused) = connect_idle(client, 80).await;
    assert!(
        refused > 0,
        "the public listener reached the open-file limit"
    );
    // Probes and publishes on the internal listener are still answered, again and again.
    for _ in 0..10 {
        let health = support::request(
            internal.addr,
            "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!((health.status, &health.body[..]), (200, &b"ok"[..]));
    }
    assert_eq!(internal.stats().await["subscribers"], served.len() as u64);
    let published = internal
        .publish(serde_json::json!({"topic": "t", "id": "inside", "data": "x"}))
        .await;
    assert_eq!(published["subscribers"], served.len() as u64);
    for stream in &mut served {
        assert_eq!(stream.event_id().await, "inside");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_is_named_with_the_flag_that_sets_it() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let (status, stderr) = run_to_exit(&["--listen", &address]).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot listen on {address}: the address is already in use"
        )) && stderr.contains("--listen or SSECAST_LISTEN"),
        "{stderr}"
    );
    // Neither a panic nor a Debug dump of the error.
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Os {"),
        "{stderr}"
    );

    let (status, stderr) =
        run_to_exit(&["--listen", "127.0.0.1:0", "--internal-listen", &address]).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address}"))
            && stderr.contains("--internal-listen or SSECAST_INTERNAL_LISTEN"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_listen_address_starts_and_serves() {
    let (_child, client, _log) = spawn_binary("", "--listen localhost:0").await;
    assert!(client.addr.ip().is_loopback(), "{}", client.addr);
    let mut stream = client.subscribe("/events?topic=t", "").await;
    assert!(
        stream.head.starts_with("HTTP/1.1 200 OK"),
        "{}",
        stream.head
    );
    client.wait_for_stat("subscribers", 1).await;
    client.publish_id("t", "e1", "x").await;
    assert_eq!(stream.event_id().await, "e1");
    // An unknown name is refused at start, with the flag named.
    let (status, stderr) = run_to_exit(&["--listen", "nowhere.invalid:8080"]).await;
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("--listen") && stderr.contains("cannot resolve nowhere.invalid"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_show_each_connection() {
    let (_child, client, mut log) = spawn_binary("SSECAST_LOG=debug", "").await;
    let _stream = client.subscribe("/events?topic=a&topic=b", "").await;
    client.wait_for_stat("subscribers", 1).await;
    let mut seen = Vec::new();
    for wanted in [
        "connection accepted",
        "subscribe started",
        "connection closed",
    ] {
        let line = timed(wanted, async {
            loop {
                let line = log.recv().await.expect("server exited");
                if line.contains(wanted) {
                    return line;
                }
            }
        })
        .await;
        assert!(
            line.contains("DEBUG") && line.contains("peer=127.0.0.1:"),
            "{line}"
        );
        seen.push(line);
    }
    assert!(seen[1].contains("topics=2"), "{}", seen[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_with_reuse_port_share_one_port_and_the_kernel_spreads_connections() {
    let (_first, first, _log) = spawn_binary("", "--listen 127.0.0.1:0 --reuse-port").await;
    let shared = format!("--listen {} --reuse-port", first.addr);
    let (_second, second, _log2) = spawn_binary("", &shared).await;
    assert_eq!(first.addr, second.addr);
    // Each request is a new connection from a new source port; the kernel hashes those over
    // the two listeners, so forty of them all reaching one process has odds of 2^-39.
    let mut pids = std::collections::BTreeSet::new();
    for _ in 0..40 {
        pids.insert(first.stats().await["pid"].as_u64().unwrap());
    }
    assert_eq!(pids.len(), 2, "{pids:?}");
    // Without the flag the port is taken.
    let taken = first.addr.to_string();
    let (status, stderr) = run_to_exit(&["--listen", &taken]).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
}
