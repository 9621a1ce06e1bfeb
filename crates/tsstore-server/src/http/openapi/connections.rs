//! The bodies that create outbound connections, as strict as the checks
//! `outbound::spec` and `outbound::mqtt::spec` run, so that a body the
//! document calls valid is one the server takes: the required fields,
//! what each mode takes (`if`/`then` on `mode`), and options that need
//! another. `ca_file` is in the operations' text but
//! not in these schemas: it must name a PEM file on the server, which no
//! schema can state.

use serde_json::{Value, json};

use super::constraints::{or_null, parameter_schema};
use crate::limits::Limits;
use crate::net::MAX_HEADERS;
use crate::records::ack_window;

/// A URL of `scheme` to a plain host name and port, with a short path if
/// `path`: what every URL these bodies take looks like to a generator.
fn url_pattern(scheme: &str, path: bool) -> String {
    let path = if path {
        "(/[A-Za-z0-9._~-]{0,32}){0,4}"
    } else {
        ""
    };
    format!("^{scheme}://[A-Za-z0-9.-]{{1,64}}(:[1-9][0-9]{{0,3}})?{path}$")
}

/// Header names and values a connection or webhook may be given.
fn headers() -> Value {
    json!({
        "type": "object",
        "maxProperties": MAX_HEADERS,
        "propertyNames": {"pattern": "^[A-Za-z0-9-]{1,64}$"},
        // Header values may hold any byte but controls (obs-text too).
        "additionalProperties": {
            "type": "string",
            "pattern": "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]{0,256}$",
        },
    })
}

/// The read options of a feed (`FeedOptions`), and which need which.
fn feed_options(limits: &Limits, properties: &mut serde_json::Map<String, Value>) {
    properties.insert("filter".into(), json!({"type": "string"}));
    for name in [
        "filter_ignore_case",
        "agg_window",
        "agg_fields",
        "agg_default",
        "timestamps",
    ] {
        if let Some(schema) = parameter_schema(name, limits) {
            properties.insert(name.into(), schema);
        }
    }
    // Read as a query string's text is: `0` and `1` (numbers or text)
    // are booleans too.
    properties.insert(
        "filter_ignore_case".into(),
        json!({"anyOf": [
            {"type": "boolean"},
            {"type": "integer", "enum": [0, 1]},
            {"type": "string", "enum": ["true", "false", "1", "0"]},
            {"type": "null"},
        ]}),
    );
}

/// Where a sending connection starts (`json_int::optional_start`): a
/// timestamp, -1, `now`, `oldest`, a timestamp as a decimal string, or
/// null (absent).
fn start() -> Value {
    json!({"oneOf": [
        {"type": "integer", "minimum": -1},
        {"type": "string", "pattern": "^(now|oldest|-1|[0-9]{1,18})$"},
        {"type": "null"},
    ]})
}

/// `name` given (not null) needs `needed` given: the server reads a null
/// as absent, so `dependentRequired` (presence) would say too much.
fn needs(name: &str, needed: &str) -> Value {
    json!({
        "if": {"required": [name], "properties": {name: {"not": {"type": "null"}}}},
        "then": {"required": [needed], "properties": {needed: {"not": {"type": "null"}}}},
    })
}

/// `name` given (not null) needs `"ack": "app"`.
fn app_acks(name: &str) -> Value {
    json!({
        "if": {"required": [name], "properties": {name: {"not": {"type": "null"}}}},
        "then": {"required": ["ack"], "properties": {"ack": {"const": "app"}}},
    })
}

