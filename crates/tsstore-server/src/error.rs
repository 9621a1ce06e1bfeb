//! The one place where failures become HTTP statuses.
//!
//! Every error response is `{"error": "<message for people>", "code":
//! "<snake_case for programs>"}`. Engine errors map by variant, so a
//! client can act on the code without parsing the message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tsstore::{Error, SchemaError};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unsupported_type(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            message,
        )
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    /// A store key is missing.
    pub fn missing_key() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "this route needs the store's API key: send X-API-Key, Authorization: Bearer, or ?api_key=",
        )
    }

    /// A store key is wrong, or the store does not exist: one body for
    /// both, so store names cannot be probed.
    pub fn bad_key() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "the API key is not valid for this store",
        )
    }

    /// The label under which a rejected insert is counted in `/metrics`.
    pub fn reject_reason(&self) -> &'static str {
        match self.code {
            "timestamp_out_of_order" => "out_of_order",
            "invalid_timestamp" => "invalid_timestamp",
            "object_too_large" | "payload_too_large" => "too_large",
            "schema_violation" | "no_schema" => "schema",
            "unsupported_content_type" => "content_type",
            _ if self.status.is_client_error() => "invalid_data",
            _ => "internal",
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let message = e.to_string();
        let (status, code) = match &e {
            Error::TimestampOutOfOrder { .. } => (StatusCode::CONFLICT, "timestamp_out_of_order"),
            Error::InvalidTimestamp(_) => (StatusCode::BAD_REQUEST, "invalid_timestamp"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::StoreExists(_) => (StatusCode::CONFLICT, "store_exists"),
            Error::StoreNotFound(_) => (StatusCode::NOT_FOUND, "store_not_found"),
            Error::InUse(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_in_use"),
            Error::InvalidName { .. } => (StatusCode::BAD_REQUEST, "invalid_store_name"),
            Error::InvalidConfig(_) => (StatusCode::BAD_REQUEST, "invalid_config"),
            Error::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "object_too_large"),
            Error::InvalidData { .. } => (StatusCode::BAD_REQUEST, "invalid_data"),
            Error::ReadOverrun => (StatusCode::SERVICE_UNAVAILABLE, "read_overrun"),
            Error::Schema(s) => schema_status(s),
            Error::Json(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            Error::Corrupt(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_corrupt"),
            Error::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "io_error"),
        };
        ApiError::new(status, code, message)
    }
}

fn schema_status(e: &SchemaError) -> (StatusCode, &'static str) {
    match e {
        SchemaError::NoSchema => (StatusCode::CONFLICT, "no_schema"),
        SchemaError::NotASchemaStore(_) => (StatusCode::BAD_REQUEST, "not_a_schema_store"),
        SchemaError::FieldDropped { .. }
        | SchemaError::FieldRenamed { .. }
        | SchemaError::FieldRetyped { .. }
        | SchemaError::FieldReindexed { .. } => (StatusCode::CONFLICT, "schema_conflict"),
        SchemaError::NoFields
        | SchemaError::TooManyFields(_)
        | SchemaError::ZeroIndex(_)
        | SchemaError::InvalidFieldName { .. }
        | SchemaError::DuplicateName(_)
        | SchemaError::DuplicateIndex { .. } => (StatusCode::BAD_REQUEST, "invalid_schema"),
        SchemaError::BadFile(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_corrupt"),
        _ => (StatusCode::BAD_REQUEST, "schema_violation"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, "{}", self.message);
        }
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: &'a str,
            code: &'a str,
        }
        let body = serde_json::to_string(&Body {
            error: &self.message,
            code: self.code,
        })
        .unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
