//! Hand-built schemas for fields whose rules the derive cannot express: the published
//! schema must accept exactly what the domain accepts, or clients (and schemathesis) are
//! misled.

use domain::contact::{
    CUSTOM_FIELD_KEY_MAX, CUSTOM_FIELD_VALUE_MAX, CUSTOM_FIELDS_MAX_KEYS, TAG_MAX, TAGS_MAX,
};
use domain::text::NON_BLANK_LINE_PATTERN;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};

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
