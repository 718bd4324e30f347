//! Contacts: people a tenant does business with.
//!
//! Input arrives as [`ContactInput`] (everything optional, nothing checked) or
//! [`ContactPatch`] (merge-patch: absent keeps, `null` clears), and becomes a
//! [`ContactDraft`] only through [`ContactDraft::new`] / [`ContactDraft::patched`], which
//! enforce every rule. Storage turns a draft into a [`Contact`] with id, timestamps and
//! version.

use serde_json::Value;
use time::OffsetDateTime;

use crate::field_errors::FieldErrors;
use crate::ids::{CompanyId, ContactId, TenantId, UserId};
use crate::list::{Cursor, Limit, Page, Sort, SortField, SortValue};
use crate::text::optional_single_line;

/// Longest first or last name, in characters.
pub const NAME_MAX: usize = 100;
/// Longest job title.
pub const TITLE_MAX: usize = 200;

mod fields;

pub use fields::{
    CUSTOM_FIELD_KEY_MAX, CUSTOM_FIELD_VALUE_MAX, CUSTOM_FIELDS_MAX_KEYS, CustomFields,
    CustomFieldsError, EMAIL_MAX, EMAIL_PATTERN, Email, EmailError, PHONE_MAX, PHONE_PATTERN,
    Phone, PhoneError, TAG_MAX, TAGS_MAX, Tags, TagsError,
};

/// Contact fields as received, nothing checked yet: the input of create and replace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContactInput {
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Job title.
    pub title: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Custom fields (must be an object).
    pub custom_fields: Option<Value>,
    /// Owning member.
    pub owner_id: Option<UserId>,
    /// Company (checked against companies once they exist).
    pub company_id: Option<CompanyId>,
}

/// A merge-patch of a contact: `None` keeps a field, `Some(None)` clears it,
/// `Some(Some(v))` sets it.
#[derive(Clone, Debug, Default, PartialEq)]
#[allow(clippy::option_option)] // the three states are the point of a merge-patch
pub struct ContactPatch {
    /// Given name.
    pub first_name: Option<Option<String>>,
    /// Family name.
    pub last_name: Option<Option<String>>,
    /// E-mail address.
    pub email: Option<Option<String>>,
    /// Phone number.
    pub phone: Option<Option<String>>,
    /// Job title.
    pub title: Option<Option<String>>,
    /// Tags (`null` clears to none).
    pub tags: Option<Option<Vec<String>>>,
    /// Custom fields (`null` clears to `{}`; an object replaces the whole object).
    pub custom_fields: Option<Option<Value>>,
    /// Owning member.
    pub owner_id: Option<Option<UserId>>,
    /// Company.
    pub company_id: Option<Option<CompanyId>>,
}

impl ContactPatch {
    /// True when the patch changes nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The writable state of a contact, fully validated.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ContactDraft {
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// E-mail address, unique per tenant.
    pub email: Option<Email>,
    /// Phone number.
    pub phone: Option<Phone>,
    /// Job title.
    pub title: Option<String>,
    /// Tags.
    pub tags: Tags,
    /// Custom fields.
    pub custom_fields: CustomFields,
    /// Owning member of the tenant.
    pub owner_id: Option<UserId>,
    /// Company.
    pub company_id: Option<CompanyId>,
}

