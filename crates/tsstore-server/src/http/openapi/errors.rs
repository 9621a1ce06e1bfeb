//! The error side of the document: what each operation can run into
//! (`Meets`), one example of every error it may meet, passed through the
//! same `From` impls the server answers with (`http::error`), and the
//! responses that makes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tsstore::{Error as StoreError, SchemaError};

use crate::auth::AuthError;
use crate::consumers::ConsumerError;
use crate::http::error::ApiError;
use crate::keys::KeyError;
use crate::outbound::{OutboundError, SpecError};
use crate::provision::ProvisionError;
use crate::records::RecordError;
use crate::registry::{RegistryError, TaskFailed};

/// What an operation can run into; each has the examples of its errors.
#[derive(Debug, Clone, Copy)]
pub(super) enum Meets {
    /// Every request: the request timeout, internal faults.
    Always,
    /// `{store}` in the path and a store key.
    StoreKey,
    AdminKey,
    /// The store is opened (lazily) for the request.
    OpenStore,
    /// A request body is read.
    Body,
    /// The body must be JSON of the operation's shape.
    JsonBody,
    CreateStore,
    DeleteStore,
    /// Records are taken in.
    Intake,
    /// A list read with options.
    Read,
    /// `{ts}` in the path, one record by time.
    ByTime,
    Schema,
    /// Files of the store are touched (reset, stats, listing).
    Disk,
    /// A WebSocket upgrade, and for live reads the reader bound.
    Upgrade,
    /// A geometry to compute with.
    Calc,
    /// Outbound connections: their settings, bound and ids.
    Connections,
    /// Rewinding a store's head (`after`, the engine's truncate).
    Truncate,
    /// Durable live readers: their names, bound and cursor files.
    Consumers,
    /// Adding or removing a rollup: its settings, the room for its ring.
    Rollups,
}

/// Every engine error but `ReadOnly`: the server opens every store for
/// writing, so it never meets one (it would answer 500 `store_read_only`).
#[cfg(test)]
fn store_error_examples() -> Vec<StoreError> {
    use std::io::{Error as IoError, ErrorKind};
    vec![
        StoreError::TimestampOutOfOrder {
            timestamp: 1,
            newest: 2,
        },
        StoreError::InvalidTimestamp(-1),
        StoreError::TimestampInFuture {
            timestamp: i64::MAX,
            now: 1,
            max_skew_ns: 1,
        },
        StoreError::TimestampOverflow {
            value: i64::MAX,
            precision: "s",
        },
        StoreError::TruncateIncomplete(1),
        StoreError::NotFound(1),
        StoreError::StoreExists("s".into()),
        StoreError::StoreNotFound("s".into()),
        StoreError::RollupExists("1h".into()),
        StoreError::RollupNotFound("1h".into()),
        StoreError::InUse("s".into()),
        StoreError::InvalidName {
            name: "?".into(),
            reason: "r",
        },
        StoreError::InvalidConfig("c".into()),
        StoreError::TooLarge { size: 2, max: 1 },
        StoreError::InvalidData {
            data_type: "text",
            reason: "r".into(),
        },
        StoreError::ReadOverrun,
        StoreError::Corrupt("c".into()),
        StoreError::Schema(SchemaError::NoSchema),
        StoreError::Json(serde_json::from_str::<u8>("x").unwrap_err()),
        StoreError::Io(IoError::from(ErrorKind::StorageFull)),
        StoreError::Io(IoError::from(ErrorKind::Other)),
    ]
}

/// A footprint refused (`provision::footprint_with_rings`): what creating a
/// store and adding a rollup both meet.
fn footprint_refusals() -> Vec<ApiError> {
    vec![
        ProvisionError::TooLarge { bytes: 2, max: 1 }.into(),
        ProvisionError::TotalTooLarge {
            bytes: 2,
            used: 1,
            max: 2,
        }
        .into(),
        ProvisionError::NoRoom { bytes: 2, free: 1 }.into(),
    ]
}

fn throttled() -> ApiError {
    AuthError::Throttled {
        retry_after: std::time::Duration::from_secs(1),
    }
    .into()
}

