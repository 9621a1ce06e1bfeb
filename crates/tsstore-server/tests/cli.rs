//! The `tsstore` binary's administration commands, run as a user would:
//! output on stdout, errors on stderr with a non-zero exit, and nothing
//! left on disk by a refused command.

mod common;

use std::path::Path;

use common::{cli as tsstore, cli_fails as fails, cli_ok as ok, key_of};

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("name"))
        .collect();
    names.sort();
    names
}

#[test]
fn create_prints_a_key_once_and_keeps_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let out = ok(&[
        "create", "sensors", "--path", path, "--blocks", "64", "--type", "schema",
    ]);
    assert!(
        out.contains("created store 'sensors' (schema, 64 blocks of 4096 bytes"),
        "{out}"
    );
    let key = key_of(&out);
    assert!(key.starts_with("tsstore_") && key.len() == 44, "{key}");
    let keys = std::fs::read_to_string(dir.path().join("sensors/keys.json")).unwrap();
    assert!(
        !keys.contains(&key["tsstore_".len()..]),
        "the key itself is never stored"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("sensors/keys.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let err = fails(&["create", "sensors", "--path", path]);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn bad_names_and_options_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let long = "a".repeat(65);
    for name in [
        "..",
        "a/b",
        "%2e%2e",
        "with space",
        "-dash",
        long.as_str(),
        "",
    ] {
        let err = fails(&["create", "--path", path, "--", name]);
        assert!(err.contains("invalid store name"), "{name}: {err}");
    }
    let err = fails(&["create", "ok", "--path", path, "--type", "xml"]);
    assert!(err.contains("unknown data type 'xml'"), "{err}");
    let err = fails(&["create", "ok", "--path", path, "--data-size", "1000"]);
    assert!(err.contains("power of two"), "{err}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

#[test]
fn keys_regenerate_list_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let first = key_of(&ok(&["create", "s", "--path", path, "--blocks", "16"]));
    let list = ok(&["key", "list", "s", "--path", path]);
    assert!(
        list.contains(&first["tsstore_".len().."tsstore_".len() + 8]),
        "{list}"
    );
    assert!(!list.contains(&first), "list never shows keys");

    let out = ok(&[
        "key",
        "regenerate",
        "s",
        "--path",
        path,
        "--note",
        "grafana",
    ]);
    let second = key_of(&out);
    assert_ne!(first, second);
    let id = out
        .lines()
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let list = ok(&["key", "list", "s", "--path", path]);
    assert!(list.contains(&id) && list.contains("grafana"), "{list}");
    assert!(
        !list.contains(&first["tsstore_".len().."tsstore_".len() + 8]),
        "old key revoked: {list}"
    );

    let err = fails(&["key", "revoke", "s", "nope", "--path", path]);
    assert!(err.contains("no key with id 'nope'"), "{err}");
    ok(&["key", "revoke", "s", &id, "--path", path]);
    assert!(ok(&["key", "list", "s", "--path", path]).contains("has no keys"));
    let err = fails(&["key", "list", "missing", "--path", path]);
    assert!(err.contains("store 'missing' does not exist"), "{err}");
}

#[test]
fn status_lists_every_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    assert!(ok(&["status", "--path", path]).contains("no stores"));
    ok(&[
        "create", "b", "--path", path, "--blocks", "16", "--type", "text",
    ]);
    ok(&["create", "a", "--path", path, "--blocks", "32"]);
    std::fs::create_dir(dir.path().join("not-a-store")).unwrap();
    let table = ok(&["status", "--path", path]);
    let rows: Vec<&str> = table
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with('('))
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    // 32 blocks of 4 KiB, one index block and the meta header.
    assert!(
        rows[0].starts_with('a') && rows[0].contains("json") && rows[0].contains("132.1 KiB"),
        "{table}"
    );
    assert!(
        rows[1].starts_with('b') && rows[1].contains("text"),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["status", "--path", path, "--json"])).unwrap();
    assert_eq!(json[0]["name"], "a");
    assert_eq!(json[0]["stats"]["num_blocks"], 32);
    assert_eq!(json[0]["records"], 0);
    assert_eq!(json[0]["held_by_server"], false);
    assert_eq!(json[1]["stats"]["data_type"], "text");
    let err = fails(&[
        "status",
        "--path",
        dir.path().join("nowhere").to_str().unwrap(),
    ]);
    assert!(err.contains("cannot list the data path"), "{err}");
}

#[test]
fn calc_reports_footprint_and_capacity() {
    let out = ok(&[
        "calc",
        "--blocks",
        "1024",
        "--block-size",
        "4096",
        "--object-size",
        "60",
        "--every",
        "10s",
    ]);
    assert!(out.contains("total       4.0 MiB"), "{out}");
    assert!(
        out.contains("48 per block") && out.contains("holds 49152 objects"),
        "{out}"
    );
    assert!(out.contains("5.7 days of history"), "{out}");
    let out = ok(&[
        "calc",
        "--blocks",
        "100",
        "--block-size",
        "4096",
        "--object-size",
        "10000",
    ]);
    assert!(
        out.contains("spans 3 blocks") && out.contains("holds 33 objects"),
        "{out}"
    );
    // A ring of four 4 KiB blocks, plus the options under test.
    let small = |extra: &[&str]| {
        let mut args = vec!["calc", "--blocks", "4", "--block-size", "4096"];
        args.extend_from_slice(extra);
        fails(&args)
    };
    assert!(small(&["--object-size", "100000"]).contains("needs 25 blocks"));
    assert!(small(&["--every", "1s"]).contains("--object-size"));
    assert!(small(&["--object-size", "1", "--every", "0s"]).contains("--every"));
}

#[test]
fn config_file_and_environment_choose_the_data_path() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-file");
    let from_env = dir.path().join("from-env");
    std::fs::create_dir_all(&from_file).unwrap();
    std::fs::create_dir_all(&from_env).unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"store": {{"base_path": {:?}, "num_blocks": 16}}}}"#,
            from_file.to_str().unwrap()
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let out = tsstore(&["create", "f", "--config", cfg], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("16 blocks"));
    assert!(from_file.join("f/meta.tsdb").exists());
    let out = tsstore(
        &["create", "e"],
        &[
            ("TSSTORE_CONFIG", cfg),
            ("TSSTORE_DATA_PATH", from_env.to_str().unwrap()),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        from_env.join("e/meta.tsdb").exists(),
        "environment overrides the file"
    );

    std::fs::write(&config, r#"{"store": {"base_pth": "x"}}"#).unwrap();
    let out = tsstore(&["status", "--config", cfg], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("base_pth"));
}

#[test]
fn every_command_has_help_and_version_works() {
    for args in [
        &["--help"][..],
        &["create", "--help"],
        &["key", "--help"],
        &["key", "regenerate", "--help"],
        &["key", "list", "--help"],
        &["key", "revoke", "--help"],
        &["status", "--help"],
        &["calc", "--help"],
        &["version", "--help"],
    ] {
        let out = ok(args);
        assert!(out.contains("Usage:"), "{args:?}: {out}");
    }
    assert_eq!(
        ok(&["version"]).trim(),
        format!("tsstore {}", env!("CARGO_PKG_VERSION"))
    );
    let out = tsstore(&["frobnicate"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}
