//! The OpenAPI document against the server it describes: schemathesis
//! (PyPI, 4.x) generates requests from `/api/openapi.json` and runs every
//! check (no 5xx, documented statuses and bodies, valid requests accepted,
//! invalid ones refused). Its configuration is `tests/api/schemathesis.toml`.
//!
//! Needs the `schemathesis` command (scripts/test.sh installs it); without
//! it the test is skipped, except under CI, where it fails.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{ADMIN, Server};
use serde_json::json;

/// Examples per operation and phase: a few hundred requests in all.
const MAX_EXAMPLES: &str = "25";

fn schemathesis() -> Option<Command> {
    let probe = Command::new("schemathesis").arg("--version").output();
    match probe {
        Ok(out) if out.status.success() => Some(Command::new("schemathesis")),
        _ => {
            let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !in_ci,
                "schemathesis is missing: pip install 'schemathesis>=4,<5' (scripts/test.sh does)"
            );
            eprintln!("skipped: schemathesis is not installed");
            None
        }
    }
}

#[test]
fn schemathesis_finds_nothing_with_all_checks() {
    let Some(mut st) = schemathesis() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Small stores, capped: generated creates cannot fill the disk.
    let s = Server::start_with_config(
        dir.path(),
        r#"{"server": {"max_store_bytes": 262144},
            "store": {"num_blocks": 16, "data_block_size": 4096}}"#,
    );
    let key = s.create_store(json!({"name": "fuzz"}));
    // Reads, aggregations and deletes meet records, not an empty store.
    let records: Vec<_> = (0..200)
        .map(|i| json!({"data": {"temp": 20 + i % 7, "hum": 40 + i % 5, "site": "roof"}}))
        .collect();
    let r = s
        .req("POST", "/api/stores/fuzz/data/batch")
        .key(&key)
        .json(&json!(records))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let doomed = s.create_store(json!({"name": "doomed"}));
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/schemathesis.toml");
    let url = format!("http://127.0.0.1:{}/api/openapi.json", s.port);
    let out = st
        .args(["--config-file", config, "run", &url])
        .args(["--checks", "all", "--max-examples", MAX_EXAMPLES])
        .args(["--seed", "20261128", "--workers", "1"])
        // Each run stands alone: no examples remembered from earlier runs.
        .args(["--generation-database", "none"])
        .args(["--request-timeout", "10"])
        .env("TSSTORE_FUZZ_KEY", &key)
        .env("TSSTORE_FUZZ_DOOMED_KEY", &doomed)
        .env("TSSTORE_FUZZ_ADMIN", ADMIN)
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It really ran: every operation but the five it cannot test
    // (WebSocket upgrades, dialling out) was tested.
    assert!(report.contains("Tested: 33"), "{report}");
    let _ = Duration::ZERO;
}
