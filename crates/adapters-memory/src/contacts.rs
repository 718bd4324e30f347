//! Contacts in memory: the same rules as the PostgreSQL adapter (a taken e-mail, an
//! owner or company outside the tenant), and the search and filters of the list.

use domain::contact::{Contact, ContactDraft, ContactPage, ContactQuery};
use domain::ids::ContactId;
use domain::principal::Principal;
use domain::token::TokenHash;
use ports::{
    ContactCreateByApiKey, ContactListByApiKey, ContactReadByApiKey, ContactRepository,
    ContactWriteError, RememberedKeys, RepoError, TenantStore, UnitOfWork,
};

use crate::keyset::page_of;
use crate::store::{MemoryStore, MemoryUnitOfWork};

impl MemoryUnitOfWork {
    fn check_write(&self, id: ContactId, draft: &ContactDraft) -> Result<(), ContactWriteError> {
        let data = self.data()?;
        if let Some(email) = &draft.email {
            let taken = data
                .contacts
                .values()
                .any(|c| c.id != id && c.fields.email.as_ref() == Some(email));
            if taken {
                return Err(ContactWriteError::DuplicateEmail);
            }
        }
        if let Some(owner) = draft.owner_id
            && !data.members.contains_key(&owner)
        {
            return Err(ContactWriteError::UnknownOwner);
        }
        if let Some(company) = draft.company_id
            && !data.companies.contains_key(&company)
        {
            return Err(ContactWriteError::UnknownCompany);
        }
        Ok(())
    }
}

