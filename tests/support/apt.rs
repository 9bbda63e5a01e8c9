//! The Debian packages tests need (a browser, `node`, `curl`, Python's venv), installed by the
//! tests themselves when missing, so that `cargo test --workspace` passes on a fresh machine.
//!
//! Installing needs root and `apt-get`; without them a missing need is a failure that says what
//! to install, never a skipped test. Test processes may race: `flock` on a file under `target/`
//! lets one install at a time, and under it the packages already installed (by a process that
//! held the lock first) are left out, so `apt-get update` runs once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long waiting for the lock may take, and then updating and installing.
const APT_TIMEOUT: Duration = Duration::from_secs(900);

/// Run under the lock with the packages as arguments: installs those not installed yet.
const INSTALL_SCRIPT: &str = r#"
set -e
missing=""
for package in "$@"; do
    dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q ' installed$' \
        || missing="$missing $package"
done
[ -z "$missing" ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq -o DPkg::Lock::Timeout=300 $missing
"#;

/// Something the tests run, and the Debian packages that provide it.
pub struct Need {
    /// What it is, for messages: `node`, `curl`.
    pub what: &'static str,
    /// The packages `apt-get install` needs to provide it.
    pub packages: &'static [&'static str],
    /// Whether it is there.
    pub present: fn() -> bool,
}

/// Whether `program --version` runs and succeeds.
pub fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Makes sure every one of `needs` is there, installing what is missing with `apt-get` when this
/// process may; panics with what to install otherwise. `who` names the tests, for messages.
pub fn ensure(who: &str, needs: &[Need]) {
    let missing: Vec<&Need> = needs.iter().filter(|need| !(need.present)()).collect();
    if missing.is_empty() {
        return;
    }
    let what: Vec<&str> = missing.iter().map(|need| need.what).collect();
    let mut packages: Vec<&str> = Vec::new();
    for package in missing.iter().flat_map(|need| need.packages) {
        if !packages.contains(package) {
            packages.push(package);
        }
    }
    let command = format!("apt-get install {}", packages.join(" "));
    if let Err(why) = can_install() {
        panic!(
            "{who} need {}: run `{command}` as root (the tests install it themselves only as \
             root with apt-get; {why})",
            what.join(", ")
        );
    }
    install(&packages);
    let still: Vec<&str> = needs
        .iter()
        .filter(|need| !(need.present)())
        .map(|need| need.what)
        .collect();
    assert!(
        still.is_empty(),
        "{who} need {}: `{command}` ran, and they are still missing",
        still.join(", ")
    );
}

/// Whether this process may install packages: root, with `apt-get`.
fn can_install() -> Result<(), &'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // `Uid:` lists the real, effective, saved and filesystem ids.
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if effective != Some("0") {
        return Err("not root");
    }
    if !runs("apt-get") {
        return Err("no apt-get");
    }
    Ok(())
}

/// Installs `packages` under the lock, leaving out those installed meanwhile.
fn install(packages: &[&str]) {
    let lock = Path::new(env!("CARGO_TARGET_TMPDIR")).join("apt-get.lock");
    let seconds = APT_TIMEOUT.as_secs().to_string();
    let mut command;
    if runs("flock") {
        command = Command::new("flock");
        command.arg("-w").arg(&seconds).arg(&lock);
    } else {
        // Without util-linux, apt's own lock keeps racing installs apart, one failing.
        command = Command::new("env");
    }
    // `timeout` ends the whole group of `sh`, `apt-get` and `dpkg` when it passes.
    command
        .args(["timeout", &seconds, "sh", "-c", INSTALL_SCRIPT, "sh"])
        .args(packages);
    eprintln!("installing {} with apt-get", packages.join(" "));
    super::run_to_completion(&mut command, APT_TIMEOUT * 2 + Duration::from_secs(60));
}
