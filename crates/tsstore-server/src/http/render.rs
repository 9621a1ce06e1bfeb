//! Writes records as JSON straight into the response buffer: `data` is
//! the stored JSON itself (json and schema stores), a JSON string (text)
//! or base64 (binary). Writing by hand avoids parsing and re-serialising
//! every payload.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tsstore::{DataType, ObjectHandle};

/// Appends `data` encoded for `dt`.
pub fn push_data(out: &mut Vec<u8>, dt: DataType, data: &[u8], trusted: bool) {
    match dt {
        DataType::Json | DataType::Schema
            if trusted || tsstore::validate_payload(DataType::Json, data).is_ok() =>
        {
            out.extend_from_slice(data)
        }
        DataType::Binary => {
            out.push(b'"');
            out.extend_from_slice(BASE64.encode(data).as_bytes());
            out.push(b'"');
        }
        // Text, and JSON that did not verify (a foreign store's damage):
        // a JSON string of the bytes, so the response stays valid JSON.
        _ => {
            let text = String::from_utf8_lossy(data);
            let _ = serde_json::to_writer(&mut *out, text.as_ref());
        }
    }
}

/// Appends `{"timestamp":..,"block_num":..,"size":..[,"data":..]}`.
pub fn push_object(out: &mut Vec<u8>, h: &ObjectHandle, data: Option<(&[u8], DataType, bool)>) {
    // itoa rather than `write!`: formatting machinery was a tenth of a
    // newest?limit=10 request's instructions.
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"{\"timestamp\":");
    out.extend_from_slice(num.format(h.timestamp).as_bytes());
    out.extend_from_slice(b",\"block_num\":");
    out.extend_from_slice(num.format(h.block_num).as_bytes());
    out.extend_from_slice(b",\"size\":");
    out.extend_from_slice(num.format(h.size).as_bytes());
    if let Some((bytes, dt, trusted)) = data {
        out.extend_from_slice(b",\"data\":");
        push_data(out, dt, bytes, trusted);
    }
    out.push(b'}');
}

/// A finished JSON body.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle() -> ObjectHandle {
        ObjectHandle {
            timestamp: 5,
            block_num: 1,
            offset: 24,
            size: 3,
            span_count: 1,
        }
    }

    #[test]
    fn data_per_type() {
        let mut out = Vec::new();
        push_object(&mut out, &handle(), Some((b"[1]", DataType::Json, true)));
        assert_eq!(
            out,
            br#"{"timestamp":5,"block_num":1,"size":3,"data":[1]}"#.to_vec()
        );
        let mut out = Vec::new();
        push_object(&mut out, &handle(), Some((b"a\"\n", DataType::Text, true)));
        assert_eq!(
            String::from_utf8(out).unwrap().rsplit_once(':').unwrap().1,
            "\"a\\\"\\n\"}"
        );
        let mut out = Vec::new();
        push_data(&mut out, DataType::Binary, &[0, 255], true);
        assert_eq!(out, b"\"AP8=\"");
        let mut out = Vec::new();
        push_data(&mut out, DataType::Json, b"{bad", false);
        assert_eq!(out, b"\"{bad\"");
        let mut out = Vec::new();
        push_object(&mut out, &handle(), None);
        assert_eq!(out, br#"{"timestamp":5,"block_num":1,"size":3}"#.to_vec());
    }
}
