//! The one place where failures become HTTP statuses.
//!
//! Every error response is `{"error": "<message for people>", "code":
//! "<snake_case for programs>"}`. The layers below report their own error
//! enums (`RecordError`, `RegistryError`, `AuthError`, engine errors); each
//! maps here by variant, so a client can act on the code without parsing
//! the message, and nothing below `http/` knows a status code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tsstore::{Error, SchemaError};

use crate::auth::AuthError;
use crate::consumers::ConsumerError;
use crate::outbound::{InfluxSpecError, MqttSpecError, OutboundError, SpecError};
use crate::provision::ProvisionError;
use crate::records::RecordError;
use crate::registry::RegistryError;
use crate::store_settings::SettingsError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    /// No route has this path.
    pub fn route_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route")
    }

    /// The route exists, but not for this method.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take that method",
        )
    }

    /// A path parameter that does not parse.
    pub fn invalid_path(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", message)
    }

    /// A path timestamp that is not a positive integer.
    pub fn invalid_timestamp(raw: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_timestamp",
            format!("'{raw}' is not a timestamp (positive nanoseconds since the Unix epoch)"),
        )
    }

    /// The body is over `max_body_bytes`.
    pub fn payload_too_large() -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the server's limit (server.max_body_bytes)",
        )
    }

    /// The body could not be read (the connection broke, bad chunking).
    pub fn unreadable_body(reason: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("cannot read the request body: {reason}"),
        )
    }

    /// A JSON body was sent with another media type.
    pub fn json_expected(got: Option<&str>) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            format!(
                "send the body as Content-Type: application/json (got {})",
                got.unwrap_or("none")
            ),
        )
    }

    /// A JSON body that does not parse into the request's shape.
    pub fn invalid_json(reason: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("invalid JSON body: {reason}"),
        )
    }

    /// The request ran past `request_timeout_ms`.
    pub fn timeout(limit: std::time::Duration) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {} s", limit.as_secs_f64()),
        )
    }

    /// A WebSocket route asked without a WebSocket upgrade.
    pub fn websocket_required() -> ApiError {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            "this route takes a WebSocket: GET with Connection: Upgrade and Upgrade: websocket",
        )
    }

    /// The store already has `Limits::max_live_readers` live readers.
    pub fn too_many_readers(max: usize) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_readers",
            format!("the store has {max} live readers already (server.max_live_readers)"),
        )
    }

    /// A route whose `{store}` parameter is missing: a bug in the router.
    pub fn route_without_store() -> ApiError {
        ApiError::internal("route without a {store} parameter")
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let (status, code) = engine_status(&e);
        ApiError::new(status, code, e.to_string())
    }
}

