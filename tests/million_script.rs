//! Runs `loadtest/million.sh` end to end at a small size, as a user runs it: it builds the
//! binaries, starts a real `redis-server` and the nodes, spreads the subscribers over client
//! processes, runs the three scenarios and stops everything it started. Its one JSON document
//! must show every subscriber connected and every event delivered, with memory over time, and
//! no node may be left running.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::apt::{self, Need};

/// Subscribers, and per node: two nodes and two client processes.
const SUBS: u64 = 2_000;
const PER_NODE: u64 = 1_000;
const SINGLE_EVENTS: u64 = 2;

#[test]
fn million_script_runs_every_scenario_and_stops_what_it_started() {
    apt::ensure(
        "the load-test script test",
        &[
            Need {
                what: "jq",
                packages: &["jq"],
                present: || apt::runs("jq"),
            },
            Need {
                what: "curl",
                packages: &["curl"],
                present: || apt::runs("curl"),
            },
            Need {
                what: "redis-server",
                packages: &["redis-server"],
                present: || apt::runs("redis-server"),
            },
        ],
    );
    let out = std::env::temp_dir().join(format!("ssecast-million-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = Command::new("bash")
        .arg(root.join("loadtest/million.sh"))
        .current_dir(root)
        .env("PROFILE", "dev")
        .env("OUT", &out)
        .env("SUBS", SUBS.to_string())
        .env("PER_NODE", PER_NODE.to_string())
        .env("HOLD", "1s")
        .env("SETTLE", "1s")
        .env("SINGLE_EVENTS", SINGLE_EVENTS.to_string())
        .env("FANOUT_RATE", "5")
        .env("FANOUT_DURATION", "2s")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "million.sh failed: {stderr}");
    let document: Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(document["parameters"]["nodes"], "2");
    assert!(document["kernel_settings"]["net.ipv4.tcp_rmem"].is_string());

    let connect = &document["scenarios"]["connect"]["report"];
    assert_eq!(connect["connected"], SUBS, "{connect}");
    assert_eq!(connect["failed"], 0);
    assert_eq!(connect["processes"], SUBS / PER_NODE);
    let samples = connect["samples"].as_array().expect("samples over time");
    let most = samples
        .iter()
        .filter_map(|s| s["connections"].as_u64())
        .max();
    assert_eq!(
        most,
        Some(SUBS),
        "the samples see every subscriber streaming"
    );
    assert!(samples
        .iter()
        .all(|s| s["mem_available"].as_u64() > Some(0)));

    let single = &document["scenarios"]["single"]["report"];
    assert_eq!(single["delivered"], SUBS * SINGLE_EVENTS, "{single}");
    assert_eq!(single["lost"], 0);
    let fanout = &document["scenarios"]["fanout"]["report"];
    assert!(fanout["delivered"].as_u64() > Some(0), "{fanout}");
    assert_eq!(fanout["delivered"], fanout["expected"]);
    assert_eq!(fanout["lost"], 0);
    assert!(document["scenarios"]["fanout"]["redis_memory"]["used_memory"].as_u64() > Some(0));
    for scenario in ["connect", "single", "fanout"] {
        let chart = std::fs::read_to_string(out.join(format!("{scenario}.svg"))).unwrap();
        assert!(chart.starts_with("<svg"), "{scenario}.svg is a chart");
    }

    for node in connect["by_process_at_n"].as_array().unwrap() {
        let pid = node["pid"].as_u64().unwrap();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "node {pid} was left running"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}
