//! Leads and activities in PostgreSQL: plain CRUD through SeaORM's builder, converted
//! with `TryFrom<Model>`; the list queries stay hand-written (`keyset`).

use domain::activity::{
    Activity, ActivityDraft, ActivityId, ActivityPage, ActivityQuery, ActivityType, LeadId,
};
use domain::ids::{CompanyId, ContactId, TenantId, UserId};
use domain::lead::{Currency, Lead, LeadDraft, LeadPage, LeadQuery, LeadSortField, Money};
use domain::pipeline::{PipelineId, StageId, StageKind};
use ports::{ActivityRepository, CrmWriteError, LeadRepository, RepoError};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, DbErr, DeleteResult, EntityTrait as _,
    FromQueryResult as _, QueryFilter as _, QuerySelect as _, Set,
};

use crate::entities::activities::{self, Entity as Activities};
use crate::entities::leads::{self, Entity as Leads};
use crate::entities::touched;
use crate::errors::{FOREIGN_KEY_VIOLATION, repo_error, violated_constraint};
use crate::keyset::{ListSql, into_page};
use crate::store::{PgUnitOfWork, statement};

/// The columns a lead list selects, in the entity's order.
const LEAD_COLUMNS: &str = "tenant_id, id, title, contact_id, company_id, pipeline_id, stage_id, value, currency, \
                            status, owner_id, expected_close_date, source, created_at, updated_at, version";

impl TryFrom<leads::Model> for Lead {
    type Error = RepoError;

