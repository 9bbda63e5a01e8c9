//! A real `redis-server` for a test: started on a free loopback port, without persistence or
//! with an append-only file, stopped and started again on the same port at will, killed when
//! dropped.

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
    /// With persistence: the directory of its append-only file.
    dir: Option<std::path::PathBuf>,
    process: Option<Child>,
}

impl Redis {
    /// Starts one on a free port, without persistence, installing `redis-server` first if it
    /// is missing.
    pub fn start() -> Redis {
        Self::start_with(None)
    }

    /// Starts one that keeps its data in an append-only file (every write synced), so that
    /// [`Redis::stop`] and [`Redis::start_again`] keep it.
    pub fn start_persistent() -> Redis {
        let dir = std::env::temp_dir().join(format!("ssecast-redis-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self::start_with(Some(dir))
    }

    fn start_with(dir: Option<std::path::PathBuf>) -> Redis {
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
            dir,
            process: None,
        };
        redis.start_again();
        redis
    }

    /// The URL nodes are given.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Kills it: without persistence everything it held is gone.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts it again on the same port: empty, or with its data when persistent.
    pub fn start_again(&mut self) {
        self.stop();
        let persistence: Vec<String> = match &self.dir {
            Some(dir) => ["--appendonly", "yes", "--appendfsync", "always", "--dir"]
                .iter()
                .map(|arg| arg.to_string())
                .chain([dir.display().to_string()])
                .collect(),
            None => vec!["--appendonly".into(), "no".into()],
        };
        let process = Command::new("redis-server")
            .args([
                "--port",
                &self.addr.port().to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--save", "", "--protected-mode", "no"])
            .args(persistence)
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
