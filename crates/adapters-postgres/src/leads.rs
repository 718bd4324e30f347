//! Leads and activities in PostgreSQL.

use domain::activity::{
    Activity, ActivityDraft, ActivityId, ActivityPage, ActivityQuery, ActivityType, LeadId,
};
use domain::ids::{CompanyId, ContactId, TenantId, UserId};
use domain::lead::{Currency, Lead, LeadDraft, LeadPage, LeadQuery, LeadSortField, Money};
use domain::pipeline::{PipelineId, StageId, StageKind};
use ports::{ActivityRepository, CrmWriteError, LeadRepository, RepoError};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::errors::{FOREIGN_KEY_VIOLATION, repo_error, violated_constraint};
use crate::keyset::{ListSql, into_page};
use crate::store::{PgUnitOfWork, statement};

const LEAD_COLUMNS: &str = "tenant_id, id, title, contact_id, company_id, pipeline_id, stage_id, value, currency, \
                            status, owner_id, expected_close_date, source, created_at, updated_at, version";

#[derive(Debug, FromQueryResult)]
struct LeadRow {
    tenant_id: Uuid,
    id: Uuid,
    title: String,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    pipeline_id: Uuid,
    stage_id: Uuid,
    value: Option<i64>,
    currency: Option<String>,
    status: String,
    owner_id: Option<Uuid>,
    expected_close_date: Option<Date>,
    source: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    version: i64,
}

impl TryFrom<LeadRow> for Lead {
    type Error = RepoError;

