//! `tsstore export`, `tsstore import` and `tsstore status`, run as a user
//! runs them: round trips that compare the stored bytes, all-or-nothing
//! imports, a running server beside them, and the progress bar only on a
//! terminal.

mod common;

use std::path::Path;

use common::{Server, cli as run, cli_fails as fails, cli_ok as ok};
use tsstore::{Config, DataType, Field, FieldType, Store, SyncPolicy};

fn new_store(dir: &Path, name: &str, data_type: DataType, block: u32) -> Store {
    let config = Config {
        num_blocks: 256,
        data_block_size: block,
        index_block_size: 512,
        data_type,
        encoding: tsstore::Encoding::Raw,
    };
    Store::create_with(dir, name, config, SyncPolicy::Never).unwrap()
}

/// Every record as stored: timestamps and the stored bytes.
fn stored(dir: &Path, name: &str) -> Vec<(i64, Vec<u8>)> {
    let store = Store::open_read_only(dir, name).unwrap();
    store
        .iter()
        .map(|r| r.map(|r| (r.timestamp(), r.data)).unwrap())
        .collect()
}

const T0: i64 = 1_764_000_000_000_000_000;

/// `export STORE --path PATH --format csv -o FILE`
fn csv_export<'a>(store: &'a str, path: &'a str, file: &'a Path) -> [&'a str; 8] {
    let file = file.to_str().unwrap();
    [
        "export", store, "--path", path, "--format", "csv", "-o", file,
    ]
}
const SEC: i64 = 1_000_000_000;

fn schema_fields() -> Vec<Field> {
    vec![
        Field::new(1, "temp", FieldType::Float64),
        Field::new(2, "count", FieldType::Int64),
        Field::new(3, "room", FieldType::String),
        Field::new(4, "ok", FieldType::Bool),
    ]
}

