//! Headers a user gives a connection or a webhook (often secrets: an
//! `Authorization`, an API key), checked once when the connection is
//! created so that a stored connection always dials.

use std::collections::BTreeMap;

use http::header::{HeaderMap, HeaderName, HeaderValue, InvalidHeaderName, InvalidHeaderValue};

/// Headers on one connection or webhook, at most.
pub const MAX_HEADERS: usize = 32;

/// Why a set of headers was refused; names the header at fault.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("at most {MAX_HEADERS} headers")]
    TooMany,
    #[error("header '{name}': {source}")]
    Name {
        name: String,
        source: InvalidHeaderName,
    },
    /// The value is not shown: it may be a secret.
    #[error("header '{name}': {source}")]
    Value {
        name: String,
        source: InvalidHeaderValue,
    },
}

/// Checks header names and values (at most `MAX_HEADERS`).
pub fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), HeaderError> {
    header_map(headers).map(drop)
}

/// The headers as a `HeaderMap`, each checked.
pub fn header_map(headers: &BTreeMap<String, String>) -> Result<HeaderMap, HeaderError> {
    if headers.len() > MAX_HEADERS {
        return Err(HeaderError::TooMany);
    }
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let key = HeaderName::from_bytes(name.as_bytes()).map_err(|source| HeaderError::Name {
            name: name.clone(),
            source,
        })?;
        let value = HeaderValue::from_str(value).map_err(|source| HeaderError::Value {
            name: name.clone(),
            source,
        })?;
        map.insert(key, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_refusal_names_the_header_and_never_shows_the_value() {
        let ok = header_map(&headers(&[("Authorization", "Bearer s3cret")])).unwrap();
        assert_eq!(ok["authorization"], "Bearer s3cret");
        let e = check_headers(&headers(&[("bad name", "v")])).unwrap_err();
        assert!(e.to_string().contains("'bad name'"), "{e}");
        let e = check_headers(&headers(&[("X-Key", "s3cret\n")])).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.contains("'X-Key'") && !shown.contains("s3cret"),
            "{shown}"
        );
        let many: BTreeMap<_, _> = (0..=MAX_HEADERS)
            .map(|i| (format!("x-{i}"), "v".to_string()))
            .collect();
        assert!(matches!(check_headers(&many), Err(HeaderError::TooMany)));
    }
}
