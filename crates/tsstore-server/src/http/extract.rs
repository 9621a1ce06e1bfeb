//! Request extractors whose every rejection is an `ApiError`, so a bad
//! path, query or body gets the same JSON error shape as everything else.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

use super::App;
use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::registry::OpenStore;

/// An authenticated request on an open store (`{store}` in the path).
pub struct StoreAccess {
    pub name: String,
    pub open: Arc<OpenStore>,
    /// The other path parameters.
    pub path: HashMap<String, String>,
    pub params: Params,
    /// The request's media type (see `content_type`).
    pub content_type: Option<String>,
}

impl FromRequestParts<App> for StoreAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> ApiResult<StoreAccess> {
        let (name, path) = authorized_store(parts, app).await?;
        let params = Params::parse(parts.uri.query())?;
        let open = app.registry.get(&name).await?;
        Ok(StoreAccess {
            name,
            open,
            path,
            params,
            content_type: content_type(&parts.headers),
        })
    }
}

/// Like `StoreAccess` but without opening the store (for `DELETE`).
pub struct StoreAuth {
    pub name: String,
}

impl FromRequestParts<App> for StoreAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> ApiResult<StoreAuth> {
        let (name, _) = authorized_store(parts, app).await?;
        Ok(StoreAuth { name })
    }
}

/// The `{store}` of the path (and the other path parameters), once the
/// request's key is checked against it.
async fn authorized_store(
    parts: &mut Parts,
    app: &App,
) -> ApiResult<(String, HashMap<String, String>)> {
    let Path(mut path) = Path::<HashMap<String, String>>::from_request_parts(parts, app)
        .await
        .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
    let name = path
        .remove("store")
        .ok_or_else(|| ApiError::internal("route without a {store} parameter"))?;
    let key = auth::api_key(&parts.headers, parts.uri.query());
    app.registry.authorize(&name, key.as_deref())?;
    Ok((name, path))
}

/// The query string as ordered pairs, with typed accessors whose errors
/// name the parameter and say what was expected.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> ApiResult<Params> {
        let pairs = match query {
            None => Vec::new(),
            Some(q) => serde_urlencoded::from_str(q).map_err(|e| {
                ApiError::bad_request("invalid_query", format!("malformed query string: {e}"))
            })?,
        };
        Ok(Params(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A timestamp in ns (callers decide what 0 means).
    pub fn timestamp(&self, name: &str) -> ApiResult<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(ts) if ts >= 0 => Ok(Some(ts)),
                _ => Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!(
                        "{name}: '{v}' is not a timestamp (non-negative nanoseconds since the Unix epoch)"
                    ),
                )),
            },
        }
    }

    pub fn bool(&self, name: &str, default: bool) -> ApiResult<bool> {
        match self.get(name) {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(v) => Err(ApiError::bad_request(
                "invalid_parameter",
                format!("{name}: '{v}' is not true or false"),
            )),
        }
    }

    /// `limit`: 1 to `max`, `default` when absent.
    pub fn limit(&self, default: usize, max: usize) -> ApiResult<usize> {
        match self.get("limit") {
            None => Ok(default.min(max)),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 1 && n as u64 <= max as u64 => Ok(n as usize),
                Ok(n) if n > 0 => Err(ApiError::bad_request(
                    "limit_too_large",
                    format!("limit {n} is above the maximum of {max}"),
                )),
                _ => Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("limit: '{v}' must be an integer from 1 to {max}"),
                )),
            },
        }
    }

    /// A duration such as `30s` or `2h`, in ns.
    pub fn duration_ns(&self, name: &str) -> ApiResult<Option<i64>> {
        self.get(name)
            .map(|v| {
                tsstore::parse_duration_ns(v)
                    .map_err(|e| ApiError::bad_request("invalid_parameter", format!("{name}: {e}")))
            })
            .transpose()
    }
}

/// The request body, at most `Limits::max_body` bytes; a larger one is a
/// 413 in the JSON shape. Read here rather than through a body-limit
/// layer, which would wrap every route once more.
pub struct Body(pub Bytes);

impl FromRequest<App> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &App) -> ApiResult<Body> {
        let max = app.limits.max_body;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        match axum::body::to_bytes(req.into_body(), max).await {
            Ok(b) => Ok(Body(b)),
            Err(e) => {
                let inner = e.into_inner();
                if inner.is::<http_body_util::LengthLimitError>() {
                    Err(too_large())
                } else {
                    Err(ApiError::bad_request(
                        "invalid_body",
                        format!("cannot read the request body: {inner}"),
                    ))
                }
            }
        }
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than the server's limit (server.max_body_bytes)",
    )
}

/// The media type of the request, lowercased, without parameters.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = v.split(';').next().unwrap_or("").trim();
    Some(media.to_ascii_lowercase())
}