fn examples(meets: Meets) -> Vec<ApiError> {
    use StoreError as E;
    let io = || E::Io(std::io::Error::from(std::io::ErrorKind::Other));
    let store = |errors: Vec<StoreError>| errors.into_iter().map(ApiError::from).collect();
    match meets {
        Meets::Always => vec![
            ApiError::timeout(std::time::Duration::from_secs(1)),
            RegistryError::Poisoned.into(),
        ],
        Meets::StoreKey => vec![
            ApiError::invalid_path("p"),
            AuthError::MissingKey.into(),
            AuthError::BadKey.into(),
            AuthError::InvalidStoreName(E::InvalidName {
                name: "?".into(),
                reason: "r",
            })
            .into(),
            AuthError::KeyFile(KeyError::UnknownId("k".into())).into(),
            AuthError::Poisoned.into(),
            throttled(),
        ],
        Meets::AdminKey => vec![
            AuthError::MissingAdminKey.into(),
            AuthError::BadAdminKey.into(),
            throttled(),
        ],
        Meets::OpenStore => vec![
            RegistryError::Closing("s".into()).into(),
            RegistryError::Store(E::InUse("s".into())).into(),
            RegistryError::Store(E::StoreNotFound("s".into())).into(),
            RegistryError::Store(E::Corrupt("c".into())).into(),
            RegistryError::Store(io()).into(),
            RegistryError::Task(TaskFailed::Panicked).into(),
        ],
        Meets::Body => vec![
            ApiError::payload_too_large(),
            ApiError::unreadable_body("b"),
        ],
        Meets::JsonBody => vec![ApiError::json_expected(None), ApiError::invalid_json("j")],
        Meets::CreateStore => {
            let mut out = footprint_refusals();
            out.extend([
                ProvisionError::Keys(KeyError::UnknownId("k".into())).into(),
                ProvisionError::Store(E::StoreExists("s".into())).into(),
                ProvisionError::Store(E::InvalidName {
                    name: "?".into(),
                    reason: "r",
                })
                .into(),
                ProvisionError::Store(E::InvalidConfig("c".into())).into(),
                ProvisionError::Store(E::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)))
                    .into(),
                ProvisionError::Store(io()).into(),
                RegistryError::Keys(KeyError::UnknownId("k".into())).into(),
            ]);
            out
        }
        Meets::DeleteStore => vec![
            // With the admin key: names are no secret from the admin.
            RegistryError::Store(E::StoreNotFound("s".into())).into(),
            RegistryError::Closing("s".into()).into(),
            RegistryError::Busy("s".into()).into(),
            RegistryError::Store(io()).into(),
            RegistryError::Task(TaskFailed::Panicked).into(),
        ],
        Meets::Intake => {
            let mut out: Vec<ApiError> = vec![
                RecordError::InvalidJson("j".into()).into(),
                RecordError::MissingData.into(),
                RecordError::InvalidData("d".into()).into(),
                RecordError::UnsupportedMediaType("m".into()).into(),
                RecordError::EmptyBatch.into(),
                RecordError::InvalidParameter("p".into()).into(),
                RecordError::EmptyBatch.in_batch(1).into(),
            ];
            // What an insert can meet of the engine's errors.
            let inserts = store_error_examples().into_iter().filter(|e| {
                matches!(
                    e,
                    E::TimestampOutOfOrder { .. }
                        | E::InvalidTimestamp(_)
                        | E::TimestampInFuture { .. }
                        | E::TimestampOverflow { .. }
                        | E::TruncateIncomplete(_)
                        | E::TooLarge { .. }
                        | E::InvalidData { .. }
                        | E::Schema(SchemaError::NoSchema)
                )
            });
            out.extend(store(inserts.collect()));
            out.extend(store(vec![
                E::Schema(SchemaError::UnknownField("f".into())),
                io(),
            ]));
            out
        }
        Meets::Read => {
            let mut out: Vec<ApiError> = vec![
                RecordError::InvalidQuery(
                    serde_urlencoded::from_str::<Vec<(String, u8)>>("a=b").unwrap_err(),
                )
                .into(),
                RecordError::InvalidParameter("p".into()).into(),
                RecordError::LimitTooLarge { limit: 2, max: 1 }.into(),
                RecordError::InvalidAggregation(tsstore::aggregate::AggError::MissingWindow).into(),
                RecordError::AggregationUnsupported(tsstore::DataType::Text).into(),
                RecordError::ScanLimitExceeded(1).into(),
                RecordError::Abandoned.into(),
                RecordError::Task(TaskFailed::Panicked).into(),
            ];
            out.extend(store(vec![
                E::ReadOverrun,
                E::Corrupt("c".into()),
                E::RollupNotFound("1h".into()),
                io(),
            ]));
            out
        }
        Meets::Rollups => {
            let mut out: Vec<ApiError> = vec![
                RecordError::InvalidParameter("p".into()).into(),
                RecordError::Task(TaskFailed::Panicked).into(),
            ];
            out.extend(footprint_refusals());
            out.extend(store(vec![
                E::InvalidName {
                    name: "?".into(),
                    reason: "r",
                },
                E::InvalidConfig("c".into()),
                E::RollupExists("1h".into()),
                E::RollupNotFound("1h".into()),
                E::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)),
                io(),
            ]));
            out
        }
        Meets::ByTime => {
            let mut out = vec![
                ApiError::invalid_timestamp("t"),
                RecordError::InvalidParameter("p".into()).into(),
            ];
            out.extend(store(vec![
                E::NotFound(1),
                E::ReadOverrun,
                E::Corrupt("c".into()),
                io(),
            ]));
            out
        }
        Meets::Schema => store(vec![
            E::Schema(SchemaError::NotASchemaStore("json")),
            E::Schema(SchemaError::NoFields),
            E::Schema(SchemaError::FieldDropped {
                name: "f".into(),
                index: 1,
            }),
            E::Schema(SchemaError::BadFile(
                tsstore::SchemaFileError::NoCurrentVersion(2),
            )),
            io(),
        ]),
        Meets::Disk => store(vec![io()]),
        Meets::Calc => vec![
            RecordError::InvalidParameter("p".into()).into(),
            E::InvalidConfig("c".into()).into(),
        ],
        Meets::Truncate => {
            let mut out = vec![RecordError::InvalidParameter("p".into()).into()];
            out.extend(store(vec![E::TruncateIncomplete(1), io()]));
            out
        }
        Meets::Upgrade => vec![
            ApiError::websocket_required(),
            ApiError::too_many_readers(1),
        ],
        Meets::Connections => vec![
            OutboundError::Spec(SpecError::Header(crate::net::HeaderError::TooMany)).into(),
            OutboundError::Spec(SpecError::InvalidOption(RecordError::InvalidParameter(
                "p".into(),
            )))
            .into(),
            OutboundError::TooMany {
                store: "s".into(),
                max: 1,
            }
            .into(),
            OutboundError::NotFound("i".into()).into(),
            OutboundError::Persist {
                path: "p".into(),
                source: std::io::Error::other("full").into(),
            }
            .into(),
            OutboundError::Poisoned.into(),
        ],
        Meets::Consumers => vec![
            ConsumerError::InvalidName("?".into()).into(),
            ConsumerError::TooMany { max: 1 }.into(),
            ConsumerError::NotFound("c".into()).into(),
            ConsumerError::Io(std::io::Error::other("full")).into(),
            RecordError::Task(TaskFailed::Panicked).into(),
        ],
    }
}

