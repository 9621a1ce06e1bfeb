//! Store administration: create (admin key), list (open), and per store
//! delete, reset, stats and schema.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tsstore::{DataType, Field, FieldType, Store};
#[cfg(test)]
use utoipa::ToSchema;
#[cfg(test)]
use utoipa_axum::router::OpenApiRouter;
#[cfg(test)]
use utoipa_axum::routes;

#[cfg(test)]
use super::ErrorBody;
use super::error::ApiResult;
use super::extract::{AdminAccess, Body, DeleteAccess, StoreAccess, content_type, json_body};
use super::rollups::{RollupIn, RollupOut};
use crate::app::App;
use crate::provision::{self, StoreRequest};
use crate::records::{QueryParams, RecordError};
use crate::store_settings::StoreSettings;

#[cfg(test)]
pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(create_store, list_stores))
        .routes(routes!(delete_store))
        .routes(routes!(reset_store))
        .routes(routes!(truncate_store))
        .routes(routes!(store_stats))
        .routes(routes!(get_schema, put_schema))
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateStore {
    /// 1–64 of `A-Z a-z 0-9 _ -`, not starting with `-`.
    name: String,
    #[serde(default, deserialize_with = "crate::json_int::optional")]
    num_blocks: Option<u32>,
    #[serde(default, deserialize_with = "crate::json_int::optional")]
    data_block_size: Option<u32>,
    #[serde(default, deserialize_with = "crate::json_int::optional")]
    index_block_size: Option<u32>,
    /// binary, text, json (default) or schema.
    data_type: Option<String>,
    /// raw (default: ts-store's layout) or compressed (records kept as
    /// zstd frames: about ten times the readings in the same footprint).
    encoding: Option<String>,
    /// Client timestamps further than this ahead of the server clock are
    /// refused (`1h`, `24h`; `0` turns the guard off). Default: the
    /// server's `max_future_skew` (24h).
    max_future_skew: Option<String>,
    /// Rollups to keep from the start (json and schema stores); absent:
    /// the server's `rollups` setting, `[]`: none.
    rollups: Option<Vec<RollupIn>>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct CreatedStore {
    name: String,
    /// Shown only in this response; only its hash is kept.
    api_key: String,
    key_id: String,
}

/// Create a store (admin key). Geometry defaults come from the server's
/// configuration.
#[cfg_attr(test, utoipa::path(post, path = "/api/stores", tag = "stores", request_body = CreateStore,
    responses((status = 201, body = CreatedStore), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody))))]
pub(super) async fn create_store(
    State(app): State<App>,
    _admin: AdminAccess,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<CreatedStore>)> {
    let req: CreateStore = json_body(content_type(&headers).as_deref(), &body)?;
    tsstore::validate_store_name(&req.name)?;
    let config = StoreRequest {
        num_blocks: req.num_blocks,
        data_block_size: req.data_block_size,
        index_block_size: req.index_block_size,
        data_type: req.data_type.as_deref(),
        encoding: req.encoding.as_deref(),
    }
    .resolve(&app.store_defaults, app.limits.max_store_bytes)?;
    let mut settings = StoreSettings::new(req.max_future_skew.as_deref())?;
    settings.rollups = match &req.rollups {
        Some(rollups) => rollups
            .iter()
            .map(RollupIn::config)
            .collect::<ApiResult<_>>()?,
        None if matches!(config.data_type, DataType::Json | DataType::Schema) => {
            app.store_rollups.clone()
        }
        None => Vec::new(),
    };
    provision::footprint_with_rollups(&config, &settings.rollups, app.limits.max_store_bytes)?;
    let key = app.registry.create(&req.name, config, settings).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedStore {
            name: req.name,
            api_key: key.key,
            key_id: key.id,
        }),
    ))
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct StoreInfo {
    name: String,
    /// null when the store's header cannot be read (`error` says why).
    data_type: Option<&'static str>,
    /// raw or compressed.
    encoding: Option<&'static str>,
    num_blocks: Option<u32>,
    data_block_size: Option<u32>,
    index_block_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct StoreList {
    stores: Vec<StoreInfo>,
    count: usize,
}

/// Every store on disk, open or not: names and geometry, no secrets.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores", tag = "stores", responses((status = 200, body = StoreList))))]
pub(super) async fn list_stores(State(app): State<App>) -> ApiResult<Json<StoreList>> {
    let base = app.registry.base();
    let names = match Store::list(base) {
        Ok(n) => n,
        Err(tsstore::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let stores: Vec<StoreInfo> = names
        .into_iter()
        .map(|name| match Store::read_config(base, &name) {
            Ok(c) => StoreInfo {
                name,
                data_type: Some(c.data_type.as_str()),
                encoding: Some(c.encoding.as_str()),
                num_blocks: Some(c.num_blocks),
                data_block_size: Some(c.data_block_size),
                index_block_size: Some(c.index_block_size),
                error: None,
            },
            Err(e) => StoreInfo {
                name,
                data_type: None,
                encoding: None,
                num_blocks: None,
                data_block_size: None,
                index_block_size: None,
                error: Some(e.to_string()),
            },
        })
        .collect();
    let count = stores.len();
    Ok(Json(StoreList { stores, count }))
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct Done {
    status: &'static str,
    store: String,
}

/// Delete a store: stops its connections, waits for its requests, and
/// removes its directory. Takes the store's key, or the admin key, which
/// also removes a directory that is not a complete store (one the server
/// reported at start: no `meta.tsdb` or no `keys.json`).
#[cfg_attr(test, utoipa::path(delete, path = "/api/stores/{store}", tag = "stores",
    params(("store" = String, Path)),
    responses((status = 200, body = Done), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody))))]
