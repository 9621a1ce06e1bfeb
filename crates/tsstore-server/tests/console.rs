//! The web console end to end, in real headless Chromium driven by
//! playwright-core (`tests/console/e2e.mjs`, npm lock file committed):
//! sign in, live table and chart, filter, hostile records as text, admin
//! create, wrong key, CSP; screenshots to `target/console-screenshots/`.
//! Without node, its modules or Chromium the test is skipped, except in
//! CI (`CI=true`), where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ADMIN, Server};
use serde_json::json;

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn ready(dir: &Path) -> Result<PathBuf, String> {
    let browser = chromium().ok_or("chromium is not installed (apt-get install chromium)")?;
    if !dir.join("node_modules/playwright-core").exists() {
        return Err(format!(
            "playwright-core is not installed (npm ci --prefix {})",
            dir.display()
        ));
    }
    Command::new("node")
        .arg("--version")
        .output()
        .map_err(|_| "node is not installed".to_string())?;
    Ok(browser)
}

#[test]
fn the_console_works_in_a_real_browser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    let browser = match ready(&dir) {
        Ok(b) => b,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("{why}"),
        Err(why) => {
            eprintln!("console test skipped: {why}");
            return;
        }
    };
    let data = tempfile::tempdir().unwrap();
    let s = Server::start(data.path());
    let key = s.create_store(json!({"name": "greenhouse"}));
    // Five minutes of readings, so the chart has a line to draw.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let readings: Vec<_> = (0..120i64)
        .map(|i| {
            let temp = 21.0 + ((i as f64) / 12.0).sin() * 1.5;
            json!({"timestamp": now - 300_000_000_000 + i * 2_400_000_000,
                   "data": {"temp": (temp * 10.0).round() / 10.0, "humidity": 40 + i % 7}})
        })
        .collect();
    let r = s
        .req("POST", "/api/stores/greenhouse/data/batch")
        .key(&key)
        .json(&json!(readings))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    // A shipper whose engine is not there: the store page shows its lag.
    let r = s
        .req("POST", "/api/stores/greenhouse/influx/connections")
        .key(&key)
        .json(&json!({"url": "http://127.0.0.1:1/write"}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let weather = weather_year(&s, now);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(dir.join("e2e.mjs"))
        .current_dir(&dir)
        .env("BASE", format!("http://127.0.0.1:{}", s.port))
        .env("ADMIN", ADMIN)
        .env("STORE", "greenhouse")
        .env("KEY", &key)
        .env("WEATHER_KEY", &weather)
        .env("CHROMIUM", browser)
        .env("SHOTS", &shots)
        .output()
        .expect("run node");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("console e2e: ok"), "{said}");
    // The page's weight, for docs/BENCHMARKS.md (`-- --nocapture`).
    for line in said.lines().filter(|l| l.starts_with("console cost")) {
        eprintln!("{line}");
    }
    for shot in [
        "console-desktop.png",
        "console-phone.png",
        "console-rollups.png",
        "console-zoomed.png",
        "console-single.png",
    ] {
        assert!(shots.join(shot).exists(), "{shot} written");
    }
}

/// A store with a year of readings every 10 minutes up to `now`, of which
/// raw keeps about three weeks and an hourly rollup the year; returns its
/// key once the rollup has written every closed hour.
fn weather_year(s: &Server, now: i64) -> String {
    const TEN_MIN: i64 = 600_000_000_000;
    let key = s.create_store(json!({
        "name": "weather", "num_blocks": 64,
        "rollups": [{"window": "1h", "keep": "400d"}],
    }));
    let n = 365 * 144;
    let first = now - n * TEN_MIN;
    let readings: Vec<_> = (0..n)
        .map(|i| {
            let day = (i as f64) / 144.0;
            let temp = 12.0 - 9.0 * (day / 58.1).cos() + 4.0 * ((i % 144) as f64 / 22.9).sin();
            json!({"timestamp": first + i * TEN_MIN,
                   "data": {"temp": (temp * 10.0).round() / 10.0,
                            "humidity": (65.0 + 15.0 * (day / 29.0).sin() + 3.0 * ((i % 144) as f64 / 22.9).cos()).round()}})
        })
        .collect();
    for chunk in readings.chunks(5_000) {
        let r = s
            .req("POST", "/api/stores/weather/data/batch")
            .key(&key)
            .json(&json!(chunk))
            .send();
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let last = first + (n - 1) * TEN_MIN;
    let hour = 3_600_000_000_000i64;
    let closed = last - last.rem_euclid(hour);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let list = s
            .req("GET", "/api/stores/weather/rollups")
            .key(&key)
            .send()
            .json();
        if list["rollups"][0]["written_to"].as_i64() == Some(closed) {
            return key;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rollup is not written: {list}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
