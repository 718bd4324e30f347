//! Activities in memory: references checked inside the tenant, the search and timeline filters.

use ports::RepoError;

use crate::keyset::page_of;
use crate::store::MemoryUnitOfWork;

impl MemoryUnitOfWork {
    fn check_activity(
        &self,
        draft: &domain::activity::ActivityDraft,
    ) -> Result<(), ports::CrmWriteError> {
        let data = self.data()?;
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
        if draft.lead_id.is_some_and(|l| !data.leads.contains_key(&l)) {
            return Err(ports::CrmWriteError::UnknownReference("leadId"));
        }
        Ok(())
    }
}

impl ports::ActivityRepository for MemoryUnitOfWork {
    async fn list_activities(
        &mut self,
        query: &domain::activity::ActivityQuery,
    ) -> Result<domain::activity::ActivityPage, RepoError> {
        let rows: Vec<&domain::activity::Activity> = self
            .data()?
            .activities
            .values()
            .filter(|a| {
                let f = &a.fields;
                let q_ok = query.q.as_deref().is_none_or(|q| {
                    let q = q.to_lowercase();
                    std::iter::once(f.subject.as_str())
                        .chain(f.body.as_deref())
                        .any(|text| text.to_lowercase().contains(&q))
                });
                q_ok && query.kind.is_none_or(|v| f.kind == v)
                    && query.contact_id.is_none_or(|v| f.contact_id == Some(v))
                    && query.company_id.is_none_or(|v| f.company_id == Some(v))
                    && query.lead_id.is_none_or(|v| f.lead_id == Some(v))
            })
            .collect();
        let key = |a: &domain::activity::Activity| (query.sort.field.value_of(a), a.id.as_uuid());
        Ok(page_of(
            rows,
            key,
            query.sort,
            query.cursor.as_ref(),
            query.limit,
        ))
    }

    async fn get_activity(
        &mut self,
        id: domain::activity::ActivityId,
        _for_update: bool,
    ) -> Result<Option<domain::activity::Activity>, RepoError> {
        Ok(self.data()?.activities.get(&id).cloned())
    }

    async fn insert_activity(
        &mut self,
        id: domain::activity::ActivityId,
        draft: &domain::activity::ActivityDraft,
    ) -> Result<domain::activity::Activity, ports::CrmWriteError> {
        self.check_activity(draft)?;
        let now = self.now();
        let activity = domain::activity::Activity {
            id,
            tenant_id: self.tenant_id,
            fields: draft.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.data_mut()?.activities.insert(id, activity.clone());
        Ok(activity)
    }

    async fn update_activity(
        &mut self,
        id: domain::activity::ActivityId,
        draft: &domain::activity::ActivityDraft,
    ) -> Result<domain::activity::Activity, ports::CrmWriteError> {
        let now = self.now();
        self.check_activity(draft)?;
        let activity = self
            .data_mut()?
            .activities
            .get_mut(&id)
            .ok_or(ports::CrmWriteError::NotFound)?;
        activity.fields = draft.clone();
        activity.updated_at = now.max(activity.updated_at);
        activity.version += 1;
        Ok(activity.clone())
    }

    async fn delete_activity(
        &mut self,
        id: domain::activity::ActivityId,
    ) -> Result<(), ports::CrmWriteError> {
        self.data_mut()?
            .activities
            .remove(&id)
            .map(|_| ())
            .ok_or(ports::CrmWriteError::NotFound)
    }
}
