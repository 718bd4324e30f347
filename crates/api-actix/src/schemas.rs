//! Hand-built schemas for fields whose rules the derive cannot express: the published
//! schema must accept exactly what the domain accepts, or clients (and schemathesis) are
//! misled. Also the error responses every operation's annotation lists
//! ([`CommonErrors`]). Route modules use these; the document (`openapi`) does not
//! define anything they need, so routes never import it.

use domain::contact::{
    CUSTOM_FIELD_KEY_MAX, CUSTOM_FIELD_VALUE_MAX, CUSTOM_FIELDS_MAX_KEYS, TAG_MAX, TAGS_MAX,
};
use domain::text::NON_BLANK_LINE_PATTERN;
use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr, Response};

const NO_NUL_PATTERN: &str = "^[^\\u0000]*$";

/// `customFields`: a nullable flat object of at most 50 keys (1-50 characters) whose
/// values are strings (at most 500 characters, no NUL), numbers, booleans or null.
pub(crate) fn custom_fields() -> Schema {
    let value = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(CUSTOM_FIELD_VALUE_MAX))
                .pattern(Some(NO_NUL_PATTERN)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(ObjectBuilder::new().schema_type(Type::Null));
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
            .description(Some(
                "Flat custom fields: string, number, boolean or null values",
            ))
            .max_properties(Some(CUSTOM_FIELDS_MAX_KEYS))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(CUSTOM_FIELD_KEY_MAX))
                    .pattern(Some(NO_NUL_PATTERN)),
            ))
            .additional_properties(Some(RefOr::T(Schema::OneOf(value.build()))))
            .build(),
    )
}

/// `tags`: a nullable list of at most 50 non-blank one-line tags of at most 50 characters.
pub(crate) fn tags() -> Schema {
    Schema::Array(
        ArrayBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
            .description(Some("Tags, de-duplicated case-insensitively"))
            .max_items(Some(TAGS_MAX))
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(TAG_MAX))
                    .pattern(Some(NON_BLANK_LINE_PATTERN)),
            )
            .build(),
    )
}

/// The error responses every authenticated operation can give, each in the error envelope.
#[derive(Debug)]
pub struct CommonErrors;

impl IntoResponses for CommonErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            (
                "400",
                "INVALID_JSON or VALIDATION_FAILED, with field details",
            ),
            (
                "401",
                "UNAUTHENTICATED: missing, unknown, revoked or expired credential",
            ),
            (
                "403",
                "FORBIDDEN: the role or the key's scopes do not allow this",
            ),
            ("404", "NOT_FOUND: no such resource in the caller's tenant"),
            ("405", "METHOD_NOT_ALLOWED"),
            ("409", "CONFLICT: e.g. the e-mail address is taken"),
            (
                "412",
                "PRECONDITION_FAILED: If-Match does not name the current ETag",
            ),
            ("413", "PAYLOAD_TOO_LARGE: body over 1 MiB"),
            (
                "415",
                "UNSUPPORTED_MEDIA_TYPE: body is not application/json",
            ),
            (
                "429",
                "RATE_LIMITED: a rate-limit policy is exhausted (details.policy, \
                 details.retryAfterSeconds, Retry-After); SLOW_DOWN for QR polling",
            ),
            ("500", "INTERNAL: a bug; the request id finds it in the log"),
            ("503", "UNAVAILABLE: the database is down; retry"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let response = ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Failure")))
                        .build(),
                )
                .build();
            (status.to_owned(), RefOr::T(response))
        })
        .collect()
    }
}
