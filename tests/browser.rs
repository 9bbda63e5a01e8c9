//! The demo page and `EventSource` in a real browser: Debian's headless Chromium, driven by
//! `tests/browser/driver.mjs` (playwright-core), against a server each test starts here.
//!
//! Each test runs one scenario of the driver: the driver stops at each step where the test must
//! act (publish, stop the server, cut the network), and at the end reports what the page showed,
//! which the test asserts on. Needs `/usr/bin/chromium` (`apt-get install chromium`) and `node`
//! with `npm`; the first test to run does `npm ci` when `tests/browser/node_modules` is missing.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use support::{bind_again, install_atomically, run_to_completion, Proxy, Server};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::task::JoinHandle;

/// Debian's Chromium; the driver launches this one, never a browser of its own.
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the driver may take to reach its next step (launching Chromium included).
const BROWSER_STEP: Duration = Duration::from_secs(30);
/// How long `npm ci` may take on a fresh machine.
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);

/// `tests/browser/`: the driver, its `package.json` and `package-lock.json`.
fn driver_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Checks for Chromium and Node, and installs the driver's packages once per test process.
fn bootstrap() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        assert!(
            Path::new(CHROMIUM).exists(),
            "the browser tests need Debian's Chromium at {CHROMIUM}: apt-get install chromium"
        );
        for tool in ["node", "npm"] {
            let found = Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            assert!(
                found,
                "the browser tests need `{tool}`: apt-get install nodejs npm"
            );
        }
        let dir = driver_dir();
        install_atomically(&dir.join("node_modules"), |scratch| {
            for file in ["package.json", "package-lock.json"] {
                std::fs::copy(dir.join(file), scratch.join(file)).unwrap();
            }
            run_to_completion(
                Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(scratch),
                NPM_CI_TIMEOUT,
            );
            scratch.join("node_modules")
        });
    });
}

/// One run of `driver.mjs`, spoken to in JSON lines.
struct Driver {
    scenario: &'static str,
    child: Child,
    /// Closing it tells the driver to close the browser and exit.
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Everything the driver says on stderr, for failure messages.
    stderr: Option<JoinHandle<String>>,
}

impl Driver {
    /// Starts `scenario` against the server at `addr`, with options for it.
    async fn start(scenario: &'static str, addr: SocketAddr, options: Value) -> Driver {
        bootstrap();
        let mut child = tokio::process::Command::new("node")
            .arg("driver.mjs")
            .arg(scenario)
            .arg(format!("http://{addr}"))
            .arg(options.to_string())
            .current_dir(driver_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs");
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        Driver {
            scenario,
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr: Some(stderr),
        }
    }

    /// Waits for the driver to reach step `name` and returns its report.
    async fn step(&mut self, name: &str) -> Value {
        let line = match tokio::time::timeout(BROWSER_STEP, self.stdout.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(_) => panic!(
                "{}",
                self.failure(&format!("ended before step {name}")).await
            ),
            Err(_) => panic!(
                "{}",
                self.failure(&format!("did not reach step {name}")).await
            ),
        };
        let report: Value = match serde_json::from_str(&line) {
            Ok(report) => report,
            Err(_) => panic!("{}", self.failure(&format!("said {line:?}")).await),
        };
        if report["step"] != name {
            panic!(
                "{}",
                self.failure(&format!("reached {report} instead of step {name}"))
                    .await
            );
        }
        report
    }

    /// Lets the driver go on from the step it reached.
    async fn go_on(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin is open until the end");
        let written = stdin.write_all(b"{}\n").await;
        if written.is_err() {
            panic!("{}", self.failure("stopped listening").await);
        }
    }

    /// Waits for the final report and a clean exit.
    async fn done(mut self) -> Value {
        let report = self.step("done").await;
        // Shown only if the test fails (the test harness captures it otherwise).
        let shown: String = report.to_string().chars().take(4000).collect();
        eprintln!("{} report: {shown}", self.scenario);
        let status = self.exit().await;
        if !status.success() {
            panic!(
                "{}",
                self.failure(&format!("exited with {status} after its report"))
                    .await
            );
        }
        let problems = report["problems"].as_array().expect("a list of problems");
        assert!(problems.is_empty(), "the page reported {problems:?}");
        report
    }

    /// Closes the driver's stdin and waits for it to exit, killing it if it does not.
    async fn exit(&mut self) -> ExitStatus {
        self.stdin = None;
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => {
                let _ = self.child.kill().await;
                self.child.wait().await.unwrap()
            }
        }
    }

    /// Stops the driver and says what went wrong, with what it said on stderr.
    async fn failure(&mut self, what: &str) -> String {
        let status = self.exit().await;
        let stderr = match self.stderr.take() {
            Some(stderr) => stderr.await.unwrap_or_default(),
            None => String::new(),
        };
        format!(
            "browser driver, scenario {}: {what} ({status}); its stderr:\n{stderr}",
            self.scenario
        )
    }
}

