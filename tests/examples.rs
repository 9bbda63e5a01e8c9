//! The client examples in `examples/`, each run as a user would run it, against a server this
//! test starts: the publishers' events must reach a subscriber, and the Python subscriber must
//! print every event exactly once, in order, across dropped connections. `mercure_publish.py`
//! uses `mercure-publisher`, a package written for Mercure hubs, with the JWT it signs itself.
//!
//! The Python examples run in a venv under `target/tmp/`, made once (`python3 -m venv`, then
//! `pip install -r examples/requirements.txt`) and remade when the requirements change. Needs
//! `python3` with its `venv` module and `curl`, installed from Debian by the first test when
//! missing and the tests run as root (`support::apt`).

mod support;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};
use support::apt::{self, Need};
use support::{
    bind_again, install_atomically, run_to_completion, spawn_piped, timed, Proxy, Server,
};
use tokio::io::{BufReader, Lines};
use tokio::process::{Child, ChildStdout};
use tokio::task::JoinHandle;

/// How long making the venv and installing the requirements may take on a fresh machine.
const PIP_INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Checks for `curl`, `python3` and its `venv` module, installing those missing from Debian
/// when it can; once per test process.
fn bootstrap() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let needs = [
            Need {
                what: "curl",
                packages: &["curl"],
                present: || apt::runs("curl"),
            },
            Need {
                what: "python3",
                packages: &["python3", "python3-venv"],
                present: || apt::runs("python3"),
            },
            Need {
                what: "python3's venv module",
                packages: &["python3-venv"],
                present: || {
                    Command::new("python3")
                        .args(["-c", "import ensurepip, venv"])
                        .stdin(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|status| status.success())
                },
            },
        ];
        apt::ensure("the example tests", &needs);
    });
}

/// The venv's Python, with `examples/requirements.txt` installed; made once per test process.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        bootstrap();
        let requirements = examples_dir().join("requirements.txt");
        let version = Command::new("python3")
            .arg("--version")
            .output()
            .ok()
            .filter(|output| output.status.success())
            .expect("the Python examples need python3: apt-get install python3 python3-venv");
        // A venv per set of requirements and Python version: an edit makes a new one.
        let mut hasher = DefaultHasher::new();
        std::fs::read(&requirements).unwrap().hash(&mut hasher);
        version.stdout.hash(&mut hasher);
        let name = format!("examples-venv-{:016x}", hasher.finish());
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        install_atomically(&venv, |scratch| {
            let staged = scratch.join("venv");
            run_to_completion(
                Command::new("python3").args(["-m", "venv"]).arg(&staged),
                PIP_INSTALL_TIMEOUT,
            );
            run_to_completion(
                Command::new(staged.join("bin/python"))
                    .args(["-m", "pip", "install", "--quiet", "-r"])
                    .arg(&requirements)
                    .env("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
                PIP_INSTALL_TIMEOUT,
            );
            staged
        });
        venv.join("bin/python")
    })
}

