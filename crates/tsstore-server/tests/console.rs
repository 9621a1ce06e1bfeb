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
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(dir.join("e2e.mjs"))
        .current_dir(&dir)
        .env("BASE", format!("http://127.0.0.1:{}", s.port))
        .env("ADMIN", ADMIN)
        .env("STORE", "greenhouse")
        .env("KEY", &key)
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
    for shot in ["console-desktop.png", "console-phone.png"] {
        assert!(shots.join(shot).exists(), "{shot} written");
    }
}