/// Fills a store of `data_type` with records that are awkward for that
/// type: raw bytes of every value, text with quotes and newlines, JSON
/// with spacing and nesting, objects larger than a block.
fn fill(store: &Store, n: i64) {
    if store.data_type() == DataType::Schema {
        store.set_schema(schema_fields()).unwrap();
    }
    for i in 1..=n {
        let big = i % 97 == 0;
        let payload: Vec<u8> = match store.data_type() {
            DataType::Binary => {
                let len = if big { 1500 } else { (i % 40) as usize + 1 };
                (0..len).map(|k| (k as i64 * 31 + i) as u8).collect()
            }
            DataType::Text => {
                let pad = if big { "x".repeat(1500) } else { String::new() };
                format!("line \"{i}\"\n\ttab, comma; ünïcode {pad}").into_bytes()
            }
            DataType::Json => match i % 4 {
                0 => format!(r#"{{ "spaced" : {i}, "nested": {{"a": [1, 2, {{"b": null}}]}} }}"#),
                1 => format!(r#"[{i}, "array record"]"#),
                2 => format!(r#""just a string {i}""#),
                _ => format!(
                    r#"{{"t":{}.5,"s":"{}"}}"#,
                    i,
                    "y".repeat(if big { 1500 } else { 3 })
                ),
            }
            .into_bytes(),
            DataType::Schema => {
                let room = if i % 3 == 0 { "" } else { r#"lab, \"east\""# };
                match i % 2 {
                    0 => format!(
                        r#"{{"temp":{}.25,"count":{i},"room":"{room}","ok":true}}"#,
                        i % 50
                    ),
                    _ => format!(r#"{{"count":-{i},"ok":false}}"#),
                }
                .into_bytes()
            }
        };
        store.put(T0 + i * SEC, &payload).unwrap();
    }
}

#[test]
fn ndjson_round_trips_every_data_type_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = data.to_str().unwrap();
    for (dt, name) in [
        (DataType::Binary, "bin"),
        (DataType::Text, "text"),
        (DataType::Json, "json"),
        (DataType::Schema, "schema"),
    ] {
        let store = new_store(&data, name, dt, 1024);
        fill(&store, 2000);
        store.close().unwrap();
        let file = dir.path().join(format!("{name}.ndjson"));
        let file = file.to_str().unwrap();
        let out = ok(&["export", name, "--path", path, "-o", file]);
        assert!(out.contains("exported 2000 records"), "{out}");
        // The header carries type, geometry and schema: --create needs nothing else.
        let copy = format!("{name}-copy");
        let out = ok(&["import", &copy, file, "--path", path, "--create"]);
        assert!(out.contains("imported 2000 records"), "{out}");
        assert!(out.contains("API key"), "{out}");
        assert_eq!(stored(&data, &copy), stored(&data, name), "{name}");
        let (a, b) = (
            Store::read_config(&data, name).unwrap(),
            Store::read_config(&data, &copy).unwrap(),
        );
        assert_eq!(a, b);
    }
    let schema = Store::open_read_only(&data, "schema-copy").unwrap();
    assert_eq!(schema.schema().unwrap().fields(), &schema_fields()[..]);

    // A window: RFC 3339 or nanoseconds, both ends inclusive.
    let from = tsstore::rfc3339(T0 + 101 * SEC);
    let to = (T0 + 200 * SEC).to_string();
    let out = run(
        &[
            "export", "json", "--path", path, "--from", &from, "--to", &to,
        ],
        &[],
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 101, "a header and 100 records");
    assert!(lines[1].starts_with(&format!("{{\"timestamp\":{},", T0 + 101 * SEC)));
    let err = fails(&["export", "json", "--path", path, "--from", "yesterday"]);
    assert!(err.contains("--from") && err.contains("RFC 3339"), "{err}");
}

#[test]
fn csv_round_trips_flat_json_and_schema_stores() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = data.to_str().unwrap();

    let json = new_store(&data, "flat", DataType::Json, 4096);
    let records = [
        r#"{"temp":21.50,"room":"lab 1","ok":true}"#,
        r#"{"temp":-3e2,"note":"42"}"#,
        r#"{"room":"","note":"true","tags":[1,"a"],"none":null}"#,
        r#"{"note":"comma, \"quote\"\nnewline","deep":{"x":1}}"#,
        r#"{"timestamp":"a field named timestamp","ünï":"çødé"}"#,
        r#"{}"#,
    ];
    for (i, r) in records.iter().enumerate() {
        json.put(T0 + i as i64, r.as_bytes()).unwrap();
    }
    json.close().unwrap();
    let schema = new_store(&data, "typed", DataType::Schema, 4096);
    fill(&schema, 500);
    schema.close().unwrap();

    let file = dir.path().join("flat.csv");
    let out = ok(&csv_export("flat", path, &file));
    assert!(!out.contains("warning"), "{out}");
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(
        csv.starts_with("timestamp,temp,room,ok,note,tags,none,deep,timestamp,ünï\n"),
        "{csv}"
    );
    assert!(csv.contains(r#",21.50,lab 1,true,,,,,,"#), "{csv}");
    assert!(
        csv.contains(r#","""42""","#),
        "a string that reads as a number keeps its quotes: {csv}"
    );
    ok(&[
        "import",
        "flat-copy",
        file.to_str().unwrap(),
        "--path",
        path,
        "--create",
        "--type",
        "json",
    ]);
    assert_eq!(stored(&data, "flat-copy"), stored(&data, "flat"));

    let file = dir.path().join("typed.csv");
    ok(&csv_export("typed", path, &file));
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(csv.starts_with("timestamp,temp,count,room,ok\n"), "{csv}");
    let schema_file = dir.path().join("schema.json");
    let doc = serde_json::json!({"fields": schema_fields()});
    std::fs::write(&schema_file, doc.to_string()).unwrap();
    let err = fails(&[
        "import",
        "t2",
        file.to_str().unwrap(),
        "--path",
        path,
        "--create",
        "--type",
        "schema",
    ]);
    assert!(err.contains("--schema"), "{err}");
    ok(&[
        "import",
        "typed-copy",
        file.to_str().unwrap(),
        "--path",
        path,
        "--create",
        "--type",
        "schema",
        "--schema",
        schema_file.to_str().unwrap(),
    ]);
    assert_eq!(stored(&data, "typed-copy"), stored(&data, "typed"));

    // Records CSV cannot give back as written are counted, not hidden.
    let loose = new_store(&data, "loose", DataType::Json, 4096);
    loose.put(T0, br#"{"b": 1, "a": 2}"#).unwrap();
    loose.put(T0 + 1, br#"{"b":3,"a":4}"#).unwrap();
    loose.close().unwrap();
    let file = dir.path().join("loose.csv");
    let out = ok(&csv_export("loose", path, &file));
    assert!(
        out.contains("1 records will not import back byte for byte"),
        "{out}"
    );
    // CSV is refused for what has no columns, before anything is written.
    let nd = new_store(&data, "raw", DataType::Text, 4096);
    nd.close().unwrap();
    let out_file = dir.path().join("raw.csv");
    let err = fails(&csv_export("raw", path, &out_file));
    assert!(
        err.contains("CSV export is for json and schema stores"),
        "{err}"
    );
    assert!(!out_file.exists());
    let err = fails(&["export", "json-arrays", "--path", path, "--format", "csv"]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn a_bad_line_imports_nothing_unless_skip_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = data.to_str().unwrap();
    let store = new_store(&data, "s", DataType::Json, 4096);
    store.put(T0, b"{\"n\":0}").unwrap();
    store.close().unwrap();
    let before = stored(&data, "s");

    let file = dir.path().join("in.ndjson");
    let lines = [
        format!(r#"{{"timestamp":{},"data":{{"n":1}}}}"#, T0 + 1),
        format!(r#"{{"timestamp":{},"data":{{"n":2}}}}"#, T0 + 2),
        r#"{"timestamp": 5, "data": {"n": oops}}"#.to_string(),
        format!(r#"{{"timestamp":{},"data":{{"n":4}}}}"#, T0 + 4),
        format!(r#"{{"timestamp":{},"data":{{"n":5}}}}"#, T0 + 3),
        String::new(),
        r#"{"data":{"n":7}}"#.to_string(),
        format!(r#"{{"timestamp":{},"data":{{"n":8}}}}"#, T0 + 8),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let file = file.to_str().unwrap();
    let err = fails(&["import", "s", file, "--path", path]);
    assert!(
        err.contains("line 3:") && err.contains("nothing was imported"),
        "{err}"
    );
    assert_eq!(stored(&data, "s"), before);
    let err = fails(&[
        "import", "new", file, "--path", path, "--create", "--type", "json",
    ]);
    assert!(err.contains("line 3:"), "{err}");
    assert!(
        !Store::exists(&data, "new"),
        "a refused import leaves no store behind"
    );

    let out = ok(&["import", "s", file, "--path", path, "--skip-invalid"]);
    assert!(out.contains("imported 4 records"), "{out}");
    assert!(out.contains("skipped 3 invalid records"), "{out}");
    assert!(out.contains("line 3:"), "{out}");
    assert!(out.contains("line 5: timestamp"), "{out}");
    assert!(out.contains("line 7: no timestamp"), "{out}");
    let ts: Vec<i64> = stored(&data, "s").iter().map(|r| r.0).collect();
    assert_eq!(ts, [T0, T0 + 1, T0 + 2, T0 + 4, T0 + 8]);

    // Run again, it resumes: everything is already in, so all is skipped.
    let out = ok(&["import", "s", file, "--path", path, "--skip-invalid"]);
    assert!(out.contains("imported 0 records"), "{out}");

    // CSV lines are numbered the same way, quoted newlines included.
    let csv = dir.path().join("in.csv");
    let body = format!(
        "timestamp,n,note\n{},1,\"two\nlines\"\n{},2\n{},3,x\n",
        T0 + 20,
        T0 + 21,
        T0 + 22
    );
    std::fs::write(&csv, body).unwrap();
    let err = fails(&["import", "s", csv.to_str().unwrap(), "--path", path]);
    assert!(
        err.contains("line 4: 2 cells; the header row has 3"),
        "{err}"
    );
    let err = fails(&["import", "s", file, "--path", path, "--format", "csv"]);
    assert!(err.contains("`timestamp`"), "{err}");
    let err = fails(&["import", "s", "/no/such/file", "--path", path]);
    assert!(err.contains("cannot read /no/such/file"), "{err}");
}

#[test]
fn export_and_status_work_beside_a_running_server_and_import_goes_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let path = server.data.to_str().unwrap().to_string();
    let key = server.create_store(serde_json::json!({"name": "live", "num_blocks": 64}));
    common::peer::insert_batch(&server, &key, "live", 0..300);

    let table = ok(&["status", "--path", &path]);
    let row = table
        .lines()
        .find(|l| l.starts_with("live"))
        .expect("a row");
    assert!(row.contains(" 300 ") && row.ends_with("running"), "{table}");

    let file = dir.path().join("live.ndjson");
    let file = file.to_str().unwrap();
    let out = ok(&["export", "live", "--path", &path, "-o", file]);
    assert!(out.contains("exported 300 records"), "{out}");

    // Records for later than what the server holds, then imported.
    let newest = stored(&server.data, "live").last().unwrap().0;
    let more = dir.path().join("more.ndjson");
    let body: String = (1..=50)
        .map(|i| format!("{{\"timestamp\":{},\"data\":{{\"n\":{i}}}}}\n", newest + i))
        .collect();
    std::fs::write(&more, body).unwrap();
    let more = more.to_str().unwrap();
    let err = fails(&["import", "live", more, "--path", &path]);
    assert!(
        err.contains("held by a running server") && err.contains("--url"),
        "{err}"
    );
    let url = format!("http://127.0.0.1:{}", server.port);
    let out = run(
        &["import", "live", more, "--url", &url],
        &[("TSSTORE_API_KEY", "wrong")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401"), "{err}");
    let err = fails(&["import", "live", more, "--url", &url]);
    assert!(err.contains("TSSTORE_API_KEY"), "{err}");
    let out = run(
        &["import", "live", more, "--url", &url],
        &[("TSSTORE_API_KEY", &key)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 50 records"));
    let r = server
        .req("GET", "/api/stores/live/data/newest?limit=1")
        .key(&key)
        .send();
    assert_eq!(common::timestamps(&r.json()), [newest + 50]);
    // Through the server too, a bad line (here: already stored) changes nothing.
    let out = run(
        &["import", "live", more, "--url", &url],
        &[("TSSTORE_API_KEY", &key)],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("line 1: timestamp"),
        "{err}"
    );
    server.stop();
    let table = ok(&["status", "--path", &path]);
    let row = table
        .lines()
        .find(|l| l.starts_with("live"))
        .expect("a row");
    assert!(row.contains(" 350 ") && row.ends_with(" -"), "{table}");
}

#[test]
fn the_progress_bar_is_drawn_only_when_output_is_a_terminal() {
    // `script` runs the command on a pseudo-terminal and copies what it
    // draws; stdout is then redirected (or not) inside the command.
    if run_script("true").is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("`script` (util-linux) is needed for the terminal test");
        }
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = new_store(&data, "s", DataType::Json, 4096);
    fill(&store, 3000);
    store.close().unwrap();
    let bin = env!("CARGO_BIN_EXE_tsstore");
    let d = data.to_str().unwrap();
    let file = dir.path().join("out.ndjson");
    let f = file.to_str().unwrap();

    let on_terminal = run_script(&format!("{bin} export s --path {d} -o {f}")).unwrap();
    assert!(
        on_terminal.contains("exporting") && on_terminal.contains("[="),
        "{on_terminal:?}"
    );
    let piped = run_script(&format!("{bin} export s --path {d} > {f}")).unwrap();
    assert!(
        !piped.contains("exporting") && !piped.contains('\x1b'),
        "{piped:?}"
    );
    assert!(
        piped.contains("exported 3000 records"),
        "the summary stays: {piped:?}"
    );
    let quiet = run_script(&format!("{bin} export s --path {d} -q -o {f}")).unwrap();
    assert!(!quiet.contains("exporting"), "{quiet:?}");
    let import = run_script(&format!("{bin} import s2 {f} --path {d} --create")).unwrap();
    assert!(
        import.contains("importing") && import.contains("checking"),
        "{import:?}"
    );
    let import = run_script(&format!("{bin} import s3 {f} --path {d} --create | cat")).unwrap();
    assert!(!import.contains("importing"), "{import:?}");
}

/// What `sh -c command` shows on a terminal; `None` without `script`.
fn run_script(command: &str) -> Option<String> {
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", command, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("TSSTORE_DATA_PATH")
        .env_remove("TSSTORE_CONFIG")
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}