/// One entry of the page's log, as `(id, type, data)`.
fn entries(report: &Value) -> Vec<(String, String, String)> {
    report["entries"]
        .as_array()
        .expect("a list of entries")
        .iter()
        .map(|entry| {
            let field = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
            (field("id"), field("type"), field("data"))
        })
        .collect()
}

/// The `Last-Event-ID` each answered subscribe of the page sent, in order (`None` without one).
fn last_event_ids(report: &Value) -> Vec<Option<String>> {
    report["subscribes"]
        .as_array()
        .expect("a list of subscribes")
        .iter()
        .map(|subscribe| subscribe["lastEventId"].as_str().map(str::to_owned))
        .collect()
}

/// The kinds of banner the page showed, in order (`down`: the server is gone; `up`: it is back).
fn banners(report: &Value) -> Vec<String> {
    report["banners"]
        .as_array()
        .expect("a list of banners")
        .iter()
        .map(|banner| banner["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn message(id: &str, data: &str) -> (String, String, String) {
    (id.to_owned(), "message".to_owned(), data.to_owned())
}

/// Publishes with `curl`, form-encoded, and returns the event's id.
async fn curl_publish(addr: SocketAddr, topic: &str, data: &str) -> String {
    let output = support::timed(
        "curl",
        tokio::process::Command::new("curl")
            .args(["-sS", "--fail-with-body", "-d"])
            .arg(format!("topic={topic}"))
            .arg("--data-urlencode")
            .arg(format!("data={data}"))
            .arg(format!("http://{addr}/publish"))
            .output(),
    )
    .await
    .expect("the browser tests publish with curl: apt-get install curl");
    assert!(output.status.success(), "curl: {output:?}");
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    answer["id"].as_str().unwrap().to_owned()
}

/// Publishes JSON with the harness and returns the event's id.
async fn publish(server: &Server, body: Value) -> String {
    let answer = server.publish(body).await;
    answer["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_shows_events_from_its_form_and_from_curl_in_order_with_their_ids() {
    let server = Server::start(&[]).await;
    let mut driver = Driver::start("publish", server.addr, json!({})).await;
    driver.step("subscribed").await;
    server.wait_for_stat("subscribers", 1).await;
    driver.go_on().await;

    let published = driver.step("published").await;
    let form = &published["form"];
    assert_eq!(form["ok"], true, "the form's publish failed: {form}");
    let text = form["text"].as_str().unwrap();
    // "Published id <id> to 1 subscriber."
    let form_id = text
        .strip_prefix("Published id ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no id in {text:?}"))
        .to_owned();
    assert!(text.ends_with(" to 1 subscriber."), "{text:?}");
    let curl_id = curl_publish(server.addr, "news", "from curl").await;
    driver.go_on().await;

    let report = driver.done().await;
    assert_eq!(
        entries(&report),
        [
            message(&form_id, "from the form"),
            message(&curl_id, "from curl")
        ]
    );
    assert!(form_id.parse::<u64>().unwrap() < curl_id.parse::<u64>().unwrap());
    assert_eq!(last_event_ids(&report), [None], "one subscribe, fresh");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_reconnects_by_itself_after_a_restart_on_the_same_port_and_shows_the_gap() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::start_on(listener, &[]);
    let mut driver = Driver::start("restart", addr, json!({})).await;
    driver.step("subscribed").await;
    server.wait_for_stat("subscribers", 1).await;
    // `retry` makes the browser reconnect after 300 ms rather than its default 3 s.
    let before = publish(
        &server,
        json!({"topic": "news", "data": "before the restart", "retry": 300}),
    )
    .await;
    driver.go_on().await;

    driver.step("received").await;
    server.stop().await;
    driver.go_on().await;

    // The page has seen the server go; a new one, with empty history, takes the same port.
    driver.step("down").await;
    let server = Server::start_on(bind_again(addr).await, &[]);
    driver.go_on().await;

    driver.step("reconnected").await;
    server.wait_for_stat("subscribers", 1).await;
    let after = publish(
        &server,
        json!({"topic": "news", "data": "after the restart"}),
    )
    .await;
    driver.go_on().await;

    let report = driver.done().await;
    let entries = entries(&report);
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert_eq!(entries[0], message(&before, "before the restart"));
    let (_, kind, data) = &entries[1];
    assert_eq!(kind, "gap");
    let gap: Value = serde_json::from_str(data).unwrap();
    assert_eq!(gap, json!({"lastEventId": before, "oldestId": null}));
    assert_eq!(entries[2], message(&after, "after the restart"));
    // The first subscribe is fresh; the reconnect the new server answered carries the id the
    // page last saw, sent by the browser's own EventSource.
    assert_eq!(last_event_ids(&report), [None, Some(before)]);
    assert_eq!(banners(&report), ["down", "up"], "{}", report["banners"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_catches_up_from_history_after_a_dropped_connection_without_a_gap() {
    let server = Server::start(&[]).await;
    let proxy = Proxy::start(server.addr).await;
    let mut driver = Driver::start("catchup", proxy.addr, json!({})).await;
    driver.step("subscribed").await;
    server.wait_for_stat("subscribers", 1).await;
    let first = publish(
        &server,
        json!({"topic": "news", "data": "before the cut", "retry": 300}),
    )
    .await;
    driver.go_on().await;

    // The network drops the stream; the server stays up and keeps history.
    driver.step("received").await;
    proxy.cut();
    server.wait_for_stat("subscribers", 0).await;
    let missed = [
        publish(&server, json!({"topic": "news", "data": "while cut, 1"})).await,
        publish(&server, json!({"topic": "news", "data": "while cut, 2"})).await,
    ];
    driver.go_on().await;

    driver.step("down").await;
    proxy.restore();
    driver.go_on().await;

    driver.step("reconnected").await;
    server.wait_for_stat("subscribers", 1).await;
    let live = publish(&server, json!({"topic": "news", "data": "live again"})).await;
    driver.go_on().await;

    let report = driver.done().await;
    assert_eq!(
        entries(&report),
        [
            message(&first, "before the cut"),
            message(&missed[0], "while cut, 1"),
            message(&missed[1], "while cut, 2"),
            message(&live, "live again"),
        ],
        "replayed in order, no gap"
    );
    // Attempts while the network was cut got no answer; the one that did resumed from `first`.
    assert_eq!(last_event_ids(&report), [None, Some(first)]);
    assert_eq!(banners(&report), ["down", "up"], "{}", report["banners"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_event_sources_in_one_page_each_receive_all_fifty_events() {
    const SOURCES: usize = 200;
    const EVENTS: usize = 50;
    // The sources are cross-origin (other host names than the page's), hence CORS.
    let server = Server::start(&["--cors-origin", "*"]).await;
    let options = json!({"sources": SOURCES, "hosts": 40, "topic": "fan", "events": EVENTS});
    let mut driver = Driver::start("fanout", server.addr, options).await;
    driver.step("open").await;
    server.wait_for_stat("subscribers", SOURCES as u64).await;
    let mut ids = Vec::with_capacity(EVENTS);
    for n in 0..EVENTS {
        let answer = server
            .publish(json!({"topic": "fan", "data": n.to_string()}))
            .await;
        assert_eq!(answer["subscribers"], SOURCES);
        ids.push(Value::from(answer["id"].as_str().unwrap()));
    }
    driver.go_on().await;

    let report = driver.done().await;
    assert_eq!(report["opened"], SOURCES);
    assert_eq!(report["errors"], 0, "an EventSource failed");
    let received = report["received"].as_array().unwrap();
    assert_eq!(received.len(), SOURCES);
    let short: Vec<usize> = (0..SOURCES)
        .filter(|&source| received[source].as_array() != Some(&ids))
        .collect();
    assert!(
        short.is_empty(),
        "{} of {SOURCES} sources did not get exactly the {EVENTS} events in order, e.g. #{}: {}",
        short.len(),
        short[0],
        received[short[0]]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshot_of_the_demo_page_with_events_in_its_log() {
    let server = Server::start(&[]).await;
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo.png");
    let _ = std::fs::remove_file(&shot);
    let mut driver = Driver::start("screenshot", server.addr, json!({"path": shot})).await;
    driver.step("subscribed").await;
    server.wait_for_stat("subscribers", 1).await;
    for body in [
        json!({"topic": "news", "data": "Markets open higher"}),
        json!({"topic": "news", "event": "score", "data": {"home": 1, "away": 1}}),
        json!({"topic": "alerts", "data": "Disk 80% full on db-2\nrotating logs"}),
        json!({"topic": "news", "event": "score", "data": {"home": 2, "away": 1}}),
        json!({"topic": ["news", "alerts"], "data": "One event, two topics, delivered once"}),
    ] {
        server.publish(body).await;
    }
    driver.go_on().await;

    let report = driver.done().await;
    let kinds: Vec<String> = entries(&report)
        .into_iter()
        .map(|(_, kind, _)| kind)
        .collect();
    assert_eq!(
        kinds,
        ["message", "score", "message", "score", "message", "message"]
    );
    let png = std::fs::read(&shot).expect("the driver saved the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 800));
    // The committed picture changes only on request, so that a test run leaves the tree clean.
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/demo.png");
    if !docs.exists() || std::env::var_os("SSECAST_UPDATE_SCREENSHOT").is_some() {
        std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
        std::fs::copy(&shot, &docs).unwrap();
    }
    server.stop().await;
}
