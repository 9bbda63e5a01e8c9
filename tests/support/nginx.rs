//! A real nginx for a test (Debian's package), started under a temporary prefix with the
//! README's own `nginx.conf` for several nodes, its upstream pointed at the test's nodes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::apt::{self, Need};

/// How long a started nginx may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// An nginx process the test owns; killed when dropped.
pub struct Nginx {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its prefix (config, logs, temporary files).
    pub dir: PathBuf,
    _process: Child,
}

impl Nginx {
    /// Starts nginx with the README's configuration in front of `nodes`.
    pub async fn start_in_front_of(nodes: &[SocketAddr]) -> Nginx {
        apt::ensure(
            "the nginx tests",
            &[Need {
                what: "nginx",
                packages: &["nginx"],
                present: || apt::runs("nginx") || std::path::Path::new("/usr/sbin/nginx").exists(),
            }],
        );
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap();
        let dir = std::env::temp_dir().join(format!("ssecast-nginx-{}", addr.port()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = readme_config(addr, nodes);
        let paths: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
            .iter()
            .map(|kind| format!("{kind}_temp_path {}/{kind};\n", dir.display()))
            .collect();
        let main = format!(
            // One process, no master: killing it on drop leaves no orphaned worker behind.
            "daemon off;\nmaster_process off;\nerror_log {dir}/error.log;\npid {dir}/nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\naccess_log off;\n{paths}{config}\n}}\n",
            dir = dir.display()
        );
        let file = dir.join("nginx.conf");
        std::fs::write(&file, main).unwrap();
        let process = Command::new("nginx")
            .arg("-c")
            .arg(&file)
            .arg("-p")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx starts");
        let deadline = Instant::now() + START_TIMEOUT;
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Nginx {
            addr,
            dir,
            _process: process,
        }
    }
}

/// The README's `nginx.conf` for several nodes, listening on `addr`, its upstream `nodes`.
fn readme_config(addr: SocketAddr, nodes: &[SocketAddr]) -> String {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("```nginx\nupstream ssecast {")
        .expect("README.md has the nginx.conf for several nodes")
        + "```nginx\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let servers: String = nodes
        .iter()
        .map(|node| format!("    server {node};\n"))
        .collect();
    readme[start..end]
        .lines()
        .filter(|line| !line.trim_start().starts_with("server node"))
        .map(|line| match line.trim() {
            "upstream ssecast {" => format!("{line}\n{servers}"),
            "listen 80;" => format!("    listen {addr};\n"),
            _ => format!("{line}\n"),
        })
        .collect()
}