/// `POST /api/stores/{store}/ws/connections`.
pub(super) fn ws_connection(limits: &Limits) -> Value {
    let mut properties = serde_json::Map::new();
    properties.insert(
        "mode".into(),
        json!({"type": "string", "enum": ["push", "pull"]}),
    );
    properties.insert(
        "url".into(),
        json!({
            "type": "string",
            "pattern": url_pattern("wss?", true),
        }),
    );
    properties.insert("headers".into(), headers());
    properties.insert("from".into(), start());
    properties.insert(
        "ack".into(),
        json!({"type": "string", "enum": ["transport", "app"]}),
    );
    properties.insert(
        "window".into(),
        json!({"type": "integer", "minimum": 1, "maximum": ack_window::MAX_RECORDS}),
    );
    properties.insert(
        "window_bytes".into(),
        json!({"type": "integer", "minimum": 1, "maximum": ack_window::MAX_BYTES}),
    );
    properties.insert(
        "keepalive".into(),
        json!({"type": "string", "pattern": "^([1-9]|[1-5][0-9])[sm]$"}),
    );
    properties.insert(
        "format".into(),
        parameter_schema("format", limits).unwrap_or(json!({})),
    );
    for name in ["precision", "envelope", "timestamp_field"] {
        properties.insert(
            name.into(),
            parameter_schema(name, limits).unwrap_or(json!({})),
        );
    }
    properties.insert(
        "rules".into(),
        json!({
            "type": "array",
            "maxItems": 1,
            "description": "Alert rules, up to 32 with distinct names (the schema states one).",
            "items": {
                "type": "object",
                "required": ["name", "condition"],
                "additionalProperties": false,
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"},
                    "condition": {
                        "type": "string",
                        "pattern": "^[a-z]{1,8} (>|<|>=|<=|==|!=) -?[0-9]{1,6}$",
                    },
                    "cooldown": parameter_schema("agg_window", limits).unwrap_or(json!({})),
                    "webhook": {
                        "type": "string",
                        "pattern": url_pattern("https?", true),
                    },
                    "webhook_headers": headers(),
                },
                "if": {
                    "required": ["webhook_headers"],
                    "properties": {"webhook_headers": {"minProperties": 1}},
                },
                "then": {"required": ["webhook"]},
            },
        }),
    );
    feed_options(limits, &mut properties);
    nullable(&mut properties, &["url", "mode", "headers", "rules"]);
    let push_only = [
        "from",
        "window",
        "window_bytes",
        "rules",
        "filter",
        "filter_ignore_case",
        "agg_window",
        "agg_fields",
        "agg_default",
        "timestamps",
    ];
    json!({
        "type": "object",
        "required": ["url"],
        "additionalProperties": false,
        "properties": properties,
        "allOf": [
            needs("agg_fields", "agg_window"),
            needs("agg_default", "agg_window"),
            app_acks("window"),
            app_acks("window_bytes"),
            {
                "if": {"required": ["mode"], "properties": {"mode": {"const": "pull"}}},
                "then": {"properties": forbidden(&push_only)},
                "else": {"properties": forbidden(&["precision", "envelope", "timestamp_field"])},
            },
            {
                "if": {"required": ["timestamp_field"], "properties": {"timestamp_field": {"not": {"type": "null"}}}},
                "then": {"required": ["envelope"], "properties": {"envelope": {"const": "none"}}},
            },
            {
                "if": {"required": ["envelope"], "properties": {"envelope": {"const": "none"}}},
                "then": {"properties": {"ack": {"not": {"const": "app"}}}},
            },
        ],
    })
}