/// What each operation (by its `operationId`, the handler's name) meets.
pub(super) fn operation_meets(operation_id: &str) -> Option<&'static [Meets]> {
    use Meets::*;
    Some(match operation_id {
        "health" | "metrics" | "openapi" => &[Always],
        "calc" => &[Always, Calc],
        "list_stores" => &[Always, Disk],
        "create_store" => &[Always, AdminKey, Body, JsonBody, CreateStore],
        "delete_store" => &[Always, StoreKey, AdminKey, DeleteStore],
        "reset_store" | "store_stats" => &[Always, StoreKey, OpenStore, Disk],
        "truncate_store" => &[Always, AdminKey, OpenStore, Truncate],
        "list_rollups" => &[Always, StoreKey, OpenStore, Disk],
        "add_rollup" => &[Always, AdminKey, OpenStore, Body, JsonBody, Rollups],
        "remove_rollup" => &[Always, AdminKey, OpenStore, Rollups],
        "get_schema" => &[Always, StoreKey, OpenStore, Schema],
        "put_schema" => &[Always, StoreKey, OpenStore, Body, JsonBody, Schema],
        "insert" | "insert_batch" => &[Always, StoreKey, OpenStore, Body, Intake],
        "get_by_time" | "delete_by_time" => &[Always, StoreKey, OpenStore, ByTime],
        "oldest" | "newest" | "range" => &[Always, StoreKey, OpenStore, Read],
        "ws_write" => &[Always, StoreKey, OpenStore, Upgrade],
        "ws_read" => &[Always, StoreKey, OpenStore, Read, Upgrade, Consumers],
        "list_consumers" | "get_consumer" | "delete_consumer" => {
            &[Always, StoreKey, OpenStore, Consumers]
        }
        "create_connection" | "create_mqtt_connection" | "create_influx_connection" => &[
            Always,
            StoreKey,
            OpenStore,
            Body,
            JsonBody,
            Connections,
            Read,
        ],
        "list_connections"
        | "get_connection"
        | "delete_connection"
        | "list_mqtt_connections"
        | "get_mqtt_connection"
        | "delete_mqtt_connection"
        | "list_influx_connections"
        | "get_influx_connection"
        | "delete_influx_connection" => &[Always, StoreKey, OpenStore, Connections],
        _ => return None,
    })
}

