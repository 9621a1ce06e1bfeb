//! MQTT end to end: the release server binary and a local Mosquitto on
//! loopback, with a rumqttc subscriber or publisher in this process.
//!
//! `cargo bench -p tsstore-server --bench mqtt` prints messages/s for the
//! sink (200 000 stored records published with QoS 1 from the oldest,
//! until a subscriber has them all) with the default in-flight window
//! (100) and with a window of 1 (one publish at a time, waiting for each
//! PUBACK: the reference's behaviour), and for ingest (a publisher sends
//! 200 000 QoS 1 messages to a subscribe connection, until the store
//! holds them all). `STREAMING_SCALE=0.1` runs a tenth.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{RECORD, Server, connect_http, create_store, fill, http, object_count, rate, start};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn broker() -> Broker {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let conf = dir.path().join("mosquitto.conf");
    // SAFETY: geteuid has no preconditions.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root\n"
    } else {
        ""
    };
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n{user}"
        ),
    )
    .expect("config");
    let program = if std::path::Path::new("/usr/sbin/mosquitto").exists() {
        "/usr/sbin/mosquitto"
    } else {
        "mosquitto"
    };
    let child = Command::new(program)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto (apt-get install mosquitto)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Broker {
        child,
        port,
        _dir: dir,
    }
}

fn create_mqtt(s: &Server, key: &str, store: &str, body: &str) {
    let mut c = connect_http(s.port);
    let path = format!("/api/stores/{store}/mqtt/connections");
    let out = http(
        &mut c,
        "POST",
        &path,
        &format!("X-API-Key: {key}\r\n"),
        body,
    );
    assert!(out.contains("\"id\""), "{out}");
}

/// A QoS 1 subscriber on `topic`; its channel yields one `()` a message.
async fn subscriber(port: u16, topic: &str) -> tokio::sync::mpsc::UnboundedReceiver<()> {
    let mut o = MqttOptions::new(format!("bench-sub-{topic}"), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(o, 100);
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready, subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut ready = Some(ready);
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Event::Incoming(Packet::Publish(_)) if tx.send(()).is_err() => return,
                _ => {}
            }
        }
    });
    subscribed.await.expect("subscribed");
    rx
}

/// The sink: `n` stored records published from the oldest.
async fn sink(s: &Server, b: &Broker, n: usize, store: &'static str, in_flight: u16) -> f64 {
    let key = create_store(s.port, store);
    fill(s, store, &key, n).await.expect("fill");
    let mut rx = subscriber(b.port, store).await;
    let start = Instant::now();
    let body = format!(
        r#"{{"broker_url":"tcp://127.0.0.1:{}","topic":"{store}","from":0,"in_flight":{in_flight}}}"#,
        b.port
    );
    create_mqtt(s, &key, store, &body);
    for _ in 0..n {
        rx.recv().await.expect("a message");
    }
    rate(n, start.elapsed())
}

/// Ingest: `n` QoS 1 messages published as fast as the broker takes
/// them, until the store holds them all.
async fn ingest(s: &Server, b: &Broker, n: usize) -> f64 {
    let key = create_store(s.port, "ingest");
    let body = format!(
        r#"{{"mode":"subscribe","broker_url":"tcp://127.0.0.1:{}","topic":"in/+"}}"#,
        b.port
    );
    create_mqtt(s, &key, "ingest", &body);
    // The subscription is in place once the session is (poll the state).
    loop {
        let mut c = connect_http(s.port);
        let out = http(
            &mut c,
            "GET",
            "/api/stores/ingest/mqtt/connections",
            &format!("X-API-Key: {key}\r\n"),
            "",
        );
        if out.contains("\"connected\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A subscription acknowledged by the broker takes a moment after the
    // session: publish only once a probe message has been stored.
    let mut o = MqttOptions::new("bench-pub", "127.0.0.1", b.port);
    o.set_keep_alive(Duration::from_secs(30)).set_inflight(1000);
    let (client, mut events) = AsyncClient::new(o, 1000);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    client
        .publish("in/probe", QoS::AtLeastOnce, false, RECORD)
        .await
        .expect("publish");
    let port = s.port;
    let count = |key: String| async move {
        tokio::task::spawn_blocking(move || object_count(port, &key, "ingest"))
            .await
            .expect("stats")
    };
    while count(key.clone()).await < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    for i in 0..n {
        let topic = if i % 2 == 0 { "in/a" } else { "in/b" };
        client
            .publish(topic, QoS::AtLeastOnce, false, RECORD)
            .await
            .expect("publish");
    }
    while count(key.clone()).await < n as u64 + 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rate(n, start.elapsed())
}

fn main() {
    if !common::bench_requested() {
        return;
    }
    let n = common::scaled;
    let s = start();
    let b = broker();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "MQTT against a local Mosquitto, messages/s (QoS 1; server, broker and client on this machine)"
    );
    let window = rt.block_on(sink(&s, &b, n(200_000), "sink", 100));
    println!("  sink, in-flight window 100 (default)  {window:>10.0}  1.00x");
    let one = rt.block_on(sink(&s, &b, n(20_000), "one", 1));
    println!(
        "  sink, in-flight window 1               {one:>10.0}  {:.2}x",
        one / window
    );
    let ingested = rt.block_on(ingest(&s, &b, n(200_000)));
    println!(
        "  ingest (subscribe, stored)             {ingested:>10.0}  {:.2}x",
        ingested / window
    );
}
