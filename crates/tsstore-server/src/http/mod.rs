//! The REST API: a thin adapter over `records`, the registry and auth.
//! The router, and the middleware that times every request (latency
//! histogram by route), bounds its run time and drains what it left of
//! its body. This module and its children are the only ones that know
//! HTTP statuses (`error.rs` maps every layer's errors).
//!
//! Routes are declared once (`api_routes!`). `/api/openapi.json` is the
//! committed `docs/openapi.json`, made in tests from each handler's
//! `#[utoipa::path]` annotation and completed by `openapi`; tests fail when
//! it differs from what the annotations make or names other routes than
//! the router serves, so it cannot drift, and the binary carries none of
//! the code that makes it.

mod calc;
mod connections;
mod console;
mod consumers;
mod drain;
mod embedded;
pub mod error;
mod extract;
pub mod front;
mod influx;
mod influx_connections;
mod ingest;
pub mod listener;
mod mqtt;
mod openapi;
mod read;
mod rollups;
mod stores;
mod ws;
mod ws_write;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
#[cfg(test)]
use utoipa::OpenApi;
#[cfg(test)]
use utoipa_axum::router::OpenApiRouter;
#[cfg(test)]
use utoipa_axum::routes;

pub use self::error::{ApiError, ApiResult};
use crate::app::App;
use crate::metrics::{StoreSample, render_stores, render_totals};

#[cfg(test)]
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tsstore",
        description = "Ring-buffer time series store: REST API. Store routes take the store's API key \
                       (X-API-Key, Authorization: Bearer, or ?api_key=); creating a store takes the admin key \
                       (X-Admin-Key or ?admin_key=). Errors are {\"error\", \"code\"}."
    ),
    tags(
        (name = "server", description = "Health, metrics and this document"),
        (name = "stores", description = "Create, list, inspect and delete stores"),
        (name = "data", description = "Insert and read records"),
        (name = "connections", description = "Outbound WebSocket connections: push and pull")
    )
)]
struct ApiDoc;

/// Declares the API's routes once: the router serves them, and `ROUTES`
/// lists them for the test that the OpenAPI document (made from the
/// handlers' annotations, in tests only) names exactly these.
macro_rules! api_routes {
    ($($path:literal => { $($method:ident: $handler:path),+ $(,)? }),+ $(,)?) => {
        /// `(method, path)` of every route the API serves.
        #[cfg(test)]
        const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),+];

        fn api_routes() -> Router<App> {
            Router::new()$(.route($path, MethodRouter::new()$(.$method($handler))+))+
        }
    };
}

api_routes! {
    "/health" => { get: health },
    "/metrics" => { get: metrics },
    "/api/openapi.json" => { get: openapi },
    "/api/calc" => { get: calc::calc },
    "/api/stores" => { post: stores::create_store, get: stores::list_stores },
    "/api/stores/{store}" => { delete: stores::delete_store },
    "/api/stores/{store}/reset" => { post: stores::reset_store },
    "/api/stores/{store}/truncate" => { post: stores::truncate_store },
    "/api/stores/{store}/stats" => { get: stores::store_stats },
    "/api/stores/{store}/rollups" => { get: rollups::list_rollups, post: rollups::add_rollup },
    "/api/stores/{store}/rollups/{rollup}" => { delete: rollups::remove_rollup },
    "/api/stores/{store}/schema" => { get: stores::get_schema, put: stores::put_schema },
    "/api/stores/{store}/data" => { post: ingest::insert },
    "/api/stores/{store}/data/batch" => { post: ingest::insert_batch },
    "/api/stores/{store}/data/time/{ts}" => { get: read::get_by_time, delete: read::delete_by_time },
    "/api/stores/{store}/data/oldest" => { get: read::oldest },
    "/api/stores/{store}/data/newest" => { get: read::newest },
    "/api/stores/{store}/data/range" => { get: read::range },
    "/api/stores/{store}/ws/write" => { get: ws_write::ws_write },
    "/api/stores/{store}/ws/read" => { get: ws::ws_read },
    "/api/stores/{store}/consumers" => { get: consumers::list_consumers },
    "/api/stores/{store}/consumers/{name}" => {
        get: consumers::get_consumer,
        delete: consumers::delete_consumer,
    },
    "/api/stores/{store}/ws/connections" => {
        post: connections::create_connection,
        get: connections::list_connections,
    },
    "/api/stores/{store}/ws/connections/{id}" => {
        get: connections::get_connection,
        delete: connections::delete_connection,
    },
    "/api/stores/{store}/mqtt/connections" => {
        post: mqtt::create_mqtt_connection,
        get: mqtt::list_mqtt_connections,
    },
    "/api/stores/{store}/mqtt/connections/{id}" => {
        get: mqtt::get_mqtt_connection,
        delete: mqtt::delete_mqtt_connection,
    },
    "/api/stores/{store}/influx/connections" => {
        post: influx_connections::create_influx_connection,
        get: influx_connections::list_influx_connections,
    },
    "/api/stores/{store}/influx/connections/{id}" => {
        get: influx_connections::get_influx_connection,
        delete: influx_connections::delete_influx_connection,
    },
}

