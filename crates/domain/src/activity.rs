//! Activities: notes, calls, e-mails, meetings and tasks, linked to at least one contact,
//! company or lead of the same tenant, shown on their timelines newest first.

use time::OffsetDateTime;

use crate::field_errors::FieldErrors;
pub use crate::ids::{ActivityId, LeadId};
use crate::ids::{CompanyId, ContactId, TenantId};
use crate::list::{Cursor, Limit, Page, Sort, SortField, SortValue};
use crate::text::single_line;

/// Longest subject.
pub const SUBJECT_MAX: usize = 200;
/// Longest body.
pub const BODY_MAX: usize = 10_000;

/// What kind of activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActivityType {
    /// A note.
    Note,
    /// A call.
    Call,
    /// An e-mail.
    Email,
    /// A meeting.
    Meeting,
    /// A task (usually with `dueAt`).
    Task,
}

impl ActivityType {
    /// Every type with its wire name.
    pub const ALL: [(Self, &'static str); 5] = [
        (Self::Note, "note"),
        (Self::Call, "call"),
        (Self::Email, "email"),
        (Self::Meeting, "meeting"),
        (Self::Task, "task"),
    ];

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("note", |(_, n)| n)
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == raw).map(|(t, _)| *t)
    }
}

/// Activity fields as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityInput {
    /// Type.
    pub kind: ActivityType,
    /// Subject (required).
    pub subject: Option<String>,
    /// Free text, multi-line.
    pub body: Option<String>,
    /// Due time (tasks).
    pub due_at: Option<OffsetDateTime>,
    /// Done time.
    pub completed_at: Option<OffsetDateTime>,
    /// Linked contact.
    pub contact_id: Option<ContactId>,
    /// Linked company.
    pub company_id: Option<CompanyId>,
    /// Linked lead.
    pub lead_id: Option<LeadId>,
}

/// A merge-patch of an activity (`None` keeps, `Some(None)` clears).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(clippy::option_option)]
pub struct ActivityPatch {
    /// Type.
    pub kind: Option<ActivityType>,
    /// Subject (cannot be cleared).
    pub subject: Option<String>,
    /// Body.
    pub body: Option<Option<String>>,
    /// Due time.
    pub due_at: Option<Option<OffsetDateTime>>,
    /// Done time (a task is completed by setting it).
    pub completed_at: Option<Option<OffsetDateTime>>,
    /// Linked contact.
    pub contact_id: Option<Option<ContactId>>,
    /// Linked company.
    pub company_id: Option<Option<CompanyId>>,
    /// Linked lead.
    pub lead_id: Option<Option<LeadId>>,
}

/// The writable state of an activity, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityDraft {
    /// Type.
    pub kind: ActivityType,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: Option<String>,
    /// Due.
    pub due_at: Option<OffsetDateTime>,
    /// Completed.
    pub completed_at: Option<OffsetDateTime>,
    /// Contact.
    pub contact_id: Option<ContactId>,
    /// Company.
    pub company_id: Option<CompanyId>,
    /// Lead.
    pub lead_id: Option<LeadId>,
}

impl ActivityDraft {
    /// The input that would validate into this draft.
    #[must_use]
    pub fn to_input(&self) -> ActivityInput {
        ActivityInput {
            kind: self.kind,
            subject: Some(self.subject.clone()),
            body: self.body.clone(),
            due_at: self.due_at,
            completed_at: self.completed_at,
            contact_id: self.contact_id,
            company_id: self.company_id,
            lead_id: self.lead_id,
        }
    }

    /// This draft's input with a merge-patch applied (validated again by [`Self::new`]).
    #[must_use]
    pub fn patched_input(&self, patch: ActivityPatch) -> ActivityInput {
        let current = self.to_input();
        ActivityInput {
            kind: patch.kind.unwrap_or(current.kind),
            subject: patch.subject.or(current.subject),
            body: patch.body.unwrap_or(current.body),
            due_at: patch.due_at.unwrap_or(current.due_at),
            completed_at: patch.completed_at.unwrap_or(current.completed_at),
            contact_id: patch.contact_id.unwrap_or(current.contact_id),
            company_id: patch.company_id.unwrap_or(current.company_id),
            lead_id: patch.lead_id.unwrap_or(current.lead_id),
        }
    }

