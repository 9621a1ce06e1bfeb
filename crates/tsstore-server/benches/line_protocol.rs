//! Line protocol ingest over HTTP, beside the engines it stands in for:
//! the release server binary, a real `influxd` 1.6 (Debian's `influxdb`)
//! and a real VictoriaMetrics (Debian's `victoria-metrics`), each on
//! loopback and fed the same 5 000-line bodies, plain and gzip, by
//! `CLIENTS` kept-alive connections from this process (all on the same 2
//! cores). tsstore gets one store per connection, since a store's
//! timestamps only increase; each line is one record there.
//!
//! `cargo bench -p tsstore-server --bench line_protocol`;
//! `STREAMING_SCALE=0.1` for a quick look, `LP_ROUNDS` rounds (default 3,
//! the median printed). Without `influxd` or `victoria-metrics` only
//! tsstore is measured.

mod common;

use std::io::Write;
use std::time::Instant;

use common::engines::{influxd, victoria_metrics};
use common::{connect_http, create_store, start};

const LINES_PER_BODY: usize = 5000;
const CLIENTS: usize = 4;

/// A receiving engine: where and how to write.
struct Target {
    name: &'static str,
    port: u16,
    /// The write path for client `c`, and its headers.
    path: Box<dyn Fn(usize) -> (String, String) + Sync>,
}

/// `bodies` bodies of `LINES_PER_BODY` lines for client `client`, its
/// timestamps going on from `from` (ns).
fn bodies(client: usize, bodies: usize, from: i64) -> Vec<String> {
    (0..bodies)
        .map(|b| {
            let mut out = String::with_capacity(LINES_PER_BODY * 96);
            for i in 0..LINES_PER_BODY {
                let n = b * LINES_PER_BODY + i;
                let ts = from + n as i64 * 1_000_000;
                out.push_str(&format!(
                    "sensor,site=roof,id=s{client} temp={}.5,hum={}i,pressure=1013.25,ok=true {ts}\n",
                    20 + n % 10,
                    40 + n % 7
                ));
            }
            out
        })
        .collect()
}

fn gzipped(body: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(body.as_bytes()).expect("gzip");
    e.finish().expect("gzip")
}

/// Sends each client's bodies on its own connection; lines/s.
fn send(target: &Target, per_client: &[Vec<Vec<u8>>], gzip: bool) -> f64 {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for (c, bodies) in per_client.iter().enumerate() {
            let (path, mut headers) = (target.path)(c);
            if gzip {
                headers.push_str("Content-Encoding: gzip\r\n");
            }
            scope.spawn(move || {
                let mut conn = connect_http(target.port);
                for body in bodies {
                    // The helper takes text; gzip bytes go through as Latin-1.
                    let req = format!(
                        "POST {path} HTTP/1.1\r\nHost: b\r\n{headers}Content-Length: {}\r\n\r\n",
                        body.len()
                    );
                    conn.1.write_all(req.as_bytes()).expect("send");
                    conn.1.write_all(body).expect("send");
                    let answer = read_answer(&mut conn.0);
                    assert!(
                        answer.starts_with("HTTP/1.1 204"),
                        "{}: {answer}",
                        target.name
                    );
                }
            });
        }
    });
    let lines = per_client.iter().map(Vec::len).sum::<usize>() * LINES_PER_BODY;
    lines as f64 / start.elapsed().as_secs_f64()
}

/// The status line and body of one answer.
fn read_answer(r: &mut std::io::BufReader<std::net::TcpStream>) -> String {
    use std::io::{BufRead, Read};
    let mut status = String::new();
    r.read_line(&mut status).expect("status");
    let mut len = 0;
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).expect("head");
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().expect("length");
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).expect("body");
    format!("{}{}", status.trim_end(), String::from_utf8_lossy(&body))
}

fn main() {
    if !common::bench_requested() {
        return;
    }
    let rounds = common::rounds("LP_ROUNDS", 3);
    let per_client_bodies = (common::scaled(1_000_000) / LINES_PER_BODY / CLIENTS).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let s = start();
    let keys: Vec<String> = (0..CLIENTS)
        .map(|c| create_store(s.port, &format!("lp{c}")))
        .collect();
    let mut targets = vec![Target {
        name: "tsstore",
        port: s.port,
        path: Box::new(move |c| {
            (
                format!("/write?db=lp{c}"),
                format!("Authorization: Token {}\r\n", keys[c]),
            )
        }),
    }];
    let influx = influxd(&dir.path().join("influxd"));
    if let Some((_, port)) = &influx {
        targets.push(Target {
            name: "influxd 1.6",
            port: *port,
            path: Box::new(|_| ("/write?db=bench".into(), String::new())),
        });
    }
    let vm = victoria_metrics(&dir.path().join("vm"));
    if let Some((_, port)) = &vm {
        targets.push(Target {
            name: "victoria-metrics",
            port: *port,
            path: Box::new(|_| ("/write".into(), String::new())),
        });
    }
    let mut figures = vec![Vec::new(); targets.len() * 2];
    let span = (per_client_bodies * LINES_PER_BODY) as i64 * 1_000_000;
    let mut from = 1_700_000_000_000_000_000i64;
    for _ in 0..rounds {
        for gzip in [false, true] {
            let per_client: Vec<Vec<Vec<u8>>> = (0..CLIENTS)
                .map(|c| {
                    bodies(c, per_client_bodies, from)
                        .into_iter()
                        .map(|b| if gzip { gzipped(&b) } else { b.into_bytes() })
                        .collect()
                })
                .collect();
            from += span;
            for (t, target) in targets.iter().enumerate() {
                figures[t * 2 + usize::from(gzip)].push(send(target, &per_client, gzip));
            }
        }
    }
    let lines = per_client_bodies * CLIENTS * LINES_PER_BODY;
    println!(
        "line protocol ingest, {lines} lines per run in bodies of {LINES_PER_BODY}, {CLIENTS} connections, lines/s (median of {rounds})"
    );
    let base = [
        common::median(figures[0].clone()),
        common::median(figures[1].clone()),
    ];
    for (t, target) in targets.iter().enumerate() {
        for (g, mode) in ["plain", "gzip"].iter().enumerate() {
            let m = common::median(figures[t * 2 + g].clone());
            println!(
                "  {:<18} {mode:<6} {m:>12.0}  tsstore / this: {:.2}x",
                target.name,
                base[g] / m
            );
        }
    }
}
