//! The engines the benches measure tsstore beside, started on loopback in
//! a directory of their own and killed when dropped: `influxd` 1.6
//! (Debian's `influxdb`, database `bench`) and VictoriaMetrics (Debian's
//! `victoria-metrics`, every sample kept). `None` when one is missing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{connect_http, http};

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A child process that is killed when dropped.
pub struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn wait_for_ping(port: u16, path: &str, what: &str) -> bool {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            drop(s);
            let mut c = connect_http(port);
            let _ = http(&mut c, "GET", path, "", "");
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{what} did not start");
    false
}

pub fn influxd(dir: &Path) -> Option<(Process, u16)> {
    let (port, rpc) = (free_port(), free_port());
    let d = dir.display();
    let conf = format!(
        "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\n  dir = \"{d}/meta\"\n[data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n[http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n[monitor]\n  store-enabled = false\n[continuous_queries]\n  enabled = false\n"
    );
    std::fs::create_dir_all(dir).ok()?;
    std::fs::write(dir.join("influxdb.conf"), conf).ok()?;
    let child = Command::new("influxd")
        .arg("-config")
        .arg(dir.join("influxdb.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let p = Process(child);
    if !wait_for_ping(port, "/ping", "influxd") {
        return None;
    }
    let mut c = connect_http(port);
    http(&mut c, "POST", "/query?q=CREATE+DATABASE+bench", "", "");
    Some((p, port))
}

pub fn victoria_metrics(dir: &Path) -> Option<(Process, u16)> {
    let port = free_port();
    let child = Command::new("victoria-metrics")
        .arg(format!("-storageDataPath={}", dir.display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg("-retentionPeriod=100y")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let p = Process(child);
    wait_for_ping(port, "/health", "victoria-metrics").then_some((p, port))
}
