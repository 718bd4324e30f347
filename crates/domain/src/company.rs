//! Companies: organisations a tenant does business with. Contacts may belong to one.

use serde_json::{Map, Value};
use thiserror::Error;
use time::OffsetDateTime;

use crate::contact::{CustomFields, Tags};
use crate::field_errors::FieldErrors;
use crate::ids::{CompanyId, TenantId};
use crate::list::{Cursor, Limit, Page, Sort, SortField, SortValue};
use crate::text::{optional_single_line, single_line};

/// Longest company name.
pub const COMPANY_NAME_MAX: usize = 200;
/// Longest industry.
pub const INDUSTRY_MAX: usize = 100;
/// Longest address line or part.
pub const ADDRESS_PART_MAX: usize = 200;
/// Longest domain name (RFC 1035).
pub const DOMAIN_MAX: usize = 253;

/// A web domain, normalised: lower-case, without a leading `www.`. Unique per tenant, so
/// `Example.com` and `www.example.com` are the same company.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Domain(String);

/// The JSON-schema pattern equivalent to [`Domain::parse`] (length is `maxLength`).
pub const DOMAIN_PATTERN: &str = "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

/// A domain that is not a host name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("must be a domain name such as example.com (no scheme, path or spaces)")]
pub struct DomainError;

impl Domain {
    /// Parses a host name of at least two DNS labels and normalises it.
    ///
    /// # Errors
    /// [`DomainError`] for anything else (URLs included: send the host only).
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.len() > DOMAIN_MAX {
            return Err(DomainError);
        }
        let labels: Vec<&str> = raw.split('.').collect();
        let valid = labels.len() >= 2
            && labels.iter().all(|label| {
                let bytes = label.as_bytes();
                !bytes.is_empty()
                    && bytes.len() <= 63
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                    && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
                    && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
            });
        if !valid {
            return Err(DomainError);
        }
        let lower = raw.to_ascii_lowercase();
        let stripped = match lower.strip_prefix("www.") {
            Some(rest) if rest.contains('.') => rest.to_owned(),
            _ => lower,
        };
        Ok(Self(stripped))
    }

    /// The normalised domain.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Head-count bands, as HubSpot and LinkedIn show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompanySize {
    /// 1-10 people.
    Micro,
    /// 11-50.
    Small,
    /// 51-200.
    Medium,
    /// 201-1000.
    Large,
    /// 1001-5000.
    Enterprise,
    /// More than 5000.
    Huge,
}

impl CompanySize {
    /// Every band with its wire name.
    pub const ALL: [(Self, &'static str); 6] = [
        (Self::Micro, "1-10"),
        (Self::Small, "11-50"),
        (Self::Medium, "51-200"),
        (Self::Large, "201-1000"),
        (Self::Enterprise, "1001-5000"),
        (Self::Huge, "5000+"),
    ];

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("", |(_, n)| n)
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == raw).map(|(s, _)| *s)
    }
}

/// A postal address: every part optional, one line each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Address {
    /// Street and number.
    pub street: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Region, state or county.
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// Country (name or ISO code, as entered).
    pub country: Option<String>,
}

impl Address {
    /// The address as a JSON object (absent parts left out).
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        for (key, part) in [
            ("street", &self.street),
            ("city", &self.city),
            ("region", &self.region),
            ("postalCode", &self.postal_code),
            ("country", &self.country),
        ] {
            if let Some(part) = part {
                map.insert(key.to_owned(), Value::String(part.clone()));
            }
        }
        Value::Object(map)
    }

    /// True when no part is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Company fields as received, unchecked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompanyInput {
    /// Name (required).
    pub name: Option<String>,
    /// Web domain.
    pub domain: Option<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Head-count band.
    pub size: Option<String>,
    /// Address parts: street, city, region, postalCode, country.
    pub address: Option<[Option<String>; 5]>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Custom fields.
    pub custom_fields: Option<Value>,
}

/// The writable state of a company, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompanyDraft {
    /// Name.
    pub name: String,
    /// Normalised domain, unique per tenant.
    pub domain: Option<Domain>,
    /// Industry.
    pub industry: Option<String>,
    /// Head-count band.
    pub size: Option<CompanySize>,
    /// Address.
    pub address: Address,
    /// Tags.
    pub tags: Tags,
    /// Custom fields.
    pub custom_fields: CustomFields,
}

