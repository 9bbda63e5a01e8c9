//! Runs the loadtest against a cluster: two ssecast nodes started in this process, joined by a
//! real `redis-server`, given as two `--url`s. The subscribers are dealt over both nodes, a
//! publish on the first reaches them all, and nothing is lost. Every wait has a timeout.

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;
use ssecast_loadtest::cli::{Cli, Command as Scenario};
use ssecast_loadtest::scenario::{fanout, single};
use support::{start_server, within_limit};

/// How long Redis may take to accept connections, and the nodes to follow it.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` on a free loopback port, without persistence, killed when dropped (a
/// failed assertion included).
struct Redis {
    /// Where it listens.
    addr: SocketAddr,
    process: Child,
}

impl Redis {
    fn start() -> Redis {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap();
        let process = Command::new("redis-server")
            .args(["--port", &addr.port().to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (apt-get install redis-server)");
        let redis = Redis { addr, process };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The node's `/stats` (blocking).
fn stats(node: SocketAddr) -> Value {
    let response = ssecast_loadtest::http::get(node, &node.to_string(), "/stats").unwrap();
    serde_json::from_slice(&response.body).unwrap()
}

/// Waits until `node` follows Redis (blocking).
fn wait_until_following(node: SocketAddr) {
    let deadline = Instant::now() + START_TIMEOUT;
    while stats(node)["redis_up"] != true {
        assert!(Instant::now() < deadline, "never followed: {}", stats(node));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The loadtest's own command line, `scenario` with `flags` (separated by spaces) against
/// `nodes`: one `--url` each, 100 subscribers per client process, so that a worker process
/// deals its share over the nodes too.
fn command(scenario: &str, flags: &str, nodes: &[SocketAddr]) -> Scenario {
    let mut args = vec!["ssecast-loadtest".to_owned(), scenario.to_owned()];
    for node in nodes {
        args.push("--url".into());
        args.push(format!("http://{node}/events?topic=load"));
    }
    let common = "--quiet --per-process 100 --rate 2000";
    args.extend(common.split(' ').chain(flags.split(' ')).map(String::from));
    Cli::try_parse_from(args).unwrap().command
}

/// Subscribes each node has counted since it started.
fn subscribes(nodes: &[SocketAddr]) -> Vec<u64> {
    nodes
        .iter()
        .map(|&node| stats(node)["subscribes_total"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_and_fanout_over_two_nodes_deal_the_subscribers_and_lose_nothing() {
    let redis = Redis::start();
    let url = format!("redis://{}", redis.addr);
    let flags = ["--redis", &url, "--max-connections-per-ip", "0"];
    let (first, _stop_first) = start_server(&flags).await;
    let (second, _stop_second) = start_server(&flags).await;
    let nodes = [first, second];
    ssecast_loadtest::worker::use_program(env!("CARGO_BIN_EXE_ssecast-loadtest"));
    within_limit(move || {
        for node in nodes {
            wait_until_following(node);
        }
        let Scenario::Single { common, args, .. } =
            command("single", "--subscribers 200 --events 3", &nodes)
        else {
            panic!("not single");
        };
        let target = common.target().unwrap();
        assert_eq!(
            target.pids,
            [std::process::id()],
            "both nodes are this process"
        );
        let report = single::run(&common.run(target, 3), &args).unwrap();
        assert_eq!(report.subscribers, 200);
        assert_eq!(
            (report.deliveries.expected, report.deliveries.delivered),
            (600, 600)
        );
        assert_eq!(
            (
                report.deliveries.lost,
                report.deliveries.duplicated,
                report.timed_out
            ),
            (0, 0, 0)
        );
        assert_eq!(
            subscribes(&nodes),
            [100, 100],
            "subscriber k on node k mod 2"
        );

        let flags = "--subscribers 200 --events-per-second 20 --duration 2s";
        let Scenario::Fanout(cmd) = command("fanout", flags, &nodes) else {
            panic!("not fanout");
        };
        let target = cmd.common.target().unwrap();
        let report = fanout::run(&cmd.common.run(target, 0), &cmd.args).unwrap();
        assert_eq!(report.subscribers, 200);
        assert_eq!(report.publish.published, 40, "{:?}", report.first_error);
        assert_eq!(
            (report.deliveries.expected, report.deliveries.delivered),
            (200 * 40, 200 * 40)
        );
        assert_eq!(report.deliveries.losses(), [0; 3]);
        assert!(report.drain.drained);
        assert_eq!(subscribes(&nodes), [200, 200]);
    })
    .await;
}
