//! Activities in memory: references checked inside the tenant, the search and timeline filters.

use ports::RepoError;

use domain::activity::{Activity, ActivityId};

use crate::keyset::page_of;
use crate::store::{MemoryUnitOfWork, TenantData};

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

impl TenantData {
    /// Removes the activities `doomed` picks (a cascade of a contact's, company's or
    /// lead's deletion) and returns them as deletions, in id order, for their events.
    pub(crate) fn remove_activities(
        &mut self,
        doomed: impl Fn(&Activity) -> bool,
    ) -> Vec<(Option<Activity>, Option<Activity>)> {
        let ids: Vec<ActivityId> = self
            .activities
            .values()
            .filter(|a| doomed(a))
            .map(|a| a.id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.activities.remove(&id))
            .map(|activity| (Some(activity), None))
            .collect()
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
        let data = self.data_mut()?;
        data.activities.insert(id, activity.clone());
        data.record_change(now, None, Some(&activity))?;
        Ok(activity)
    }

    async fn update_activity(
        &mut self,
        id: domain::activity::ActivityId,
        draft: &domain::activity::ActivityDraft,
    ) -> Result<domain::activity::Activity, ports::CrmWriteError> {
        let now = self.now();
        self.check_activity(draft)?;
        let data = self.data_mut()?;
        let activity = data
            .activities
            .get_mut(&id)
            .ok_or(ports::CrmWriteError::NotFound)?;
        let before = activity.clone();
        activity.fields = draft.clone();
        activity.updated_at = now.max(activity.updated_at);
        activity.version += 1;
        let after = activity.clone();
        data.record_change(now, Some(&before), Some(&after))?;
        Ok(after)
    }

    async fn delete_activity(
        &mut self,
        id: domain::activity::ActivityId,
    ) -> Result<(), ports::CrmWriteError> {
        let now = self.now();
        let data = self.data_mut()?;
        let activity = data
            .activities
            .remove(&id)
            .ok_or(ports::CrmWriteError::NotFound)?;
        data.record_change(now, Some(&activity), None)?;
        Ok(())
    }
}