impl CompanyDraft {
    /// Validates raw input.
    ///
    /// # Errors
    /// Every problem, by field.
    pub fn new(input: CompanyInput) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = match input.name.as_deref() {
            None => {
                errors.add("name", "is required");
                None
            }
            Some(raw) => errors.check("name", single_line(raw, COMPANY_NAME_MAX)),
        };
        let domain = input
            .domain
            .as_deref()
            .and_then(|raw| errors.check("domain", Domain::parse(raw)));
        let industry = errors
            .check(
                "industry",
                optional_single_line(input.industry.as_deref(), INDUSTRY_MAX),
            )
            .flatten();
        let size = input.size.as_deref().and_then(|raw| {
            let parsed = CompanySize::parse(raw);
            if parsed.is_none() {
                errors.add(
                    "size",
                    "must be one of 1-10, 11-50, 51-200, 201-1000, 1001-5000, 5000+",
                );
            }
            parsed
        });
        let mut address = Address::default();
        if let Some(parts) = &input.address {
            let names = [
                "address.street",
                "address.city",
                "address.region",
                "address.postalCode",
                "address.country",
            ];
            let mut parsed: Vec<Option<String>> = Vec::with_capacity(5);
            for (part, name) in parts.iter().zip(names) {
                parsed.push(
                    errors
                        .check(
                            name,
                            optional_single_line(part.as_deref(), ADDRESS_PART_MAX),
                        )
                        .flatten(),
                );
            }
            let mut parsed = parsed.into_iter();
            address = Address {
                street: parsed.next().flatten(),
                city: parsed.next().flatten(),
                region: parsed.next().flatten(),
                postal_code: parsed.next().flatten(),
                country: parsed.next().flatten(),
            };
        }
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
        match name {
            Some(name) if errors.is_empty() => Ok(Self {
                name,
                domain,
                industry,
                size,
                address,
                tags,
                custom_fields,
            }),
            _ => Err(errors),
        }
    }

    /// The draft as raw input again, for merge-patching.
    #[must_use]
    pub fn to_input(&self) -> CompanyInput {
        let a = &self.address;
        CompanyInput {
            name: Some(self.name.clone()),
            domain: self.domain.as_ref().map(|d| d.as_str().to_owned()),
            industry: self.industry.clone(),
            size: self.size.map(|s| s.as_str().to_owned()),
            address: Some([
                a.street.clone(),
                a.city.clone(),
                a.region.clone(),
                a.postal_code.clone(),
                a.country.clone(),
            ]),
            tags: Some(self.tags.as_slice().to_vec()),
            custom_fields: Some(self.custom_fields.to_value()),
        }
    }
}

/// A merge-patch of a company (`None` keeps, `Some(None)` clears).
#[derive(Clone, Debug, Default, PartialEq)]
#[allow(clippy::option_option)]
pub struct CompanyPatch {
    /// Name (cannot be cleared).
    pub name: Option<Option<String>>,
    /// Domain.
    pub domain: Option<Option<String>>,
    /// Industry.
    pub industry: Option<Option<String>>,
    /// Size.
    pub size: Option<Option<String>>,
    /// Address (replaced whole).
    pub address: Option<Option<[Option<String>; 5]>>,
    /// Tags.
    pub tags: Option<Option<Vec<String>>>,
    /// Custom fields.
    pub custom_fields: Option<Option<Value>>,
}

impl CompanyDraft {
    /// Applies a merge-patch and re-validates.
    ///
    /// # Errors
    /// As [`CompanyDraft::new`].
    pub fn patched(&self, patch: CompanyPatch) -> Result<Self, FieldErrors> {
        let mut input = self.to_input();
        if let Some(v) = patch.name {
            input.name = v;
        }
        if let Some(v) = patch.domain {
            input.domain = v;
        }
        if let Some(v) = patch.industry {
            input.industry = v;
        }
        if let Some(v) = patch.size {
            input.size = v;
        }
        if let Some(v) = patch.address {
            input.address = v;
        }
        if let Some(v) = patch.tags {
            input.tags = v;
        }
        if let Some(v) = patch.custom_fields {
            input.custom_fields = v;
        }
        Self::new(input)
    }
}