/// Runs a finished example (`program` with `args`) against the server at `addr`, with `env`
/// added to its environment.
async fn run(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    addr: SocketAddr,
) -> std::process::Output {
    bootstrap();
    let output = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .env("SSECAST_URL", format!("http://{addr}"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    timed("example", output).await.expect("the example runs")
}

/// The `id`, `event` and `data` (lines joined) of one frame.
fn fields(frame: &str) -> (String, String, String) {
    let (mut id, mut event, mut data) = (String::new(), "message".to_owned(), Vec::new());
    for line in frame.lines().filter(|line| !line.is_empty()) {
        match line.split_once(": ") {
            Some(("id", value)) => id = value.to_owned(),
            Some(("event", value)) => event = value.to_owned(),
            Some(("data", value)) => data.push(value),
            _ => panic!("unexpected line {line:?} in {frame:?}"),
        }
    }
    (id, event, data.join("\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_sh_sends_a_form_event_and_a_json_event() {
    let server = Server::start(&[]).await;
    let mut stream = server.subscribe("/events?topic=news", "").await;
    server.wait_for_stat("subscribers", 1).await;
    let output = run(
        &examples_dir().join("publish.sh"),
        &["news"],
        &[],
        server.addr,
    )
    .await;
    assert!(output.status.success(), "publish.sh: {output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let answers: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(answers.len(), 2, "{stdout}");
    for answer in &answers {
        assert_eq!(answer["subscribers"], 1, "{answer}");
    }

    let form = fields(&stream.event().await);
    assert_eq!(form.0, answers[0]["id"].as_str().unwrap());
    assert_eq!(form.1, "message");
    assert_eq!(form.2, "hello from curl\na second line");
    let json = fields(&stream.event().await);
    assert_eq!(json.0, answers[1]["id"].as_str().unwrap());
    assert_eq!(json.1, "score");
    let data: Value = serde_json::from_str(&json.2).unwrap();
    assert_eq!(data, json!({"home": 2, "away": 1}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_py_sends_an_event_and_prints_its_id() {
    let python = python();
    let server = Server::start(&[]).await;
    let mut stream = server.subscribe("/events?topic=news", "").await;
    server.wait_for_stat("subscribers", 1).await;
    let script = examples_dir().join("publish.py");
    let args = [
        script.to_str().unwrap(),
        "news",
        "hello from python",
        "--event",
        "note",
    ];
    let output = run(python, &args, &[], server.addr).await;
    assert!(output.status.success(), "publish.py: {output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let id = stdout
        .strip_prefix("published ")
        .and_then(|rest| rest.strip_suffix(" to 1 subscriber\n"))
        .unwrap_or_else(|| panic!("unexpected output {stdout:?}"));
    assert_eq!(
        fields(&stream.event().await),
        (
            id.to_owned(),
            "note".to_owned(),
            "hello from python".to_owned()
        )
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_py_prints_the_servers_refusal_and_fails() {
    let python = python();
    let server = Server::start(&[]).await;
    let script = examples_dir().join("publish.py");
    let output = run(
        python,
        &[script.to_str().unwrap(), "news", ""],
        &[],
        server.addr,
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr,
        "refused (400): data is required and must not be empty\n"
    );
    server.stop().await;
}

/// The keys the Mercure example's server checks tokens with; PyJWT warns on stderr about an
/// HMAC key shorter than 32 bytes.
const PUBLISHER_KEY: &str = "the publishers' key, 32 bytes or more";
const SUBSCRIBER_KEY: &str = "the subscribers' key, 32 bytes or more";
const BOOK: &str = "https://example.com/books/1";
const AUTHOR: &str = "https://example.com/authors/7";

/// Starts a server that wants publisher tokens and reads subscriber tokens, as a Mercure hub.
async fn mercure_hub() -> Server {
    let flags = [
        "--publisher-jwt-key",
        PUBLISHER_KEY,
        "--subscriber-jwt-key",
        SUBSCRIBER_KEY,
    ];
    Server::start(&flags).await
}

/// Runs `mercure_publish.py` with `args` and the publisher key `key`.
async fn mercure_publish(server: &Server, key: &str, args: &[&str]) -> std::process::Output {
    let script = examples_dir().join("mercure_publish.py");
    let args: Vec<&str> = std::iter::once(script.to_str().unwrap())
        .chain(args.iter().copied())
        .collect();
    let env = [("SSECAST_PUBLISHER_JWT_KEY", key)];
    run(python(), &args, &env, server.addr).await
}

/// The id `mercure_publish.py` printed, checking it succeeded and said nothing else.
fn printed_id(output: std::process::Output) -> String {
    assert!(output.status.success(), "mercure_publish.py: {output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout
        .strip_prefix("published ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("unexpected output {stdout:?}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mercure_publisher_package_publishes_typed_private_and_public_updates() {
    let server = mercure_hub().await;
    let subscribe = |topic: &str| format!("/.well-known/mercure?topic={topic}");
    let claims = serde_json::json!({"mercure": {"subscribe": [BOOK]}});
    let key = jsonwebtoken::EncodingKey::from_secret(SUBSCRIBER_KEY.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&Default::default(), &claims, &key).unwrap();
    let mut reader = server
        .subscribe(
            &subscribe(BOOK),
            &format!("Authorization: Bearer {token}\r\n"),
        )
        .await;
    let mut anonymous = server.subscribe(&subscribe(BOOK), "").await;
    let mut author = server.subscribe(&subscribe(AUTHOR), "").await;
    server.wait_for_stat("subscribers", 3).await;

    // An id and a type of the publisher's, a retry, and a second topic: the package sends
    // `topic` twice and signs a token for both.
    let args = [
        BOOK,
        AUTHOR,
        r#"{"title":"Dune"}"#,
        "--id",
        "rev-1",
        "--type",
        "book.updated",
        "--retry",
        "2000",
    ];
    let id = printed_id(mercure_publish(&server, PUBLISHER_KEY, &args).await);
    assert_eq!(id, "rev-1", "the package returns the id the hub answered");
    let frame = "id: rev-1\nevent: book.updated\nretry: 2000\ndata: {\"title\":\"Dune\"}\n\n";
    for stream in [&mut reader, &mut anonymous, &mut author] {
        assert_eq!(stream.event().await, frame);
    }

    // Private (`private=on`): only the subscriber whose token names the topic gets it.
    let private =
        printed_id(mercure_publish(&server, PUBLISHER_KEY, &[BOOK, "draft", "--private"]).await);
    assert!(
        private.starts_with("urn:uuid:"),
        "an id the hub made: {private}"
    );
    assert_eq!(
        reader.event().await,
        format!("id: {private}\ndata: draft\n\n")
    );

    // Public, with the hub's id; a newline in the data splits it into two data lines.
    let public =
        printed_id(mercure_publish(&server, PUBLISHER_KEY, &[BOOK, "on sale\nthis week"]).await);
    assert!(
        public.starts_with("urn:uuid:") && public != private,
        "{public}"
    );
    let frame = format!("id: {public}\ndata: on sale\ndata: this week\n\n");
    assert_eq!(reader.event().await, frame);
    assert_eq!(
        anonymous.event().await,
        frame,
        "the private update does not reach a subscriber without a token"
    );
    assert_eq!(server.stats().await["events_published"], 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mercure_publisher_package_signing_with_another_key_is_refused() {
    let server = mercure_hub().await;
    let output = mercure_publish(&server, SUBSCRIBER_KEY, &[BOOK, "x"]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "refused (401): {\"error\":\"the token's signature is not valid\"}\n"
    );
    assert_eq!(server.stats().await["events_published"], 0);
    server.stop().await;
}

/// A running `subscribe.py`, read line by line.
struct Subscriber {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: JoinHandle<String>,
}

impl Subscriber {
    /// Starts `subscribe.py` for `topics` against the server (or proxy) at `addr`.
    fn start(topics: &[&str], addr: SocketAddr) -> Subscriber {
        let piped = spawn_piped(
            tokio::process::Command::new(python())
                .arg(examples_dir().join("subscribe.py"))
                .args(topics)
                .env("SSECAST_URL", format!("http://{addr}"))
                .stdin(Stdio::null())
                .kill_on_drop(true),
        );
        Subscriber {
            child: piped.child,
            stdout: piped.stdout,
            stderr: piped.stderr,
        }
    }

    /// The next line it prints.
    async fn line(&mut self) -> String {
        match timed("subscribe.py prints", self.stdout.next_line()).await {
            Ok(Some(line)) => line,
            other => panic!("subscribe.py stopped printing: {other:?}"),
        }
    }

    /// Stops it as a service manager would, with SIGTERM (SIGINT, Ctrl-C, may be ignored when
    /// the test runs in the background); returns its exit status, what it printed on stdout
    /// since the last [`Subscriber::line`], and all it said on stderr.
    async fn stop(mut self) -> (ExitStatus, String, String) {
        let pid = self.child.id().expect("still running").to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let status = timed("subscribe.py exits", self.child.wait())
            .await
            .unwrap();
        let mut rest = String::new();
        while let Ok(Some(line)) = self.stdout.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        (status, rest, timed("stderr", self.stderr).await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_py_prints_every_event_once_in_order_across_dropped_connections() {
    const EVENTS: usize = 80;
    python();
    let server = Server::start(&[]).await;
    let proxy = Proxy::start(server.addr).await;
    let mut subscriber = Subscriber::start(&["news"], proxy.addr);
    server.wait_for_stat("subscribers", 1).await;

    // Events go out steadily on another task while the network drops the subscriber twice.
    let published = Arc::new(AtomicUsize::new(0));
    let publisher = tokio::spawn({
        let (client, published) = (*server, published.clone());
        async move {
            let mut ids = Vec::with_capacity(EVENTS);
            for n in 0..EVENTS {
                let answer = client
                    .publish(json!({"topic": "news", "data": format!("event {n}")}))
                    .await;
                ids.push(answer["id"].as_str().unwrap().to_owned());
                published.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            ids
        }
    });
    let mut printed = Vec::new();
    for cut_after in [10, 30] {
        while printed.len() < cut_after {
            printed.push(subscriber.line().await);
        }
        proxy.cut();
        server.wait_for_stat("subscribers", 0).await;
        // Some events are published while it is away, to be replayed from history.
        let away = published.load(Ordering::SeqCst);
        timed("publishes while cut", async {
            while published.load(Ordering::SeqCst) < (away + 3).min(EVENTS) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        proxy.restore();
    }
    let ids = timed("publisher", publisher).await.unwrap();
    while printed.len() < EVENTS {
        printed.push(subscriber.line().await);
    }

    let expected: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| format!("{id} message event {n}"))
        .collect();
    assert_eq!(printed, expected);
    let (status, rest, stderr) = subscriber.stop().await;
    eprintln!("subscribe.py said on stderr:\n{stderr}"); // shown if the test fails
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(rest, "", "printed more than the events");
    assert!(
        stderr.matches(", resuming after ").count() >= 2,
        "no resume in {stderr}"
    );
    assert!(!stderr.contains("gap"), "{stderr}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_py_reports_the_gap_after_a_server_restart() {
    python();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // On shutdown the stream is told to reconnect after 1 s, with no random part.
    let server = Server::start_on(listener, &["--reconnect-spread", "0s"]);
    let mut subscriber = Subscriber::start(&["news"], addr);
    server.wait_for_stat("subscribers", 1).await;
    let before = server
        .publish(json!({"topic": "news", "data": "before"}))
        .await;
    let before = before["id"].as_str().unwrap();
    assert_eq!(subscriber.line().await, format!("{before} message before"));

    server.stop().await;
    let server = Server::start_on(bind_again(addr).await, &[]);
    server.wait_for_stat("subscribers", 1).await;
    let after = server
        .publish(json!({"topic": "news", "data": "after"}))
        .await;
    let after = after["id"].as_str().unwrap();
    assert_eq!(subscriber.line().await, format!("{after} message after"));

    let (status, rest, stderr) = subscriber.stop().await;
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(rest, "");
    let gap = format!("gap: events after {before} were missed; the server holds no history");
    assert!(stderr.contains(&gap), "no {gap:?} in {stderr}");
    server.stop().await;
}

#[test]
fn every_example_begins_with_what_it_shows_and_how_to_run_it() {
    for name in [
        "publish.sh",
        "publish.py",
        "mercure_publish.py",
        "subscribe.py",
    ] {
        let text = std::fs::read_to_string(examples_dir().join(name)).unwrap();
        let head: String = text.lines().take(20).collect::<Vec<_>>().join("\n");
        assert!(text.starts_with("#!"), "{name} has no #! line");
        assert!(head.contains("Run"), "{name} does not say how to run it");
    }
}
