//! The value objects of a contact's checked fields: an e-mail address, a phone number, tags
//! and custom fields, each parsed once at the boundary with its own error, and the limits
//! and JSON-schema patterns that the published schema shares with the parsers.

use serde_json::{Map, Value};
use thiserror::Error;

use crate::text::TextError;

/// Longest e-mail address (RFC 5321 path limit).
pub const EMAIL_MAX: usize = 254;
/// Longest phone number as typed.
pub const PHONE_MAX: usize = 32;
/// Most tags on one contact.
pub const TAGS_MAX: usize = 50;
/// Longest tag.
pub const TAG_MAX: usize = 50;
/// Most keys in `customFields`.
pub const CUSTOM_FIELDS_MAX_KEYS: usize = 50;
/// Longest `customFields` key.
pub const CUSTOM_FIELD_KEY_MAX: usize = 50;
/// Longest `customFields` string value.
pub const CUSTOM_FIELD_VALUE_MAX: usize = 500;

/// An e-mail address, lower-cased (so uniqueness is case-insensitive by construction, as
/// HubSpot and Pipedrive treat addresses).
///
/// Accepted: a dot-atom local part of RFC 5322 `atext` characters, `@`, and a domain of at
/// least two DNS labels (ASCII letters, digits, inner hyphens, 1-63 characters each), at
/// most 254 characters in all. Exactly what [`EMAIL_PATTERN`] says, so the published
/// schema and this parser agree. Surrounding whitespace is an error, not trimmed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

/// The JSON-schema pattern equivalent to [`Email::parse`] (length is `maxLength`).
pub const EMAIL_PATTERN: &str = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

/// Why an e-mail address was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EmailError {
    /// Longer than 254 characters.
    #[error("must be at most {EMAIL_MAX} characters")]
    TooLong,
    /// Not of the form local@domain.tld.
    #[error("must be a valid e-mail address")]
    Invalid,
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c)
}

fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

impl Email {
    /// Parses an address (see the type's documentation for the rules).
    ///
    /// # Errors
    /// [`EmailError`] saying what is wrong.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        if raw.chars().count() > EMAIL_MAX {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = raw.split_once('@').ok_or(EmailError::Invalid)?;
        let local_ok = local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2 && labels.iter().all(|l| is_dns_label(l));
        if local_ok && domain_ok {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err(EmailError::Invalid)
        }
    }

    /// The normalised address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number as people type it: at least three digits, with `+`, spaces, dashes,
/// dots, slashes, parentheses and an `x`/`ext` extension. Stored trimmed; not reformatted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

/// The JSON-schema pattern equivalent to [`Phone::parse`] (length is `maxLength`).
pub const PHONE_PATTERN: &str = "^[ +()./xet-]*([0-9][ +()./xet-]*){3,}$";

/// Why a phone number was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PhoneError {
    /// Longer than allowed.
    #[error("must be at most {PHONE_MAX} characters")]
    TooLong,
    /// Letters or symbols that are not part of a phone number, or too few digits.
    #[error("must be a phone number: at least 3 digits, with spaces and + - ( ) . / x ext")]
    Invalid,
}

impl Phone {
    /// Parses a phone number.
    ///
    /// # Errors
    /// [`PhoneError`] saying what is wrong.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        if raw.chars().count() > PHONE_MAX {
            return Err(PhoneError::TooLong);
        }
        let allowed = raw
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()./xet".contains(c));
        let digits = raw.chars().filter(char::is_ascii_digit).count();
        if allowed && digits >= 3 {
            Ok(Self(raw.trim().to_owned()))
        } else {
            Err(PhoneError::Invalid)
        }
    }

    /// The number as typed (trimmed).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Labels on a contact: trimmed, de-duplicated case-insensitively (first spelling wins),
/// at most 50 of at most 50 characters.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Tags(Vec<String>);

/// Why a tag list was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TagsError {
    /// More than 50 tags.
    #[error("must hold at most {TAGS_MAX} tags")]
    TooMany,
    /// One tag breaks the text rules.
    #[error("tag {index}: {error}")]
    Tag {
        /// Position in the list sent.
        index: usize,
        /// What is wrong with it.
        error: TextError,
    },
}

impl Tags {
    /// Parses a list of tags.
    ///
    /// # Errors
    /// [`TagsError`] for the first problem found.
    pub fn parse(raw: &[String]) -> Result<Self, TagsError> {
        if raw.len() > TAGS_MAX {
            return Err(TagsError::TooMany);
        }
        let mut tags: Vec<String> = Vec::with_capacity(raw.len());
        for (index, tag) in raw.iter().enumerate() {
            let tag = crate::text::single_line(tag, TAG_MAX)
                .map_err(|error| TagsError::Tag { index, error })?;
            if !tags.iter().any(|t| t.to_lowercase() == tag.to_lowercase()) {
                tags.push(tag);
            }
        }
        Ok(Self(tags))
    }

    /// The tags, in the order sent.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// Integration data: a flat JSON object of scalar values (string, number, boolean or
/// null), like HubSpot's custom properties. Flat and bounded so it stays small, indexable
/// and exactly describable in the published schema.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CustomFields(Map<String, Value>);

/// Why `customFields` was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CustomFieldsError {
    /// Not a JSON object.
    #[error("must be a JSON object")]
    NotAnObject,
    /// Too many keys.
    #[error("must have at most {CUSTOM_FIELDS_MAX_KEYS} keys")]
    TooManyKeys,
    /// A key that is empty or too long.
    #[error("keys must be 1 to {CUSTOM_FIELD_KEY_MAX} characters")]
    BadKey,
    /// A value that is an object or an array.
    #[error("values must be strings, numbers, booleans or null")]
    NotAScalar,
    /// A string value that is too long.
    #[error("string values must be at most {CUSTOM_FIELD_VALUE_MAX} characters")]
    ValueTooLong,
    /// A NUL character, which PostgreSQL cannot store in text.
    #[error("must not contain NUL characters")]
    NulCharacter,
}

impl CustomFields {
    /// Parses a JSON value into custom fields.
    ///
    /// # Errors
    /// [`CustomFieldsError`] for the first rule broken.
    pub fn parse(value: Value) -> Result<Self, CustomFieldsError> {
        let Value::Object(map) = value else {
            return Err(CustomFieldsError::NotAnObject);
        };
        if map.len() > CUSTOM_FIELDS_MAX_KEYS {
            return Err(CustomFieldsError::TooManyKeys);
        }
        for (key, value) in &map {
            if key.is_empty() || key.chars().count() > CUSTOM_FIELD_KEY_MAX {
                return Err(CustomFieldsError::BadKey);
            }
            if key.contains('\0') {
                return Err(CustomFieldsError::NulCharacter);
            }
            match value {
                Value::Object(_) | Value::Array(_) => return Err(CustomFieldsError::NotAScalar),
                Value::String(text) if text.chars().count() > CUSTOM_FIELD_VALUE_MAX => {
                    return Err(CustomFieldsError::ValueTooLong);
                }
                Value::String(text) if text.contains('\0') => {
                    return Err(CustomFieldsError::NulCharacter);
                }
                _ => {}
            }
        }
        Ok(Self(map))
    }

    /// The object.
    #[must_use]
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The object as a JSON value.
    #[must_use]
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
}