pub(super) async fn delete_store(
    State(app): State<App>,
    access: DeleteAccess,
) -> ApiResult<Json<Done>> {
    let name = access.name;
    if access.admin && provision::incomplete(app.registry.base(), &name).is_some() {
        app.registry.remove_incomplete(&name).await?;
    } else {
        // Its outbound connections stop first (they hold the store open).
        app.outbound.stop_store(&name);
        app.registry.delete(&name).await?;
    }
    Ok(Json(Done {
        status: "deleted",
        store: name,
    }))
}

/// Empty the store in O(1); schema, keys and configuration stay.
#[cfg_attr(test, utoipa::path(post, path = "/api/stores/{store}/reset", tag = "stores",
    params(("store" = String, Path)),
    responses((status = 200, body = Done), (status = 401, body = ErrorBody))))]
pub(super) async fn reset_store(access: StoreAccess) -> ApiResult<Json<Done>> {
    access.open.store.reset()?;
    // Everything before is gone: durable readers start from the top.
    let open = &access.open;
    open.consumers.reset_all(open.store.path());
    Ok(Json(Done {
        status: "reset",
        store: access.name,
    }))
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct Truncated {
    store: String,
    /// Records removed; null when the store cannot tell cheaply (records
    /// already compressed into frames, blocks found at open).
    removed_records: Option<u64>,
    /// Blocks removed whole.
    removed_blocks: u32,
    /// The store's newest timestamp now (null: the store is empty).
    newest_timestamp: Option<i64>,
}

/// Remove every record newer than `after` (admin key): the store's head
/// moves back to its newest record at or before `after`, so server-stamped
/// inserts (which follow the newest record) work again after a
/// far-future timestamp got in. Crash-safe: after a power cut the store
/// is as before or as after. Records at or before `after` stay.
#[cfg_attr(test, utoipa::path(post, path = "/api/stores/{store}/truncate", tag = "stores",
    params(("store" = String, Path),
        ("after" = i64, Query, description = "records with a timestamp after this (ns) are removed")),
    responses((status = 200, body = Truncated), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody))))]
