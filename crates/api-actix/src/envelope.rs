//! The one response shape: `{success, data, metadata}` on success,
//! `{success, error, code, details, metadata}` on failure.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::request_id;

/// Facts about the response itself.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// When the response was made, RFC 3339 UTC to the second.
    #[schema(example = "2026-11-24T10:00:00Z")]
    pub timestamp: String,
    /// The request id, equal to the `X-Request-Id` response header.
    pub request_id: String,
    /// Present on list responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
}

/// Where a list stands.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// The page size used.
    pub limit: u16,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// Whether another page exists.
    pub has_more: bool,
}

impl Metadata {
    /// Metadata for the request being served now.
    #[must_use]
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        Self {
            timestamp: now.format(&Rfc3339).unwrap_or_default(),
            request_id: request_id::current(),
            pagination: None,
        }
    }
}

/// The success envelope.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Success<T> {
    /// Always true.
    pub success: bool,
    /// The payload.
    pub data: T,
    /// Response metadata.
    pub metadata: Metadata,
}

/// The error envelope.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// Always false.
    pub success: bool,
    /// A human-readable message. Never contains internals.
    #[schema(example = "request validation failed")]
    pub error: String,
    /// A stable, machine-readable code.
    #[schema(example = "VALIDATION_FAILED")]
    pub code: String,
    /// Structured context, e.g. `{"fields": {"email": ["must be a valid e-mail address"]}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// Response metadata.
    pub metadata: Metadata,
}

/// A success response with `data`.
pub fn respond<T: Serialize>(status: StatusCode, data: T) -> HttpResponse {
    respond_with(HttpResponseBuilder::new(status), data, None)
}

/// A success response on a prepared builder (extra headers), with optional pagination.
pub fn respond_with<T: Serialize>(
    mut builder: HttpResponseBuilder,
    data: T,
    pagination: Option<Pagination>,
) -> HttpResponse {
    let mut metadata = Metadata::now();
    metadata.pagination = pagination;
    builder.json(Success {
        success: true,
        data,
        metadata,
    })
}

/// A 200 with a whole list in one page (small per-tenant lists: members, keys, ...):
/// `pagination` says so, with no cursor.
pub fn respond_all<T: Serialize>(data: Vec<T>) -> HttpResponse {
    let pagination = Pagination {
        limit: u16::try_from(data.len()).unwrap_or(u16::MAX),
        next_cursor: None,
        has_more: false,
    };
    respond_with(
        HttpResponseBuilder::new(StatusCode::OK),
        data,
        Some(pagination),
    )
}
