//! Payload checks per data type, applied before the writer lock is taken
//! so a bad payload costs nothing to the store.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::format::DataType;
use crate::schema::{Schema, SchemaError};

/// What a store of type `dt` would store for `payload`, or why it would
/// refuse it: the type's check, a schema store's compaction against
/// `schema` (`None`: it has none yet), and the store's largest object,
/// `max` bytes. `Store::check` is this with the store's own values; a
/// client that knows them (an import through a server's API) checks
/// records the same way before sending them.
pub fn check<'a>(
    dt: DataType,
    schema: Option<&Schema>,
    max: u64,
    payload: &'a [u8],
) -> Result<Cow<'a, [u8]>> {
    let stored = if dt == DataType::Schema {
        let schema = schema.ok_or(SchemaError::NoSchema)?;
        Cow::Owned(schema.compact(payload)?)
    } else {
        validate(dt, payload)?;
        Cow::Borrowed(payload)
    };
    if stored.len() as u64 > max {
        return Err(Error::TooLarge {
            size: stored.len() as u64,
            max,
        });
    }
    Ok(stored)
}

/// Accepts `payload` for a store of type `dt` or says why not.
pub fn validate(dt: DataType, payload: &[u8]) -> Result<()> {
    let reject = |reason: String| Error::InvalidData {
        data_type: dt.as_str(),
        reason,
    };
    match dt {
        DataType::Binary => Ok(()),
        DataType::Text => std::str::from_utf8(payload)
            .map(|_| ())
            .map_err(|e| reject(format!("not valid UTF-8: {e}"))),
        DataType::Json => {
            if crate::json_scan::surely_valid(payload) {
                return Ok(());
            }
            let text = std::str::from_utf8(payload)
                .map_err(|e| reject(format!("not valid UTF-8: {e}")))?;
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .map(|_| ())
                .map_err(|e| reject(format!("not valid JSON: {e}")))
        }
        // Field-level checks belong to the schema layer; the engine keeps
        // only what every schema record is: a JSON object.
        DataType::Schema => match serde_json::from_slice::<serde_json::Value>(payload) {
            Ok(serde_json::Value::Object(_)) => Ok(()),
            Ok(_) => Err(reject("a schema record must be a JSON object".into())),
            Err(e) => Err(reject(format!("not valid JSON: {e}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_type() {
        assert!(validate(DataType::Binary, &[0xff, 0]).is_ok());
        assert!(validate(DataType::Text, "héllo".as_bytes()).is_ok());
        assert!(validate(DataType::Text, &[0xff]).is_err());
        assert!(validate(DataType::Json, br#"{"a":1}"#).is_ok());
        assert!(validate(DataType::Json, b"12").is_ok());
        assert!(validate(DataType::Json, b"{").is_err());
        assert!(validate(DataType::Json, b"").is_err());
        assert!(validate(DataType::Schema, br#"{"1":2}"#).is_ok());
        assert!(validate(DataType::Schema, b"[1]").is_err());
    }
}