pub(super) async fn truncate_store(
    State(app): State<App>,
    _admin: AdminAccess,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Truncated>> {
    tsstore::validate_store_name(&name)?;
    let params = QueryParams::parse(query.as_deref())?;
    let after = params.timestamp("after")?.ok_or_else(|| {
        RecordError::InvalidParameter(
            "after: give the timestamp (ns) after which records are removed".into(),
        )
    })?;
    let open = app.registry.get(&name).await?;
    // Zeroes the removed blocks and syncs: off the async workers.
    let report = tokio::task::spawn_blocking(move || open.store.truncate_after(after))
        .await
        .map_err(|e| RecordError::Task(e.into()))??;
    tracing::info!(store = %name, after, removed_blocks = report.removed_blocks, "store truncated");
    Ok(Json(Truncated {
        store: name,
        removed_records: report.removed_records,
        removed_blocks: report.removed_blocks,
        newest_timestamp: report.newest_timestamp,
    }))
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct StoreStats {
    name: String,
    #[serde(flatten)]
    #[cfg_attr(test, schema(value_type = Object))]
    stats: tsstore::Stats,
    /// Each rollup's ring: footprint and reach (absent without rollups).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rollups: Vec<RollupOut>,
    /// Bytes per reading and how far back the store reaches, now and
    /// once full, per encoding (`Store::reach`); null when the newest
    /// readings could not be read.
    #[cfg_attr(test, schema(value_type = Option<Object>))]
    reach: Option<tsstore::Reach>,
}

/// Geometry, ring pointers, time span, object count and bytes used.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/stats", tag = "stores",
    params(("store" = String, Path)),
    responses((status = 200, body = StoreStats), (status = 401, body = ErrorBody))))]
pub(super) async fn store_stats(access: StoreAccess) -> Json<StoreStats> {
    // Reads the newest readings (and frames a sample): off the async
    // workers.
    let open = Arc::clone(&access.open);
    let reach = match tokio::task::spawn_blocking(move || open.store.reach()).await {
        Ok(Ok(reach)) => Some(reach),
        Ok(Err(e)) => {
            tracing::warn!(store = %access.name, error = %e, "stats: reach not measured");
            None
        }
        Err(e) => {
            tracing::warn!(store = %access.name, error = %e, "stats: reach task failed");
            None
        }
    };
    Json(StoreStats {
        stats: access.open.store.stats(),
        rollups: RollupOut::of(&access.open.store),
        reach,
        name: access.name,
    })
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct SchemaOut {
    /// 0 before the first schema is set.
    version: u32,
    #[cfg_attr(test, schema(value_type = Vec<Object>))]
    fields: Vec<Field>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SchemaIn {
    /// `[{index, name, type}]`: every existing field unchanged, plus new ones.
    #[cfg_attr(test, schema(value_type = Vec<Object>))]
    fields: Vec<FieldIn>,
}

/// A field as sent: its index a whole JSON number (`3` or `3.0`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldIn {
    #[serde(deserialize_with = "crate::json_int::required")]
    index: u32,
    name: String,
    #[serde(rename = "type")]
    field_type: FieldType,
}

fn schema_out(store: &Store) -> ApiResult<SchemaOut> {
    if store.data_type() != DataType::Schema {
        return Err(tsstore::Error::from(tsstore::SchemaError::NotASchemaStore(
            store.data_type().as_str(),
        ))
        .into());
    }
    Ok(match store.schema() {
        Some(s) => SchemaOut {
            version: s.version(),
            fields: s.fields().to_vec(),
        },
        None => SchemaOut {
            version: 0,
            fields: Vec::new(),
        },
    })
}

/// The current schema of a schema store.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/schema", tag = "stores",
    params(("store" = String, Path)),
    responses((status = 200, body = SchemaOut), (status = 400, body = ErrorBody))))]
pub(super) async fn get_schema(access: StoreAccess) -> ApiResult<Json<SchemaOut>> {
    Ok(Json(schema_out(&access.open.store)?))
}

/// Set or extend the schema (append-only: version N+1 keeps every field).
#[cfg_attr(test, utoipa::path(put, path = "/api/stores/{store}/schema", tag = "stores",
    params(("store" = String, Path)), request_body = SchemaIn,
    responses((status = 200, body = SchemaOut), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody))))]
pub(super) async fn put_schema(
    access: StoreAccess,
    Body(body): Body,
) -> ApiResult<Json<SchemaOut>> {
    let req: SchemaIn = json_body(access.content_type.as_deref(), &body)?;
    let fields = req.fields.into_iter();
    let fields = fields.map(|f| Field::new(f.index, &f.name, f.field_type));
    access.open.store.set_schema(fields.collect())?;
    Ok(Json(schema_out(&access.open.store)?))
}
