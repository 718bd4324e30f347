//! Errors as HTTP responses: one [`ApiError`] type and its [`ErrorCode`]s, rendered in the
//! error envelope, and the fallbacks for unknown routes and methods. Each use case's
//! error becomes an `ApiError` in [`from_app`] (one exhaustive `match` per enum, all in
//! that one file); actix's own extractor errors (bad JSON, wrong content type, oversized
//! body, bad path or query) are put in the same envelope by [`extractors`].

mod extractors;
mod from_app;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use domain::FieldErrors;
use serde_json::json;

use crate::envelope::{Failure, Metadata};
use crate::request_id;

pub use extractors::{RequiresCredential, json_config, keep_json_body, path_config, query_config};

/// The error codes of SPEC §3, each with its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400: the body is not JSON.
    InvalidJson,
    /// 400: the input breaks a rule.
    ValidationFailed,
    /// 401: no valid credential.
    Unauthenticated,
    /// 403: valid credential, not allowed.
    Forbidden,
    /// 404: no such resource (in this tenant).
    NotFound,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 409: conflicts with existing state.
    Conflict,
    /// 412: `If-Match` failed.
    PreconditionFailed,
    /// 413: body over 1 MiB.
    PayloadTooLarge,
    /// 415: not JSON.
    UnsupportedMediaType,
    /// 422: an `Idempotency-Key` reused with another request.
    IdempotencyKeyReused,
    /// 429: a QR login request polled faster than its interval.
    SlowDown,
    /// 429: a rate-limit policy is exhausted (details: policy, retryAfterSeconds).
    RateLimited,
    /// 500: a bug; details only in the log.
    Internal,
    /// 503: a dependency is down; retry.
    Unavailable,
}

impl ErrorCode {
    /// Every code, for the OpenAPI document's `ErrorCode` enum.
    pub const ALL: [Self; 15] = [
        Self::InvalidJson,
        Self::ValidationFailed,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::PreconditionFailed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::IdempotencyKeyReused,
        Self::SlowDown,
        Self::RateLimited,
        Self::Internal,
        Self::Unavailable,
    ];

    /// The wire code.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "INVALID_JSON",
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Conflict => "CONFLICT",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::SlowDown => "SLOW_DOWN",
            Self::RateLimited => "RATE_LIMITED",
            Self::Internal => "INTERNAL",
            Self::Unavailable => "UNAVAILABLE",
        }
    }

    /// The HTTP status.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::InvalidJson | Self::ValidationFailed => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::SlowDown | Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The code a bare status stands for (the safety net for responses we did not build).
    #[must_use]
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            409 => Self::Conflict,
            412 => Self::PreconditionFailed,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::IdempotencyKeyReused,
            429 => Self::RateLimited,
            503 => Self::Unavailable,
            400..=499 => Self::ValidationFailed,
            _ => Self::Internal,
        }
    }
}

/// An error response: status and code, a safe message, optional details.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    details: Option<serde_json::Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl ApiError {
    /// An error with a message for the client.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds structured details.
    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// `VALIDATION_FAILED` with field messages.
    #[must_use]
    pub fn validation(fields: &FieldErrors) -> Self {
        Self::new(ErrorCode::ValidationFailed, "request validation failed")
            .with_details(json!({ "fields": fields.fields() }))
    }

    /// `VALIDATION_FAILED` for one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.add(field, message);
        Self::validation(&fields)
    }

    /// A 500 whose cause goes to the log (with the request id), never to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(request_id = %request_id::current(), cause = %cause, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// The code.
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        self.code
    }
}

/// The 401 every authentication failure gets, deliberately the same for missing,
/// malformed, unknown, revoked and expired credentials.
#[must_use]
pub fn unauthenticated() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthenticated,
        "missing or invalid credentials: send Authorization: Bearer <API key or session token>",
    )
}

/// Renders the error envelope for `code` (also used by the middleware's safety net).
#[must_use]
pub fn envelope_response(
    code: ErrorCode,
    message: String,
    details: Option<serde_json::Value>,
) -> HttpResponse {
    let mut builder = HttpResponse::build(code.status());
    if code == ErrorCode::Unauthenticated {
        builder.insert_header((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"crm\""),
        ));
    }
    if code == ErrorCode::Unavailable {
        builder.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
    }
    if matches!(code, ErrorCode::SlowDown | ErrorCode::RateLimited) {
        let wait = details
            .as_ref()
            .and_then(|d| d.get("retryAfterSeconds"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(1)
            .max(1);
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            builder.insert_header((header::RETRY_AFTER, value));
        }
    }
    builder.json(Failure {
        success: false,
        error: message,
        code: code.as_str().to_owned(),
        details,
        metadata: Metadata::now(),
    })
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        envelope_response(self.code, self.message.clone(), self.details.clone())
    }
}

/// Fallback for unknown routes.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {}", truncated_path(&req)),
    )
    .error_response()
}

/// Fallback for known paths with an unsupported method.
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} is not supported on {}",
            req.method(),
            truncated_path(&req)
        ),
    )
    .error_response()
}

/// The request path, cut to 200 characters so an error message stays small.
fn truncated_path(req: &HttpRequest) -> String {
    req.path().chars().take(200).collect()
}
