//! Companies in memory: a taken domain, and the search and filters of the list.

use domain::company::{Company, CompanyDraft, CompanyPage, CompanyQuery};
use domain::ids::CompanyId;
use ports::{CompanyRepository, CompanyWriteError, RepoError};

use crate::keyset::page_of;
use crate::store::MemoryUnitOfWork;

pub(crate) fn company_matches(company: &Company, query: &CompanyQuery) -> bool {
    let fields = &company.fields;
    let q_ok = query.q.as_deref().is_none_or(|q| {
        let q = q.to_lowercase();
        fields.name.to_lowercase().contains(&q)
            || fields
                .domain
                .as_ref()
                .is_some_and(|d| d.as_str().contains(&q))
    });
    q_ok && query
        .domain
        .as_ref()
        .is_none_or(|d| fields.domain.as_ref() == Some(d))
        && query
            .tag
            .as_ref()
            .is_none_or(|t| fields.tags.as_slice().contains(t))
        && query
            .industry
            .as_ref()
            .is_none_or(|i| fields.industry.as_ref() == Some(i))
        && query.created_after.is_none_or(|t| company.created_at > t)
        && query.updated_after.is_none_or(|t| company.updated_at > t)
}

impl MemoryUnitOfWork {
    fn check_company(&self, id: CompanyId, draft: &CompanyDraft) -> Result<(), CompanyWriteError> {
        let taken = draft.domain.as_ref().is_some_and(|domain| {
            self.data.as_ref().is_some_and(|data| {
                data.companies
                    .values()
                    .any(|c| c.id != id && c.fields.domain.as_ref() == Some(domain))
            })
        });
        if taken {
            Err(CompanyWriteError::DuplicateDomain)
        } else {
            Ok(())
        }
    }
}

impl CompanyRepository for MemoryUnitOfWork {
    async fn list_companies(&mut self, query: &CompanyQuery) -> Result<CompanyPage, RepoError> {
        let rows: Vec<&Company> = self
            .data()?
            .companies
            .values()
            .filter(|c| company_matches(c, query))
            .collect();
        let key = |c: &Company| (query.sort.field.value_of(c), c.id.as_uuid());
        Ok(page_of(
            rows,
            key,
            query.sort,
            query.cursor.as_ref(),
            query.limit,
        ))
    }

    async fn get_company(
        &mut self,
        id: CompanyId,
        _for_update: bool,
    ) -> Result<Option<Company>, RepoError> {
        Ok(self.data()?.companies.get(&id).cloned())
    }

    async fn find_company_by_domain(
        &mut self,
        domain: &domain::company::Domain,
    ) -> Result<Option<Company>, RepoError> {
        Ok(self
            .data()?
            .companies
            .values()
            .find(|c| c.fields.domain.as_ref() == Some(domain))
            .cloned())
    }

    async fn insert_company(
        &mut self,
        id: CompanyId,
        draft: &CompanyDraft,
    ) -> Result<Company, CompanyWriteError> {
        self.check_company(id, draft)?;
        let now = self.now();
        let company = Company {
            id,
            tenant_id: self.tenant_id,
            fields: draft.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let data = self.data_mut()?;
        data.companies.insert(id, company.clone());
        data.record_change(now, None, Some(&company))?;
        Ok(company)
    }

    async fn update_company(
        &mut self,
        id: CompanyId,
        draft: &CompanyDraft,
    ) -> Result<Company, CompanyWriteError> {
        let now = self.now();
        self.check_company(id, draft)?;
        let data = self.data_mut()?;
        let company = data
            .companies
            .get_mut(&id)
            .ok_or(CompanyWriteError::NotFound)?;
        let before = company.clone();
        company.fields = draft.clone();
        company.updated_at = now.max(company.updated_at);
        company.version += 1;
        let after = company.clone();
        data.record_change(now, Some(&before), Some(&after))?;
        Ok(after)
    }

    async fn delete_company(&mut self, id: CompanyId) -> Result<(), CompanyWriteError> {
        let now = self.now();
        let data = self.data_mut()?;
        let company = data
            .companies
            .remove(&id)
            .ok_or(CompanyWriteError::NotFound)?;
        // Then the foreign-key actions, in PostgreSQL's order: contacts and leads lose
        // the company (an update each, the version unmoved), its activities go.
        let mut contacts = Vec::new();
        for contact in data.contacts.values_mut() {
            if contact.fields.company_id == Some(id) {
                let before = contact.clone();
                contact.fields.company_id = None;
                contacts.push((Some(before), Some(contact.clone())));
            }
        }
        let mut leads = Vec::new();
        for lead in data.leads.values_mut() {
            if lead.fields.company_id == Some(id) {
                let before = lead.clone();
                lead.fields.company_id = None;
                leads.push((Some(before), Some(lead.clone())));
            }
        }
        let activities = data.remove_activities(|a| a.fields.company_id == Some(id));
        data.record_change(now, Some(&company), None)?;
        data.record_changes(now, &contacts)?;
        data.record_changes(now, &leads)?;
        data.record_changes(now, &activities)?;
        Ok(())
    }
}
