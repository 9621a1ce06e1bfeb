//! A real Mosquitto broker on a free loopback port, for the MQTT tests:
//! started from a generated configuration, stopped (and restartable on
//! the same port) by the test. Missing `mosquitto` skips the test, except
//! in CI (`CI=true`), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How the broker is set up.
#[derive(Default, Clone)]
pub struct BrokerOptions {
    /// TLS listener: (CA file, certificate file, key file).
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// Only this user may connect.
    pub user: Option<(String, String)>,
}

pub struct Mosquitto {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// The broker's program: on PATH, or where Debian puts it.
fn program() -> &'static str {
    let on_path = Command::new("mosquitto")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if on_path {
        "mosquitto"
    } else {
        "/usr/sbin/mosquitto"
    }
}

/// Whether the tests can run a broker; in CI its absence is a failure.
pub fn available() -> bool {
    let found = Path::new(program()).exists() || program() == "mosquitto";
    if !found && std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "mosquitto is not installed: the test command installs it (apt-get install mosquitto mosquitto-clients)"
        );
    }
    if !found {
        eprintln!("mosquitto not installed: MQTT test skipped");
    }
    found
}

impl Mosquitto {
    /// Starts a broker in `dir` (its configuration, persistence and log).
    pub fn start(dir: &Path, options: BrokerOptions) -> Mosquitto {
        std::fs::create_dir_all(dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\npersistence true\npersistence_location {}/\nautosave_interval 1\nmax_queued_messages 100000\nlog_dest file {}/mosquitto.log\n",
            dir.display(),
            dir.display()
        );
        // Started as root, Mosquitto becomes user `mosquitto`, which
        // could not write its files here.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            conf.push_str("user root\n");
        }
        match &options.user {
            Some((user, pass)) => {
                let file = dir.join("passwd");
                let status = Command::new("mosquitto_passwd")
                    .args(["-b", "-c"])
                    .arg(&file)
                    .args([user, pass])
                    .status()
                    .expect("mosquitto_passwd (package mosquitto)");
                assert!(status.success());
                conf.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    file.display()
                ));
            }
            None => conf.push_str("allow_anonymous true\n"),
        }
        if let Some((ca, cert, key)) = &options.tls {
            conf.push_str(&format!(
                "cafile {}\ncertfile {}\nkeyfile {}\n",
                ca.display(),
                cert.display(),
                key.display()
            ));
        }
        std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
        let mut broker = Mosquitto {
            port,
            dir: dir.to_path_buf(),
            child: None,
        };
        broker.restart();
        broker
    }

    /// Starts the broker (again) on its port, and waits until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the broker runs already");
        let child = Command::new(program())
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker (SIGTERM: it saves its sessions and queues, as a
    /// broker going down for a restart does) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A subscriber on the broker at `port` (persistent session, QoS 1) that
/// passes on every payload it receives on `topic`; it reconnects when
/// the broker comes back. Returns once the subscription is acknowledged.
pub async fn subscriber(
    port: u16,
    client_id: &str,
    topic: &str,
) -> mpsc::UnboundedReceiver<Vec<u8>> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_clean_session(false)
        .set_keep_alive(Duration::from_secs(5))
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(o, 100);
    client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut ready = Some(ready_tx);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p.payload.to_vec()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                // The broker is away: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .expect("subscribed in time")
        .unwrap();
    rx
}