fn engine_status(e: &Error) -> (StatusCode, &'static str) {
    match e {
        Error::TimestampOutOfOrder { .. } => (StatusCode::CONFLICT, "timestamp_out_of_order"),
        Error::TimestampInFuture { .. } => (StatusCode::BAD_REQUEST, "timestamp_in_future"),
        Error::TimestampOverflow { .. } => (StatusCode::BAD_REQUEST, "invalid_timestamp"),
        // A truncate a failure interrupted; the store refuses writes until
        // it is finished (again, or by the next open).
        Error::TruncateIncomplete(_) => (StatusCode::SERVICE_UNAVAILABLE, "truncate_incomplete"),
        Error::InvalidTimestamp(_) => (StatusCode::BAD_REQUEST, "invalid_timestamp"),
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        Error::StoreExists(_) => (StatusCode::CONFLICT, "store_exists"),
        Error::StoreNotFound(_) => (StatusCode::NOT_FOUND, "store_not_found"),
        Error::RollupExists(_) => (StatusCode::CONFLICT, "rollup_exists"),
        Error::RollupNotFound(_) => (StatusCode::NOT_FOUND, "rollup_not_found"),
        Error::InUse(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_in_use"),
        Error::InvalidName { .. } => (StatusCode::BAD_REQUEST, "invalid_store_name"),
        Error::InvalidConfig(_) => (StatusCode::BAD_REQUEST, "invalid_config"),
        Error::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "object_too_large"),
        Error::InvalidData { .. } => (StatusCode::BAD_REQUEST, "invalid_data"),
        Error::ReadOverrun => (StatusCode::SERVICE_UNAVAILABLE, "read_overrun"),
        Error::Schema(s) => schema_status(s),
        Error::Json(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
        Error::Corrupt(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_corrupt"),
        // The server opens every store for writing; this would be a bug.
        Error::ReadOnly(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_read_only"),
        // The disk (or the filesystem's largest file) cannot hold what was
        // asked: a store too large for this device, not a fault.
        Error::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge
            ) =>
        {
            (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
        }
        Error::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "io_error"),
    }
}

fn schema_status(e: &SchemaError) -> (StatusCode, &'static str) {
    match e {
        SchemaError::NoSchema => (StatusCode::CONFLICT, "no_schema"),
        // The request is fine; the store's type does not have a schema.
        SchemaError::NotASchemaStore(_) => (StatusCode::CONFLICT, "not_a_schema_store"),
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
        // A record that does not fit the schema.
        SchemaError::InvalidJson(_)
        | SchemaError::NotAnObject(_)
        | SchemaError::UnknownField(_)
        | SchemaError::DuplicateField(_)
        | SchemaError::NestedObject(_)
        | SchemaError::WrongType { .. }
        | SchemaError::OutOfRange { .. }
        | SchemaError::NonFinite { .. } => (StatusCode::BAD_REQUEST, "schema_violation"),
    }
}

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> ApiError {
        let message = e.to_string();
        let bad = StatusCode::BAD_REQUEST;
        let (status, code) = match e.cause() {
            RecordError::Store(inner) => engine_status(inner),
            RecordError::InvalidJson(_) => (bad, "invalid_json"),
            RecordError::MissingData => (bad, "missing_data"),
            RecordError::InvalidData(_) => (bad, "invalid_data"),
            RecordError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_type",
            ),
            RecordError::EmptyBatch => (bad, "empty_batch"),
            RecordError::InvalidQuery(_) => (bad, "invalid_query"),
            RecordError::InvalidParameter(_) | RecordError::InvalidPrecision(_) => {
                (bad, "invalid_parameter")
            }
            RecordError::InvalidTimestamp(_) => (bad, "invalid_timestamp"),
            RecordError::LimitTooLarge { .. } => (bad, "limit_too_large"),
            RecordError::InvalidAggregation(_) => (bad, "invalid_aggregation"),
            RecordError::AggregationUnsupported(_) => (bad, "aggregation_unsupported"),
            RecordError::ScanLimitExceeded(_) => (bad, "scan_limit_exceeded"),
            RecordError::Abandoned => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            RecordError::Task(_) | RecordError::InBatch { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
            }
        };
        ApiError::new(status, code, message)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        let unauthorized = StatusCode::UNAUTHORIZED;
        match e {
            AuthError::MissingKey => ApiError::new(
                unauthorized,
                "missing_api_key",
                "this route needs the store's API key: send X-API-Key, Authorization: Bearer, or ?api_key=",
            ),
            AuthError::BadKey => ApiError::new(unauthorized, "invalid_api_key", e.to_string()),
            AuthError::MissingAdminKey => ApiError::new(
                unauthorized,
                "missing_admin_key",
                "this route needs the admin key: send X-Admin-Key or ?admin_key=",
            ),
            AuthError::BadAdminKey => {
                ApiError::new(unauthorized, "invalid_admin_key", e.to_string())
            }
            AuthError::InvalidStoreName(e) => e.into(),
            AuthError::Throttled { retry_after } => ApiError {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "auth_throttled",
                    e.to_string(),
                )
            },
            AuthError::KeyFile(_) | AuthError::Poisoned => ApiError::internal(e.to_string()),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        match e {
            RegistryError::Store(e) => e.into(),
            RegistryError::Provision(e) => e.into(),
            RegistryError::Closing(_) => ApiError::new(unavailable, "store_closing", e.to_string()),
            RegistryError::Busy(_) => ApiError::new(unavailable, "store_busy", e.to_string()),
            RegistryError::Settings(e) => e.into(),
            RegistryError::Keys(_) | RegistryError::Task(_) | RegistryError::Poisoned => {
                ApiError::internal(e.to_string())
            }
        }
    }
}

impl From<ProvisionError> for ApiError {
    fn from(e: ProvisionError) -> ApiError {
        match e {
            ProvisionError::Store(e) => e.into(),
            ProvisionError::TooLarge { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "store_too_large", e.to_string())
            }
            ProvisionError::TotalTooLarge { .. } => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_quota_exceeded",
                e.to_string(),
            ),
            ProvisionError::NoRoom { .. } => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                e.to_string(),
            ),
            ProvisionError::Settings(e) => e.into(),
            ProvisionError::Keys(_) => ApiError::internal(e.to_string()),
        }
    }
}

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> ApiError {
        match e {
            SettingsError::Skew(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_config", e.to_string())
            }
            SettingsError::Read { .. } | SettingsError::Write { .. } => {
                ApiError::internal(e.to_string())
            }
        }
    }
}

impl From<OutboundError> for ApiError {
    fn from(e: OutboundError) -> ApiError {
        match e {
            OutboundError::Spec(SpecError::InvalidOption(inner))
            | OutboundError::MqttSpec(MqttSpecError::InvalidOption(inner))
            | OutboundError::InfluxSpec(InfluxSpecError::InvalidOption(inner)) => inner.into(),
            OutboundError::Spec(SpecError::NotANumber(_)) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", e.to_string())
            }
            OutboundError::Spec(_) | OutboundError::MqttSpec(_) | OutboundError::InfluxSpec(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_connection", e.to_string())
            }
            OutboundError::TooMany { .. } => {
                ApiError::new(StatusCode::CONFLICT, "too_many_connections", e.to_string())
            }
            OutboundError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "connection_not_found", e.to_string())
            }
            OutboundError::Persist { .. } | OutboundError::Poisoned => {
                ApiError::internal(e.to_string())
            }
        }
    }
}

impl From<ConsumerError> for ApiError {
    fn from(e: ConsumerError) -> ApiError {
        match e {
            ConsumerError::InvalidName(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", e.to_string())
            }
            ConsumerError::TooMany { .. } => {
                ApiError::new(StatusCode::CONFLICT, "too_many_consumers", e.to_string())
            }
            ConsumerError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "consumer_not_found", e.to_string())
            }
            ConsumerError::Io(_) | ConsumerError::Poisoned => ApiError::internal(e.to_string()),
        }
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
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
