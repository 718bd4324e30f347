//! Companies in PostgreSQL: plain CRUD through SeaORM's builder, converted with
//! `TryFrom<companies::Model>`; the list query stays hand-written (`keyset`).

use domain::company::{
    Address, Company, CompanyDraft, CompanyPage, CompanyQuery, CompanySize, CompanySortField,
    Domain,
};
use domain::contact::{CustomFields, Tags};
use domain::ids::{CompanyId, TenantId};
use ports::{CompanyRepository, CompanyWriteError, RepoError};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, DbErr, EntityTrait as _, FromQueryResult as _,
    QueryFilter as _, QuerySelect as _, Set,
};

use crate::entities::companies::{self, Column, Entity as Companies};
use crate::entities::touched;
use crate::errors::{UNIQUE_VIOLATION, repo_error, violated_constraint};
use crate::keyset::{ListSql, into_page};
use crate::store::{PgUnitOfWork, statement};

/// The columns a list query selects, in the entity's order.
const COLUMNS: &str = "tenant_id, id, name, domain, industry, size, address, tags, custom_fields, \
                       created_at, updated_at, version";

fn address_part(address: &serde_json::Value, key: &str) -> Option<String> {
    address
        .get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

impl TryFrom<companies::Model> for Company {
    type Error = RepoError;

    /// A stored row that no longer parses is a broken invariant, reported as unexpected.
    fn try_from(row: companies::Model) -> Result<Self, RepoError> {
        let broken =
            |what: &str| RepoError::Unexpected(format!("stored company {}: bad {what}", row.id));
        let domain = row
            .domain
            .as_deref()
            .map(Domain::parse)
            .transpose()
            .map_err(|_| broken("domain"))?;
        let size = match row.size.as_deref() {
            None => None,
            Some(raw) => Some(CompanySize::parse(raw).ok_or_else(|| broken("size"))?),
        };
        let tags = Tags::parse(&row.tags).map_err(|_| broken("tags"))?;
        let custom_fields =
            CustomFields::parse(row.custom_fields.clone()).map_err(|_| broken("customFields"))?;
        let address = Address {
            street: address_part(&row.address, "street"),
            city: address_part(&row.address, "city"),
            region: address_part(&row.address, "region"),
            postal_code: address_part(&row.address, "postalCode"),
            country: address_part(&row.address, "country"),
        };
        Ok(Company {
            id: CompanyId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            fields: CompanyDraft {
                name: row.name,
                domain,
                industry: row.industry,
                size,
                address,
                tags,
                custom_fields,
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

fn sort_expression(field: CompanySortField) -> &'static str {
    match field {
        CompanySortField::CreatedAt => "created_at",
        CompanySortField::UpdatedAt => "updated_at",
        CompanySortField::Name => "name",
        CompanySortField::Domain => "coalesce(domain, '')",
    }
}

/// The draft's columns, all set; keys and database-maintained columns left unset (see
/// `contacts::draft_model`).
fn draft_model(draft: &CompanyDraft) -> companies::ActiveModel {
    companies::ActiveModel {
        name: Set(draft.name.clone()),
        domain: Set(draft.domain.as_ref().map(|d| d.as_str().to_owned())),
        industry: Set(draft.industry.clone()),
        size: Set(draft.size.map(|s| s.as_str().to_owned())),
        address: Set(draft.address.to_value()),
        tags: Set(draft.tags.as_slice().to_vec()),
        custom_fields: Set(draft.custom_fields.to_value()),
        ..Default::default()
    }
}

fn write_error(error: DbErr) -> CompanyWriteError {
    match violated_constraint(&error) {
        Some(("companies_tenant_domain_key", code)) if code == UNIQUE_VIOLATION => {
            CompanyWriteError::DuplicateDomain
        }
        _ => CompanyWriteError::Repo(repo_error(error)),
    }
}

impl CompanyRepository for PgUnitOfWork {
    async fn list_companies(&mut self, query: &CompanyQuery) -> Result<CompanyPage, RepoError> {
        let mut list = ListSql::new(COLUMNS, "companies", self.tenant_id.as_uuid());
        if let Some(q) = &query.q {
            list.search("crm_search_companies", q);
        }
        if let Some(domain) = &query.domain {
            list.and("domain = {}", domain.as_str().to_owned());
        }
        if let Some(tag) = &query.tag {
            list.tagged("crm_tagged_companies", tag);
        }
        if let Some(industry) = &query.industry {
            list.and("industry = {}", industry.clone());
        }
        if let Some(after) = query.created_after {
            list.and("created_at > {}", after);
        }
        if let Some(after) = query.updated_after {
            list.and("updated_at > {}", after);
        }
        let limit = usize::from(query.limit.get());
        let (sql, values) = list.page(
            sort_expression(query.sort.field),
            query.sort.descending,
            query.cursor.as_ref(),
            limit,
        );
        let rows = companies::Model::find_by_statement(statement(&sql, values))
            .all(&self.txn)
            .await
            .map_err(repo_error)?;
        let items = rows
            .into_iter()
            .map(Company::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(items, limit, query.sort, |row| {
            (query.sort.field.value_of(row), row.id.as_uuid())
        }))
    }

    async fn get_company(
        &mut self,
        id: CompanyId,
        for_update: bool,
    ) -> Result<Option<Company>, RepoError> {
        let mut find = Companies::find_by_id((self.tenant_id.as_uuid(), id.as_uuid()));
        if for_update {
            find = find.lock_exclusive();
        }
        find.one(&self.txn)
            .await
            .map_err(repo_error)?
            .map(Company::try_from)
            .transpose()
    }

    async fn find_company_by_domain(
        &mut self,
        domain: &Domain,
    ) -> Result<Option<Company>, RepoError> {
        Companies::find()
            .filter(Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(Column::Domain.eq(domain.as_str()))
            .lock_exclusive()
            .one(&self.txn)
            .await
            .map_err(repo_error)?
            .map(Company::try_from)
            .transpose()
    }

    async fn insert_company(
        &mut self,
        id: CompanyId,
        draft: &CompanyDraft,
    ) -> Result<Company, CompanyWriteError> {
        let row = companies::ActiveModel {
            tenant_id: Set(self.tenant_id.as_uuid()),
            id: Set(id.as_uuid()),
            ..draft_model(draft)
        }
        .insert(&self.txn)
        .await
        .map_err(write_error)?;
        Ok(Company::try_from(row)?)
    }

    async fn update_company(
        &mut self,
        id: CompanyId,
        draft: &CompanyDraft,
    ) -> Result<Company, CompanyWriteError> {
        use sea_orm::sea_query::ExprTrait as _;
        Companies::update_many()
            .set(draft_model(draft))
            .col_expr(Column::UpdatedAt, touched(Column::UpdatedAt))
            .col_expr(Column::Version, Expr::col(Column::Version).add(1))
            .filter(Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(Column::Id.eq(id.as_uuid()))
            .exec_with_returning(&self.txn)
            .await
            .map_err(write_error)?
            .pop()
            .map(Company::try_from)
            .transpose()?
            .ok_or(CompanyWriteError::NotFound)
    }

    async fn delete_company(&mut self, id: CompanyId) -> Result<(), CompanyWriteError> {
        let result = Companies::delete_by_id((self.tenant_id.as_uuid(), id.as_uuid()))
            .exec(&self.txn)
            .await
            .map_err(write_error)?;
        if result.rows_affected == 0 {
            Err(CompanyWriteError::NotFound)
        } else {
            Ok(())
        }
    }
}
