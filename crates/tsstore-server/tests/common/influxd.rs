//! A real InfluxDB 1.x (`influxd`, Debian's `influxdb` package) on free
//! loopback ports, in a directory of its own, with one database: the
//! reference the line-protocol tests compare tsstore's reading of each
//! line with. Missing `influxd` skips the test, except in CI (`CI=true`),
//! where it fails.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(60);
const START_ATTEMPTS: u32 = 3;

/// Why a reference server did not come up: whether it exited, and the
/// end of what it logged.
pub struct StartFailure {
    pub exited: bool,
    pub log: String,
}

/// Runs `start` until the server comes up, again (the closure picks fresh
/// ports) when it exited at start, `START_ATTEMPTS` times in all; panics
/// with the server's log when it does not come up.
pub fn start_with_retries(name: &str, mut start: impl FnMut() -> Result<(), StartFailure>) {
    for attempt in 1..=START_ATTEMPTS {
        match start() {
            Ok(()) => return,
            Err(why) if attempt < START_ATTEMPTS && why.exited => {
                eprintln!("{name} exited at start (attempt {attempt}), trying other ports");
            }
            Err(why) => panic!("{name} did not start: {}", why.log),
        }
    }
}

/// Spawns `cmd` with its output in `log_path` and waits until `GET probe`
/// on `port` answers `status`, it exits, or `START_TIMEOUT` passes; on
/// failure it is killed and the failure says which, with its log's end.
pub fn spawn_until_up(
    mut cmd: Command,
    log_path: &Path,
    port: u16,
    probe: &str,
    status: u16,
) -> Result<Child, StartFailure> {
    let log = std::fs::File::create(log_path).unwrap();
    let mut child = cmd
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start a reference server");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let up = TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http(port, "GET", probe, "", b"").0 == status;
        if up {
            return Ok(child);
        }
        let exited = child.try_wait().ok().flatten().is_some();
        if exited || Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let logged = std::fs::read_to_string(log_path).unwrap_or_default();
            let lines: Vec<&str> = logged.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            let how = if exited {
                "it exited"
            } else {
                "no answer in time"
            };
            return Err(StartFailure {
                exited,
                log: format!("{how}; the end of {}:\n{tail}", log_path.display()),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct Influxd {
    pub port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Drop for Influxd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `influxd` can run here; in CI its absence is a failure.
pub fn available() -> bool {
    let found = Command::new("influxd")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "influxd is missing: the test command installs it (apt-get install influxdb)"
        );
        eprintln!("skipped: influxd (apt-get install influxdb) is not installed");
    }
    found
}

/// One HTTP/1.1 request (`Connection: close`); status and body.
pub fn http(port: u16, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

/// A chunked body, joined.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].strip_prefix("\r\n").unwrap_or(&after[n..]);
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Influxd {
    /// Starts one in `dir` with database `db`. Its two ports are picked
    /// free but may be taken by a parallel test before influxd binds them:
    /// an influxd that exits before answering is started again on fresh
    /// ports, a bounded number of times.
    pub fn start(dir: &Path, db: &str) -> Influxd {
        std::fs::create_dir_all(dir).unwrap();
        let mut influxd = Influxd {
            port: 0,
            dir: dir.to_path_buf(),
            child: None,
        };
        start_with_retries("influxd", || {
            influxd.configure();
            influxd.spawn_and_wait()
        });
        let q = format!("q=CREATE+DATABASE+{db}");
        let (status, body) = influxd.query(&q);
        assert_eq!(status, 200, "{body}");
        influxd
    }

    /// Writes its configuration with two fresh free ports.
    fn configure(&mut self) {
        let (port, rpc) = (free_port(), free_port());
        let d = self.dir.display();
        let conf = format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [continuous_queries]\n  enabled = false\n"
        );
        std::fs::write(self.dir.join("influxdb.conf"), conf).unwrap();
        self.port = port;
    }

    /// Starts it again with the same configuration and ports; waits for
    /// `/ping`.
    pub fn start_again(&mut self) {
        if let Err(why) = self.spawn_and_wait() {
            panic!("influxd did not start again: {}", why.log);
        }
    }

    /// Spawns influxd and waits for `/ping`.
    fn spawn_and_wait(&mut self) -> Result<(), StartFailure> {
        let mut cmd = Command::new("influxd");
        cmd.arg("-config").arg(self.dir.join("influxdb.conf"));
        let child = spawn_until_up(cmd, &self.dir.join("influxd.log"), self.port, "/ping", 204)?;
        self.child = Some(child);
        Ok(())
    }

    /// Kills it (its WAL is synced on every write: nothing acknowledged
    /// is lost).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `POST /query` with a form body.
    pub fn query(&self, form: &str) -> (u16, String) {
        http(
            self.port,
            "POST",
            "/query?epoch=ns",
            "Content-Type: application/x-www-form-urlencoded\r\n",
            form.as_bytes(),
        )
    }

    /// `POST /write?db=DB` of `body`: status and body.
    pub fn write(&self, db: &str, body: &[u8]) -> (u16, String) {
        http(self.port, "POST", &format!("/write?db={db}"), "", body)
    }
}
