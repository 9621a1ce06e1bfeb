//! `GET /api/calc`: what a store of a given geometry costs on disk and
//! holds, as `tsstore calc` tells it (the engine's `Footprint` and
//! `Capacity`). Needs no key: it touches no store. The console's
//! create-store form asks it as the user types.

use axum::Json;
use axum::extract::RawQuery;
use serde::Serialize;
#[cfg(test)]
use utoipa::ToSchema;
#[cfg(test)]
use utoipa_axum::router::OpenApiRouter;
#[cfg(test)]
use utoipa_axum::routes;

use super::error::ApiResult;
#[cfg(test)]
use crate::app::App;
use crate::records::{QueryParams, RecordError};

#[cfg(test)]
pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(calc))
}

/// A geometry's footprint, and with `object_size` how many objects it
/// holds, and with `every` how much time that is.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct CalcOut {
    /// raw or compressed.
    encoding: &'static str,
    num_blocks: u32,
    data_block_size: u32,
    index_block_size: u32,
    data_bytes: u64,
    index_bytes: u64,
    meta_bytes: u64,
    total_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_size: Option<u64>,
    /// Objects packed in one block (0 when an object spans blocks).
    #[serde(skip_serializing_if = "Option::is_none")]
    objects_per_block: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocks_per_object: Option<u64>,
    /// Objects the full ring holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_objects: Option<u64>,
    /// Seconds of history at one object every `every`.
    #[serde(skip_serializing_if = "Option::is_none")]
    history_seconds: Option<u64>,
    /// With `rollups`: each rollup's ring, and how far back it reaches.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rollups: Vec<RollupPlanOut>,
    /// The store's footprint with its rollups.
    #[serde(skip_serializing_if = "Option::is_none")]
    total_bytes_with_rollups: Option<u64>,
}

/// A rollup's ring as planned (`tsstore::RollupPlan`).
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct RollupPlanOut {
    window: String,
    num_blocks: u32,
    total_bytes: u64,
    /// Windows the ring holds.
    rows: u64,
    history_seconds: u64,
}

/// The rollups of `rollups=1m::7d,1h::365d` planned for `geometry`.
fn rollup_plans(
    q: &QueryParams,
    geometry: &tsstore::Config,
    object_size: Option<u64>,
) -> ApiResult<Vec<RollupPlanOut>> {
    let Some(list) = q.get("rollups") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for spec in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let plan = spec
            .parse::<tsstore::RollupConfig>()?
            .plan(geometry, object_size)?;
        out.push(RollupPlanOut {
            window: plan.window,
            num_blocks: plan.num_blocks,
            total_bytes: plan.total_bytes,
            rows: plan.rows,
            history_seconds: (plan.history_ns / 1_000_000_000).max(0) as u64,
        });
    }
    Ok(out)
}

fn number<T: std::str::FromStr>(q: &QueryParams, name: &str) -> Result<Option<T>, RecordError> {
    q.get(name)
        .map(|v| {
            v.parse().map_err(|_| {
                RecordError::InvalidParameter(format!("{name}: '{v}' is not a whole number"))
            })
        })
        .transpose()
}

/// Footprint and capacity of a geometry: `num_blocks`, `data_block_size`
/// (default 4096), `index_block_size` (default 4096), and optionally
/// `object_size` (bytes of one payload) and `every` (a duration such as
/// `10s`: one object that often).
#[cfg_attr(test, utoipa::path(get, path = "/api/calc", tag = "stores",
    params(
        ("num_blocks" = u64, Query, minimum = 1, maximum = 4294967295.0),
        ("data_block_size" = Option<u32>, Query, minimum = 64, maximum = 1073741824,
            description = "a power of two"),
        ("index_block_size" = Option<u32>, Query, minimum = 64, maximum = 1073741824,
            description = "a power of two"),
        ("object_size" = Option<u64>, Query),
        ("every" = Option<String>, Query, description = "e.g. 10s, 1m; needs object_size"),
        ("encoding" = Option<String>, Query, description = "raw (default) or compressed"),
        ("ratio" = Option<f64>, Query,
            description = "compressed: how many times the readings compress (default 10)"),
        ("rollups" = Option<String>, Query,
            description = "rollups to plan, WINDOW[:FUNCTIONS[:KEEP]] separated by commas: 1m::7d,1h::365d")),
    responses((status = 200, body = CalcOut))))]
pub(super) async fn calc(RawQuery(query): RawQuery) -> ApiResult<Json<CalcOut>> {
    let q = QueryParams::parse(query.as_deref())?;
    let defaults = tsstore::Config::default();
    let config = tsstore::Config {
        num_blocks: number(&q, "num_blocks")?.ok_or_else(|| {
            RecordError::InvalidParameter("num_blocks: required (a whole number)".into())
        })?,
        data_block_size: number(&q, "data_block_size")?.unwrap_or(defaults.data_block_size),
        index_block_size: number(&q, "index_block_size")?.unwrap_or(defaults.index_block_size),
        data_type: tsstore::DataType::Binary,
        encoding: q.get("encoding").unwrap_or("raw").parse()?,
    };
    let ratio = match q.get("ratio") {
        None => 10.0,
        Some(v) => v
            .parse::<f64>()
            .map_err(|_| RecordError::InvalidParameter(format!("ratio: '{v}' is not a number")))?,
    };
    let footprint = tsstore::Footprint::of(&config)?;
    let mut out = CalcOut {
        encoding: config.encoding.as_str(),
        num_blocks: config.num_blocks,
        data_block_size: config.data_block_size,
        index_block_size: config.index_block_size,
        data_bytes: footprint.data_bytes,
        index_bytes: footprint.index_bytes,
        meta_bytes: footprint.meta_bytes,
        total_bytes: footprint.total_bytes,
        object_size: None,
        objects_per_block: None,
        blocks_per_object: None,
        max_objects: None,
        history_seconds: None,
        rollups: Vec::new(),
        total_bytes_with_rollups: None,
    };
    let size = number::<u64>(&q, "object_size")?;
    out.rollups = rollup_plans(&q, &config, size)?;
    if !out.rollups.is_empty() {
        let rolled: u64 = out.rollups.iter().map(|r| r.total_bytes).sum();
        out.total_bytes_with_rollups = Some(footprint.total_bytes + rolled);
    }
    let every = q
        .get("every")
        .map(tsstore::parse_duration)
        .transpose()
        .map_err(|e| RecordError::InvalidParameter(format!("every: {e}")))?;
    let Some(size) = size else {
        if every.is_some() {
            return Err(RecordError::InvalidParameter("every needs object_size".into()).into());
        }
        return Ok(Json(out));
    };
    let capacity = tsstore::Capacity::expected(&config, size, ratio)?;
    out.object_size = Some(size);
    out.objects_per_block = Some(capacity.objects_per_block);
    out.blocks_per_object = Some(capacity.blocks_per_object);
    out.max_objects = Some(capacity.max_objects);
    out.history_seconds = every.map(|d| capacity.history(d).as_secs());
    Ok(Json(out))
}