    /// Validates an activity: a subject, a bounded body without NUL, at least one link.
    ///
    /// # Errors
    /// Every problem, by field.
    pub fn new(input: ActivityInput) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let subject = match input.subject.as_deref() {
            None => {
                errors.add("subject", "is required");
                None
            }
            Some(raw) => errors.check("subject", single_line(raw, SUBJECT_MAX)),
        };
        if let Some(body) = &input.body {
            if body.chars().count() > BODY_MAX {
                errors.add("body", format!("must be at most {BODY_MAX} characters"));
            }
            if body.contains('\0') {
                errors.add("body", "must not contain NUL characters");
            }
        }
        if input.contact_id.is_none() && input.company_id.is_none() && input.lead_id.is_none() {
            errors.add(
                "contactId",
                "an activity is linked to a contact, a company or a lead",
            );
        }
        match subject {
            Some(subject) if errors.is_empty() => Ok(Self {
                kind: input.kind,
                subject,
                body: input.body,
                due_at: input.due_at,
                completed_at: input.completed_at,
                contact_id: input.contact_id,
                company_id: input.company_id,
                lead_id: input.lead_id,
            }),
            _ => Err(errors),
        }
    }
}

/// A stored activity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    /// Id.
    pub id: ActivityId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Fields.
    pub fields: ActivityDraft,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Version (ETag).
    pub version: i64,
}

impl Activity {
    /// The entity tag of this version.
    #[must_use]
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

/// Activities are listed newest first, by creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivitySortField {
    /// Creation time.
    CreatedAt,
}

impl SortField for ActivitySortField {
    const FIELDS: &'static [(Self, &'static str)] = &[(Self::CreatedAt, "createdAt")];

    fn is_timestamp(self) -> bool {
        true
    }
}

impl ActivitySortField {
    /// The value of this field in `activity`.
    #[must_use]
    pub fn value_of(self, activity: &Activity) -> SortValue {
        SortValue::Timestamp(activity.created_at)
    }
}

/// An activity list or timeline query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityQuery {
    /// Page size.
    pub limit: Limit,
    /// Order (newest first by default).
    pub sort: Sort<ActivitySortField>,
    /// Continue after.
    pub cursor: Option<Cursor<ActivitySortField>>,
    /// Of this type.
    pub kind: Option<ActivityType>,
    /// Linked to this contact.
    pub contact_id: Option<ContactId>,
    /// Linked to this company.
    pub company_id: Option<CompanyId>,
    /// Linked to this lead.
    pub lead_id: Option<LeadId>,
    /// Case-insensitive search in the subject and the body.
    pub q: Option<String>,
}

impl Default for ActivityQuery {
    fn default() -> Self {
        Self {
            limit: Limit::default(),
            sort: Sort {
                field: ActivitySortField::CreatedAt,
                descending: true,
            },
            cursor: None,
            kind: None,
            contact_id: None,
            company_id: None,
            lead_id: None,
            q: None,
        }
    }
}

/// A page of activities.
pub type ActivityPage = Page<Activity, ActivitySortField>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_activity_needs_a_subject_and_a_link() {
        let input = ActivityInput {
            kind: ActivityType::Call,
            subject: Some("Intro call".into()),
            body: Some("line one\nline two".into()),
            due_at: None,
            completed_at: None,
            contact_id: Some(ContactId::new()),
            company_id: None,
            lead_id: None,
        };
        assert!(
            ActivityDraft::new(input.clone()).is_ok(),
            "multi-line bodies are fine"
        );
        let unlinked = ActivityDraft::new(ActivityInput {
            contact_id: None,
            ..input.clone()
        })
        .expect_err("no link");
        assert!(unlinked.fields().contains_key("contactId"));
        assert!(
            ActivityDraft::new(ActivityInput {
                subject: None,
                ..input
            })
            .is_err()
        );
    }
}
