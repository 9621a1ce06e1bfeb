//! Request extractors whose every rejection is an `ApiError`, so a bad
//! path, query or body gets the same JSON error shape as everything else;
//! and where HTTP requests carry their keys.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::error::{ApiError, ApiResult};
use super::front::ClientPeer;
use crate::app::App;
use crate::auth::throttled;
use crate::guard::Peer;
use crate::records::QueryParams;
use crate::registry::OpenStore;

/// An authenticated request on an open store (`{store}` in the path).
pub struct StoreAccess {
    pub name: String,
    pub open: Arc<OpenStore>,
    /// The other path parameters.
    pub path: HashMap<String, String>,
    pub params: QueryParams,
    /// The request's media type (see `content_type`).
    pub content_type: Option<String>,
    /// The client, as the front door saw it.
    pub peer: Option<Peer>,
}

impl FromRequestParts<App> for StoreAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> ApiResult<StoreAccess> {
        let (name, path) = authorized_store(parts, app).await?;
        let params = QueryParams::parse(parts.uri.query())?;
        let open = app.registry.get(&name).await?;
        Ok(StoreAccess {
            name,
            open,
            path,
            params,
            content_type: content_type(&parts.headers),
            peer: client_peer(parts),
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

/// A request that presented the admin key.
pub struct AdminAccess;

impl FromRequestParts<App> for AdminAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> ApiResult<AdminAccess> {
        let presented = admin_key(parts);
        let peer = client_peer(parts);
        throttled(&app.guard, peer, || app.admin.verify(presented.as_deref()))?;
        Ok(AdminAccess)
    }
}

/// The admin key of a request: `X-Admin-Key`, then `?admin_key=`.
fn admin_key(parts: &Parts) -> Option<String> {
    (parts.headers.get("x-admin-key"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| query_param(parts.uri.query(), "admin_key"))
}

/// A delete of `{store}`: by its key, or by the admin key when one is
/// presented (which may also remove a directory that is not a complete
/// store, and so has no key).
pub struct DeleteAccess {
    pub name: String,
    pub admin: bool,
}

impl FromRequestParts<App> for DeleteAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> ApiResult<DeleteAccess> {
        if admin_key(parts).is_none() {
            let StoreAuth { name } = StoreAuth::from_request_parts(parts, app).await?;
            return Ok(DeleteAccess { name, admin: false });
        }
        AdminAccess::from_request_parts(parts, app).await?;
        let (name, _) = store_path(parts, app).await?;
        tsstore::validate_store_name(&name)?;
        Ok(DeleteAccess { name, admin: true })
    }
}

/// The `{store}` of the path (and the other path parameters), once the
/// request's key is checked against it.
/// A request's store name and its other path parameters.
type StorePath = (String, HashMap<String, String>);

async fn authorized_store(parts: &mut Parts, app: &App) -> ApiResult<StorePath> {
    let (name, path) = store_path(parts, app).await?;
    let key = api_key(&parts.headers, parts.uri.query());
    let peer = client_peer(parts);
    throttled(&app.guard, peer, || {
        app.registry.authorize(&name, key.as_deref())
    })?;
    Ok((name, path))
}

/// The `{store}` of the path, and the other path parameters (percent-
/// decoded). Read from the router's raw parameters: most routes have
/// only `{store}`, and then no map is built for the rest.
async fn store_path(parts: &mut Parts, app: &App) -> ApiResult<StorePath> {
    let raw = RawPathParams::from_request_parts(parts, app)
        .await
        .map_err(|e| ApiError::invalid_path(e.body_text()))?;
    let mut name = None;
    let mut others = HashMap::new();
    for (key, value) in &raw {
        if key == "store" {
            name = Some(value.to_string());
        } else {
            others.insert(key.to_string(), value.to_string());
        }
    }
    let name = name.ok_or_else(ApiError::route_without_store)?;
    Ok((name, others))
}

/// The client a request came from, as the front door saw it.
pub fn client_peer(parts: &Parts) -> Option<Peer> {
    parts.extensions.get::<ClientPeer>().map(|c| c.0)
}

/// The WebSocket subprotocol a browser offers a key in (it cannot set a
/// header): `tsstore.key.<the key in base64url>`, beside `tsstore`, which
/// the server selects.
pub const KEY_PROTOCOL_PREFIX: &str = "tsstore.key.";

/// The store API key of a request: `X-API-Key`, then `Authorization:
/// Bearer`, then a `tsstore.key.` WebSocket subprotocol, then
/// `?api_key=`.
pub fn api_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get("x-api-key") {
        return v.to_str().ok().map(str::to_string);
    }
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    if let Some(key) = protocol_key(headers) {
        return Some(key);
    }
    query_param(query, "api_key")
}

fn protocol_key(headers: &HeaderMap) -> Option<String> {
    use base64::Engine as _;
    let offered = headers.get(header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    let encoded = offered
        .split(',')
        .find_map(|p| p.trim().strip_prefix(KEY_PROTOCOL_PREFIX))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The first value of `name` in a raw query string, percent-decoded.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    QueryParams::parse(query)
        .ok()?
        .get(name)
        .map(str::to_string)
}

/// Parses a JSON request body, refusing other content types with 415.
pub fn json_body<'a, T: serde::Deserialize<'a>>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> ApiResult<T> {
    expect_json(content_type)?;
    serde_json::from_slice(body).map_err(ApiError::invalid_json)
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
            return Err(ApiError::payload_too_large());
        }
        match axum::body::to_bytes(req.into_body(), max).await {
            Ok(b) => Ok(Body(b)),
            Err(e) => {
                let inner = e.into_inner();
                if inner.is::<http_body_util::LengthLimitError>() {
                    Err(ApiError::payload_too_large())
                } else {
                    Err(ApiError::unreadable_body(inner))
                }
            }
        }
    }
}

/// The media type of the request, lowercased, without parameters.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = v.split(';').next().unwrap_or("").trim();
    Some(media.to_ascii_lowercase())
}

/// Refuses a body that is not `application/json` (415), before it is read.
pub fn expect_json(content_type: Option<&str>) -> ApiResult<()> {
    match content_type {
        Some("application/json") => Ok(()),
        other => Err(ApiError::json_expected(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn key_sources_in_order() {
        let mut h = HeaderMap::new();
        assert_eq!(api_key(&h, Some("api_key=q%2B")), Some("q+".into()));
        h.insert("authorization", HeaderValue::from_static("Bearer b"));
        assert_eq!(api_key(&h, Some("api_key=q")), Some("b".into()));
        h.insert("x-api-key", HeaderValue::from_static("x"));
        assert_eq!(api_key(&h, Some("api_key=q")), Some("x".into()));
        let mut basic = HeaderMap::new();
        basic.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(api_key(&basic, Some("api_key=q")), None);
        // A browser's WebSocket: the key in a subprotocol (base64url of
        // "k+/y"), before the query.
        let mut ws = HeaderMap::new();
        ws.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("tsstore, tsstore.key.aysveQ"),
        );
        assert_eq!(api_key(&ws, Some("api_key=q")), Some("k+/y".into()));
        ws.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("tsstore.key.!!"),
        );
        assert_eq!(api_key(&ws, Some("api_key=q")), Some("q".into()));
    }
}
