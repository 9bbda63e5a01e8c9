//! The demo page (which reads its streams with `fetch`, in ssecast's API and in Mercure's) and
//! `EventSource` in a real browser: Debian's headless Chromium, driven by
//! `tests/browser/driver.mjs` (playwright-core), against a server each test starts here.
//!
//! Each test runs one scenario of the driver: the driver stops at each step where the test must
//! act (publish, stop the server, cut the network), and at the end reports what the page showed,
//! which the test asserts on. Needs Debian's Chromium (`/usr/bin/chromium`, or the browser
//! `CHROMIUM` names), Node >= 20 with `npm`, and `curl`; the first test to run installs those
//! missing with apt-get when it runs as root (`support::apt`), then does `npm ci` when
//! `tests/browser/node_modules` is missing.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use percent_encoding::NON_ALPHANUMERIC;
use serde_json::{json, Value};
use support::apt::{self, Need};
use support::{bind_again, install_atomically, run_to_completion, spawn_piped, Proxy, Server};
use tokio::io::{AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::task::JoinHandle;

/// Debian's Chromium; the driver launches this one (or `CHROMIUM`), never a browser of its own.
const DEBIAN_CHROMIUM: &str = "/usr/bin/chromium";
/// The oldest Node that playwright-core supports (the `engines` of `tests/browser/package.json`).
const MIN_NODE_MAJOR: u32 = 20;
/// How long the driver may take to reach its next step (launching Chromium included).
const BROWSER_STEP: Duration = Duration::from_secs(30);
/// How long `npm ci` may take on a fresh machine.
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);
/// The resume point the page sends when it opens a topic: everything history holds.
const EARLIEST: &str = "earliest";

/// `tests/browser/`: the driver, its `package.json` and `package-lock.json`.
fn driver_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// The browser the driver launches: the one `CHROMIUM` names, or Debian's.
fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| DEBIAN_CHROMIUM.into(), PathBuf::from)
}

/// Checks for Chromium, Node and curl, installing those missing from Debian when it can, and
/// installs the driver's packages; once per test process.
fn bootstrap() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let mut needs = vec![
            Need {
                what: "node",
                packages: &["nodejs"],
                present: || apt::runs("node"),
            },
            Need {
                what: "npm",
                packages: &["npm"],
                present: || apt::runs("npm"),
            },
            Need {
                what: "curl",
                packages: &["curl"],
                present: || apt::runs("curl"),
            },
        ];
        match std::env::var_os("CHROMIUM") {
            // A browser of the caller's choosing is never installed.
            Some(path) => assert!(
                Path::new(&path).exists(),
                "CHROMIUM={path:?} does not exist: point it at a Chromium, or unset it to use \
                 Debian's at {DEBIAN_CHROMIUM} (installed by the tests if missing)"
            ),
            None => needs.push(Need {
                what: "Debian's Chromium (/usr/bin/chromium)",
                packages: &["chromium"],
                present: || Path::new(DEBIAN_CHROMIUM).exists(),
            }),
        }
        apt::ensure("the browser tests", &needs);
        check_node_version();
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

