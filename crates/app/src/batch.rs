//! Batch create or upsert of contacts (by e-mail) and companies (by domain), up to 100
//! items, in one transaction, with a result per item.
//!
//! - `create` is all-or-nothing: if any item is invalid or cannot be written (e-mail or
//!   domain taken, unknown owner or company), nothing is written and every failing index is
//!   reported.
//! - `upsert` is per item: invalid items, and items naming an unknown owner or company, are
//!   reported and skipped; every other item is created, updated or left unchanged, and all
//!   of those are committed together. Two items with the same key are applied in order (the
//!   later one updates what the earlier one wrote).

use domain::FieldErrors;
use domain::company::{CompanyDraft, CompanyInput};
use domain::contact::{ContactDraft, ContactInput};
use domain::ids::{CompanyId, ContactId};
use domain::principal::{Forbidden, Permission, Principal};
use ports::{
    CompanyRepository, CompanyWriteError, ContactRepository, ContactWriteError, IdentityRepository,
    RepoError, UnitOfWork,
};
use thiserror::Error;

/// Most items in one batch.
pub const BATCH_MAX: usize = 100;

/// How a batch writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchMode {
    /// Create every item, or nothing.
    Create,
    /// Create or update each item by its natural key (e-mail, domain), skipping bad items.
    Upsert,
}

/// What happened to one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// A new row, with its id.
    Created(uuid::Uuid),
    /// An existing row changed.
    Updated(uuid::Uuid),
    /// An existing row already held these values.
    Unchanged(uuid::Uuid),
    /// Refused: the reasons, by field.
    Error(ItemError),
}

/// Why one item was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemError {
    /// Broken rules, by field.
    Invalid(FieldErrors),
    /// The natural key is taken (create mode).
    Conflict(FieldErrors),
    /// Not written because another item of an all-or-nothing batch failed.
    Skipped,
}

