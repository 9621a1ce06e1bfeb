//! InfluxDB-compatible writes: `POST /write?db=STORE` (1.x) and
//! `POST /api/v2/write?bucket=STORE` (2.x) take line protocol, plain or
//! gzip, into a store (`records::line_write`), so Telegraf, Node-RED's
//! influx nodes and the official client libraries write to tsstore
//! unchanged; `GET|HEAD /ping` answers as InfluxDB's does.
//!
//! The store's key is the credential, where each client puts it: the
//! password of HTTP Basic auth or of `u`/`p` (1.x clients),
//! `Authorization: Token KEY` (2.x clients) or `Bearer KEY`, or tsstore's
//! own `X-API-Key`/`api_key`. Answers are InfluxDB's: `204` when every
//! line is stored; `400` with the refused lines (line numbers included)
//! when some or all are not, the good ones stored (a partial write);
//! `401`, `404` for an unknown database or bucket, `413`; bodies
//! `{"error"}` (1.x) or `{"code","message"}` (2.x). The auth throttle
//! counts failures as on every route, the 404s included, so store names
//! cannot be listed by guessing faster than keys.

use std::io::Read;

use axum::Router;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;

use super::error::ApiError;
use super::extract::{Body, api_key, client_peer};
use crate::app::App;
use crate::auth::{AuthError, throttled};
use crate::records::QueryParams;
use crate::records::line_write::{self, LineWrite};

/// The routes, beside the REST API's.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/write", post(write_v1))
        .route("/api/v2/write", post(write_v2))
        .route("/ping", get(ping).head(ping))
}

/// Which InfluxDB the client speaks to: how errors are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    V1,
    V2,
}

/// An answer in InfluxDB's shape.
struct InfluxError {
    dialect: Dialect,
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl InfluxError {
    fn new(dialect: Dialect, status: StatusCode, message: impl Into<String>) -> InfluxError {
        InfluxError {
            dialect,
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Any other layer's error, with the status the REST API gives it.
    fn from_api(dialect: Dialect, e: ApiError) -> InfluxError {
        InfluxError {
            dialect,
            status: e.status,
            message: e.message,
            retry_after: e.retry_after,
        }
    }
}

impl IntoResponse for InfluxError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!("line protocol write: {}", self.message);
        }
        let body = match self.dialect {
            Dialect::V1 => serde_json::json!({"error": self.message}),
            Dialect::V2 => {
                let code = match self.status {
                    StatusCode::BAD_REQUEST => "invalid",
                    StatusCode::UNAUTHORIZED => "unauthorized",
                    StatusCode::NOT_FOUND => "not found",
                    StatusCode::PAYLOAD_TOO_LARGE => "request too large",
                    StatusCode::TOO_MANY_REQUESTS => "too many requests",
                    s if s.is_server_error() => "internal error",
                    _ => "invalid",
                };
                serde_json::json!({"code": code, "message": self.message})
            }
        };
        let mut resp = (self.status, body.to_string()).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        // 1.x clients read the error from this header too.
        let one_line: String = self
            .message
            .chars()
            .take(200)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&one_line) {
            headers.insert("x-influxdb-error", v);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// `/ping`: what clients that check for an InfluxDB before writing want.
async fn ping() -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        "x-influxdb-version",
        HeaderValue::from_static(concat!("tsstore-", env!("CARGO_PKG_VERSION"))),
    );
    resp
}

async fn write_v1(State(app): State<App>, req: Request) -> Response {
    write(app, req, Dialect::V1)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn write_v2(State(app): State<App>, req: Request) -> Response {
    write(app, req, Dialect::V2)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn write(app: App, req: Request, dialect: Dialect) -> Result<Response, InfluxError> {
    let bad = |status, message: &str| InfluxError::new(dialect, status, message);
    let params = QueryParams::parse(req.uri().query())
        .map_err(|e| InfluxError::from_api(dialect, e.into()))?;
    let (name_param, what) = match dialect {
        Dialect::V1 => ("db", "database"),
        Dialect::V2 => ("bucket", "bucket"),
    };
    let Some(name) = params.get(name_param).map(str::to_string) else {
        return Err(bad(StatusCode::BAD_REQUEST, &format!("{what} is required")));
    };
    let key = credential(req.headers(), &params);
    let (parts, body) = req.into_parts();
    let peer = client_peer(&parts);
    let authorized = throttled(&app.guard, peer, || {
        app.registry.authorize(&name, key.as_deref())
    });
    if let Err(e) = authorized {
        let refused = matches!(
            e,
            AuthError::BadKey | AuthError::MissingKey | AuthError::InvalidStoreName(_)
        );
        let exists =
            tsstore::validate_store_name(&name).is_ok() && app.registry.base().join(&name).is_dir();
        return Err(if refused && !exists {
            let message = match dialect {
                Dialect::V1 => format!("database not found: \"{name}\""),
                Dialect::V2 => format!("bucket \"{name}\" not found"),
            };
            bad(StatusCode::NOT_FOUND, &message)
        } else {
            InfluxError::from_api(dialect, e.into())
        });
    }
    let factor = line_write::precision_factor(params.get("precision"))
        .map_err(|e| InfluxError::from_api(dialect, e.into()))?;
    let open = app
        .registry
        .get(&name)
        .await
        .map_err(|e| InfluxError::from_api(dialect, e.into()))?;
    let gzip = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let req = Request::from_parts(parts, body);
    let Body(bytes) = Body::from_request(req, &app)
        .await
        .map_err(|e| InfluxError::from_api(dialect, e))?;
    let lines = if gzip {
        gunzip(&bytes, app.limits.max_body, dialect)?
    } else {
        bytes.to_vec()
    };
    let report = line_write::write(&open, &lines, factor)
        .map_err(|e| InfluxError::from_api(dialect, e.into()))?;
    if report.refused_count == 0 {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Err(bad(StatusCode::BAD_REQUEST, &refusal(&report, dialect)))
}

/// The key a client sent, wherever its kind of client puts it.
fn credential(headers: &HeaderMap, params: &QueryParams) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer") {
            return Some(rest.to_string());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            return text
                .split_once(':')
                .map(|(_, password)| password.to_string());
        }
    }
    if let Some(p) = params.get("p") {
        return Some(p.to_string());
    }
    api_key(headers, None).or_else(|| params.get("api_key").map(str::to_string))
}

/// A gzip body, unpacked up to `max` bytes.
fn gunzip(body: &[u8], max: usize, dialect: Dialect) -> Result<Vec<u8>, InfluxError> {
    let mut out = Vec::new();
    let mut reader = flate2::read::GzDecoder::new(body).take(max as u64 + 1);
    reader.read_to_end(&mut out).map_err(|e| {
        let why = format!("unable to decompress the gzip body: {e}");
        InfluxError::new(dialect, StatusCode::BAD_REQUEST, why)
    })?;
    if out.len() > max {
        let why = format!("the body unpacks to more than {max} bytes (server.max_body_bytes)");
        return Err(InfluxError::new(
            dialect,
            StatusCode::PAYLOAD_TOO_LARGE,
            why,
        ));
    }
    Ok(out)
}

/// The body of a write that refused lines: InfluxDB's `partial write:`
/// when some were stored.
fn refusal(report: &LineWrite, dialect: Dialect) -> String {
    let described = report.describe();
    if report.written == 0 {
        return described;
    }
    match dialect {
        Dialect::V1 => format!(
            "partial write: {described} dropped={}",
            report.refused_count
        ),
        Dialect::V2 => format!(
            "partial write error ({} written, {} dropped): {described}",
            report.written, report.refused_count
        ),
    }
}