pub(crate) fn matches(contact: &Contact, query: &ContactQuery) -> bool {
    let fields = &contact.fields;
    let q_ok = query.q.as_deref().is_none_or(|q| {
        let q = q.to_lowercase();
        [&fields.first_name, &fields.last_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .chain(fields.email.as_ref().map(|e| e.as_str()))
            .chain(fields.phone.as_ref().map(|p| p.as_str()))
            .any(|text| text.to_lowercase().contains(&q))
    });
    q_ok && query
        .email
        .as_ref()
        .is_none_or(|e| fields.email.as_ref() == Some(e))
        && query
            .company_id
            .is_none_or(|c| fields.company_id == Some(c))
        && query.owner_id.is_none_or(|o| fields.owner_id == Some(o))
        && query
            .tag
            .as_ref()
            .is_none_or(|t| fields.tags.as_slice().contains(t))
        && query.created_after.is_none_or(|t| contact.created_at > t)
        && query.updated_after.is_none_or(|t| contact.updated_at > t)
}

impl ContactRepository for MemoryUnitOfWork {
    async fn list_contacts(&mut self, query: &ContactQuery) -> Result<ContactPage, RepoError> {
        let rows: Vec<&Contact> = self
            .data()?
            .contacts
            .values()
            .filter(|c| matches(c, query))
            .collect();
        let key = |c: &Contact| (query.sort.field.value_of(c), c.id.as_uuid());
        Ok(page_of(
            rows,
            key,
            query.sort,
            query.cursor.as_ref(),
            query.limit,
        ))
    }

    async fn get_contact(
        &mut self,
        id: ContactId,
        _for_update: bool,
    ) -> Result<Option<Contact>, RepoError> {
        Ok(self.data()?.contacts.get(&id).cloned())
    }

    async fn find_contact_by_email(
        &mut self,
        email: &domain::contact::Email,
    ) -> Result<Option<Contact>, RepoError> {
        Ok(self
            .data()?
            .contacts
            .values()
            .find(|c| c.fields.email.as_ref() == Some(email))
            .cloned())
    }

    async fn find_contacts_by_emails(
        &mut self,
        emails: &[domain::contact::Email],
    ) -> Result<Vec<Contact>, RepoError> {
        Ok(self
            .data()?
            .contacts
            .values()
            .filter(|c| c.fields.email.as_ref().is_some_and(|e| emails.contains(e)))
            .cloned()
            .collect())
    }

    async fn insert_contacts(
        &mut self,
        rows: &[(ContactId, ContactDraft)],
    ) -> Result<Vec<ContactId>, ContactWriteError> {
        let mut created = Vec::with_capacity(rows.len());
        for (id, draft) in rows {
            match self.insert_contact(*id, draft).await {
                Ok(contact) => created.push(contact.id),
                // As PostgreSQL's ON CONFLICT DO NOTHING: a taken e-mail skips the row.
                Err(ContactWriteError::DuplicateEmail) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(created)
    }

    async fn insert_contact(
        &mut self,
        id: ContactId,
        draft: &ContactDraft,
    ) -> Result<Contact, ContactWriteError> {
        self.check_write(id, draft)?;
        let now = self.now();
        let contact = Contact {
            id,
            tenant_id: self.tenant_id,
            fields: draft.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let data = self.data_mut()?;
        data.contacts.insert(id, contact.clone());
        data.record_change(now, None, Some(&contact))?;
        Ok(contact)
    }

    async fn update_contact(
        &mut self,
        id: ContactId,
        draft: &ContactDraft,
    ) -> Result<Contact, ContactWriteError> {
        let now = self.now();
        self.check_write(id, draft)?;
        let data = self.data_mut()?;
        let contact = data
            .contacts
            .get_mut(&id)
            .ok_or(ContactWriteError::NotFound)?;
        let before = contact.clone();
        contact.fields = draft.clone();
        contact.updated_at = now.max(contact.updated_at);
        contact.version += 1;
        let after = contact.clone();
        data.record_change(now, Some(&before), Some(&after))?;
        Ok(after)
    }

    async fn delete_contact(&mut self, id: ContactId) -> Result<(), ContactWriteError> {
        let now = self.now();
        let data = self.data_mut()?;
        let contact = data
            .contacts
            .remove(&id)
            .ok_or(ContactWriteError::NotFound)?;
        // Then the foreign-key actions, in PostgreSQL's order: leads lose the contact
        // (an update each, the version unmoved), its activities go.
        let mut leads = Vec::new();
        for lead in data.leads.values_mut() {
            if lead.fields.contact_id == Some(id) {
                let before = lead.clone();
                lead.fields.contact_id = None;
                leads.push((Some(before), Some(lead.clone())));
            }
        }
        let activities = data.remove_activities(|a| a.fields.contact_id == Some(id));
        data.record_change(now, Some(&contact), None)?;
        data.record_changes(now, &leads)?;
        data.record_changes(now, &activities)?;
        Ok(())
    }
}

/// The same answer as a unit of work opened with the key would give; in memory there is
/// no round trip to save.
impl ContactReadByApiKey for MemoryStore {
    async fn contact_with_api_key(
        &self,
        hash: &TokenHash,
        id: ContactId,
    ) -> Result<Option<(Principal, Option<Contact>)>, RepoError> {
        let Some((principal, mut uow)) = self.begin_with_api_key(hash).await? else {
            return Ok(None);
        };
        let contact = uow.get_contact(id, false).await?;
        Ok(Some((principal, contact)))
    }
}

/// In memory there is no round trip to save and nothing to remember: the caller is the
/// key as it is now, and the create checks that it is still exactly that caller before it
/// writes, the rule the PostgreSQL statement applies.
impl RememberedKeys for MemoryStore {
    fn remembered_caller(&self, hash: &TokenHash) -> Option<Principal> {
        self.api_key_caller(hash)
            .ok()
            .flatten()
            .map(|(caller, _)| caller)
    }
}

/// Whether the key is still exactly the caller it was remembered as.
fn still(principal: &Principal, caller: &Principal) -> bool {
    principal.tenant_id == caller.tenant_id
        && principal.actor == caller.actor
        && principal.role == caller.role
        && principal.scopes == caller.scopes
}

/// As the create below: the page only for the key still exactly the remembered caller.
impl ContactListByApiKey for MemoryStore {
    async fn list_contacts_as(
        &self,
        hash: &TokenHash,
        caller: &Principal,
        query: &ContactQuery,
    ) -> Result<Option<ContactPage>, RepoError> {
        let Some((principal, mut uow)) = self.begin_with_api_key(hash).await? else {
            return Ok(None);
        };
        if !still(&principal, caller) {
            return Ok(None);
        }
        uow.list_contacts(query).await.map(Some)
    }
}

impl ContactCreateByApiKey for MemoryStore {
    async fn create_contact_as(
        &self,
        hash: &TokenHash,
        caller: &Principal,
        id: ContactId,
        draft: &ContactDraft,
    ) -> Result<Option<Contact>, ContactWriteError> {
        let Some((principal, mut uow)) = self.begin_with_api_key(hash).await? else {
            return Ok(None);
        };
        if !still(&principal, caller) {
            return Ok(None);
        }
        let contact = uow.insert_contact(id, draft).await?;
        uow.commit().await?;
        Ok(Some(contact))
    }
}