/// Error statuses of an operation, each with the codes it may carry.
fn error_statuses(meets: &[Meets]) -> BTreeMap<u16, BTreeSet<&'static str>> {
    let mut out: BTreeMap<u16, BTreeSet<&'static str>> = BTreeMap::new();
    for &m in meets {
        for e in examples(m) {
            out.entry(e.status.as_u16()).or_default().insert(e.code);
        }
    }
    out
}

/// Replaces the operation's error responses by those `meets` gives.
pub(super) fn document_errors(op: &mut Value, meets: &[Meets]) {
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    // Success as annotated (2xx, or 101 for a WebSocket upgrade); every
    // error from the mapping.
    responses.retain(|status, _| status.starts_with('2') || status == "101");
    for (status, codes) in error_statuses(meets) {
        let codes: Vec<&str> = codes.into_iter().collect();
        responses.insert(
            status.to_string(),
            json!({
                "description": format!("`code`: {}", codes.join(", ")),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant of every error enum is in some example list, so the
    /// documented statuses cover everything the mapping can answer.
    #[test]
    fn examples_cover_every_variant() {
        let all = [
            Meets::Always,
            Meets::StoreKey,
            Meets::AdminKey,
            Meets::OpenStore,
            Meets::Body,
            Meets::JsonBody,
            Meets::CreateStore,
            Meets::DeleteStore,
            Meets::Intake,
            Meets::Read,
            Meets::ByTime,
            Meets::Schema,
            Meets::Disk,
            Meets::Upgrade,
            Meets::Connections,
            Meets::Rollups,
        ];
        let codes: BTreeSet<&str> = all
            .iter()
            .flat_map(|&m| examples(m))
            .map(|e| e.code)
            .collect();
        let engine: Vec<&str> = store_error_examples()
            .into_iter()
            .map(|e| ApiError::from(e).code)
            .collect();
        for code in engine {
            assert!(
                codes.contains(code),
                "engine code {code} is not documented anywhere"
            );
        }
        for code in [
            "missing_api_key",
            "invalid_api_key",
            "missing_admin_key",
            "invalid_admin_key",
            "store_closing",
            "store_busy",
            "store_too_large",
            "payload_too_large",
            "unsupported_content_type",
            "scan_limit_exceeded",
            "timeout",
            "insufficient_storage",
        ] {
            assert!(codes.contains(code), "{code}");
        }
    }

    #[test]
    fn store_routes_document_401_and_bad_names() {
        let statuses = error_statuses(operation_meets("insert").unwrap());
        for s in [400, 401, 409, 413, 415, 500, 503] {
            assert!(statuses.contains_key(&s), "{s}: {statuses:?}");
        }
        assert!(statuses[&400].contains("invalid_store_name"));
        assert!(
            error_statuses(operation_meets("health").unwrap())
                .keys()
                .all(|s| *s >= 500)
        );
    }
}
