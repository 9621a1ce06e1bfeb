//! A real VictoriaMetrics (Debian's `victoria-metrics`) on a free
//! loopback port, in a directory of its own: the central engine the
//! influx connection tests ship to. It keeps every sample for 100 years
//! (its default month would drop old test data silently) and one sample
//! per series and millisecond (`-dedup.minScrapeInterval=1ms`), so a
//! batch shipped twice counts once. Stopped with SIGTERM, which flushes:
//! a SIGKILL would lose what it acknowledged. Missing `victoria-metrics`
//! skips the test, except in CI (`CI=true`), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::influxd::{StartFailure, http, spawn_until_up, start_with_retries};

pub struct Victoria {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Victoria {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether `victoria-metrics` can run here; in CI its absence is a
/// failure.
pub fn available() -> bool {
    let found = Command::new("victoria-metrics")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "victoria-metrics is missing: the test command installs it (apt-get install victoria-metrics)"
        );
        eprintln!("skipped: victoria-metrics (apt-get install victoria-metrics) is not installed");
    }
    found
}

impl Victoria {
    /// Starts one on a free port; one that exits at once (a parallel test
    /// took the port first) is started again on another, a bounded number
    /// of times.
    pub fn start(dir: &Path) -> Victoria {
        let mut v = Victoria {
            port: 0,
            dir: dir.to_path_buf(),
            child: None,
        };
        start_with_retries("victoria-metrics", || {
            v.port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            v.spawn_and_wait()
        });
        v
    }

    /// Starts it again on its port and directory.
    pub fn start_again(&mut self) {
        if let Err(why) = self.spawn_and_wait() {
            panic!("victoria-metrics did not start again: {}", why.log);
        }
    }

    fn spawn_and_wait(&mut self) -> Result<(), StartFailure> {
        std::fs::create_dir_all(&self.dir).unwrap();
        let mut cmd = Command::new("victoria-metrics");
        cmd.arg(format!(
            "-storageDataPath={}",
            self.dir.join("data").display()
        ))
        .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
        .arg("-retentionPeriod=100y")
        .arg("-dedup.minScrapeInterval=1ms");
        let child = spawn_until_up(cmd, &self.dir.join("vm.log"), self.port, "/health", 200)?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGTERM, and waits for it to end (it flushes what it holds).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// `samples`, once there are at least `n`, or what there is after
    /// `WAIT`. VictoriaMetrics answers a write before the samples can be
    /// found, and after a restart `force_flush` did not always make them
    /// so at once (CI once saw 10 000 of 30 000 just after the last write).
    pub fn samples_when(&self, metric: &str, n: usize) -> Vec<(i64, f64)> {
        let deadline = std::time::Instant::now() + super::peer::WAIT;
        loop {
            let samples = self.samples(metric);
            if samples.len() >= n || std::time::Instant::now() >= deadline {
                return samples;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Every sample of `metric` it holds: (timestamp ms, value), sorted.
    pub fn samples(&self, metric: &str) -> Vec<(i64, f64)> {
        let _ = http(self.port, "GET", "/internal/force_flush", "", b"");
        let path = format!("/api/v1/export?match[]={metric}");
        let (status, body) = http(self.port, "GET", &path, "", b"");
        assert_eq!(status, 200, "{body}");
        let mut out = Vec::new();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let values = v["values"].as_array().unwrap();
            let times = v["timestamps"].as_array().unwrap();
            for (t, x) in times.iter().zip(values) {
                out.push((t.as_i64().unwrap(), x.as_f64().unwrap()));
            }
        }
        out.sort_by(|a, b| a.partial_cmp(b).unwrap());
        out
    }
}
