//! The service unit and the container image description are checked by
//! the tools that read them: `systemd-analyze verify` (with the unit's
//! ExecStart pointed at this build's binary, since verify wants it to
//! exist) and dockerfilelint (npm, lock file committed). Also the health
//! check the image runs: `tsstore health` against a live server. No
//! Docker engine runs here: the image itself is not built.
//! Without the tools the checks are skipped, except in CI (`CI=true`).

mod common;

use std::path::Path;
use std::process::Command;

use common::Server;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn missing(what: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what}");
    }
    eprintln!("skipped: {what}");
}

#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return missing("systemd-analyze is not installed (apt-get install systemd)");
    }
    let unit = std::fs::read_to_string(root().join("packaging/tsstore.service")).unwrap();
    for hardening in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "DynamicUser=yes",
        "StateDirectory=tsstore",
        "Restart=on-failure",
        "TimeoutStopSec=",
    ] {
        assert!(unit.contains(hardening), "{hardening}");
    }
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().join("tsstore.service");
    std::fs::write(
        &here,
        unit.replace("/usr/local/bin/tsstore", env!("CARGO_BIN_EXE_tsstore")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&here)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn the_dockerfile_lints_clean() {
    let dir = root().join("packaging");
    let lint = dir.join("node_modules/.bin/dockerfilelint");
    if !lint.exists() {
        return missing("dockerfilelint is not installed (npm ci --prefix packaging)");
    }
    let out = Command::new(lint)
        .arg(dir.join("Dockerfile"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    let file = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    for wanted in [
        "FROM scratch",
        "USER 65532",
        "VOLUME [\"/data\"]",
        "HEALTHCHECK",
        "\"/tsstore\", \"health\"",
    ] {
        assert!(file.contains(wanted), "{wanted}");
    }
}

#[test]
fn the_health_command_says_whether_the_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let port = s.port.to_string();
    let out = common::tsstore_cmd()
        .args(["health", "--port", &port])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"status\":\"ok\""));
    drop(s);
    let out = common::tsstore_cmd()
        .args(["health", "--port", &port, "--timeout", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("cannot reach"), "{said}");
}
