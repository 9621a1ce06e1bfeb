//! A store is created whole or not at all, even when the process runs out
//! of file descriptors part way; a create that cannot fit is refused
//! before anything is written; and a directory that is not a complete
//! store is reported at start and removed with the admin key.

mod common;

use std::os::unix::process::CommandExt;

use common::{ADMIN, Server, tsstore_cmd};
use serde_json::json;

/// `tsstore create` with at most `fds` open files.
fn create_with_fd_limit(data: &std::path::Path, fds: u64) -> std::process::Output {
    let mut cmd = tsstore_cmd();
    cmd.args(["create", "s", "--blocks", "16", "--path"])
        .arg(data);
    // SAFETY: setrlimit is async-signal-safe; it only lowers this child's
    // own limit before it runs the binary.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: fds,
                rlim_max: fds,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("run tsstore create")
}

#[test]
fn running_out_of_file_descriptors_never_leaves_half_a_store() {
    let mut outcomes = Vec::new();
    // From too few descriptors to open anything, to enough for all.
    for fds in 4..=24 {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let out = create_with_fd_limit(&data, fds);
        let store = data.join("s");
        if out.status.success() {
            assert!(store.join("meta.tsdb").is_file(), "fds={fds}");
            assert!(store.join("keys.json").is_file(), "fds={fds}");
            outcomes.push(true);
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !store.exists(),
                "fds={fds}: a failed create left {:?} ({err})",
                std::fs::read_dir(&store).map(|d| d.count())
            );
            outcomes.push(false);
        }
    }
    assert!(
        outcomes.contains(&false),
        "some limit was too low to create"
    );
    assert!(outcomes.contains(&true), "some limit was enough");
}

#[test]
fn a_store_that_cannot_fit_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_config(
        dir.path(),
        r#"{"server": {"max_total_store_bytes": 200000}}"#,
    );
    let create = |body: serde_json::Value| {
        s.req("POST", "/api/stores")
            .header("X-Admin-Key", ADMIN)
            .json(&body)
            .send()
    };
    // 92 million blocks of 4 KiB (377 GB): more than the disk has free.
    let r = create(json!({"name": "huge", "num_blocks": 92_000_000}));
    r.expect_error(507, "insufficient_storage");
    let message = r.json()["error"].as_str().unwrap().to_string();
    assert!(message.contains("bytes free"), "{message}");
    assert!(!s.data.join("huge").exists());
    // The total across stores: the first fits, the second would not.
    assert_eq!(create(json!({"name": "a", "num_blocks": 32})).status, 201);
    let r = create(json!({"name": "b", "num_blocks": 32}));
    r.expect_error(507, "storage_quota_exceeded");
    assert!(r.text().contains("200000"), "{}", r.text());
    assert!(!s.data.join("b").exists());
}

#[test]
fn an_incomplete_store_directory_is_reported_and_the_admin_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A store whose keys were lost (an older version's interrupted create).
    let out = common::cli(
        &[
            "create",
            "half",
            "--blocks",
            "8",
            "--path",
            data.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success());
    std::fs::remove_file(data.join("half/keys.json")).unwrap();
    let (s, log) = Server::start_logged(dir.path());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("not a complete store") && text.contains("keys.json"),
        "{text}"
    );
    // Without a key nobody can use or delete it, and re-creating says it
    // exists...
    let r = s
        .req("POST", "/api/stores")
        .header("X-Admin-Key", ADMIN)
        .json(&json!({"name": "half"}))
        .send();
    r.expect_error(409, "store_exists");
    s.req("DELETE", "/api/stores/half")
        .header("X-API-Key", "tsstore_00000000-0000-4000-8000-000000000000")
        .send()
        .expect_error(401, "invalid_api_key");
    s.req("DELETE", "/api/stores/half")
        .header("X-Admin-Key", "not-the-admin-key-000000")
        .send()
        .expect_error(401, "invalid_admin_key");
    // ...but the admin key removes it, and the name is free again; the
    // admin key deletes a complete store too.
    let admin_delete = || {
        let r = s
            .req("DELETE", "/api/stores/half")
            .header("X-Admin-Key", ADMIN)
            .send();
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(!data.join("half").exists());
    };
    admin_delete();
    s.create_store(json!({"name": "half"}));
    admin_delete();
}