    /// A stored row that no longer parses is a broken invariant, reported as unexpected.
    fn try_from(row: leads::Model) -> Result<Self, RepoError> {
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

/// The columns an activity list selects, in the entity's order (`type` is `kind`).
const ACTIVITY_COLUMNS: &str = "tenant_id, id, type, subject, body, due_at, completed_at, contact_id, company_id, \
                                lead_id, created_at, updated_at, version";

impl TryFrom<activities::Model> for Activity {
    type Error = RepoError;

    /// A stored row that no longer parses is a broken invariant, reported as unexpected.
    fn try_from(row: activities::Model) -> Result<Self, RepoError> {
        let kind = ActivityType::parse(&row.kind).ok_or_else(|| {
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

/// The draft's columns, all set; keys and database-maintained columns (`status`,
/// timestamps, `version`) left unset (see `contacts::draft_model`).
fn lead_model(draft: &LeadDraft) -> leads::ActiveModel {
    leads::ActiveModel {
        title: Set(draft.title.clone()),
        contact_id: Set(draft.contact_id.map(|i| i.as_uuid())),
        company_id: Set(draft.company_id.map(|i| i.as_uuid())),
        pipeline_id: Set(draft.pipeline_id.as_uuid()),
        stage_id: Set(draft.stage_id.as_uuid()),
        value: Set(draft.value.as_ref().map(|m| m.minor)),
        currency: Set(draft.value.as_ref().map(|m| m.currency.as_str().to_owned())),
        owner_id: Set(draft.owner_id.map(|i| i.as_uuid())),
        expected_close_date: Set(draft.expected_close_date),
        source: Set(draft.source.clone()),
        ..Default::default()
    }
}

/// The draft's columns, all set; keys and database-maintained columns left unset.
fn activity_model(draft: &ActivityDraft) -> activities::ActiveModel {
    activities::ActiveModel {
        kind: Set(draft.kind.as_str().to_owned()),
        subject: Set(draft.subject.clone()),
        body: Set(draft.body.clone()),
        due_at: Set(draft.due_at),
        completed_at: Set(draft.completed_at),
        contact_id: Set(draft.contact_id.map(|i| i.as_uuid())),
        company_id: Set(draft.company_id.map(|i| i.as_uuid())),
        lead_id: Set(draft.lead_id.map(|i| i.as_uuid())),
        ..Default::default()
    }
}

/// `NotFound` when a DELETE matched no row.
fn deleted(result: &DeleteResult) -> Result<(), CrmWriteError> {
    if result.rows_affected == 0 {
        Err(CrmWriteError::NotFound)
    } else {
        Ok(())
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
        let rows = leads::Model::find_by_statement(statement(&sql, values))
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
        let mut find = Leads::find_by_id((self.tenant_id.as_uuid(), id.as_uuid()));
        if for_update {
            find = find.lock_exclusive();
        }
        find.one(&self.txn)
            .await
            .map_err(repo_error)?
            .map(Lead::try_from)
            .transpose()
    }

    async fn insert_lead(&mut self, id: LeadId, draft: &LeadDraft) -> Result<Lead, CrmWriteError> {
        let row = leads::ActiveModel {
            tenant_id: Set(self.tenant_id.as_uuid()),
            id: Set(id.as_uuid()),
            ..lead_model(draft)
        }
        .insert(&self.txn)
        .await
        .map_err(write_error)?;
        Ok(Lead::try_from(row)?)
    }

    async fn update_lead(&mut self, id: LeadId, draft: &LeadDraft) -> Result<Lead, CrmWriteError> {
        use sea_orm::sea_query::ExprTrait as _;
        Leads::update_many()
            .set(lead_model(draft))
            .col_expr(leads::Column::UpdatedAt, touched(leads::Column::UpdatedAt))
            .col_expr(
                leads::Column::Version,
                Expr::col(leads::Column::Version).add(1),
            )
            .filter(leads::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(leads::Column::Id.eq(id.as_uuid()))
            .exec_with_returning(&self.txn)
            .await
            .map_err(write_error)?
            .pop()
            .map(Lead::try_from)
            .transpose()?
            .ok_or(CrmWriteError::NotFound)
    }

    async fn delete_lead(&mut self, id: LeadId) -> Result<(), CrmWriteError> {
        let result = Leads::delete_by_id((self.tenant_id.as_uuid(), id.as_uuid()))
            .exec(&self.txn)
            .await
            .map_err(write_error)?;
        deleted(&result)
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
        let rows = activities::Model::find_by_statement(statement(&sql, values))
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
        let mut find = Activities::find_by_id((self.tenant_id.as_uuid(), id.as_uuid()));
        if for_update {
            find = find.lock_exclusive();
        }
        find.one(&self.txn)
            .await
            .map_err(repo_error)?
            .map(Activity::try_from)
            .transpose()
    }

    async fn insert_activity(
        &mut self,
        id: ActivityId,
        draft: &ActivityDraft,
    ) -> Result<Activity, CrmWriteError> {
        let row = activities::ActiveModel {
            tenant_id: Set(self.tenant_id.as_uuid()),
            id: Set(id.as_uuid()),
            ..activity_model(draft)
        }
        .insert(&self.txn)
        .await
        .map_err(write_error)?;
        Ok(Activity::try_from(row)?)
    }

    async fn update_activity(
        &mut self,
        id: ActivityId,
        draft: &ActivityDraft,
    ) -> Result<Activity, CrmWriteError> {
        use sea_orm::sea_query::ExprTrait as _;
        Activities::update_many()
            .set(activity_model(draft))
            .col_expr(
                activities::Column::UpdatedAt,
                touched(activities::Column::UpdatedAt),
            )
            .col_expr(
                activities::Column::Version,
                Expr::col(activities::Column::Version).add(1),
            )
            .filter(activities::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(activities::Column::Id.eq(id.as_uuid()))
            .exec_with_returning(&self.txn)
            .await
            .map_err(write_error)?
            .pop()
            .map(Activity::try_from)
            .transpose()?
            .ok_or(CrmWriteError::NotFound)
    }

    async fn delete_activity(&mut self, id: ActivityId) -> Result<(), CrmWriteError> {
        let result = Activities::delete_by_id((self.tenant_id.as_uuid(), id.as_uuid()))
            .exec(&self.txn)
            .await
            .map_err(write_error)?;
        deleted(&result)
    }
}
