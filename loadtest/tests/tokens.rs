//! Subscribers send the tokens of a token file, from this process and from worker processes,
//! to a stand-in server that records each request head. Every wait has a timeout.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use ssecast_loadtest::fleet::{ClientOptions, Fleet};
use ssecast_loadtest::target::Url;
use ssecast_loadtest::token::{Place, TokenFile};
use ssecast_loadtest::ui::Ui;

const LIMIT: Duration = Duration::from_secs(30);

/// Reads one request head, answers it with an empty event stream and hands both back, so the
/// connection stays open as long as the test holds it.
fn serve(mut stream: TcpStream, heads: mpsc::Sender<(String, TcpStream)>) {
    let _ = stream.set_read_timeout(Some(LIMIT));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
    if stream.write_all(answer).is_ok() {
        let _ = heads.send((String::from_utf8_lossy(&head).into_owned(), stream));
    }
}

#[test]
fn every_subscriber_sends_line_i_mod_n_from_every_process() {
    ssecast_loadtest::worker::use_program(env!("CARGO_BIN_EXE_ssecast-loadtest"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (send, heads) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let send = send.clone();
            std::thread::spawn(move || serve(stream, send));
        }
    });
    let path = std::env::temp_dir().join(format!("loadtest-e2e-tokens-{}.txt", std::process::id()));
    std::fs::write(&path, "t0\nt1\nt2\n").unwrap();
    let options = ClientOptions {
        threads: 2,
        rate: 1000.0,
        // 10 subscribers per process: this process and one worker.
        per_process: 10,
        per_address: 20_000,
        per_event: 0,
        reset: true,
        tokens: Some(TokenFile {
            path: path.clone(),
            place: Place::Query,
        }),
    };
    let url = Url::parse(&format!("http://{addr}/events?topic=load")).unwrap();
    let fleet = Fleet::start(&[url], 20, &options).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(fleet.processes(), 2);
    let ui = Ui { progress: false };
    let status = fleet
        .connect_and_wait(20, LIMIT, &ui, "connecting")
        .unwrap();
    assert_eq!(status.headed, 20, "{status:?}");
    let mut sent = BTreeMap::new();
    let mut held = Vec::new();
    for _ in 0..20 {
        let (head, stream) = heads.recv_timeout(LIMIT).expect("a head in time");
        let line = head.lines().next().unwrap_or_default().to_owned();
        *sent.entry(line).or_insert(0) += 1;
        held.push(stream);
    }
    let line = |t: &str| format!("GET /events?topic=load&authorization={t} HTTP/1.1");
    // Subscribers 0..20: line i mod 3.
    let expected = BTreeMap::from([(line("t0"), 7), (line("t1"), 7), (line("t2"), 6)]);
    assert_eq!(sent, expected);
    fleet.close().unwrap();
}