/// Fails unless `node` is at least [`MIN_NODE_MAJOR`]: Debian 12's `nodejs` is 18.
fn check_node_version() {
    let output = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .expect("node runs");
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let major = version
        .strip_prefix('v')
        .and_then(|rest| rest.split('.').next())
        .and_then(|major| major.parse::<u32>().ok());
    assert!(
        major.is_some_and(|major| major >= MIN_NODE_MAJOR),
        "the browser tests need Node >= {MIN_NODE_MAJOR} (playwright-core), and `node --version` \
         says {version:?}; Debian 12's nodejs is 18: install Node {MIN_NODE_MAJOR} or later (Debian \
         13's nodejs, or NodeSource's)"
    );
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
        let mut piped = spawn_piped(
            tokio::process::Command::new("node")
                .arg("driver.mjs")
                .arg(scenario)
                .arg(format!("http://{addr}"))
                .arg(options.to_string())
                .current_dir(driver_dir())
                .env("CHROMIUM", chromium())
                .stdin(Stdio::piped()),
        );
        Driver {
            scenario,
            stdin: piped.child.stdin.take(),
            child: piped.child,
            stdout: piped.stdout,
            stderr: Some(piped.stderr),
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

/// One entry of the page's log, as `(id, type, data)`: panel by panel, in the page's order, and
/// each panel's entries in arrival order. Checks that every entry is in the panel of its topic.
fn entries(report: &Value) -> Vec<(String, String, String)> {
    entries_of(report, None)
}

/// The entries of the panel of `topic`, in arrival order, as `(id, type, data)`.
fn entries_in(report: &Value, topic: &str) -> Vec<(String, String, String)> {
    entries_of(report, Some(topic))
}

fn entries_of(report: &Value, topic: Option<&str>) -> Vec<(String, String, String)> {
    let list = report["entries"].as_array().expect("a list of entries");
    for entry in list {
        assert!(
            entry["panel"].is_string() && entry["panel"] == entry["topic"],
            "an entry outside the panel of its topic: {entry}"
        );
    }
    list.iter()
        .filter(|entry| topic.is_none_or(|topic| entry["topic"] == topic))
        .map(|entry| {
            let field = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
            (field("id"), field("type"), field("data"))
        })
        .collect()
}

/// The topics of the page's panels, in its order.
fn panels(report: &Value) -> Vec<String> {
    serde_json::from_value(report["panels"].clone()).expect("a list of panel topics")
}

/// Every answered `GET /events` of the page, in order, as `(topic, Last-Event-ID)` (`None`
/// without one). Checks that each subscribe asked for exactly one topic: the page opens one
/// stream per topic.
fn subscribes(report: &Value) -> Vec<(String, Option<String>)> {
    report["subscribes"]
        .as_array()
        .expect("a list of subscribes")
        .iter()
        .filter(|subscribe| subscribe["path"] == "/events")
        .map(|subscribe| {
            let topics = subscribe["topics"].as_array().expect("a list of topics");
            assert_eq!(topics.len(), 1, "one topic per subscribe: {subscribe}");
            let topic = topics[0].as_str().unwrap().to_owned();
            (topic, subscribe["lastEventId"].as_str().map(str::to_owned))
        })
        .collect()
}

/// The `Last-Event-ID` each answered subscribe of the page for `topic` sent, in order.
fn last_event_ids(report: &Value, topic: &str) -> Vec<Option<String>> {
    subscribes(report)
        .into_iter()
        .filter(|(subscribed, _)| subscribed == topic)
        .map(|(_, last_event_id)| last_event_id)
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
    let topic = format!("topic={topic}");
    let data = format!("data={data}");
    curl_publish_with(addr, &["-d", &topic, "--data-urlencode", &data]).await
}

/// Publishes with `curl` and these arguments (the form's fields), and returns the event's id.
async fn curl_publish_with(addr: SocketAddr, fields: &[&str]) -> String {
    let output = support::timed(
        "curl",
        tokio::process::Command::new("curl")
            .args(["-sS", "--fail-with-body"])
            .args(fields)
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
    assert_eq!(
        subscribes(&report),
        [("news".to_owned(), Some(EARLIEST.to_owned()))],
        "one subscribe, for all of history"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_shows_events_of_any_type_with_their_type() {
    let server = Server::start(&[]).await;
    let mut driver = Driver::start("types", server.addr, json!({})).await;
    driver.step("subscribed").await;
    server.wait_for_stat("subscribers", 1).await;
    // The README's own example, of a type the page was never told about.
    let fields = ["-d", "topic=news", "-d", "event=score", "-d", "data=1"];
    let score = curl_publish_with(server.addr, &fields).await;
    // Lines end with CRLF, CR and LF on the wire; the page joins them with LF.
    let alert = json!({"topic": "news", "event": "alert", "id": "alert-1",
                       "data": "line one\r\nline two\rline three\nline four"});
    publish(&server, alert).await;
    driver.go_on().await;

    let report = driver.done().await;
    let form = &report["form"];
    assert_eq!(form["ok"], true, "the form's publish failed: {form}");
    let form_id = form["id"].as_str().unwrap();
    let typed = |id: &str, kind: &str, data: &str| (id.into(), kind.into(), data.into());
    assert_eq!(
        entries(&report),
        [
            typed(&score, "score", "1"),
            typed(
                "alert-1",
                "alert",
                "line one\nline two\nline three\nline four"
            ),
            typed(form_id, "note", "from the form"),
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_shows_what_history_holds_when_it_opens() {
    let server = Server::start(&[]).await;
    let held = [
        publish(&server, json!({"topic": "news", "data": "first"})).await,
        publish(
            &server,
            json!({"topic": "news", "event": "score", "data": "2"}),
        )
        .await,
        publish(&server, json!({"topic": "news", "data": "third"})).await,
    ];
    publish(&server, json!({"topic": "sport", "data": "not news"})).await;
    let mut driver = Driver::start("history", server.addr, json!({"held": held.len()})).await;
    driver.step("shown").await;
    server.wait_for_stat("subscribers", 1).await;
    let live = publish(&server, json!({"topic": "news", "data": "live"})).await;
    driver.go_on().await;

    // A server that does not know `earliest` says `gap` first (an unknown id): the page hides it.
    let report = driver.done().await;
    assert_eq!(
        entries(&report),
        [
            message(&held[0], "first"),
            (held[1].clone(), "score".to_owned(), "2".to_owned()),
            message(&held[2], "third"),
            message(&live, "live"),
        ],
        "what history holds, in order and with no gap, then the live event"
    );
    assert_eq!(
        subscribes(&report),
        [("news".to_owned(), Some(EARLIEST.to_owned()))]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_reconnects_by_itself_after_a_restart_on_the_same_port_and_shows_the_gap() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::start_on(listener, &[]);
    // Two topics, so two streams: each resumes on its own, and each panel shows its own gap.
    let mut driver = Driver::start("restart", addr, json!({})).await;
    driver.step("subscribed").await;
    server.wait_for_stat("subscribers", 2).await;
    // `retry` makes the page reconnect after 300 ms rather than its default 3 s; it applies to
    // the stream that receives it, so each topic gets one.
    let before = publish(
        &server,
        json!({"topic": "news", "data": "before the restart", "retry": 300}),
    )
    .await;
    let sport_before = publish(
        &server,
        json!({"topic": "sport", "data": "sport before the restart", "retry": 300}),
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
    server.wait_for_stat("subscribers", 2).await;
    let after = publish(
        &server,
        json!({"topic": "news", "data": "after the restart"}),
    )
    .await;
    driver.go_on().await;

    let report = driver.done().await;
    assert_eq!(panels(&report), ["news", "sport"]);
    assert_eq!(entries(&report).len(), 5, "{}", report["entries"]);
    // Each panel: its event from before, the gap its own stream got, then what came after.
    for (topic, before, data) in [
        ("news", &before, "before the restart"),
        ("sport", &sport_before, "sport before the restart"),
    ] {
        let entries = entries_in(&report, topic);
        assert_eq!(entries[0], message(before, data), "{topic}: {entries:?}");
        let (_, kind, data) = &entries[1];
        assert_eq!(kind, "gap", "{topic}: {entries:?}");
        let gap: Value = serde_json::from_str(data).unwrap();
        assert_eq!(
            gap,
            json!({"lastEventId": before, "oldestId": null}),
            "{topic}"
        );
    }
    let news = entries_in(&report, "news");
    assert_eq!(news.len(), 3, "{news:?}");
    assert_eq!(news[2], message(&after, "after the restart"));
    assert_eq!(entries_in(&report, "sport").len(), 2);
    // The first subscribe of each topic asks for all of history; the reconnect the new server
    // answered carries the id that topic's stream last saw, sent by the page's reader.
    let earliest = Some(EARLIEST.to_owned());
    assert_eq!(
        last_event_ids(&report, "news"),
        [earliest.clone(), Some(before)]
    );
    assert_eq!(
        last_event_ids(&report, "sport"),
        [earliest, Some(sport_before)]
    );
    assert_eq!(
        subscribes(&report).len(),
        4,
        "only subscribes to news and sport"
    );
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
    assert_eq!(
        last_event_ids(&report, "news"),
        [Some(EARLIEST.to_owned()), Some(first)]
    );
    assert_eq!(subscribes(&report).len(), 2, "only subscribes to news");
    assert_eq!(banners(&report), ["down", "up"], "{}", report["banners"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_gives_each_topic_a_panel_and_subscribes_to_four_topics_at_most() {
    let server = Server::start(&[]).await;
    let mut driver = Driver::start("topics", server.addr, json!({})).await;
    // Given five topics, the page says it takes the first four, and opens one stream for each.
    let subscribed = driver.step("subscribed").await;
    assert_eq!(panels(&subscribed), ["news", "sport", "alerts", "ops"]);
    let note = &subscribed["note"];
    assert_eq!(note["shown"], true, "{note}");
    let text = note["text"].as_str().unwrap();
    for said in ["first 4 of 5 topics", "not to “extra”"] {
        assert!(text.contains(said), "{said:?} not in {text:?}");
    }
    server.wait_for_stat("subscribers", 4).await;
    let news = publish(&server, json!({"topic": "news", "data": "news only"})).await;
    let both = publish(
        &server,
        json!({"topic": ["sport", "alerts"], "data": "both sport and alerts"}),
    )
    .await;
    let answer = server
        .publish(json!({"topic": "extra", "data": "nobody listens"}))
        .await;
    assert_eq!(answer["subscribers"], 0, "the fifth topic has no stream");
    driver.go_on().await;

    let report = driver.done().await;
    let form = &report["form"];
    assert_eq!(form["ok"], true, "the form's publish failed: {form}");
    let text = form["text"].as_str().unwrap();
    assert!(text.ends_with(" to 1 subscriber."), "{text:?}");
    let form_id = text
        .strip_prefix("Published id ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no id in {text:?}"));
    assert_eq!(report["state"], "open");
    assert_eq!(
        report["subscribers"], "4",
        "stats still polled beside four streams"
    );
    assert_eq!(report["topicsValue"], "news, sport, alerts, ops, extra");
    assert_eq!(
        report["search"],
        "?topic=news&topic=sport&topic=alerts&topic=ops"
    );
    assert_eq!(panels(&report), ["news", "sport", "alerts", "ops"]);
    assert_eq!(entries_in(&report, "news"), [message(&news, "news only")]);
    for topic in ["sport", "alerts"] {
        let shown = entries_in(&report, topic);
        assert_eq!(shown, [message(&both, "both sport and alerts")], "{topic}");
    }
    assert_eq!(
        entries_in(&report, "ops"),
        [message(form_id, "from the form")]
    );
    assert_eq!(entries(&report).len(), 4);
    let mut seen = subscribes(&report);
    seen.sort();
    let fresh = ["alerts", "news", "ops", "sport"]
        .map(|topic| (topic.to_owned(), Some(EARLIEST.to_owned())));
    assert_eq!(
        seen, fresh,
        "one subscribe per topic, for all of history, none for the fifth"
    );

    // The filter works across panels (case-insensitively), and clearing it shows everything.
    let visible = |list: &Value| -> Vec<(String, String)> {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["hidden"] == false)
            .map(|entry| {
                let field = |name: &str| entry[name].as_str().unwrap().to_owned();
                (field("topic"), field("data"))
            })
            .collect()
    };
    let both_data = "both sport and alerts".to_owned();
    assert_eq!(
        visible(&report["filtered"]),
        [
            ("sport".to_owned(), both_data.clone()),
            ("alerts".to_owned(), both_data)
        ]
    );
    assert_eq!(
        report["filtered"].as_array().unwrap().len(),
        4,
        "hidden, not removed"
    );
    assert_eq!(visible(&report["unfiltered"]).len(), 4);
    // Clear empties every panel and keeps the panels.
    assert_eq!(report["cleared"], json!([]));
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
async fn a_page_with_a_token_cookie_receives_a_private_event() {
    const SECRET: &str = "a subscriber secret";
    let server = Server::start(&["--subscriber-jwt-key", SECRET]).await;
    let claims = json!({"mercure": {"subscribe": ["orders/42"]}});
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    let options = json!({"token": token, "topic": "orders/42"});
    let mut driver = Driver::start("private", server.addr, options).await;
    driver.step("open").await;
    // An anonymous subscriber of the same topic, beside the page.
    let mut anonymous = server.subscribe("/events?topic=orders/42", "").await;
    server.wait_for_stat("subscribers", 2).await;
    publish(
        &server,
        json!({"topic": "orders/42", "id": "public-1", "data": "shipped"}),
    )
    .await;
    publish(
        &server,
        json!({"topic": "orders/42", "id": "private-1", "data": "card ending 4242", "private": true}),
    )
    .await;
    publish(
        &server,
        json!({"topic": "orders/42", "id": "public-2", "data": "delivered"}),
    )
    .await;
    driver.go_on().await;
    let report = driver.done().await;
    assert_eq!(report["errors"], 0);
    let got: Vec<&str> = report["got"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["id"].as_str().unwrap())
        .collect();
    assert_eq!(got[..2], ["public-1", "private-1"]);
    assert_eq!(anonymous.event_id().await, "public-1");
    assert_eq!(
        anonymous.event_id().await,
        "public-2",
        "no private event without a token"
    );
    server.stop().await;
}

/// `--subscriber-jwt-key` of the tests of a page with a subscriber token.
const SUBSCRIBER_SECRET: &str = "a subscriber secret";
/// `--publisher-jwt-key` of the same tests.
const PUBLISHER_SECRET: &str = "a publisher secret";

/// A token with these claims, signed with `secret` (HS256).
fn hs256_token(claims: Value, secret: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

/// Starts a server that checks subscriber and publisher tokens and opens the demo page on
/// `orders/42` with a token that may see its private events (`via` the cookie or the page's
/// token field); the page publishes from its form, with a publisher token, a public event, a
/// private one and a public one. Returns the driver's report.
async fn page_with_a_subscriber_token(via: &str) -> Value {
    let flags = [
        "--subscriber-jwt-key",
        SUBSCRIBER_SECRET,
        "--publisher-jwt-key",
        PUBLISHER_SECRET,
    ];
    let server = Server::start(&flags).await;
    let token = hs256_token(
        json!({"mercure": {"subscribe": ["orders/42"]}}),
        SUBSCRIBER_SECRET,
    );
    let publisher = hs256_token(
        json!({"mercure": {"publish": ["orders/42"]}}),
        PUBLISHER_SECRET,
    );
    let options = json!({"token": token, "publisher": publisher, "topic": "orders/42", "via": via});
    // An anonymous subscriber of the same topic, beside the page.
    let mut anonymous = server.subscribe("/events?topic=orders/42", "").await;
    let mut driver = Driver::start("privatePage", server.addr, options).await;
    driver.step("open").await;
    server.wait_for_stat("subscribers", 2).await;
    driver.go_on().await;
    let report = driver.done().await;
    let said: Vec<&str> = report["forms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|form| form["text"].as_str().unwrap())
        .collect();
    // The private event counts only the page, whose token may see it.
    assert_eq!(
        said,
        [
            "Published id public-1 to 2 subscribers.",
            "Published id private-1 to 1 subscriber.",
            "Published id public-2 to 2 subscribers.",
        ]
    );
    assert_eq!(anonymous.event_id().await, "public-1");
    assert_eq!(anonymous.event_id().await, "public-2");
    assert_eq!(
        entries(&report),
        [
            message("public-1", "shipped"),
            message("private-1", "card ending 4242"),
            message("public-2", "delivered"),
        ],
        "the private event too"
    );
    server.stop().await;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_with_a_token_cookie_shows_private_events() {
    let report = page_with_a_subscriber_token("cookie").await;
    let sent: Vec<&Value> = report["subscribes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|subscribe| &subscribe["authorization"])
        .collect();
    assert_eq!(sent, [&Value::Null], "the cookie, not a header");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_with_a_token_pasted_sends_it_and_shows_private_events() {
    let report = page_with_a_subscriber_token("field").await;
    let subscribes = report["subscribes"].as_array().unwrap();
    assert_eq!(subscribes.len(), 2, "anonymous, then with the token");
    let sent = subscribes[1]["authorization"].as_str().unwrap();
    assert!(sent.starts_with("Bearer ey"), "{sent:?}");
}

/// The key of Mercure's own examples, for publisher tokens.
const MERCURE_KEY: &str = "!ChangeThisMercureHubJWTSecretKey!";

/// A publisher token that may publish to every topic, signed with [`MERCURE_KEY`] (HS256).
fn mercure_publisher_token() -> String {
    hs256_token(json!({"mercure": {"publish": ["*"]}}), MERCURE_KEY)
}

/// `POST /.well-known/mercure` with these form fields and a publisher token; returns the id the
/// answer's body holds.
async fn mercure_publish(server: &Server, token: &str, fields: &[(&str, &str)]) -> String {
    let form: Vec<String> = fields
        .iter()
        .map(|(name, value)| {
            let value = percent_encoding::utf8_percent_encode(value, NON_ALPHANUMERIC);
            format!("{name}={value}")
        })
        .collect();
    let form = form.join("&");
    let raw = format!(
        "POST /.well-known/mercure HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    let answer = support::request(server.addr, raw).await;
    let body = String::from_utf8(answer.body).unwrap();
    assert_eq!(answer.status, 200, "{body}");
    body
}

/// The demo page in its Mercure mode subscribes with `selector` (a `syntax` of `topic` or
/// `match_urlpattern`), shows what history holds for it and not the rest, and publishes from
/// its form with a publisher token: with an id and a type, then with neither, then without the
/// token, which is refused.
async fn mercure_mode_round_trip(syntax: &str, selector: &str) {
    let server = Server::start(&["--publisher-jwt-key", MERCURE_KEY]).await;
    let token = mercure_publisher_token();
    let topic = "https://example.com/books/1";
    let held = mercure_publish(&server, &token, &[("topic", topic), ("data", "held")]).await;
    let elsewhere = [
        ("topic", "https://example.com/authors/1"),
        ("data", "not a book"),
    ];
    mercure_publish(&server, &token, &elsewhere).await;
    let options = json!({"syntax": syntax, "selector": selector, "topic": topic, "token": token,
                         "id": "book-1-rev-2", "type": "update", "held": 1});
    let mut driver = Driver::start("mercure", server.addr, options).await;
    let subscribed = driver.step("subscribed").await;
    assert_eq!(panels(&subscribed), [selector]);
    server.wait_for_stat("subscribers", 1).await;
    driver.go_on().await;

    let report = driver.done().await;
    let given = &report["given"];
    assert_eq!(given["ok"], true, "{given}");
    assert_eq!(given["text"], "Published id book-1-rev-2.");
    let made = &report["made"];
    assert_eq!(made["ok"], true, "{made}");
    let made_id = made["id"].as_str().unwrap();
    assert!(made_id.starts_with("urn:uuid:"), "{made}");
    assert_eq!(made["text"], format!("Published id {made_id}."));
    let refused = &report["refused"];
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(
        refused["text"].as_str().unwrap().starts_with("Error 401: "),
        "{refused}"
    );
    assert_eq!(
        entries(&report),
        [
            message(&held, "held"),
            ("book-1-rev-2".into(), "update".into(), "given an id".into()),
            message(made_id, "id made by the hub"),
        ]
    );
    assert_eq!(
        report["query"],
        json!([["mode", "mercure"], [syntax, selector]])
    );
    // The stream of the selector asked for all of history, once. (Before it, the Mercure tab
    // opened a stream of the selector its form held then.)
    let asked = if syntax == "topic" {
        "topics"
    } else {
        "patterns"
    };
    let mercure: Vec<&Value> = report["subscribes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|subscribe| subscribe["path"] == "/.well-known/mercure")
        .filter(|subscribe| subscribe[asked] == json!([selector]))
        .collect();
    assert_eq!(mercure.len(), 1, "{mercure:?}");
    assert_eq!(mercure[0]["lastEventId"], EARLIEST);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercure_mode_subscribes_to_an_exact_topic_and_publishes_with_a_token() {
    mercure_mode_round_trip("topic", "https://example.com/books/1").await;
}

/// A URI template, Mercure 0.x's selector, which the hub matches against each update's topics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercure_mode_subscribes_with_a_uri_template() {
    mercure_mode_round_trip("topic", "https://example.com/books/{id}").await;
}

/// A URL pattern, Mercure 1.0's selector (`match_urlpattern`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercure_mode_subscribes_with_a_url_pattern() {
    mercure_mode_round_trip("match_urlpattern", "https://example.com/books/:id").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_source_on_the_mercure_endpoint_gets_public_updates_with_their_ids() {
    // Mercure 0.x: a URI template, and a publisher token with `mercure.publish`.
    let template = ["topic", "https://example.com/orders/{id}"];
    mercure_event_source(json!(template), mercure_publisher_token()).await;
    // Mercure 1.0: a URL pattern, and an RFC 9068 access token with authorization details.
    let pattern = ["match_urlpattern", "https://example.com/orders/:id"];
    mercure_event_source(json!(pattern), mercure_access_token("publish", "*")).await;
}

/// A Mercure 1.0 access token (HS256, `typ: at+jwt`) allowing `action` on topics matching
/// `pattern` (a URL pattern), valid for an hour.
fn mercure_access_token(action: &str, pattern: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": "https://example.com", "aud": "https://hub.example/.well-known/mercure",
        "sub": "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6", "client_id": "https://example.com",
        "iat": now, "exp": now + 3600, "jti": "urn:uuid:e70ff8d7-59d5-4a92-b0b7-505e8f6d09fa",
        "authorization_details": [{
            "type": "https://mercure.rocks/authorization-detail",
            "actions": [action],
            "topics": [{"match": pattern, "match_type": "urlpattern"}],
        }],
    });
    let header = jsonwebtoken::Header {
        typ: Some("at+jwt".into()),
        ..Default::default()
    };
    let key = jsonwebtoken::EncodingKey::from_secret(MERCURE_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// A plain EventSource subscribed with `selector` receives the public updates to
/// `https://example.com/orders/42` published with `fetch` and `token`, not the private one,
/// and no update without a token is published.
async fn mercure_event_source(selector: Value, token: String) {
    let server = Server::start(&["--publisher-jwt-key", MERCURE_KEY]).await;
    let options =
        json!({"topic": "https://example.com/orders/42", "selector": selector, "token": token});
    let mut driver = Driver::start("mercureSource", server.addr, options).await;
    driver.step("open").await;
    // The demo page's own stream (of topic `default`) and the EventSource.
    server.wait_for_stat("subscribers", 2).await;
    driver.go_on().await;

    let report = driver.done().await;
    assert_eq!(report["errors"], 0);
    let answers: Vec<(u64, &str)> = report["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|answer| {
            (
                answer["status"].as_u64().unwrap(),
                answer["body"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        answers[1..],
        [(200, "public-1"), (200, "private-1"), (200, "public-2")]
    );
    assert_eq!(answers[0].0, 401, "no token: {:?}", answers[0]);
    for answer in &report["answers"].as_array().unwrap()[1..] {
        assert!(
            answer["type"].as_str().unwrap().starts_with("text/plain"),
            "{answer}"
        );
    }
    assert_eq!(
        report["got"],
        json!([
            {"id": "public-1", "type": "message", "data": "shipped"},
            {"id": "public-2", "type": "update", "data": "delivered"},
        ]),
        "the ids as lastEventId; the private update passed by"
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
    // One stream per topic: news, sport, alerts.
    server.wait_for_stat("subscribers", 3).await;
    let mut both = String::new();
    for body in [
        json!({"topic": "news", "data": "Markets open higher"}),
        json!({"topic": "sport", "data": "Kick-off: Rovers v United"}),
        json!({"topic": "sport", "event": "score", "data": {"home": 1, "away": 0}}),
        json!({"topic": "alerts", "data": "Disk 80% full on db-2\nrotating logs"}),
        json!({"topic": "sport", "event": "score", "data": {"home": 1, "away": 1}}),
        json!({"topic": ["news", "alerts"], "data": "One event, two topics: in both panels, same id"}),
        json!({"topic": "news", "data": "Rates unchanged at 4.25%"}),
    ] {
        let two_topics = body["topic"].is_array();
        let id = publish(&server, body).await;
        if two_topics {
            both = id;
        }
    }
    driver.go_on().await;

    let report = driver.done().await;
    assert_eq!(panels(&report), ["news", "sport", "alerts"]);
    let kinds = |topic: &str| -> Vec<String> {
        entries_in(&report, topic)
            .into_iter()
            .map(|(_, kind, _)| kind)
            .collect()
    };
    assert_eq!(entries(&report).len(), 9);
    assert_eq!(kinds("news"), ["message", "message", "message"]);
    assert_eq!(kinds("sport"), ["message", "score", "score"]);
    assert_eq!(kinds("alerts"), ["message", "message", "message"]);
    // The event published to two topics comes once on each topic's stream, with its one id.
    let with_both_id = |topic: &str| {
        entries_in(&report, topic)
            .iter()
            .filter(|(id, _, _)| *id == both)
            .count()
    };
    assert_eq!((with_both_id("news"), with_both_id("alerts")), (1, 1));
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

/// Events the rolling-restart test publishes.
const ROLLING_EVENTS: usize = 90;

/// Publishes event `id` to the first of `nodes` that takes it, trying again until one does
/// (a node may be restarting); returns the node that took it.
async fn publish_to_any(nodes: &[SocketAddr], id: &str) -> SocketAddr {
    let body = json!({"topic": "news", "id": id, "data": format!("event {id}")}).to_string();
    let request = format!(
        "POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    for _ in 0..200 {
        for &node in nodes {
            let Ok(mut socket) = tokio::net::TcpStream::connect(node).await else {
                continue;
            };
            let mut answer = Vec::new();
            if socket.write_all(request.as_bytes()).await.is_ok()
                && tokio::io::AsyncReadExt::read_to_end(&mut socket, &mut answer)
                    .await
                    .is_ok()
                && answer.starts_with(b"HTTP/1.1 200")
            {
                return node;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no node took event {id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_behind_nginx_misses_nothing_while_each_node_restarts() {
    let redis = support::redis::Redis::start();
    let addrs: Vec<SocketAddr> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .unwrap()
        })
        .collect();
    let flags = |addr: SocketAddr| {
        format!(
            "--listen {addr} --redis {} --max-connections-per-ip 0 --reconnect-spread 200ms",
            redis.url()
        )
    };
    let mut nodes = Vec::new();
    for &addr in &addrs {
        let (child, client, _log) = support::spawn_binary("", &flags(addr)).await;
        client.wait_for_redis(true).await;
        nodes.push(child);
    }
    let nginx = support::nginx::Nginx::start_in_front_of(&addrs).await;
    let mut driver = Driver::start("rolling", nginx.addr, json!({"events": ROLLING_EVENTS})).await;
    driver.step("subscribed").await;
    driver.go_on().await;
    let publishing = tokio::spawn({
        let addrs = addrs.clone();
        async move {
            for k in 0..ROLLING_EVENTS {
                publish_to_any(&addrs, &format!("e{k}")).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    // Each node in turn (SIGTERM, two seconds down, a new process on the same port), then both
    // at once: nginx then has no node for the page's reconnect, and answers it a stream that
    // says to retry.
    for down in [vec![0], vec![1], vec![0, 1]] {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for &index in &down {
            let pid = nodes[index].id().unwrap().to_string();
            let term = Command::new("kill").args(["-TERM", &pid]).status();
            assert!(term.unwrap().success());
        }
        for &index in &down {
            let _ = tokio::time::timeout(Duration::from_secs(10), nodes[index].wait()).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        for &index in &down {
            let (child, client, _log) = support::spawn_binary("", &flags(addrs[index])).await;
            client.wait_for_redis(true).await;
            nodes[index] = child;
        }
    }
    publishing.await.unwrap();
    let report = driver.done().await;
    let got = entries_in(&report, "news");
    let sent: Vec<(String, String, String)> = (0..ROLLING_EVENTS)
        .map(|k| message(&format!("e{k}"), &format!("event e{k}")))
        .collect();
    assert_eq!(got, sent, "every event once, in order, no gap");
    drop(nginx);
}
