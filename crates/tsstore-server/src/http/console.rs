//! The built-in web console: one page and its script and style, embedded
//! in the binary gzipped (`embedded`), served at `/` with a strict
//! Content-Security-Policy.
//! The page talks to the same REST and WebSocket API as every client;
//! nothing here knows a key. The assets are plain files in `console/`
//! (no build step: `cargo build` alone builds the binary), with the
//! chart library vendored in `console/vendor/` (pinned, checked below).

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::embedded::{Gzipped, gzipped};
use crate::app::App;

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Each asset: its path, its file, its type.
static ASSETS: [(&str, Gzipped, &str); 5] = [
    ("/", gzipped!("index.html"), "text/html; charset=utf-8"),
    ("/console/app.js", gzipped!("app.js"), JS),
    ("/console/app.css", gzipped!("app.css"), CSS),
    (
        "/console/vendor/uPlot.iife.min.js",
        gzipped!("uPlot.iife.min.js"),
        JS,
    ),
    (
        "/console/vendor/uPlot.min.css",
        gzipped!("uPlot.min.css"),
        CSS,
    ),
];

/// Scripts and styles from this origin only (none inline), requests to
/// this origin only (REST and `ws://` alike), no frames, no plugins, no
/// forms posted elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

pub fn routes() -> Router<App> {
    ASSETS
        .iter()
        .fold(Router::new(), |router, (path, file, content_type)| {
            router.route(
                path,
                get(move |h: HeaderMap| async move { asset(file, content_type, &h) }),
            )
        })
}

fn asset(file: &Gzipped, content_type: &'static str, request: &HeaderMap) -> Response {
    let Some((body, encoding)) = file.body_for(request) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let headers: [(HeaderName, HeaderValue); 7] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        // The binary is the version: a new one may bring new assets.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        // Caches keep the gzipped and the plain answer apart.
        (header::VARY, HeaderValue::from_static("accept-encoding")),
    ];
    let mut response = (headers, body).into_response();
    if let Some(encoding) = encoding {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, encoding);
    }
    response
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    /// The vendored files are the ones `console/vendor/README.md` names,
    /// byte for byte.
    #[test]
    fn the_vendored_chart_is_the_pinned_one() {
        let readme = include_str!("console/vendor/README.md");
        for (name, bytes) in [
            (
                "uPlot.iife.min.js",
                include_bytes!("console/vendor/uPlot.iife.min.js").as_slice(),
            ),
            (
                "uPlot.min.css",
                include_bytes!("console/vendor/uPlot.min.css").as_slice(),
            ),
            (
                "uPlot.LICENSE",
                include_bytes!("console/vendor/uPlot.LICENSE").as_slice(),
            ),
        ] {
            let hash: String = Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let line = readme
                .lines()
                .find(|l| l.contains(&format!("`{name}`")))
                .unwrap_or_else(|| panic!("{name} is not in vendor/README.md"));
            assert!(
                line.contains(&hash),
                "{name}: sha256 {hash} is not the one pinned"
            );
        }
    }
}