/// `POST /api/stores/{store}/mqtt/connections`.
pub(super) fn mqtt_connection(limits: &Limits) -> Value {
    let mut properties = serde_json::Map::new();
    properties.insert(
        "mode".into(),
        json!({"type": "string", "enum": ["publish", "subscribe"]}),
    );
    properties.insert(
        "broker_url".into(),
        json!({
            "type": "string",
            "pattern": url_pattern("(tcp|ssl|mqtt|mqtts)", false),
        }),
    );
    properties.insert(
        "topic".into(),
        json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}(/[A-Za-z0-9_-]{1,32}){0,4}$"}),
    );
    properties.insert("from".into(), json!({"type": "integer", "minimum": -1}));
    properties.insert("include_timestamp".into(), json!({"type": "boolean"}));
    properties.insert(
        "cursor_persist_interval".into(),
        json!({"type": "integer", "minimum": -1, "maximum": 86400}),
    );
    properties.insert(
        "client_id".into(),
        json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}),
    );
    properties.insert("username".into(), json!({"type": "string"}));
    properties.insert("password".into(), json!({"type": "string"}));
    properties.insert(
        "in_flight".into(),
        json!({"type": "integer", "minimum": 1, "maximum": crate::outbound::mqtt::spec::MAX_IN_FLIGHT}),
    );
    properties.insert(
        "timestamp_field".into(),
        json!({"type": "string", "pattern": "^[A-Za-z0-9_]{1,32}$"}),
    );
    properties.insert(
        "precision".into(),
        parameter_schema("precision", limits).unwrap_or(json!({})),
    );
    feed_options(limits, &mut properties);
    nullable(&mut properties, &["broker_url", "topic", "mode"]);
    let publish_only = [
        "from",
        "include_timestamp",
        "cursor_persist_interval",
        "in_flight",
        "filter",
        "filter_ignore_case",
        "agg_window",
        "agg_fields",
        "agg_default",
        "timestamps",
    ];
    json!({
        "type": "object",
        "required": ["broker_url", "topic"],
        "additionalProperties": false,
        "properties": properties,
        "allOf": [
            needs("agg_fields", "agg_window"),
            needs("agg_default", "agg_window"),
            needs("precision", "timestamp_field"),
            {
                "if": {"required": ["mode"], "properties": {"mode": {"const": "subscribe"}}},
                "then": {"properties": forbidden(&publish_only)},
                "else": {"properties": forbidden(&["timestamp_field", "precision"])},
            },
        ],
    })
}

/// An optional field sent as `null` is absent: every property but the
/// `required` ones may be null.
fn nullable(properties: &mut serde_json::Map<String, Value>, required: &[&str]) {
    for (name, schema) in properties.iter_mut() {
        if !required.contains(&name.as_str()) {
            *schema = or_null(schema.take());
        }
    }
}

/// Properties a mode does not take.
fn forbidden(names: &[&str]) -> Value {
    names
        .iter()
        .map(|n| (n.to_string(), json!(false)))
        .collect()
}

/// `POST /api/stores/{store}/influx/connections`.
pub(super) fn influx_connection(limits: &Limits) -> Value {
    use crate::outbound::influx::spec::MAX_BATCH;
    let name = json!({"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"});
    let mut properties = serde_json::Map::new();
    properties.insert(
        "url".into(),
        json!({"type": "string", "pattern": url_pattern("https?", true)}),
    );
    for secret in ["token", "username", "password"] {
        properties.insert(secret.into(), name.clone());
    }
    properties.insert("measurement".into(), name.clone());
    properties.insert(
        "tag_fields".into(),
        json!({"type": "array", "items": name, "maxItems": 64}),
    );
    properties.insert(
        "tags".into(),
        json!({
            "type": "object",
            "maxProperties": 64,
            "propertyNames": name,
            "additionalProperties": name,
        }),
    );
    properties.insert("from".into(), start());
    properties.insert(
        "batch_size".into(),
        json!({"type": "integer", "minimum": 1, "maximum": MAX_BATCH}),
    );
    properties.insert(
        "max_delay".into(),
        json!({"type": "string", "pattern": "^([1-9][0-9]{0,2}(ms|s)|[1-9]m|[1-5][0-9]m)$"}),
    );
    properties.insert("gzip".into(), json!({"type": "boolean"}));
    feed_options(limits, &mut properties);
    // Lists and maps take no null: absent is empty.
    nullable(&mut properties, &["url", "tag_fields", "tags"]);
    json!({
        "type": "object",
        "required": ["url"],
        "additionalProperties": false,
        "properties": properties,
        "allOf": [
            needs("agg_fields", "agg_window"),
            needs("agg_default", "agg_window"),
            needs("password", "username"),
            {
                "if": {"required": ["token"], "properties": {"token": {"not": {"type": "null"}}}},
                "then": {"properties": forbidden(&["username", "password"])},
            },
        ],
    })
}