impl ContactDraft {
    /// Validates raw input. Every field is optional, as in HubSpot and Stripe: an
    /// integration may know only a phone number at first.
    ///
    /// # Errors
    /// Every problem found, by field (camelCase, as the API names them).
    pub fn new(input: ContactInput) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let first_name = errors
            .check(
                "firstName",
                optional_single_line(input.first_name.as_deref(), NAME_MAX),
            )
            .flatten();
        let last_name = errors
            .check(
                "lastName",
                optional_single_line(input.last_name.as_deref(), NAME_MAX),
            )
            .flatten();
        let title = errors
            .check(
                "title",
                optional_single_line(input.title.as_deref(), TITLE_MAX),
            )
            .flatten();
        let email = input
            .email
            .as_deref()
            .and_then(|raw| errors.check("email", Email::parse(raw)));
        let phone = input
            .phone
            .as_deref()
            .and_then(|raw| errors.check("phone", Phone::parse(raw)));
        let tags = errors
            .check(
                "tags",
                Tags::parse(input.tags.as_deref().unwrap_or_default()),
            )
            .unwrap_or_default();
        let custom_fields = match input.custom_fields {
            None | Some(Value::Null) => CustomFields::default(),
            Some(value) => errors
                .check("customFields", CustomFields::parse(value))
                .unwrap_or_default(),
        };
        errors.into_result(Self {
            first_name,
            last_name,
            email,
            phone,
            title,
            tags,
            custom_fields,
            owner_id: input.owner_id,
            company_id: input.company_id,
        })
    }

    /// The draft as raw input again, so a patch can be applied and re-validated as a whole.
    #[must_use]
    pub fn to_input(&self) -> ContactInput {
        ContactInput {
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            email: self.email.as_ref().map(|e| e.as_str().to_owned()),
            phone: self.phone.as_ref().map(|p| p.as_str().to_owned()),
            title: self.title.clone(),
            tags: Some(self.tags.as_slice().to_vec()),
            custom_fields: Some(self.custom_fields.to_value()),
            owner_id: self.owner_id,
            company_id: self.company_id,
        }
    }

    /// Applies a merge-patch and validates the result as a whole.
    ///
    /// # Errors
    /// As [`ContactDraft::new`], for the patched contact.
    pub fn patched(&self, patch: ContactPatch) -> Result<Self, FieldErrors> {
        let mut input = self.to_input();
        if let Some(v) = patch.first_name {
            input.first_name = v;
        }
        if let Some(v) = patch.last_name {
            input.last_name = v;
        }
        if let Some(v) = patch.email {
            input.email = v;
        }
        if let Some(v) = patch.phone {
            input.phone = v;
        }
        if let Some(v) = patch.title {
            input.title = v;
        }
        if let Some(v) = patch.tags {
            input.tags = v;
        }
        if let Some(v) = patch.custom_fields {
            input.custom_fields = v;
        }
        if let Some(v) = patch.owner_id {
            input.owner_id = v;
        }
        if let Some(v) = patch.company_id {
            input.company_id = v;
        }
        Self::new(input)
    }
}

/// A stored contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// Its id.
    pub id: ContactId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// Its fields.
    pub fields: ContactDraft,
    /// When it was created (microsecond precision, as stored).
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// Starts at 1, grows by one with every change: the basis of the ETag.
    pub version: i64,
}

impl Contact {
    /// The entity tag of this version (a strong validator, quoted as HTTP wants it).
    #[must_use]
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

/// The fields a contact list can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactSortField {
    /// Creation time.
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Family name (absent sorts as empty).
    LastName,
    /// E-mail address (absent sorts as empty).
    Email,
}

impl SortField for ContactSortField {
    const FIELDS: &'static [(Self, &'static str)] = &[
        (Self::CreatedAt, "createdAt"),
        (Self::UpdatedAt, "updatedAt"),
        (Self::LastName, "lastName"),
        (Self::Email, "email"),
    ];

    fn is_timestamp(self) -> bool {
        matches!(self, Self::CreatedAt | Self::UpdatedAt)
    }
}

impl ContactSortField {
    /// The value of this field in `contact`, as a cursor records it.
    #[must_use]
    pub fn value_of(self, contact: &Contact) -> SortValue {
        match self {
            Self::CreatedAt => SortValue::Timestamp(contact.created_at),
            Self::UpdatedAt => SortValue::Timestamp(contact.updated_at),
            Self::LastName => SortValue::Text(contact.fields.last_name.clone().unwrap_or_default()),
            Self::Email => SortValue::Text(
                contact
                    .fields
                    .email
                    .as_ref()
                    .map(|e| e.as_str().to_owned())
                    .unwrap_or_default(),
            ),
        }
    }
}

/// The default order of a contact list: newest first, as Stripe lists.
pub const DEFAULT_CONTACT_SORT: Sort<ContactSortField> = Sort {
    field: ContactSortField::CreatedAt,
    descending: true,
};

/// Everything a contact list can be narrowed by; all filters combine with AND.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactQuery {
    /// Page size.
    pub limit: Limit,
    /// Order.
    pub sort: Sort<ContactSortField>,
    /// Continue after this row.
    pub cursor: Option<Cursor<ContactSortField>>,
    /// Case-insensitive substring of first name, last name, e-mail or phone.
    pub q: Option<String>,
    /// Exact e-mail (normalised like stored addresses).
    pub email: Option<Email>,
    /// Contacts of this company.
    pub company_id: Option<CompanyId>,
    /// Contacts owned by this member.
    pub owner_id: Option<UserId>,
    /// Contacts carrying this tag (exact, case-sensitive).
    pub tag: Option<String>,
    /// Created strictly after.
    pub created_after: Option<OffsetDateTime>,
    /// Changed strictly after.
    pub updated_after: Option<OffsetDateTime>,
}

