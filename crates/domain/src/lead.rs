//! Leads (deals): a potential sale in a pipeline stage, with a value in minor units of a
//! currency, an owner and links to a contact and a company. The status follows the stage.

use thiserror::Error;
use time::{Date, OffsetDateTime};

use crate::field_errors::FieldErrors;
use crate::ids::{CompanyId, ContactId, TenantId, UserId};
use crate::list::{Cursor, Limit, Page, Sort, SortField, SortValue};
use crate::pipeline::{PipelineId, StageId, StageKind};
use crate::text::{optional_single_line, single_line};

/// A lead of one tenant.
pub use crate::ids::LeadId;

/// Longest title.
pub const LEAD_TITLE_MAX: usize = 200;
/// Longest source.
pub const LEAD_SOURCE_MAX: usize = 100;

/// An ISO 4217-shaped currency code: three upper-case letters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Currency(String);

/// A currency code of the wrong shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("must be a three-letter ISO 4217 code such as EUR")]
pub struct CurrencyError;

impl Currency {
    /// Parses a code (upper-case only: `eur` is refused rather than guessed).
    ///
    /// # Errors
    /// [`CurrencyError`].
    pub fn parse(raw: &str) -> Result<Self, CurrencyError> {
        if raw.len() == 3 && raw.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(CurrencyError)
        }
    }

    /// The code.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An amount in minor units (cents) of a currency; never negative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Money {
    /// Minor units.
    pub minor: i64,
    /// Currency.
    pub currency: Currency,
}

/// Lead fields as received; pipeline and stage already resolved by the use case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeadInput {
    /// Title (required).
    pub title: Option<String>,
    /// Contact.
    pub contact_id: Option<ContactId>,
    /// Company.
    pub company_id: Option<CompanyId>,
    /// Pipeline (default: the tenant's default pipeline).
    pub pipeline_id: Option<PipelineId>,
    /// Stage (default: the pipeline's first stage).
    pub stage_id: Option<StageId>,
    /// Value in minor units.
    pub value: Option<i64>,
    /// Currency of the value.
    pub currency: Option<String>,
    /// Owning member.
    pub owner_id: Option<UserId>,
    /// Expected close date.
    pub expected_close_date: Option<Date>,
    /// Where the lead came from.
    pub source: Option<String>,
}

/// A merge-patch of a lead (`None` keeps, `Some(None)` clears).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(clippy::option_option)]
pub struct LeadPatch {
    /// Title (cannot be cleared).
    pub title: Option<Option<String>>,
    /// Contact.
    pub contact_id: Option<Option<ContactId>>,
    /// Company.
    pub company_id: Option<Option<CompanyId>>,
    /// Pipeline (cannot be cleared).
    pub pipeline_id: Option<PipelineId>,
    /// Stage (cannot be cleared).
    pub stage_id: Option<StageId>,
    /// Value.
    pub value: Option<Option<i64>>,
    /// Currency.
    pub currency: Option<Option<String>>,
    /// Owner.
    pub owner_id: Option<Option<UserId>>,
    /// Expected close date.
    pub expected_close_date: Option<Option<Date>>,
    /// Source.
    pub source: Option<Option<String>>,
}

/// The writable state of a lead, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadDraft {
    /// Title.
    pub title: String,
    /// Contact.
    pub contact_id: Option<ContactId>,
    /// Company.
    pub company_id: Option<CompanyId>,
    /// Pipeline.
    pub pipeline_id: PipelineId,
    /// Stage of that pipeline.
    pub stage_id: StageId,
    /// Value.
    pub value: Option<Money>,
    /// Owner.
    pub owner_id: Option<UserId>,
    /// Expected close date.
    pub expected_close_date: Option<Date>,
    /// Source.
    pub source: Option<String>,
}

impl LeadDraft {
    /// Validates input whose pipeline and stage are set.
    ///
    /// # Errors
    /// Every problem, by field.
    pub fn new(input: LeadInput) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let title = match input.title.as_deref() {
            None => {
                errors.add("title", "is required");
                None
            }
            Some(raw) => errors.check("title", single_line(raw, LEAD_TITLE_MAX)),
        };
        let source = errors
            .check(
                "source",
                optional_single_line(input.source.as_deref(), LEAD_SOURCE_MAX),
            )
            .flatten();
        let value = match (input.value, input.currency.as_deref()) {
            (None, None) => None,
            (Some(minor), Some(code)) => {
                if minor < 0 {
                    errors.add("value", "must not be negative");
                }
                errors
                    .check("currency", Currency::parse(code))
                    .map(|currency| Money { minor, currency })
            }
            (Some(_), None) => {
                errors.add("currency", "is required with a value");
                None
            }
            (None, Some(_)) => {
                errors.add("value", "is required with a currency");
                None
            }
        };
        let (Some(pipeline_id), Some(stage_id)) = (input.pipeline_id, input.stage_id) else {
            errors.add("stageId", "is required");
            return Err(errors);
        };
        match title {
            Some(title) if errors.is_empty() => Ok(Self {
                title,
                contact_id: input.contact_id,
                company_id: input.company_id,
                pipeline_id,
                stage_id,
                value,
                owner_id: input.owner_id,
                expected_close_date: input.expected_close_date,
                source,
            }),
            _ => Err(errors),
        }
    }

    /// The draft as input again, for patching.
    #[must_use]
    pub fn to_input(&self) -> LeadInput {
        LeadInput {
            title: Some(self.title.clone()),
            contact_id: self.contact_id,
            company_id: self.company_id,
            pipeline_id: Some(self.pipeline_id),
            stage_id: Some(self.stage_id),
            value: self.value.as_ref().map(|m| m.minor),
            currency: self.value.as_ref().map(|m| m.currency.as_str().to_owned()),
            owner_id: self.owner_id,
            expected_close_date: self.expected_close_date,
            source: self.source.clone(),
        }
    }

    /// Applies a merge-patch (pipeline and stage handled by the caller).
    #[must_use]
    pub fn patched_input(&self, patch: LeadPatch) -> LeadInput {
        let mut input = self.to_input();
        if let Some(v) = patch.title {
            input.title = v;
        }
        if let Some(v) = patch.contact_id {
            input.contact_id = v;
        }
        if let Some(v) = patch.company_id {
            input.company_id = v;
        }
        if let Some(v) = patch.pipeline_id {
            input.pipeline_id = Some(v);
        }
        if let Some(v) = patch.stage_id {
            input.stage_id = Some(v);
        }
        if let Some(v) = patch.value {
            input.value = v;
        }
        if let Some(v) = patch.currency {
            input.currency = v;
        }
        if let Some(v) = patch.owner_id {
            input.owner_id = v;
        }
        if let Some(v) = patch.expected_close_date {
            input.expected_close_date = v;
        }
        if let Some(v) = patch.source {
            input.source = v;
        }
        input
    }
}

