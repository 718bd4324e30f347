//! What several resources' routes share: the answer to a delete, `If-Match`, merge-patch
//! presence, list filters, garde's check of a body, and the single-resource answer with
//! its `ETag`. One definition each; a resource's own file holds only that resource.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use app::contacts::IfMatch;
use domain::FieldErrors;
use garde::Validate;
use serde::{Deserialize, Deserializer, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::envelope::respond_with;
use crate::error::ApiError;
use crate::validation::field_errors;

// SPEC §3: `{"id": …, "deleted": true}`. The doc line below is the schema's description.
/// The answer to a delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedResponse {
    /// The deleted resource's id.
    pub id: Uuid,
    /// Always true.
    pub deleted: bool,
}

/// `Some(value)` for a present key, even when `value` is null: merge-patch needs to tell
/// "absent" from "null". Used as `#[serde(default, deserialize_with = "present")]`.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Parses `If-Match`: `*` or a comma-separated list of entity tags. A header that is not
/// visible ASCII matches no tag (412), rather than being ignored.
pub(crate) fn if_match(req: &HttpRequest) -> Option<IfMatch> {
    let raw = req
        .headers()
        .get(header::IF_MATCH)?
        .to_str()
        .unwrap_or("\u{0}");
    if raw.trim() == "*" {
        return Some(IfMatch::Any);
    }
    Some(IfMatch::Tags(
        raw.split(',').map(|t| t.trim().to_owned()).collect(),
    ))
}

/// An RFC 3339 date-time filter (`createdAfter`…); a bad one is recorded under `field`.
pub(crate) fn parse_time(
    field: &str,
    raw: Option<&str>,
    errors: &mut FieldErrors,
) -> Option<OffsetDateTime> {
    raw.and_then(|raw| {
        errors.check(
            field,
            OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| "must be an RFC 3339 date-time"),
        )
    })
}

/// A calendar date (`2026-12-31`); a bad one is recorded under `field`.
pub(crate) fn parse_date(field: &str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<Date> {
    raw.and_then(|raw| {
        errors.check(
            field,
            Date::parse(raw, format_description!("[year]-[month]-[day]"))
                .map_err(|_| "must be a date such as 2026-12-31"),
        )
    })
}

/// A one-line text filter (`q`, `tag`…) of at most `max` characters; blank means none,
/// a bad one is recorded under `field`.
pub(crate) fn filter_text(
    field: &str,
    raw: Option<String>,
    max: usize,
    errors: &mut FieldErrors,
) -> Option<String> {
    raw.and_then(|raw| {
        let checked = domain::text::optional_single_line(Some(&raw), max);
        errors.check(field, checked).flatten()
    })
}

/// garde's checks of a request body, as `VALIDATION_FAILED` with the field map. The
/// domain's own checks run later, in the use case.
pub(crate) fn check_body<T: Validate<Context = ()>>(body: &T) -> Result<(), ApiError> {
    body.validate()
        .map_err(|report| ApiError::validation(&field_errors(&report)))
}

/// A single resource in the success envelope with its `ETag`, and on `201 Created` its
/// `Location` (`collection` is the list's path, e.g. `/v1/contacts`).
pub(crate) fn versioned_response<T: Serialize>(
    status: StatusCode,
    etag: &str,
    collection: &str,
    id: impl std::fmt::Display,
    data: T,
) -> HttpResponse {
    let mut builder = HttpResponseBuilder::new(status);
    if let Ok(etag) = HeaderValue::from_str(etag) {
        builder.insert_header((header::ETAG, etag));
    }
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&format!("{collection}/{id}"))
    {
        builder.insert_header((header::LOCATION, location));
    }
    respond_with(builder, data, None)
}