impl Default for ContactQuery {
    fn default() -> Self {
        Self {
            limit: Limit::default(),
            sort: DEFAULT_CONTACT_SORT,
            cursor: None,
            q: None,
            email: None,
            company_id: None,
            owner_id: None,
            tag: None,
            created_after: None,
            updated_after: None,
        }
    }
}

/// A page of contacts.
pub type ContactPage = Page<Contact, ContactSortField>;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn input(first: &str, email: &str) -> ContactInput {
        ContactInput {
            first_name: Some(first.into()),
            email: Some(email.into()),
            ..ContactInput::default()
        }
    }

    #[test]
    fn email_is_lower_cased() {
        let email = Email::parse("Ada.Lovelace@Example.COM").expect("valid");
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for raw in [
            "",
            " ada@example.com",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@exa_mple.com",
            "ada@@example.com",
            "ada@-example.com",
            ".ada@example.com",
            "a..b@example.com",
            "'; DROP TABLE contacts;--@x.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn overlong_email_is_refused_as_too_long() {
        let raw = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&raw), Err(EmailError::TooLong));
    }

    #[test]
    fn phone_accepts_common_formats_and_refuses_text() {
        for ok in ["+44 20 7946 0000", "(555) 123-4567", "555.123.4567 x12"] {
            assert!(Phone::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["call me", "12", "+1 555 <script>"] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_are_deduplicated_case_insensitively() {
        let tags = Tags::parse(&["VIP".into(), " vip ".into(), "lead".into()]).expect("valid");
        assert_eq!(tags.as_slice(), ["VIP".to_owned(), "lead".to_owned()]);
    }

    #[test]
    fn too_many_tags_are_refused() {
        let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
        assert_eq!(Tags::parse(&many), Err(TagsError::TooMany));
    }

    #[test]
    fn custom_fields_must_be_a_small_object() {
        assert!(CustomFields::parse(json!({"a": 1})).is_ok());
        assert_eq!(
            CustomFields::parse(json!([1])),
            Err(CustomFieldsError::NotAnObject)
        );
        let big = json!({"blob": "x".repeat(CUSTOM_FIELD_VALUE_MAX + 1)});
        assert_eq!(
            CustomFields::parse(big),
            Err(CustomFieldsError::ValueTooLong)
        );
        assert_eq!(
            CustomFields::parse(json!({"nested": {"a": 1}})),
            Err(CustomFieldsError::NotAScalar)
        );
        assert_eq!(
            CustomFields::parse(json!({"": 1})),
            Err(CustomFieldsError::BadKey)
        );
        assert_eq!(
            CustomFields::parse(json!({"a": "x\u{0}y"})),
            Err(CustomFieldsError::NulCharacter)
        );
    }

    #[test]
    fn an_empty_contact_is_allowed() {
        assert_eq!(
            ContactDraft::new(ContactInput::default()),
            Ok(ContactDraft::default())
        );
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let errors = ContactDraft::new(ContactInput {
            first_name: Some("x".repeat(10_000)),
            email: Some("nope".into()),
            phone: Some("phone".into()),
            ..ContactInput::default()
        })
        .expect_err("three bad fields");
        let fields: Vec<&str> = errors.fields().keys().map(String::as_str).collect();
        assert_eq!(fields, ["email", "firstName", "phone"]);
    }

    #[test]
    fn patch_keeps_absent_fields_and_clears_nulls() {
        let draft = ContactDraft::new(ContactInput {
            title: Some("CTO".into()),
            ..input("Ada", "ada@example.com")
        })
        .expect("valid");
        let patched = draft
            .patched(ContactPatch {
                title: Some(None),
                last_name: Some(Some("Lovelace".into())),
                ..ContactPatch::default()
            })
            .expect("valid patch");
        assert_eq!(patched.first_name.as_deref(), Some("Ada"));
        assert_eq!(patched.last_name.as_deref(), Some("Lovelace"));
        assert_eq!(patched.title, None);
    }

    proptest! {
        #[test]
        fn email_parse_never_panics_and_normalises_idempotently(raw in "\\PC{0,80}|[a-zA-Z0-9.+_-]{1,20}@[a-zA-Z0-9.-]{1,20}") {
            if let Ok(email) = Email::parse(&raw) {
                let again = Email::parse(email.as_str()).expect("normalised emails re-parse");
                prop_assert_eq!(again, email);
            }
        }

        #[test]
        fn draft_from_arbitrary_text_never_panics(first in "\\PC{0,200}", phone in "\\PC{0,40}") {
            let _ = ContactDraft::new(ContactInput {
                first_name: Some(first),
                phone: Some(phone),
                ..ContactInput::default()
            });
        }
    }
}
