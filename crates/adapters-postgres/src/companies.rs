//! Companies in PostgreSQL.

use domain::company::{
    Address, Company, CompanyDraft, CompanyPage, CompanyQuery, CompanySize, CompanySortField,
    Domain,
};
use domain::contact::{CustomFields, Tags};
use domain::ids::{CompanyId, TenantId};
use ports::{CompanyRepository, CompanyWriteError, RepoError};
use sea_orm::{DbErr, FromQueryResult, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::errors::{UNIQUE_VIOLATION, repo_error, violated_constraint};
use crate::keyset::{ListSql, into_page};
use crate::store::{PgUnitOfWork, statement};

const COLUMNS: &str = "tenant_id, id, name, domain, industry, size, address, tags, custom_fields, \
                       created_at, updated_at, version";

#[derive(Debug, FromQueryResult)]
struct CompanyRow {
    tenant_id: Uuid,
    id: Uuid,
    name: String,
    domain: Option<String>,
    industry: Option<String>,
    size: Option<String>,
    address: serde_json::Value,
    tags: Vec<String>,
    custom_fields: serde_json::Value,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    version: i64,
}

fn address_part(address: &serde_json::Value, key: &str) -> Option<String> {
    address
        .get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

impl TryFrom<CompanyRow> for Company {
    type Error = RepoError;

    fn try_from(row: CompanyRow) -> Result<Self, RepoError> {
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

fn draft_values(draft: &CompanyDraft) -> Vec<Value> {
    vec![
        draft.name.clone().into(),
        draft.domain.as_ref().map(|d| d.as_str().to_owned()).into(),
        draft.industry.clone().into(),
        draft.size.map(|s| s.as_str().to_owned()).into(),
        draft.address.to_value().into(),
        draft.tags.as_slice().to_vec().into(),
        draft.custom_fields.to_value().into(),
    ]
}

fn write_error(error: DbErr) -> CompanyWriteError {
    match violated_constraint(&error) {
        Some(("companies_tenant_domain_key", code)) if code == UNIQUE_VIOLATION => {
            CompanyWriteError::DuplicateDomain
        }
        _ => CompanyWriteError::Repo(repo_error(error)),
    }
}

impl PgUnitOfWork {
    async fn one_company(&self, sql: &str, values: Vec<Value>) -> Result<Option<Company>, DbErr> {
        CompanyRow::find_by_statement(statement(sql, values))
            .one(&self.txn)
            .await?
            .map(Company::try_from)
            .transpose()
            .map_err(|e| DbErr::Custom(e.to_string()))
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
        let rows = CompanyRow::find_by_statement(statement(&sql, values))
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
        let lock = if for_update { " FOR UPDATE" } else { "" };
        self.one_company(
            &format!("SELECT {COLUMNS} FROM companies WHERE tenant_id = $1 AND id = $2{lock}"),
            vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
        )
        .await
        .map_err(repo_error)
    }

    async fn find_company_by_domain(
        &mut self,
        domain: &Domain,
    ) -> Result<Option<Company>, RepoError> {
        self.one_company(
            &format!(
                "SELECT {COLUMNS} FROM companies WHERE tenant_id = $1 AND domain = $2 FOR UPDATE"
            ),
            vec![
                self.tenant_id.as_uuid().into(),
                domain.as_str().to_owned().into(),
            ],
        )
        .await
        .map_err(repo_error)
    }

    async fn insert_company(
        &mut self,
        id: CompanyId,
        draft: &CompanyDraft,
    ) -> Result<Company, CompanyWriteError> {
        let mut values = vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()];
        values.extend(draft_values(draft));
        self.one_company(
            &format!(
                "INSERT INTO companies (tenant_id, id, name, domain, industry, size, address, tags, custom_fields) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
            ),
            values,
        )
        .await
        .map_err(write_error)?
        .ok_or_else(|| RepoError::Unexpected("INSERT company returned no row".into()).into())
    }

    async fn update_company(
        &mut self,
        id: CompanyId,
        draft: &CompanyDraft,
    ) -> Result<Company, CompanyWriteError> {
        let mut values = vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()];
        values.extend(draft_values(draft));
        self.one_company(
            &format!(
                "UPDATE companies SET name = $3, domain = $4, industry = $5, size = $6, address = $7, \
                 tags = $8, custom_fields = $9, updated_at = greatest(now(), updated_at), version = version + 1 \
                 WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
            ),
            values,
        )
        .await
        .map_err(write_error)?
        .ok_or(CompanyWriteError::NotFound)
    }

    async fn delete_company(&mut self, id: CompanyId) -> Result<(), CompanyWriteError> {
        let result = sea_orm::ConnectionTrait::execute_raw(
            &self.txn,
            statement(
                "DELETE FROM companies WHERE tenant_id = $1 AND id = $2",
                vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
            ),
        )
        .await
        .map_err(write_error)?;
        if result.rows_affected() == 0 {
            Err(CompanyWriteError::NotFound)
        } else {
            Ok(())
        }
    }
}