/// The router.
pub fn router(app: App) -> Router {
    api_routes()
        .merge(console::routes())
        .merge(influx::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        // The only per-route layer: every other one would cost each
        // request another boxed service.
        .layer(middleware::from_fn_with_state(Arc::clone(&app), observe))
        .with_state(app)
}

/// `/api/openapi.json`: the committed document (`openapi::DOCUMENT`) with
/// this server's limits, made on first request (so it costs no resident
/// memory in a server nobody asks for it), then kept: a process runs one
/// server, with one set of limits.
static OPENAPI: OnceLock<String> = OnceLock::new();

/// The OpenAPI document made from the handlers' annotations (tests only:
/// the binary serves the committed copy, and a test keeps it current).
#[cfg(test)]
fn generated_document() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<App>::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
        .merge(stores::routes())
        .merge(rollups::routes())
        .merge(ingest::routes())
        .merge(read::routes())
        .merge(ws::routes())
        .merge(ws_write::routes())
        .merge(connections::routes())
        .merge(consumers::routes())
        .merge(mqtt::routes())
        .merge(influx_connections::routes())
        .merge(calc::routes())
        .split_for_parts()
        .1
}

/// Times the request, bounds its run time, counts it by route, and reads
/// what the handler left of its body (see `drain`).
async fn observe(State(app): State<App>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", |m| m.as_str());
    let method = req.method().clone();
    let (req, unread) = drain::watch(req);
    let response = match tokio::time::timeout(app.limits.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::timeout(app.limits.request_timeout).into_response(),
    };
    let response = match unread {
        Some(unread) => drain::drain(unread, app.limits.max_body, response).await,
        None => response,
    };
    let elapsed = start.elapsed();
    app.http.observe(route, elapsed);
    tracing::debug!(%method, route, status = response.status().as_u16(), micros = elapsed.as_micros() as u64, "request");
    response
}

async fn no_route() -> ApiError {
    ApiError::route_not_found()
}

async fn no_method() -> ApiError {
    ApiError::method_not_allowed()
}

#[derive(serde::Serialize)]
#[cfg_attr(test, derive(utoipa::ToSchema))]
struct Health {
    /// Always "ok" while the server answers.
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    open_stores: usize,
}

/// Liveness, version and uptime. No authentication.
#[cfg_attr(test, utoipa::path(get, path = "/health", tag = "server", responses((status = 200, body = Health))))]
async fn health(State(app): State<App>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: app.started.elapsed().as_secs(),
        open_stores: app.registry.open_count(),
    })
}

/// Prometheus metrics: server-wide totals (inserts, bytes, rejected inserts
/// by reason, stores open, stores closed when idle); per store (the
/// busiest `metrics_stores` open ones) inserts, bytes, rejected inserts,
/// fill ratio and retention window; request latency by route.
#[cfg_attr(test, utoipa::path(get, path = "/metrics", tag = "server",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"))))]
async fn metrics(State(app): State<App>) -> Response {
    let stores = app.registry.open_stores();
    let listed = app.metrics_stores.pick(&stores, |open| {
        open.metrics
            .inserts
            .load(std::sync::atomic::Ordering::Relaxed)
    });
    let samples: Vec<StoreSample> = listed
        .into_iter()
        .map(|(name, open)| StoreSample {
            name,
            metrics: &open.metrics,
            stats: open.store.stats(),
            live_readers: open.live_readers(),
            reader_lag_ns: open.reader_lag_ns(),
        })
        .collect();
    let mut out = String::with_capacity(4096);
    render_totals(
        &mut out,
        app.registry.totals(),
        stores.len() + app.registry.closing_count(),
        app.registry.idle_closes(),
    );
    render_stores(&mut out, &samples);
    app.transports.render(&mut out);
    let newest = |store: &str| match samples.iter().find(|s| s.name == store) {
        Some(s) => s.stats.newest_timestamp,
        None => stores
            .iter()
            .find(|(name, _)| name == store)
            .and_then(|(_, open)| open.store.newest_timestamp()),
    };
    app.outbound.render(&mut out, &newest);
    app.http.render(&mut out);
    app.guard.render(&mut out);
    let mut resp = out.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

/// This API's OpenAPI 3 document.
#[cfg_attr(test, utoipa::path(get, path = "/api/openapi.json", tag = "server",
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json"))))]
async fn openapi(State(app): State<App>) -> Response {
    let doc = OPENAPI.get_or_init(|| openapi::served(&app.limits));
    let mut resp = doc.to_string().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The body of every error response.
#[derive(serde::Serialize)]
#[cfg_attr(test, derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// For people.
    pub error: String,
    /// For programs: snake_case, stable.
    pub code: String,
}
