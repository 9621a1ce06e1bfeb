//! Files built into the binary gzipped (`build.rs`): the console's assets
//! and the OpenAPI document. They take a sixth of their text's room in a
//! binary that must fit a gateway's flash; a client that accepts gzip (every
//! browser) gets the bytes as they are, any other the text, inflated for
//! that answer.

use std::io::Read;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};

/// One embedded file, gzipped.
pub struct Gzipped(pub &'static [u8]);

/// `include_bytes!` of a file `build.rs` gzipped, by its file name.
macro_rules! gzipped {
    ($name:literal) => {
        $crate::http::embedded::Gzipped(include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".gz")))
    };
}
pub(crate) use gzipped;

impl Gzipped {
    /// The file's text. `None` only if the build wrote a broken gzip
    /// stream, which the tests rule out.
    pub fn inflate(&self) -> Option<Vec<u8>> {
        let mut text = Vec::with_capacity(self.0.len() * 8);
        flate2::read::GzDecoder::new(self.0)
            .read_to_end(&mut text)
            .ok()?;
        Some(text)
    }

    /// The body for a request with `headers`, and the `Content-Encoding`
    /// it needs: the gzipped bytes when the client takes gzip, else the
    /// text.
    pub fn body_for(&self, headers: &HeaderMap) -> Option<(Body, Option<HeaderValue>)> {
        if accepts_gzip(headers) {
            Some((Body::from(self.0), Some(HeaderValue::from_static("gzip"))))
        } else {
            Some((Body::from(self.inflate()?), None))
        }
    }
}

/// Whether `Accept-Encoding` names gzip (or `*`) without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn gzip_is_sent_only_to_clients_that_take_it() {
        assert!(accepts_gzip(&with("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("identity")));
        assert!(!accepts_gzip(&with("gzipped")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn every_embedded_file_inflates_to_its_source() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/");
        for (gz, source) in [
            (gzipped!("index.html"), "src/http/console/index.html"),
            (gzipped!("app.js"), "src/http/console/app.js"),
            (gzipped!("app.css"), "src/http/console/app.css"),
            (
                gzipped!("uPlot.iife.min.js"),
                "src/http/console/vendor/uPlot.iife.min.js",
            ),
            (
                gzipped!("uPlot.min.css"),
                "src/http/console/vendor/uPlot.min.css",
            ),
            (gzipped!("openapi.json"), "../../docs/openapi.json"),
        ] {
            let text = std::fs::read(format!("{root}{source}")).unwrap();
            assert_eq!(gz.inflate().as_deref(), Some(text.as_slice()), "{source}");
            assert!(gz.0.len() < text.len(), "{source} is not smaller gzipped");
        }
    }
}
