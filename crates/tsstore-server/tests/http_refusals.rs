//! The REST API's refusals as a client sees them, against the real
//! binary: every error status with its code, the auth matrix, refused
//! store names, the console's CSP, and the OpenAPI document listing every
//! route (`http_api.rs` has the happy paths).

mod common;

use common::{ADMIN, Server, key_of, objects, timestamps, tree};
use serde_json::json;

#[test]
fn every_error_status_has_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "e"}));
    let text = s.create_store(json!({"name": "t", "data_type": "text"}));
    let post = |body: &str| {
        s.req("POST", "/api/stores/e/data")
            .key(&key)
            .body("application/json", body)
            .send()
    };

    // 400: bad input of every kind.
    post("{not json").expect_error(400, "invalid_json");
    post(r#"{"timestamp": 5}"#).expect_error(400, "missing_data");
    post(r#"{"data": 1, "extra": 2}"#).expect_error(400, "invalid_json");
    post(r#"{"timestamp": -5, "data": 1}"#).expect_error(400, "invalid_timestamp");
    s.req("POST", "/api/stores/t/data")
        .key(&text)
        .body("text/plain", vec![b'a', 0xff, 0xfe])
        .send()
        .expect_error(400, "invalid_data");
    s.req("POST", "/api/stores/t/data")
        .key(&text)
        .json(&json!({"data": 5}))
        .send()
        .expect_error(400, "invalid_data");
    for q in [
        "limit=-1",
        "limit=abc",
        "limit=0",
        "format=xml",
        "include_data=maybe",
        "since=5",
        "since=-1h",
        "agg_window=1m&agg_fields=t:median",
    ] {
        s.req("GET", &format!("/api/stores/e/data/newest?{q}"))
            .key(&key)
            .send()
            .expect_error(
                400,
                if q.starts_with("agg") {
                    "invalid_aggregation"
                } else {
                    "invalid_parameter"
                },
            );
    }
    s.req("GET", "/api/stores/e/data/newest?limit=100001")
        .key(&key)
        .send()
        .expect_error(400, "limit_too_large");
    s.req("GET", "/api/stores/e/data/range?since=1h&start_time=5")
        .key(&key)
        .send()
        .expect_error(400, "invalid_parameter");
    s.req("GET", "/api/stores/e/data/range?start_time=10&end_time=5")
        .key(&key)
        .send()
        .expect_error(400, "invalid_parameter");
    s.req("GET", "/api/stores/e/data/time/abc")
        .key(&key)
        .send()
        .expect_error(400, "invalid_timestamp");
    s.req("POST", "/api/stores/e/data/batch")
        .key(&key)
        .json(&json!([]))
        .send()
        .expect_error(400, "empty_batch");
    s.req("POST", "/api/stores")
        .header("X-Admin-Key", ADMIN)
        .json(&json!({"name": "g", "data_block_size": 1000}))
        .send()
        .expect_error(400, "invalid_config");
    s.req("POST", "/api/stores")
        .header("X-Admin-Key", ADMIN)
        .json(&json!({"name": "g", "data_type": "xml"}))
        .send()
        .expect_error(400, "invalid_config");

    // 401.
    s.req("POST", "/api/stores")
        .json(&json!({"name": "x"}))
        .send()
        .expect_error(401, "missing_admin_key");
    s.req("POST", "/api/stores?admin_key=wrong-wrong-wrong-wrong")
        .json(&json!({"name": "x"}))
        .send()
        .expect_error(401, "invalid_admin_key");

    // 404.
    s.req("GET", "/api/stores/e/data/time/12345")
        .key(&key)
        .send()
        .expect_error(404, "not_found");
    s.req("DELETE", "/api/stores/e/data/time/12345")
        .key(&key)
        .send()
        .expect_error(404, "not_found");
    s.get("/api/nothing").expect_error(404, "route_not_found");

    // 409: the store exists; a duplicate or older timestamp changes nothing.
    s.req("POST", "/api/stores")
        .header("X-Admin-Key", ADMIN)
        .json(&json!({"name": "e"}))
        .send()
        .expect_error(409, "store_exists");
    assert_eq!(post(r#"{"timestamp": 100, "data": 1}"#).status, 201);
    let before = s.req("GET", "/api/stores/e/stats").key(&key).send().json();
    post(r#"{"timestamp": 100, "data": 2}"#).expect_error(409, "timestamp_out_of_order");
    post(r#"{"timestamp": 50, "data": 3}"#).expect_error(409, "timestamp_out_of_order");
    s.req("POST", "/api/stores/e/data/batch")
        .key(&key)
        .json(&json!([{"timestamp": 200, "data": 1}, {"timestamp": 150, "data": 2}]))
        .send()
        .expect_error(409, "timestamp_out_of_order");
    s.req("POST", "/api/stores/e/data/batch")
        .key(&key)
        .json(&json!([{"timestamp": 300, "data": 1}, {"data": 2, "bad": 1}]))
        .send()
        .expect_error(400, "invalid_json");
    let after = s.req("GET", "/api/stores/e/stats").key(&key).send().json();
    assert_eq!(before, after, "refused inserts change nothing");
    let all = s
        .req("GET", "/api/stores/e/data/oldest")
        .key(&key)
        .send()
        .json();
    assert_eq!(timestamps(&all), [100]);
    assert_eq!(objects(&all)[0]["data"], 1);

    // 413: body over the 1 MiB default.
    let big = format!("{{\"data\": \"{}\"}}", "x".repeat((1 << 20) + 10));
    post(&big).expect_error(413, "payload_too_large");

    // 415: wrong content type for the store.
    s.req("POST", "/api/stores/e/data")
        .key(&key)
        .body("text/plain", "{}")
        .send()
        .expect_error(415, "unsupported_content_type");
    s.req("POST", "/api/stores/e/data")
        .key(&key)
        .body("application/x-www-form-urlencoded", "data=1")
        .send()
        .expect_error(415, "unsupported_content_type");
    s.req("POST", "/api/stores/t/data")
        .key(&text)
        .body("application/octet-stream", "abc")
        .send()
        .expect_error(415, "unsupported_content_type");
    s.req("POST", "/api/stores")
        .header("X-Admin-Key", ADMIN)
        .body("text/plain", "{\"name\":\"q\"}")
        .send()
        .expect_error(415, "unsupported_content_type");

    let metrics = s.get("/metrics").text();
    assert!(
        metrics.contains(
            "tsstore_store_rejected_inserts_total{store=\"e\",reason=\"out_of_order\"} 3"
        ),
        "{metrics}"
    );

    // 503: the store is held by another process.
    let out = common::tsstore_cmd()
        .args(["create", "held", "--blocks", "4", "--path"])
        .arg(&s.data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let held_key = key_of(&String::from_utf8(out.stdout).unwrap());
    let lock = tsstore::Store::open(&s.data, "held").unwrap();
    s.req("GET", "/api/stores/held/stats")
        .key(&held_key)
        .send()
        .expect_error(503, "store_in_use");
    lock.close().unwrap();
    assert_eq!(
        s.req("GET", "/api/stores/held/stats")
            .key(&held_key)
            .send()
            .status,
        200
    );
}

/// Method, path, and body (content type, text) of one request.
type Route = (&'static str, String, Option<(&'static str, String)>);
/// Headers and query string that carry a key one way.
type KeyWay = dyn Fn(&str) -> (Vec<(&'static str, String)>, String);

/// Every store route, with a request that succeeds given the right key.
fn store_routes(store: &str) -> Vec<Route> {
    let p = format!("/api/stores/{store}");
    vec![
        (
            "POST",
            format!("{p}/data"),
            Some(("application/json", r#"{"data":1}"#.into())),
        ),
        (
            "POST",
            format!("{p}/data/batch"),
            Some(("application/json", r#"[{"data":2}]"#.into())),
        ),
        ("GET", format!("{p}/data/oldest"), None),
        ("GET", format!("{p}/data/newest"), None),
        ("GET", format!("{p}/data/range"), None),
        ("GET", format!("{p}/data/time/1"), None),
        ("DELETE", format!("{p}/data/time/2"), None),
        ("GET", format!("{p}/stats"), None),
        ("GET", format!("{p}/schema"), None),
        (
            "PUT",
            format!("{p}/schema"),
            Some((
                "application/json",
                r#"{"fields":[{"index":1,"name":"a","type":"int8"}]}"#.into(),
            )),
        ),
        ("POST", format!("{p}/reset"), None),
        ("DELETE", p, None),
    ]
}

#[test]
fn auth_matrix() {
    let dir = tempfile::tempdir().unwrap();
    // Every route is tried with wrong keys from one address: a budget of
    // failures large enough that the throttle (tests/front_door.rs) stays
    // out of it.
    let s = Server::start_with_config(dir.path(), r#"{"server": {"auth_failure_burst": 10000}}"#);
    let key = s.create_store(json!({"name": "mine", "data_type": "schema"}));
    let other = s.create_store(json!({"name": "other"}));
    let wrong = "tsstore_00000000-0000-4000-8000-000000000000";
    let r = s
        .req("PUT", "/api/stores/mine/schema")
        .key(&key)
        .json(&json!({"fields": [{"index": 1, "name": "a", "type": "int8"}]}))
        .send();
    assert_eq!(r.status, 200);
    let r = s
        .req("POST", "/api/stores/mine/data/batch")
        .key(&key)
        .json(&json!([{"timestamp": 1, "data": {"a": 1}}, {"timestamp": 2, "data": {"a": 2}}]))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());

    let bad_keys: [(&str, &str); 4] = [
        ("none", ""),
        ("malformed", "not a key at all"),
        ("wrong", wrong),
        ("other store's", &other),
    ];
    for (method, path, body) in store_routes("mine") {
        for (label, bad) in bad_keys {
            for via in ["header", "bearer", "query"] {
                let mut url = path.clone();
                let mut req_headers = Vec::new();
                if !bad.is_empty() {
                    match via {
                        "header" => req_headers.push(("X-API-Key", bad.to_string())),
                        "bearer" => req_headers.push(("Authorization", format!("Bearer {bad}"))),
                        _ => url.push_str(&format!("?api_key={}", bad.replace(' ', "%20"))),
                    }
                }
                let mut req = s.req(method, &url);
                for (k, v) in &req_headers {
                    req = req.header(k, v);
                }
                if let Some((ct, b)) = &body {
                    req = req.body(ct, b.clone());
                }
                let r = req.send();
                let code = if bad.is_empty() {
                    "missing_api_key"
                } else {
                    "invalid_api_key"
                };
                assert_eq!(
                    r.status,
                    401,
                    "{method} {url} with {label} key via {via}: {}",
                    r.text()
                );
                r.expect_error(401, code);
            }
        }
        // Unknown store: the very same body as a wrong key.
        let unknown = s
            .req(method, &path.replace("/mine", "/ghost"))
            .key(wrong)
            .send();
        let known = s.req(method, &path).key(wrong).send();
        assert_eq!((unknown.status, unknown.body), (known.status, known.body));
    }
    // The right key, by each of the three ways, on every route.
    let ways: [&KeyWay; 3] = [
        &|k| (vec![("X-API-Key", k.to_string())], String::new()),
        &|k| {
            (
                vec![("Authorization", format!("Bearer {k}"))],
                String::new(),
            )
        },
        &|k| (Vec::new(), format!("?api_key={k}")),
    ];
    for (i, (method, path, body)) in store_routes("mine").into_iter().enumerate() {
        let (headers, query) = ways[i % 3](&key);
        let mut req = s.req(method, &format!("{path}{query}"));
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        if let Some((ct, b)) = &body {
            let b = b
                .replace(r#""data":1"#, r#""data":{"a":3}"#)
                .replace(r#""data":2"#, r#""data":{"a":4}"#);
            req = req.body(ct, b);
        }
        let r = req.send();
        assert!(
            (200..300).contains(&r.status),
            "{method} {path} with the right key: {} {}",
            r.status,
            r.text()
        );
    }
    assert!(
        !s.data.join("mine").exists(),
        "the last route deleted the store"
    );
}

#[test]
fn bad_store_names_are_refused_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let long = "a".repeat(65);
    for name in [
        "..",
        "a/b",
        "%2e%2e",
        "a b",
        long.as_str(),
        "-lead",
        "",
        "x\u{0}y",
        "é",
    ] {
        s.req("POST", "/api/stores")
            .header("X-Admin-Key", ADMIN)
            .json(&json!({"name": name}))
            .send()
            .expect_error(400, "invalid_store_name");
    }
    for path in ["%2e%2e", "a%20b", "a%2Fb", long.as_str(), "-lead"] {
        s.req("GET", &format!("/api/stores/{path}/stats"))
            .key("tsstore_x")
            .send()
            .expect_error(400, "invalid_store_name");
    }
    let left = tree(&s.data);
    assert!(
        left.iter().all(|e| e == ".admin_key"),
        "nothing but the admin key hash may exist: {left:?}"
    );
    assert!(!dir.path().join("a").exists() && !dir.path().join("b").exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the data directory"
    );
}

#[test]
fn the_console_is_served_with_a_strict_csp() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    for (path, kind) in [
        ("/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let r = s.req("GET", path).send();
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    let page = s.req("GET", "/").send().text();
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "{page}"
    );
}

#[test]
fn openapi_lists_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let r = s.get("/api/openapi.json");
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let expected = [
        ("get", "/health"),
        ("get", "/metrics"),
        ("get", "/api/openapi.json"),
        ("post", "/api/stores"),
        ("get", "/api/stores"),
        ("delete", "/api/stores/{store}"),
        ("post", "/api/stores/{store}/reset"),
        ("get", "/api/stores/{store}/stats"),
        ("get", "/api/stores/{store}/schema"),
        ("put", "/api/stores/{store}/schema"),
        ("post", "/api/stores/{store}/data"),
        ("post", "/api/stores/{store}/data/batch"),
        ("get", "/api/stores/{store}/data/time/{ts}"),
        ("delete", "/api/stores/{store}/data/time/{ts}"),
        ("get", "/api/stores/{store}/data/oldest"),
        ("get", "/api/stores/{store}/data/newest"),
        ("get", "/api/stores/{store}/data/range"),
        ("get", "/api/stores/{store}/ws/write"),
        ("get", "/api/stores/{store}/ws/read"),
        ("get", "/api/stores/{store}/consumers"),
        ("get", "/api/stores/{store}/consumers/{name}"),
        ("delete", "/api/stores/{store}/consumers/{name}"),
        ("post", "/api/stores/{store}/ws/connections"),
        ("get", "/api/stores/{store}/ws/connections"),
        ("get", "/api/stores/{store}/ws/connections/{id}"),
        ("delete", "/api/stores/{store}/ws/connections/{id}"),
        ("get", "/api/calc"),
        ("post", "/api/stores/{store}/mqtt/connections"),
        ("get", "/api/stores/{store}/mqtt/connections"),
        ("get", "/api/stores/{store}/mqtt/connections/{id}"),
        ("delete", "/api/stores/{store}/mqtt/connections/{id}"),
        ("post", "/api/stores/{store}/influx/connections"),
        ("get", "/api/stores/{store}/influx/connections"),
        ("get", "/api/stores/{store}/influx/connections/{id}"),
        ("delete", "/api/stores/{store}/influx/connections/{id}"),
        ("post", "/api/stores/{store}/truncate"),
        ("get", "/api/stores/{store}/rollups"),
        ("post", "/api/stores/{store}/rollups"),
        ("delete", "/api/stores/{store}/rollups/{rollup}"),
    ];
    for (method, path) in expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| {
            let methods = ["get", "post", "put", "delete", "patch"];
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| methods.contains(&k.as_str()))
                .count()
        })
        .sum();
    assert_eq!(
        documented,
        expected.len(),
        "every documented route is listed here"
    );
    // And every documented route is really served (no 404 route_not_found).
    for (method, path) in expected {
        let url = path
            .replace("{store}", "nope")
            .replace("{ts}", "1")
            .replace("{id}", "0000abcd");
        let r = s.req(&method.to_uppercase(), &url).send();
        assert_ne!(r.status, 404, "{method} {url}: {}", r.text());
        assert_ne!(r.status, 405, "{method} {url}");
    }
}