/// Why a batch as a whole failed.
#[derive(Debug, Error)]
pub enum BatchError {
    /// Role or scopes do not allow writing.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// Zero or more than 100 items.
    #[error("a batch holds 1 to {BATCH_MAX} items")]
    Size,
    /// A `create` batch with failing items: nothing was written; the outcome of every item.
    #[error("the batch was not written: some items failed")]
    Rejected(Vec<ItemOutcome>),
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

fn field(name: &str, message: &str) -> FieldErrors {
    let mut errors = FieldErrors::new();
    errors.add(name, message);
    errors
}

/// The outcome of a create item whose e-mail another contact holds.
fn email_taken() -> ItemOutcome {
    ItemOutcome::Error(ItemError::Conflict(field(
        "email",
        "is already used by another contact",
    )))
}

/// Marks every successful outcome as skipped: the shape of a rejected all-or-nothing batch.
fn rejected(outcomes: Vec<ItemOutcome>) -> BatchError {
    BatchError::Rejected(
        outcomes
            .into_iter()
            .map(|o| match o {
                ItemOutcome::Error(e) => ItemOutcome::Error(e),
                _ => ItemOutcome::Error(ItemError::Skipped),
            })
            .collect(),
    )
}

/// Writes a batch of contacts. Look-ups are one per distinct referenced owner and
/// company, plus (upsert only) one statement for all the e-mails; `create` inserts every
/// row in a few multi-row statements and learns the taken e-mails from the rows the
/// insert skipped, so a batch costs a handful of round trips, not hundreds.
///
/// # Errors
/// [`BatchError`]; on [`BatchError::Rejected`] nothing was written.
pub async fn batch_contacts<
    U: UnitOfWork + ContactRepository + CompanyRepository + IdentityRepository,
>(
    mut uow: U,
    principal: &Principal,
    mode: BatchMode,
    items: Vec<Result<ContactInput, FieldErrors>>,
) -> Result<Vec<ItemOutcome>, BatchError> {
    principal.require(Permission::ContactsWrite)?;
    if items.is_empty() || items.len() > BATCH_MAX {
        return Err(BatchError::Size);
    }
    let drafts: Vec<Result<ContactDraft, FieldErrors>> = items
        .into_iter()
        .map(|item| item.and_then(ContactDraft::new))
        .collect();
    if mode == BatchMode::Create && drafts.iter().any(Result::is_err) {
        let outcomes = drafts
            .into_iter()
            .map(|d| match d {
                Ok(_) => ItemOutcome::Error(ItemError::Skipped),
                Err(errors) => ItemOutcome::Error(ItemError::Invalid(errors)),
            })
            .collect();
        return Err(BatchError::Rejected(outcomes));
    }
    // References, checked once per distinct id, so one bad item cannot abort the
    // transaction of an upsert batch.
    let mut missing_owners = std::collections::BTreeSet::new();
    let mut missing_companies = std::collections::BTreeSet::new();
    let owners: std::collections::BTreeSet<_> =
        drafts.iter().flatten().filter_map(|d| d.owner_id).collect();
    for owner in owners {
        if uow.get_member(owner, false).await?.is_none() {
            missing_owners.insert(owner);
        }
    }
    let companies: std::collections::BTreeSet<_> = drafts
        .iter()
        .flatten()
        .filter_map(|d| d.company_id)
        .collect();
    for company in companies {
        if uow.get_company(company, false).await?.is_none() {
            missing_companies.insert(company);
        }
    }
    let reference_error = |draft: &ContactDraft| {
        if draft.owner_id.is_some_and(|o| missing_owners.contains(&o)) {
            Some(field("ownerId", "must be a member of this tenant"))
        } else if draft
            .company_id
            .is_some_and(|c| missing_companies.contains(&c))
        {
            Some(field("companyId", "must be a company of this tenant"))
        } else {
            None
        }
    };

    if mode == BatchMode::Create {
        let mut outcomes = Vec::with_capacity(drafts.len());
        let mut rows = Vec::with_capacity(drafts.len());
        let mut seen = std::collections::HashSet::new();
        for draft in drafts.into_iter().flatten() {
            let key = draft.email.as_ref().map(|e| e.as_str().to_owned());
            if let Some(errors) = reference_error(&draft) {
                outcomes.push(ItemOutcome::Error(ItemError::Invalid(errors)));
            } else if key.as_ref().is_some_and(|k| !seen.insert(k.clone())) {
                outcomes.push(email_taken());
            } else {
                let id = ContactId::new();
                outcomes.push(ItemOutcome::Created(id.as_uuid()));
                rows.push((id, draft));
            }
        }
        // No e-mail look-up first: the insert skips rows whose e-mail is taken, and those
        // are exactly the conflicts to report (a round trip saved on every good batch). It
        // runs even when other items already failed, so the answer names every failing
        // index; the unit of work is then dropped, which rolls the rows back.
        let written: std::collections::HashSet<ContactId> = match uow.insert_contacts(&rows).await {
            Ok(ids) => ids.into_iter().collect(),
            Err(ContactWriteError::Repo(repo)) => return Err(repo.into()),
            Err(other) => {
                return Err(RepoError::Unexpected(format!("batch insert: {other}")).into());
            }
        };
        if written.len() < rows.len() || outcomes.iter().any(|o| matches!(o, ItemOutcome::Error(_)))
        {
            for outcome in &mut outcomes {
                if let ItemOutcome::Created(id) = outcome
                    && !written.contains(&ContactId::from_uuid(*id))
                {
                    *outcome = email_taken();
                }
            }
            // Dropping the unit of work rolls back the rows that were written.
            return Err(rejected(outcomes));
        }
        uow.commit().await?;
        return Ok(outcomes);
    }

    let emails: Vec<_> = drafts
        .iter()
        .flatten()
        .filter_map(|d| d.email.clone())
        .collect();
    let mut by_email: std::collections::HashMap<String, domain::contact::Contact> = uow
        .find_contacts_by_emails(&emails)
        .await?
        .into_iter()
        .filter_map(|c| {
            c.fields
                .email
                .as_ref()
                .map(|e| (e.as_str().to_owned(), c.clone()))
        })
        .collect();

    let mut outcomes = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let draft = match draft {
            Ok(draft) => draft,
            Err(errors) => {
                outcomes.push(ItemOutcome::Error(ItemError::Invalid(errors)));
                continue;
            }
        };
        if let Some(errors) = reference_error(&draft) {
            outcomes.push(ItemOutcome::Error(ItemError::Invalid(errors)));
            continue;
        }
        let key = draft.email.as_ref().map(|e| e.as_str().to_owned());
        let written = match key.as_ref().and_then(|k| by_email.get(k)) {
            Some(current) if current.fields == draft => {
                outcomes.push(ItemOutcome::Unchanged(current.id.as_uuid()));
                continue;
            }
            Some(current) => uow
                .update_contact(current.id, &draft)
                .await
                .map(|c| (ItemOutcome::Updated(c.id.as_uuid()), c)),
            None => uow
                .insert_contact(ContactId::new(), &draft)
                .await
                .map(|c| (ItemOutcome::Created(c.id.as_uuid()), c)),
        };
        match written {
            Ok((outcome, contact)) => {
                if let Some(key) = key {
                    by_email.insert(key, contact);
                }
                outcomes.push(outcome);
            }
            Err(ContactWriteError::DuplicateEmail) => {
                return Err(RepoError::Contention("e-mail taken concurrently".into()).into());
            }
            Err(ContactWriteError::Repo(repo)) => return Err(repo.into()),
            Err(other) => return Err(RepoError::Unexpected(format!("batch write: {other}")).into()),
        }
    }
    uow.commit().await?;
    Ok(outcomes)
}