    fn try_from(row: LeadRow) -> Result<Self, RepoError> {
        let broken =
            |what: &str| RepoError::Unexpected(format!("stored lead {}: bad {what}", row.id));
        let value = match (row.value, row.currency.as_deref()) {
            (Some(minor), Some(code)) => Some(Money {
                minor,
                currency: Currency::parse(code).map_err(|_| broken("currency"))?,
            }),
            _ => None,
        };
        Ok(Lead {
            id: LeadId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            status: StageKind::parse(&row.status).ok_or_else(|| broken("status"))?,
            fields: LeadDraft {
                title: row.title,
                contact_id: row.contact_id.map(ContactId::from_uuid),
                company_id: row.company_id.map(CompanyId::from_uuid),
                pipeline_id: PipelineId::from_uuid(row.pipeline_id),
                stage_id: StageId::from_uuid(row.stage_id),
                value,
                owner_id: row.owner_id.map(UserId::from_uuid),
                expected_close_date: row.expected_close_date,
                source: row.source,
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

const ACTIVITY_COLUMNS: &str = "tenant_id, id, type, subject, body, due_at, completed_at, contact_id, company_id, \
                                lead_id, created_at, updated_at, version";

#[derive(Debug, FromQueryResult)]
struct ActivityRow {
    tenant_id: Uuid,
    id: Uuid,
    r#type: String,
    subject: String,
    body: Option<String>,
    due_at: Option<OffsetDateTime>,
    completed_at: Option<OffsetDateTime>,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    lead_id: Option<Uuid>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    version: i64,
}

impl TryFrom<ActivityRow> for Activity {
    type Error = RepoError;

    fn try_from(row: ActivityRow) -> Result<Self, RepoError> {
        let kind = ActivityType::parse(&row.r#type).ok_or_else(|| {
            RepoError::Unexpected(format!("stored activity {}: bad type", row.id))
        })?;
        Ok(Activity {
            id: ActivityId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            fields: ActivityDraft {
                kind,
                subject: row.subject,
                body: row.body,
                due_at: row.due_at,
                completed_at: row.completed_at,
                contact_id: row.contact_id.map(ContactId::from_uuid),
                company_id: row.company_id.map(CompanyId::from_uuid),
                lead_id: row.lead_id.map(LeadId::from_uuid),
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

/// Each composite foreign key maps to the API field that names the reference.
fn write_error(error: DbErr) -> CrmWriteError {
    let field = match violated_constraint(&error) {
        Some((name, code)) if code == FOREIGN_KEY_VIOLATION => match name {
            "leads_stage_fkey" => Some("stageId"),
            "leads_contact_fkey" | "activities_contact_fkey" => Some("contactId"),
            "leads_company_fkey" | "activities_company_fkey" => Some("companyId"),
            "leads_owner_fkey" => Some("ownerId"),
            "activities_lead_fkey" => Some("leadId"),
            _ => None,
        },
        _ => None,
    };
    match field {
        Some(field) => CrmWriteError::UnknownReference(field),
        None => CrmWriteError::Repo(repo_error(error)),
    }
}

fn lead_values(draft: &LeadDraft) -> Vec<Value> {
    vec![
        draft.title.clone().into(),
        draft.contact_id.map(|i| i.as_uuid()).into(),
        draft.company_id.map(|i| i.as_uuid()).into(),
        draft.pipeline_id.as_uuid().into(),
        draft.stage_id.as_uuid().into(),
        draft.value.as_ref().map(|m| m.minor).into(),
        draft
            .value
            .as_ref()
            .map(|m| m.currency.as_str().to_owned())
            .into(),
        draft.owner_id.map(|i| i.as_uuid()).into(),
        draft.expected_close_date.into(),
        draft.source.clone().into(),
    ]
}

fn activity_values(draft: &ActivityDraft) -> Vec<Value> {
    vec![
        draft.kind.as_str().to_owned().into(),
        draft.subject.clone().into(),
        draft.body.clone().into(),
        draft.due_at.into(),
        draft.completed_at.into(),
        draft.contact_id.map(|i| i.as_uuid()).into(),
        draft.company_id.map(|i| i.as_uuid()).into(),
        draft.lead_id.map(|i| i.as_uuid()).into(),
    ]
}

impl PgUnitOfWork {
    async fn one_lead(&self, sql: &str, values: Vec<Value>) -> Result<Option<Lead>, DbErr> {
        LeadRow::find_by_statement(statement(sql, values))
            .one(&self.txn)
            .await?
            .map(Lead::try_from)
            .transpose()
            .map_err(|e| DbErr::Custom(e.to_string()))
    }

    async fn one_activity(&self, sql: &str, values: Vec<Value>) -> Result<Option<Activity>, DbErr> {
        ActivityRow::find_by_statement(statement(sql, values))
            .one(&self.txn)
            .await?
            .map(Activity::try_from)
            .transpose()
            .map_err(|e| DbErr::Custom(e.to_string()))
    }

    async fn delete_row(&self, table: &str, id: Uuid) -> Result<(), CrmWriteError> {
        let deleted = self
            .txn
            .execute_raw(statement(
                &format!("DELETE FROM {table} WHERE tenant_id = $1 AND id = $2"),
                vec![self.tenant_id.as_uuid().into(), id.into()],
            ))
            .await
            .map_err(write_error)?
            .rows_affected();
        if deleted == 0 {
            Err(CrmWriteError::NotFound)
        } else {
            Ok(())
        }
    }
}

impl LeadRepository for PgUnitOfWork {
    async fn list_leads(&mut self, query: &LeadQuery) -> Result<LeadPage, RepoError> {
        let mut list = ListSql::new(LEAD_COLUMNS, "leads", self.tenant_id.as_uuid());
        if let Some(v) = query.pipeline_id {
            list.and("pipeline_id = {}", v.as_uuid());
        }
        if let Some(v) = query.stage_id {
            list.and("stage_id = {}", v.as_uuid());
        }
        if let Some(v) = query.status {
            list.and("status = {}", v.as_str().to_owned());
        }
        if let Some(v) = query.owner_id {
            list.and("owner_id = {}", v.as_uuid());
        }
        if let Some(v) = query.contact_id {
            list.and("contact_id = {}", v.as_uuid());
        }
        if let Some(v) = query.company_id {
            list.and("company_id = {}", v.as_uuid());
        }
        if let Some(v) = query.min_value {
            list.and("value >= {}", v);
        }
        if let Some(v) = query.max_value {
            list.and("value <= {}", v);
        }
        if let Some(q) = &query.q {
            list.search("crm_search_leads", q);
        }
        let expression = match query.sort.field {
            LeadSortField::CreatedAt => "created_at",
            LeadSortField::UpdatedAt => "updated_at",
        };
        let limit = usize::from(query.limit.get());
        let (sql, values) = list.page(
            expression,
            query.sort.descending,
            query.cursor.as_ref(),
            limit,
        );
        let rows = LeadRow::find_by_statement(statement(&sql, values))
            .all(&self.txn)
            .await
            .map_err(repo_error)?;
        let items = rows
            .into_iter()
            .map(Lead::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(items, limit, query.sort, |row| {
            (query.sort.field.value_of(row), row.id.as_uuid())
        }))
    }

    async fn get_lead(&mut self, id: LeadId, for_update: bool) -> Result<Option<Lead>, RepoError> {
        let lock = if for_update { " FOR UPDATE" } else { "" };
        self.one_lead(
            &format!("SELECT {LEAD_COLUMNS} FROM leads WHERE tenant_id = $1 AND id = $2{lock}"),
            vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
        )
        .await
        .map_err(repo_error)
    }

    async fn insert_lead(&mut self, id: LeadId, draft: &LeadDraft) -> Result<Lead, CrmWriteError> {
        let mut values = vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()];
        values.extend(lead_values(draft));
        self.one_lead(
            &format!(
                "INSERT INTO leads (tenant_id, id, title, contact_id, company_id, pipeline_id, stage_id, value, \
                 currency, owner_id, expected_close_date, source) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {LEAD_COLUMNS}"
            ),
            values,
        )
        .await
        .map_err(write_error)?
        .ok_or_else(|| RepoError::Unexpected("INSERT lead returned no row".into()).into())
    }

    async fn update_lead(&mut self, id: LeadId, draft: &LeadDraft) -> Result<Lead, CrmWriteError> {
        let mut values = vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()];
        values.extend(lead_values(draft));
        self.one_lead(
            &format!(
                "UPDATE leads SET title = $3, contact_id = $4, company_id = $5, pipeline_id = $6, stage_id = $7, \
                 value = $8, currency = $9, owner_id = $10, expected_close_date = $11, source = $12, \
                 updated_at = greatest(now(), updated_at), version = version + 1 \
                 WHERE tenant_id = $1 AND id = $2 RETURNING {LEAD_COLUMNS}"
            ),
            values,
        )
        .await
        .map_err(write_error)?
        .ok_or(CrmWriteError::NotFound)
    }

    async fn delete_lead(&mut self, id: LeadId) -> Result<(), CrmWriteError> {
        self.delete_row("leads", id.as_uuid()).await
    }
}

impl ActivityRepository for PgUnitOfWork {
    async fn list_activities(&mut self, query: &ActivityQuery) -> Result<ActivityPage, RepoError> {
        let mut list = ListSql::new(ACTIVITY_COLUMNS, "activities", self.tenant_id.as_uuid());
        if let Some(v) = query.kind {
            list.and("type = {}", v.as_str().to_owned());
        }
        if let Some(v) = query.contact_id {
            list.and("contact_id = {}", v.as_uuid());
        }
        if let Some(v) = query.company_id {
            list.and("company_id = {}", v.as_uuid());
        }
        if let Some(v) = query.lead_id {
            list.and("lead_id = {}", v.as_uuid());
        }
        if let Some(q) = &query.q {
            list.search("crm_search_activities", q);
        }
        let limit = usize::from(query.limit.get());
        let (sql, values) = list.page(
            "created_at",
            query.sort.descending,
            query.cursor.as_ref(),
            limit,
        );
        let rows = ActivityRow::find_by_statement(statement(&sql, values))
            .all(&self.txn)
            .await
            .map_err(repo_error)?;
        let items = rows
            .into_iter()
            .map(Activity::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(items, limit, query.sort, |row| {
            (query.sort.field.value_of(row), row.id.as_uuid())
        }))
    }

    async fn get_activity(
        &mut self,
        id: ActivityId,
        for_update: bool,
    ) -> Result<Option<Activity>, RepoError> {
        let lock = if for_update { " FOR UPDATE" } else { "" };
        self.one_activity(
            &format!(
                "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE tenant_id = $1 AND id = $2{lock}"
            ),
            vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
        )
        .await
        .map_err(repo_error)
    }

    async fn insert_activity(
        &mut self,
        id: ActivityId,
        draft: &ActivityDraft,
    ) -> Result<Activity, CrmWriteError> {
        let mut values = vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()];
        values.extend(activity_values(draft));
        self.one_activity(
            &format!(
                "INSERT INTO activities (tenant_id, id, type, subject, body, due_at, completed_at, contact_id, \
                 company_id, lead_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {ACTIVITY_COLUMNS}"
            ),
            values,
        )
        .await
        .map_err(write_error)?
        .ok_or_else(|| RepoError::Unexpected("INSERT activity returned no row".into()).into())
    }

    async fn update_activity(
        &mut self,
        id: ActivityId,
        draft: &ActivityDraft,
    ) -> Result<Activity, CrmWriteError> {
        let mut values = vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()];
        values.extend(activity_values(draft));
        self.one_activity(
            &format!(
                "UPDATE activities SET type = $3, subject = $4, body = $5, due_at = $6, completed_at = $7, \
                 contact_id = $8, company_id = $9, lead_id = $10, updated_at = greatest(now(), updated_at), \
                 version = version + 1 WHERE tenant_id = $1 AND id = $2 RETURNING {ACTIVITY_COLUMNS}"
            ),
            values,
        )
        .await
        .map_err(write_error)?
        .ok_or(CrmWriteError::NotFound)
    }

    async fn delete_activity(&mut self, id: ActivityId) -> Result<(), CrmWriteError> {
        self.delete_row("activities", id.as_uuid()).await
    }
}
