//! Leads in memory: references checked inside the tenant, and the search of the list
//! (title, source, linked contact and company).

use domain::company::CompanyQuery;
use domain::contact::ContactQuery;
use ports::RepoError;

use crate::companies::company_matches;
use crate::contacts::matches;
use crate::keyset::page_of;
use crate::store::MemoryUnitOfWork;

impl MemoryUnitOfWork {
    /// The kind of the lead's stage, or the field naming the broken reference.
    fn check_lead(
        &self,
        draft: &domain::lead::LeadDraft,
    ) -> Result<domain::pipeline::StageKind, ports::CrmWriteError> {
        let data = self.data()?;
        let stage = data
            .pipelines
            .get(&draft.pipeline_id)
            .and_then(|p| p.stages.iter().find(|s| s.id == draft.stage_id))
            .ok_or(ports::CrmWriteError::UnknownReference("stageId"))?;
        if draft
            .contact_id
            .is_some_and(|c| !data.contacts.contains_key(&c))
        {
            return Err(ports::CrmWriteError::UnknownReference("contactId"));
        }
        if draft
            .company_id
            .is_some_and(|c| !data.companies.contains_key(&c))
        {
            return Err(ports::CrmWriteError::UnknownReference("companyId"));
        }
        if draft
            .owner_id
            .is_some_and(|o| !data.members.contains_key(&o))
        {
            return Err(ports::CrmWriteError::UnknownReference("ownerId"));
        }
        Ok(stage.kind)
    }
}
impl ports::LeadRepository for MemoryUnitOfWork {
    async fn list_leads(
        &mut self,
        query: &domain::lead::LeadQuery,
    ) -> Result<domain::lead::LeadPage, RepoError> {
        let data = self.data()?;
        let q = query.q.as_deref().map(str::to_lowercase);
        // As in PostgreSQL: the title, the source, and the linked contact's and company's
        // searchable text.
        let found = |l: &domain::lead::Lead, q: &str| {
            let f = &l.fields;
            let contact = f.contact_id.and_then(|id| data.contacts.get(&id));
            let company = f.company_id.and_then(|id| data.companies.get(&id));
            std::iter::once(f.title.as_str())
                .chain(f.source.as_deref())
                .map(str::to_lowercase)
                .any(|text| text.contains(q))
                || contact.is_some_and(|c| {
                    matches(
                        c,
                        &ContactQuery {
                            q: Some(q.to_owned()),
                            ..ContactQuery::default()
                        },
                    )
                })
                || company.is_some_and(|c| {
                    company_matches(
                        c,
                        &CompanyQuery {
                            q: Some(q.to_owned()),
                            ..CompanyQuery::default()
                        },
                    )
                })
        };
        let rows: Vec<&domain::lead::Lead> = data
            .leads
            .values()
            .filter(|l| {
                let f = &l.fields;
                q.as_deref().is_none_or(|q| found(l, q))
                    && query.pipeline_id.is_none_or(|v| f.pipeline_id == v)
                    && query.stage_id.is_none_or(|v| f.stage_id == v)
                    && query.status.is_none_or(|v| l.status == v)
                    && query.owner_id.is_none_or(|v| f.owner_id == Some(v))
                    && query.contact_id.is_none_or(|v| f.contact_id == Some(v))
                    && query.company_id.is_none_or(|v| f.company_id == Some(v))
                    && query
                        .min_value
                        .is_none_or(|v| f.value.as_ref().is_some_and(|m| m.minor >= v))
                    && query
                        .max_value
                        .is_none_or(|v| f.value.as_ref().is_some_and(|m| m.minor <= v))
            })
            .collect();
        let key = |l: &domain::lead::Lead| (query.sort.field.value_of(l), l.id.as_uuid());
        Ok(page_of(
            rows,
            key,
            query.sort,
            query.cursor.as_ref(),
            query.limit,
        ))
    }

    async fn get_lead(
        &mut self,
        id: domain::lead::LeadId,
        _for_update: bool,
    ) -> Result<Option<domain::lead::Lead>, RepoError> {
        Ok(self.data()?.leads.get(&id).cloned())
    }

    async fn insert_lead(
        &mut self,
        id: domain::lead::LeadId,
        draft: &domain::lead::LeadDraft,
    ) -> Result<domain::lead::Lead, ports::CrmWriteError> {
        let status = self.check_lead(draft)?;
        let now = self.now();
        let lead = domain::lead::Lead {
            id,
            tenant_id: self.tenant_id,
            fields: draft.clone(),
            status,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let data = self.data_mut()?;
        data.leads.insert(id, lead.clone());
        data.record_change(now, None, Some(&lead))?;
        Ok(lead)
    }

    async fn update_lead(
        &mut self,
        id: domain::lead::LeadId,
        draft: &domain::lead::LeadDraft,
    ) -> Result<domain::lead::Lead, ports::CrmWriteError> {
        let now = self.now();
        let status = self.check_lead(draft)?;
        let data = self.data_mut()?;
        let lead = data
            .leads
            .get_mut(&id)
            .ok_or(ports::CrmWriteError::NotFound)?;
        let before = lead.clone();
        lead.fields = draft.clone();
        lead.status = status;
        lead.updated_at = now.max(lead.updated_at);
        lead.version += 1;
        let after = lead.clone();
        data.record_change(now, Some(&before), Some(&after))?;
        Ok(after)
    }

    async fn delete_lead(&mut self, id: domain::lead::LeadId) -> Result<(), ports::CrmWriteError> {
        let now = self.now();
        let data = self.data_mut()?;
        let lead = data
            .leads
            .remove(&id)
            .ok_or(ports::CrmWriteError::NotFound)?;
        // The lead's event, then its activities' (the foreign key's cascade).
        let activities = data.remove_activities(|a| a.fields.lead_id == Some(id));
        data.record_change(now, Some(&lead), None)?;
        data.record_changes(now, &activities)?;
        Ok(())
    }
}