/// Writes a batch of companies.
///
/// # Errors
/// [`BatchError`]; on [`BatchError::Rejected`] nothing was written.
pub async fn batch_companies<U: UnitOfWork + CompanyRepository>(
    mut uow: U,
    principal: &Principal,
    mode: BatchMode,
    items: Vec<Result<CompanyInput, FieldErrors>>,
) -> Result<Vec<ItemOutcome>, BatchError> {
    principal.require(Permission::ContactsWrite)?;
    if items.is_empty() || items.len() > BATCH_MAX {
        return Err(BatchError::Size);
    }
    let drafts: Vec<Result<CompanyDraft, FieldErrors>> = items
        .into_iter()
        .map(|item| item.and_then(CompanyDraft::new))
        .collect();
    if mode == BatchMode::Create && drafts.iter().any(Result::is_err) {
        let outcomes = drafts
            .into_iter()
            .map(|d| match d {
                Ok(_) => ItemOutcome::Error(ItemError::Skipped),
                Err(errors) => ItemOutcome::Error(ItemError::Invalid(errors)),
            })
            .collect();
        return Err(BatchError::Rejected(outcomes));
    }
    let mut outcomes = Vec::with_capacity(drafts.len());
    let mut failed = false;
    for draft in drafts {
        let draft = match draft {
            Ok(draft) => draft,
            Err(errors) => {
                outcomes.push(ItemOutcome::Error(ItemError::Invalid(errors)));
                continue;
            }
        };
        let existing = match &draft.domain {
            Some(domain) => uow.find_company_by_domain(domain).await?,
            None => None,
        };
        let outcome = match (existing, mode) {
            (Some(_), BatchMode::Create) => {
                failed = true;
                ItemOutcome::Error(ItemError::Conflict(field(
                    "domain",
                    "is already used by another company",
                )))
            }
            (Some(current), BatchMode::Upsert) if current.fields == draft => {
                ItemOutcome::Unchanged(current.id.as_uuid())
            }
            (Some(current), BatchMode::Upsert) => {
                match uow.update_company(current.id, &draft).await {
                    Ok(updated) => ItemOutcome::Updated(updated.id.as_uuid()),
                    Err(CompanyWriteError::Repo(repo)) => return Err(repo.into()),
                    Err(other) => {
                        return Err(RepoError::Unexpected(format!("batch update: {other}")).into());
                    }
                }
            }
            (None, _) => match uow.insert_company(CompanyId::new(), &draft).await {
                Ok(created) => ItemOutcome::Created(created.id.as_uuid()),
                // Only a concurrent writer can take the key between the look-up and the
                // insert; the transaction is aborted then, so the whole batch is retried.
                Err(CompanyWriteError::DuplicateDomain) => {
                    return Err(RepoError::Contention("domain taken concurrently".into()).into());
                }
                Err(CompanyWriteError::Repo(repo)) => return Err(repo.into()),
                Err(other) => {
                    return Err(RepoError::Unexpected(format!("batch insert: {other}")).into());
                }
            },
        };
        outcomes.push(outcome);
    }
    if mode == BatchMode::Create && failed {
        return Err(rejected(outcomes));
    }
    uow.commit().await?;
    Ok(outcomes)
}