/// A stored lead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lead {
    /// Id.
    pub id: LeadId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Fields.
    pub fields: LeadDraft,
    /// Open, won or lost: the kind of its stage.
    pub status: StageKind,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Version (ETag).
    pub version: i64,
}

impl Lead {
    /// The entity tag of this version.
    #[must_use]
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

/// Sortable lead fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeadSortField {
    /// Creation time.
    CreatedAt,
    /// Last change.
    UpdatedAt,
}

impl SortField for LeadSortField {
    const FIELDS: &'static [(Self, &'static str)] = &[
        (Self::CreatedAt, "createdAt"),
        (Self::UpdatedAt, "updatedAt"),
    ];

    fn is_timestamp(self) -> bool {
        true
    }
}

impl LeadSortField {
    /// The value of this field in `lead`.
    #[must_use]
    pub fn value_of(self, lead: &Lead) -> SortValue {
        match self {
            Self::CreatedAt => SortValue::Timestamp(lead.created_at),
            Self::UpdatedAt => SortValue::Timestamp(lead.updated_at),
        }
    }
}

/// A lead list query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadQuery {
    /// Page size.
    pub limit: Limit,
    /// Order.
    pub sort: Sort<LeadSortField>,
    /// Continue after.
    pub cursor: Option<Cursor<LeadSortField>>,
    /// In this pipeline.
    pub pipeline_id: Option<PipelineId>,
    /// In this stage.
    pub stage_id: Option<StageId>,
    /// With this status.
    pub status: Option<StageKind>,
    /// Owned by.
    pub owner_id: Option<UserId>,
    /// Of this contact.
    pub contact_id: Option<ContactId>,
    /// Of this company.
    pub company_id: Option<CompanyId>,
    /// Value at least (minor units).
    pub min_value: Option<i64>,
    /// Value at most (minor units).
    pub max_value: Option<i64>,
    /// Case-insensitive search in the title, the source, and the linked contact's and
    /// company's names.
    pub q: Option<String>,
}

impl Default for LeadQuery {
    fn default() -> Self {
        Self {
            limit: Limit::default(),
            sort: Sort {
                field: LeadSortField::CreatedAt,
                descending: true,
            },
            cursor: None,
            pipeline_id: None,
            stage_id: None,
            status: None,
            owner_id: None,
            contact_id: None,
            company_id: None,
            min_value: None,
            max_value: None,
            q: None,
        }
    }
}

/// A page of leads.
pub type LeadPage = Page<Lead, LeadSortField>;

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> LeadInput {
        LeadInput {
            title: Some("Rockets".into()),
            pipeline_id: Some(PipelineId::new()),
            stage_id: Some(StageId::new()),
            ..LeadInput::default()
        }
    }

    #[test]
    fn value_and_currency_come_together() {
        assert!(
            LeadDraft::new(LeadInput {
                value: Some(100),
                currency: Some("EUR".into()),
                ..input()
            })
            .is_ok()
        );
        assert!(
            LeadDraft::new(LeadInput {
                value: Some(100),
                ..input()
            })
            .is_err()
        );
        assert!(
            LeadDraft::new(LeadInput {
                currency: Some("EUR".into()),
                ..input()
            })
            .is_err()
        );
        assert!(
            LeadDraft::new(LeadInput {
                value: Some(-1),
                currency: Some("EUR".into()),
                ..input()
            })
            .is_err()
        );
        assert!(
            LeadDraft::new(LeadInput {
                value: Some(1),
                currency: Some("eur".into()),
                ..input()
            })
            .is_err()
        );
    }

    #[test]
    fn a_lead_needs_a_title_and_a_stage() {
        assert!(
            LeadDraft::new(LeadInput {
                title: None,
                ..input()
            })
            .is_err()
        );
        assert!(
            LeadDraft::new(LeadInput {
                stage_id: None,
                ..input()
            })
            .is_err()
        );
    }
}
