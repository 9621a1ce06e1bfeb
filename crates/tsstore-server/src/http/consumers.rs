//! The durable live readers of a store (`consumers`): list them, look at
//! one, delete one. A consumer comes to exist when a client first reads
//! with `ws/read?consumer=NAME`; counting each one's lag reads the index,
//! so it runs off the async workers.

use axum::Json;
use serde::Serialize;
#[cfg(test)]
use utoipa::ToSchema;
#[cfg(test)]
use utoipa_axum::router::OpenApiRouter;
#[cfg(test)]
use utoipa_axum::routes;

use super::error::ApiResult;
use super::extract::StoreAccess;
#[cfg(test)]
use crate::app::App;
use crate::consumers::ConsumerView;
use crate::records::RecordError;

#[cfg(test)]
pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_consumers))
        .routes(routes!(get_consumer, delete_consumer))
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct ConsumerList {
    consumers: Vec<ConsumerView>,
    count: usize,
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct ConsumerDeleted {
    status: &'static str,
    name: String,
}

/// The store's durable live readers: name, last acknowledged timestamp,
/// lag in records, connected or not, last seen.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/consumers", tag = "data",
    params(("store" = String, Path)), responses((status = 200, body = ConsumerList))))]
pub(super) async fn list_consumers(access: StoreAccess) -> ApiResult<Json<ConsumerList>> {
    let open = access.open;
    let consumers =
        tokio::task::spawn_blocking(move || open.consumers.list(open.store.path(), &open.store))
            .await
            .map_err(|e| RecordError::Task(e.into()))?;
    let count = consumers.len();
    Ok(Json(ConsumerList { consumers, count }))
}

/// One durable live reader.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/consumers/{name}", tag = "data",
    params(("store" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = ConsumerView))))]
pub(super) async fn get_consumer(access: StoreAccess) -> ApiResult<Json<ConsumerView>> {
    let name = name_param(&access);
    let open = access.open;
    let view = tokio::task::spawn_blocking(move || {
        open.consumers.get(open.store.path(), &open.store, &name)
    })
    .await
    .map_err(|e| RecordError::Task(e.into()))??;
    Ok(Json(view))
}

/// Forget a durable live reader: its connection is closed, and the next
/// one with its name starts as a new consumer.
#[cfg_attr(test, utoipa::path(delete, path = "/api/stores/{store}/consumers/{name}", tag = "data",
    params(("store" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = ConsumerDeleted))))]
pub(super) async fn delete_consumer(access: StoreAccess) -> ApiResult<Json<ConsumerDeleted>> {
    let name = name_param(&access);
    let open = &access.open;
    open.consumers.delete(open.store.path(), &name)?;
    Ok(Json(ConsumerDeleted {
        status: "deleted",
        name,
    }))
}

fn name_param(access: &StoreAccess) -> String {
    access.path.get("name").cloned().unwrap_or_default()
}