/// A stored company.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Company {
    /// Id.
    pub id: CompanyId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Fields.
    pub fields: CompanyDraft,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Version (ETag).
    pub version: i64,
}

impl Company {
    /// The entity tag of this version.
    #[must_use]
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

/// Sortable company fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompanySortField {
    /// Creation time.
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Name.
    Name,
    /// Domain (absent sorts as empty).
    Domain,
}

impl SortField for CompanySortField {
    const FIELDS: &'static [(Self, &'static str)] = &[
        (Self::CreatedAt, "createdAt"),
        (Self::UpdatedAt, "updatedAt"),
        (Self::Name, "name"),
        (Self::Domain, "domain"),
    ];

    fn is_timestamp(self) -> bool {
        matches!(self, Self::CreatedAt | Self::UpdatedAt)
    }
}

impl CompanySortField {
    /// The value of this field in `company`, as a cursor records it.
    #[must_use]
    pub fn value_of(self, company: &Company) -> SortValue {
        match self {
            Self::CreatedAt => SortValue::Timestamp(company.created_at),
            Self::UpdatedAt => SortValue::Timestamp(company.updated_at),
            Self::Name => SortValue::Text(company.fields.name.clone()),
            Self::Domain => SortValue::Text(
                company
                    .fields
                    .domain
                    .as_ref()
                    .map(|d| d.as_str().to_owned())
                    .unwrap_or_default(),
            ),
        }
    }
}

/// A company list query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompanyQuery {
    /// Page size.
    pub limit: Limit,
    /// Order.
    pub sort: Sort<CompanySortField>,
    /// Continue after.
    pub cursor: Option<Cursor<CompanySortField>>,
    /// Case-insensitive substring of name or domain.
    pub q: Option<String>,
    /// Exact (normalised) domain.
    pub domain: Option<Domain>,
    /// Carrying this tag.
    pub tag: Option<String>,
    /// Industry, exact.
    pub industry: Option<String>,
    /// Created strictly after.
    pub created_after: Option<OffsetDateTime>,
    /// Changed strictly after.
    pub updated_after: Option<OffsetDateTime>,
}

impl Default for CompanyQuery {
    fn default() -> Self {
        Self {
            limit: Limit::default(),
            sort: Sort {
                field: CompanySortField::CreatedAt,
                descending: true,
            },
            cursor: None,
            q: None,
            domain: None,
            tag: None,
            industry: None,
            created_after: None,
            updated_after: None,
        }
    }
}

/// A page of companies.
pub type CompanyPage = Page<Company, CompanySortField>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_lower_cased_and_lose_www() {
        assert_eq!(
            Domain::parse("WWW.Example.COM").map(|d| d.as_str().to_owned()),
            Ok("example.com".to_owned())
        );
        assert_eq!(
            Domain::parse("www.com").map(|d| d.as_str().to_owned()),
            Ok("www.com".to_owned())
        );
        for bad in [
            "https://example.com",
            "example",
            "exa mple.com",
            "example.com/path",
            "-x.com",
            "",
        ] {
            assert!(Domain::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_company_needs_a_name_and_reports_every_bad_field() {
        let errors = CompanyDraft::new(CompanyInput {
            domain: Some("not a domain".into()),
            size: Some("huge".into()),
            ..CompanyInput::default()
        })
        .expect_err("invalid");
        let fields: Vec<&str> = errors.fields().keys().map(String::as_str).collect();
        assert_eq!(fields, ["domain", "name", "size"]);
    }

    #[test]
    fn a_patch_keeps_what_it_does_not_name() {
        let draft = CompanyDraft::new(CompanyInput {
            name: Some("Acme".into()),
            domain: Some("acme.example".into()),
            ..CompanyInput::default()
        })
        .expect("valid");
        let patched = draft
            .patched(CompanyPatch {
                industry: Some(Some("Rockets".into())),
                ..CompanyPatch::default()
            })
            .expect("valid");
        assert_eq!(patched.domain, draft.domain);
        assert_eq!(patched.industry.as_deref(), Some("Rockets"));
        assert!(
            draft
                .patched(CompanyPatch {
                    name: Some(None),
                    ..CompanyPatch::default()
                })
                .is_err()
        );
    }
}
