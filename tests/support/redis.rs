//! A real `redis-server` for a test: started on a free loopback port with no persistence,
//! stopped and started again on the same port at will, killed when dropped.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::apt::{self, Need};

/// How long a started Redis may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` process the test owns.
pub struct Redis {
    /// Where it listens.
    pub addr: SocketAddr,
    process: Option<Child>,
}

impl Redis {
    /// Starts one on a free port, installing `redis-server` first if it is missing.
    pub fn start() -> Redis {
        apt::ensure(
            "the Redis tests",
            &[Need {
                what: "redis-server",
                packages: &["redis-server"],
                present: || apt::runs("redis-server"),
            }],
        );
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap();
        let mut redis = Redis {
            addr,
            process: None,
        };
        redis.start_again();
        redis
    }

    /// The URL nodes are given.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Kills it: everything it held is gone, as after a crash without persistence.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn start_again(&mut self) {
        self.stop();
        let process = Command::new("redis-server")
            .args([
                "--port",
                &self.addr.port().to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.process = Some(process);
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(self.addr).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
