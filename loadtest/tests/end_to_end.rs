//! Runs the loadtest against a real ssecast started in this process on 127.0.0.1:0, and checks
//! that its reports count every delivery. Every wait has a timeout.

mod support;

use std::time::Duration;

use ssecast_loadtest::attack::{Kind, Sizes};
use ssecast_loadtest::fleet::ClientOptions;
use ssecast_loadtest::scenario::{fanout, hostile, publish, single, Run};
use ssecast_loadtest::target::{Publish, Target, Url, DEFAULT_BODY};
use ssecast_loadtest::ui::Ui;
use support::{start_server, within_limit};

fn run_against(addr: std::net::SocketAddr, per_process: usize, per_event: usize) -> Run {
    ssecast_loadtest::worker::use_program(env!("CARGO_BIN_EXE_ssecast-loadtest"));
    Run {
        target: Target {
            name: "ssecast".into(),
            subscribe: vec![Url::parse(&format!("http://{addr}/events?topic=load")).unwrap()],
            publish: Publish {
                url: Url::parse(&format!("http://{addr}/publish")).unwrap(),
                body_template: DEFAULT_BODY.into(),
                content_type: "application/json".into(),
            },
            topic: "load".into(),
            pids: vec![std::process::id()],
        },
        client: ClientOptions {
            threads: 2,
            rate: 2000.0,
            per_process,
            per_address: 20_000,
            per_event,
            reset: true,
            tokens: None,
        },
        ui: Ui { progress: false },
        svg: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_counts_every_delivery_of_200_subscribers_by_20_events() {
    let (addr, _stop) = start_server(&[]).await;
    let run = run_against(addr, 19_000, 0);
    let args = fanout::Args {
        subscribers: 200,
        events_per_second: 100.0,
        duration: Duration::from_millis(200),
        size: 100,
        publish_connections: 1,
        drain_limit: Duration::from_secs(60),
    };
    let report = within_limit(move || fanout::run(&run, &args))
        .await
        .unwrap();
    assert_eq!(report.subscribers, 200);
    assert_eq!(report.publish.published, 20);
    assert_eq!(report.deliveries.expected, 200 * 20);
    assert_eq!(report.deliveries.delivered, 200 * 20);
    assert_eq!(report.deliveries.losses(), [0; 3]);
    assert_eq!(report.latency.count, 200 * 20);
    assert!(report.drain.drained);
    assert!(report.latency.max_ms < 10_000.0, "{:?}", report.latency);
    // Latency over time: the seconds of sending, in order, every delivery in one of them.
    let over_time = &report.latency_over_time;
    assert!(
        !over_time.is_empty() && over_time.len() <= 3,
        "{over_time:?}"
    );
    let counted: u64 = over_time.iter().map(|s| s.count).sum();
    assert_eq!(counted, report.deliveries.delivered);
    assert!(over_time.windows(2).all(|w| w[0].second < w[1].second));
    for second in over_time {
        assert!(second.p50_ms <= second.p99_ms && second.p99_ms <= second.max_ms);
        assert!(second.max_ms <= report.latency.max_ms + 0.01, "{second:?}");
    }
    // The JSON report carries the series and the machine's memory over time.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["latency_over_time"].as_array().unwrap().len(),
        over_time.len()
    );
    let samples = json["samples"].as_array().unwrap();
    assert!(!samples.is_empty());
    for field in [
        "t",
        "connections",
        "rss",
        "slab",
        "mem_available",
        "mem_used",
    ] {
        assert!(samples[0][field].is_number(), "{field}: {}", samples[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_over_two_worker_processes_and_the_floor() {
    let (addr, _stop) = start_server(&[]).await;
    // 100 subscribers per process: this process and one worker.
    let run = run_against(addr, 100, 5);
    let args = single::Args {
        subscribers: 200,
        events: 5,
        size: 64,
        event_timeout: Duration::from_secs(10),
        gap: Duration::from_millis(10),
    };
    let (report, floor) = within_limit(move || {
        let report = single::run(&run, &args).unwrap();
        let (floor_run, process) = run.with_floor().unwrap();
        let floor = single::run(&floor_run, &args).unwrap();
        drop(process);
        (report, floor)
    })
    .await;
    for report in [&report, &floor] {
        assert_eq!(report.subscribers, 200, "{}", report.server);
        assert_eq!(report.deliveries.delivered, 200 * 5, "{}", report.server);
        assert_eq!(
            (
                report.deliveries.lost,
                report.deliveries.duplicated,
                report.timed_out
            ),
            (0, 0, 0)
        );
        assert_eq!(report.per_event.len(), 5);
        assert!(report.per_event.iter().all(|e| e.received == 200));
        assert!(report.first_ms <= report.median_ms && report.median_ms <= report.last_ms);
    }
    assert_eq!(floor.server, "floor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_of_every_kind_cost_the_good_subscribers_nothing() {
    let (addr, _stop) = start_server(&[]).await;
    let run = run_against(addr, 19_000, 0);
    let args = hostile::Args {
        subscribers: 50,
        events_per_second: 100.0,
        duration: Duration::from_secs(2),
        size: 64,
        attacks: Kind::ALL.to_vec(),
        sizes: Sizes {
            slowloris: 2,
            topic_flood: 1,
            flood_topics: 1000,
            body_bytes: 64 * 1024,
            stalled_bodies: 2,
            stalled_sent: 1024,
            unread_pipelines: 1,
            never_read: 2,
            resumes: 1,
            subscribe_leaves: 1,
            garbage: 1,
            connect_flood: 20,
            churn_rate: 20.0,
        },
        settle: Duration::ZERO,
    };
    let report = within_limit(move || hostile::run(&run, &args))
        .await
        .unwrap();
    for phase in [&report.quiet, &report.hostile] {
        assert_eq!(phase.subscribers, 50);
        assert_eq!(phase.publish.published, 100, "{:?}", phase.first_error);
        assert_eq!(phase.deliveries.delivered, 50 * 100);
        assert_eq!(phase.deliveries.losses(), [0; 3]);
        assert!(phase.drain.drained);
    }
    assert_eq!(report.attackers.len(), Kind::ALL.len());
    let got = |kind: Kind| {
        let outcome = report.attackers.iter().find(|o| o.kind == kind).unwrap();
        assert!(outcome.counts.connections > 0, "{outcome:?}");
        outcome.counts.clone()
    };
    let only = |kind: Kind, status: u16| {
        let counts = got(kind);
        assert!(
            counts.statuses.keys().all(|&s| s == status) && counts.statuses.contains_key(&status),
            "{kind:?}: {counts:?}"
        );
        counts
    };
    only(Kind::TopicFlood, 400);
    only(Kind::Garbage, 400);
    only(Kind::SubscribeLeave, 200);
    assert!(only(Kind::ResumeUnknown, 200).gaps > 0);
    assert_eq!(got(Kind::NeverRead).statuses.get(&200), Some(&2));
    for kind in [Kind::Slowloris, Kind::StalledBody, Kind::UnreadPipeline] {
        assert!(got(kind).bytes_sent > 0, "{kind:?}");
    }
    // Below the per-address limit: accepted, and waiting for a head.
    let flood = got(Kind::ConnectFlood);
    assert!(
        flood.no_answer >= 20 && flood.statuses.is_empty(),
        "{flood:?}"
    );
}

/// Publishes 2,000 events from 2 pipelined connections, `batch` to a request, to 2
/// subscribers, and checks that each got every event of each connection once and in order.
async fn publish_2000_events(batch: u64) {
    let (addr, _stop) = start_server(&["--max-connections-per-ip", "0"]).await;
    let run = run_against(addr, 19_000, 0);
    let args = publish::Args {
        subscribers: 2,
        connections: 2,
        events: 2000,
        in_flight: 4,
        batch,
        size: 64,
    };
    let report = within_limit(move || publish::run(&run, &args))
        .await
        .unwrap();
    let requests = 2000 / batch;
    assert_eq!(report.subscribers, 2);
    assert_eq!(
        (report.publish.published, report.publish.failed),
        (2000, 0),
        "{:?}",
        report.first_error
    );
    assert_eq!(
        (report.publish.requests, report.publish.requests_ok),
        (requests, requests)
    );
    assert_eq!(
        (report.deliveries.expected, report.deliveries.delivered),
        (2 * 2000, 2 * 2000)
    );
    assert_eq!(report.deliveries.losses(), [0; 3]);
    assert!(report.drain.drained);
    assert_eq!(report.publish.round_trip.count, requests);
    assert_eq!(report.latency.count, 2 * 2000);
    let round_trip = report.publish.round_trip;
    assert!(round_trip.p50_ms <= round_trip.p99_ms && round_trip.p99_ms < 10_000.0);
    assert!(report.latency.p99_ms < 10_000.0, "{:?}", report.latency);
    assert!(report.publish.seconds > 0.0 && report.publish.seconds < 60.0);
    let per_request = report.events_per_second / report.requests_per_second;
    assert!((per_request - batch as f64).abs() < 1e-6, "{per_request}");
    for cpu in [
        report.server_cpu_per_event_us,
        report.client_cpu_per_event_us,
    ] {
        assert!(cpu.is_finite() && cpu >= 0.0, "{cpu}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_from_two_connections_loses_and_reorders_nothing() {
    publish_2000_events(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_in_batches_of_ten_loses_and_reorders_nothing() {
    publish_2000_events(10).await;
}
