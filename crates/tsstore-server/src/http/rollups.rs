//! Rollups over REST: a store's list (its key), and adding or removing
//! one (the admin key: each is a ring on disk, counted like a store in
//! the server's footprint). Reading at a rollup's resolution is
//! `resolution=` on `newest` and `range` (`read`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tsstore::{RollupConfig, RollupInfo};
#[cfg(test)]
use utoipa::ToSchema;
#[cfg(test)]
use utoipa_axum::router::OpenApiRouter;
#[cfg(test)]
use utoipa_axum::routes;

#[cfg(test)]
use super::ErrorBody;
use super::error::ApiResult;
use super::extract::{AdminAccess, Body, StoreAccess, content_type, json_body};
use crate::app::App;
use crate::provision;
use crate::records::RecordError;

#[cfg(test)]
pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_rollups, add_rollup))
        .routes(routes!(remove_rollup))
}

/// A rollup as a create or add request gives it.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RollupIn {
    /// The window: `1m`, `1h`, `1d`, …
    window: String,
    /// For numeric fields (`avg`, `min`, `max`, `count`, `sum`, `first`,
    /// `last`); default avg, min, max, count. Other fields keep `last`.
    functions: Option<Vec<String>>,
    /// How long to keep (`365d`); sizes the ring from the store's newest
    /// record. Default one week.
    keep: Option<String>,
    /// Instead of `keep`: the ring's blocks.
    #[serde(default, deserialize_with = "crate::json_int::optional")]
    num_blocks: Option<u32>,
}

impl RollupIn {
    pub fn config(&self) -> ApiResult<RollupConfig> {
        let functions = self.functions.as_ref().map(|f| f.join("+"));
        Ok(RollupConfig::parse(
            &self.window,
            functions.as_deref(),
            self.keep.as_deref(),
            self.num_blocks,
        )?)
    }
}

/// A rollup's ring: what it computes, its footprint and its reach.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct RollupOut {
    window: String,
    window_ns: i64,
    functions: Vec<&'static str>,
    num_blocks: u32,
    /// Fixed at creation.
    capacity_bytes: u64,
    bytes_used: u64,
    /// End of the oldest and newest window held (null: none yet).
    oldest_timestamp: Option<i64>,
    newest_timestamp: Option<i64>,
    /// Windows ending at or before this are written; later ones are
    /// aggregated from raw when read.
    written_to: Option<i64>,
    /// Whether the raw ring dropped records of the oldest windows (it
    /// wrapped): the rollup is their only copy.
    only_copy: bool,
    /// The last failure writing it, until it next succeeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl RollupOut {
    /// `raw`: the store's own figures.
    pub fn new(info: RollupInfo, raw: &tsstore::Stats) -> RollupOut {
        let start = info
            .oldest_timestamp
            .map(|e| e.saturating_sub(info.window_ns));
        // Raw drops records only once it has filled; until then a window
        // starting before its oldest record simply had none earlier.
        let filled = raw.active_blocks >= raw.num_blocks;
        RollupOut {
            only_copy: match (start, raw.oldest_timestamp) {
                (Some(start), Some(oldest)) => filled && start < oldest,
                (Some(_), None) => true,
                _ => false,
            },
            window: info.window,
            window_ns: info.window_ns,
            functions: info.functions.iter().map(|f| f.as_str()).collect(),
            num_blocks: info.num_blocks,
            capacity_bytes: info.capacity_bytes,
            bytes_used: info.bytes_used,
            oldest_timestamp: info.oldest_timestamp,
            newest_timestamp: info.newest_timestamp,
            written_to: info.written_to,
            error: info.error,
        }
    }

    /// Every rollup of `store`, finest first.
    pub fn of(store: &tsstore::Store) -> Vec<RollupOut> {
        let rollups = store.rollups();
        if rollups.is_empty() {
            return Vec::new();
        }
        let raw = store.stats();
        rollups
            .into_iter()
            .map(|info| RollupOut::new(info, &raw))
            .collect()
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct RollupList {
    rollups: Vec<RollupOut>,
}

/// The store's rollups, finest first.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/rollups", tag = "stores",
    params(("store" = String, Path)),
    responses((status = 200, body = RollupList), (status = 401, body = ErrorBody))))]
pub(super) async fn list_rollups(access: StoreAccess) -> Json<RollupList> {
    Json(RollupList {
        rollups: RollupOut::of(&access.open.store),
    })
}

/// Add a rollup (admin key): a ring of one row per window, filled from
/// the records the store holds now, then as windows close.
#[cfg_attr(test, utoipa::path(post, path = "/api/stores/{store}/rollups", tag = "stores",
    params(("store" = String, Path)), request_body = RollupIn,
    responses((status = 201, body = RollupOut), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 507, body = ErrorBody))))]
pub(super) async fn add_rollup(
    State(app): State<App>,
    _admin: AdminAccess,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<RollupOut>)> {
    let req: RollupIn = json_body(content_type(&headers).as_deref(), &body)?;
    let config = req.config()?;
    tsstore::validate_store_name(&name)?;
    let open = app.registry.get(&name).await?;
    let base = app.registry.base().to_path_buf();
    let (max_total, max_store) = (app.registry.max_total_bytes(), app.limits.max_store_bytes);
    let info = tokio::task::spawn_blocking(move || {
        let store = &open.store;
        let geometry = store.config();
        let blocks = store.rollup_blocks(&config);
        // The store's size with its rollups, this one included.
        let rings = store.rollups().into_iter().map(|r| r.num_blocks);
        provision::footprint_with_rings(&geometry, rings.chain([blocks]), max_store)?;
        let bytes = provision::rollup_ring_bytes(&geometry, blocks)?;
        provision::check_room_for(&base, bytes, max_total)?;
        let info = store.add_rollup(&config)?;
        Ok::<_, super::error::ApiError>(RollupOut::new(info, &store.stats()))
    })
    .await
    .map_err(|e| RecordError::Task(e.into()))??;
    tracing::info!(store = %name, window = %info.window, "rollup added");
    Ok((StatusCode::CREATED, Json(info)))
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct RollupRemoved {
    status: &'static str,
    store: String,
    window: String,
}

/// Remove a rollup and its ring (admin key).
#[cfg_attr(test, utoipa::path(delete, path = "/api/stores/{store}/rollups/{rollup}", tag = "stores",
    params(("store" = String, Path), ("rollup" = String, Path, description = "its window: 1h")),
    responses((status = 200, body = RollupRemoved), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody))))]
pub(super) async fn remove_rollup(
    State(app): State<App>,
    _admin: AdminAccess,
    Path((name, window)): Path<(String, String)>,
) -> ApiResult<Json<RollupRemoved>> {
    let window_ns = tsstore::parse_duration_ns(&window)
        .map_err(|e| RecordError::InvalidParameter(format!("window: {e}")))?;
    tsstore::validate_store_name(&name)?;
    let open = app.registry.get(&name).await?;
    tokio::task::spawn_blocking(move || open.store.remove_rollup(window_ns))
        .await
        .map_err(|e| RecordError::Task(e.into()))??;
    tracing::info!(store = %name, %window, "rollup removed");
    Ok(Json(RollupRemoved {
        status: "removed",
        store: name,
        window,
    }))
}
