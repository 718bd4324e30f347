//! Contacts in PostgreSQL: the entity's conversion into domain contacts, the plain CRUD
//! through SeaORM's query builder, and the hand-written list and batch-insert SQL.

use domain::contact::{
    Contact, ContactDraft, ContactPage, ContactQuery, ContactSortField, CustomFields, Email, Phone,
    Tags,
};
use domain::ids::{CompanyId, ContactId, TenantId, UserId};
use ports::{ContactRepository, ContactWriteError, RepoError};
use sea_orm::sea_query::{Expr, extension::postgres::PgFunc};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait as _, DbErr, EntityTrait as _,
    FromQueryResult, QueryFilter as _, QuerySelect as _, Set,
};
use uuid::Uuid;

use crate::columns::Columns;
use crate::entities::contacts::{self, Column, Entity as Contacts};
use crate::entities::touched;
use crate::errors::{FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, repo_error, violated_constraint};
use crate::keyset::{ListSql, into_page};
use crate::store::{PgUnitOfWork, statement};

/// The columns a list query selects, in the entity's order.
pub(crate) const COLUMNS: &str = "tenant_id, id, first_name, last_name, email, phone, title, tags, \
                       custom_fields, owner_id, company_id, created_at, updated_at, version";

/// Largest statement the batch insert sends at once (see `insert_contacts`).
const STATEMENT_BYTES: usize = 6 * 1024;

/// The id of a written row, all a batch insert needs back.
#[derive(Debug, FromQueryResult)]
struct IdRow {
    id: Uuid,
}

impl TryFrom<contacts::Model> for Contact {
    type Error = RepoError;

    /// Stored rows passed the same rules on the way in; a row that no longer parses is a
    /// broken invariant, reported as unexpected rather than served.
    fn try_from(row: contacts::Model) -> Result<Self, RepoError> {
        let broken =
            |what: &str| RepoError::Unexpected(format!("stored contact {}: bad {what}", row.id));
        let email = row
            .email
            .as_deref()
            .map(Email::parse)
            .transpose()
            .map_err(|_| broken("email"))?;
        let phone = row
            .phone
            .as_deref()
            .map(Phone::parse)
            .transpose()
            .map_err(|_| broken("phone"))?;
        let tags = Tags::parse(&row.tags).map_err(|_| broken("tags"))?;
        let custom_fields =
            CustomFields::parse(row.custom_fields.clone()).map_err(|_| broken("customFields"))?;
        Ok(Contact {
            id: ContactId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            fields: ContactDraft {
                first_name: row.first_name,
                last_name: row.last_name,
                email,
                phone,
                title: row.title,
                tags,
                custom_fields,
                owner_id: row.owner_id.map(UserId::from_uuid),
                company_id: row.company_id.map(CompanyId::from_uuid),
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

/// The SQL expression each sort orders by; must match `ContactSortField::value_of`.
pub(crate) fn sort_expression(field: ContactSortField) -> &'static str {
    match field {
        ContactSortField::CreatedAt => "created_at",
        ContactSortField::UpdatedAt => "updated_at",
        ContactSortField::LastName => "coalesce(last_name, '')",
        ContactSortField::Email => "coalesce(email, '')",
    }
}

/// The list query of `query` (filters, keyset cursor, order, one row more than the page)
/// on top of `list`, for a unit of work or a one-statement list alike.
pub(crate) fn contact_list(
    mut list: ListSql,
    query: &ContactQuery,
) -> (String, Vec<sea_orm::Value>) {
    if let Some(q) = &query.q {
        list.search("crm_search_contacts", q);
    }
    if let Some(email) = &query.email {
        list.and("email = {}", email.as_str().to_owned());
    }
    if let Some(company) = query.company_id {
        list.and("company_id = {}", company.as_uuid());
    }
    if let Some(owner) = query.owner_id {
        list.and("owner_id = {}", owner.as_uuid());
    }
    if let Some(tag) = &query.tag {
        list.tagged("crm_tagged_contacts", tag);
    }
    if let Some(after) = query.created_after {
        list.and("created_at > {}", after);
    }
    if let Some(after) = query.updated_after {
        list.and("updated_at > {}", after);
    }
    list.page(
        sort_expression(query.sort.field),
        query.sort.descending,
        query.cursor.as_ref(),
        usize::from(query.limit.get()),
    )
}

/// A contact decoded by position: the columns of [`COLUMNS`], in that order, from `at` on.
/// By name, each of the 14 columns of every row of a page cost a formatted column name and
/// a map look-up (a quarter of the server's time on a one-statement list).
pub(crate) fn model_at(row: &impl Columns, at: usize) -> Result<contacts::Model, DbErr> {
    Ok(contacts::Model {
        tenant_id: row.column(at)?,
        id: row.column(at + 1)?,
        first_name: row.column(at + 2)?,
        last_name: row.column(at + 3)?,
        email: row.column(at + 4)?,
        phone: row.column(at + 5)?,
        title: row.column(at + 6)?,
        tags: row.column(at + 7)?,
        custom_fields: row.column(at + 8)?,
        owner_id: row.column(at + 9)?,
        company_id: row.column(at + 10)?,
        created_at: row.column(at + 11)?,
        updated_at: row.column(at + 12)?,
        version: row.column(at + 13)?,
    })
}

/// The page of the rows a list query fetched.
pub(crate) fn contact_page(items: Vec<Contact>, query: &ContactQuery) -> ContactPage {
    into_page(items, usize::from(query.limit.get()), query.sort, |row| {
        (query.sort.field.value_of(row), row.id.as_uuid())
    })
}

/// The draft's columns, all set (absent values are written as NULL), keys and
/// database-maintained columns (`created_at`, `updated_at`, `version`) left unset: INSERT
/// and UPDATE always name the same columns, so each is one cached statement.
fn draft_model(draft: &ContactDraft) -> contacts::ActiveModel {
    contacts::ActiveModel {
        first_name: Set(draft.first_name.clone()),
        last_name: Set(draft.last_name.clone()),
        email: Set(draft.email.as_ref().map(|e| e.as_str().to_owned())),
        phone: Set(draft.phone.as_ref().map(|p| p.as_str().to_owned())),
        title: Set(draft.title.clone()),
        tags: Set(draft.tags.as_slice().to_vec()),
        custom_fields: Set(draft.custom_fields.to_value()),
        owner_id: Set(draft.owner_id.map(|id| id.as_uuid())),
        company_id: Set(draft.company_id.map(|id| id.as_uuid())),
        ..Default::default()
    }
}

pub(crate) fn write_error(error: DbErr) -> ContactWriteError {
    match violated_constraint(&error) {
        Some(("contacts_tenant_email_key", code)) if code == UNIQUE_VIOLATION => {
            ContactWriteError::DuplicateEmail
        }
        Some(("contacts_owner_fkey", code)) if code == FOREIGN_KEY_VIOLATION => {
            ContactWriteError::UnknownOwner
        }
        Some(("contacts_company_fkey", code)) if code == FOREIGN_KEY_VIOLATION => {
            ContactWriteError::UnknownCompany
        }
        _ => ContactWriteError::Repo(repo_error(error)),
    }
}

impl ContactRepository for PgUnitOfWork {
    async fn list_contacts(&mut self, query: &ContactQuery) -> Result<ContactPage, RepoError> {
        let list = ListSql::new(COLUMNS, "contacts", self.tenant_id.as_uuid());
        let (sql, values) = contact_list(list, query);
        let rows = self
            .txn
            .query_all_raw(statement(&sql, values))
            .await
            .map_err(repo_error)?;
        let items = rows
            .iter()
            .map(|row| Contact::try_from(model_at(row, 0).map_err(repo_error)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(contact_page(items, query))
    }

    async fn get_contact(
        &mut self,
        id: ContactId,
        for_update: bool,
    ) -> Result<Option<Contact>, RepoError> {
        let mut find = Contacts::find_by_id((self.tenant_id.as_uuid(), id.as_uuid()));
        if for_update {
            find = find.lock_exclusive();
        }
        find.one(&self.txn)
            .await
            .map_err(repo_error)?
            .map(Contact::try_from)
            .transpose()
    }

    async fn find_contact_by_email(
        &mut self,
        email: &domain::contact::Email,
    ) -> Result<Option<Contact>, RepoError> {
        Contacts::find()
            .filter(Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(Column::Email.eq(email.as_str()))
            .lock_exclusive()
            .one(&self.txn)
            .await
            .map_err(repo_error)?
            .map(Contact::try_from)
            .transpose()
    }

    async fn find_contacts_by_emails(
        &mut self,
        emails: &[domain::contact::Email],
    ) -> Result<Vec<Contact>, RepoError> {
        let emails: Vec<String> = emails.iter().map(|e| e.as_str().to_owned()).collect();
        use sea_orm::sea_query::ExprTrait as _;
        // `= ANY($2)` with one array parameter, not `IN ($2, $3, …)`: one statement text
        // (so one cached statement) whatever the batch size.
        Contacts::find()
            .filter(Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(Expr::col(Column::Email).eq(PgFunc::any(Expr::val(emails))))
            .lock_exclusive()
            .all(&self.txn)
            .await
            .map_err(repo_error)?
            .into_iter()
            .map(Contact::try_from)
            .collect()
    }

    async fn insert_contacts(
        &mut self,
        rows: &[(ContactId, ContactDraft)],
    ) -> Result<Vec<ContactId>, ContactWriteError> {
        // The rows travel as JSON text, one statement per chunk (see below). Short keys and
        // no nulls (an absent key reads as NULL) keep each record small, so chunks are few;
        // each record is encoded once, and only the ids come back.
        let records: Vec<String> = rows
            .iter()
            .map(|(id, d)| {
                let mut record = serde_json::Map::new();
                let mut put = |key: &str, value: serde_json::Value| {
                    if !value.is_null() {
                        record.insert(key.to_owned(), value);
                    }
                };
                put("i", serde_json::json!(id.as_uuid()));
                put("f", serde_json::json!(d.first_name));
                put("l", serde_json::json!(d.last_name));
                put("e", serde_json::json!(d.email.as_ref().map(|e| e.as_str())));
                put("p", serde_json::json!(d.phone.as_ref().map(|p| p.as_str())));
                put("t", serde_json::json!(d.title));
                // Empty tags and custom fields are left out too: the statement fills them in.
                if !d.tags.as_slice().is_empty() {
                    put("g", serde_json::json!(d.tags.as_slice()));
                }
                if !d.custom_fields.as_map().is_empty() {
                    put("c", d.custom_fields.to_value());
                }
                put("o", serde_json::json!(d.owner_id.map(|o| o.as_uuid())));
                put("y", serde_json::json!(d.company_id.map(|c| c.as_uuid())));
                serde_json::Value::Object(record).to_string()
            })
            .collect();
        // sqlx does not set TCP_NODELAY: a statement over its 8 KiB write buffer goes out in
        // two writes, and the second waits for PostgreSQL's delayed ACK (40 ms on Linux).
        // So the rows travel in chunks that stay under that size (one statement each).
        let mut written = std::collections::HashSet::with_capacity(rows.len());
        let mut chunk = String::from("[");
        let mut records = records.into_iter().peekable();
        while let Some(record) = records.next() {
            if chunk.len() > 1 {
                chunk.push(',');
            }
            chunk.push_str(&record);
            let next_fits = records
                .peek()
                .is_some_and(|next| chunk.len() + 1 + next.len() < STATEMENT_BYTES);
            if next_fits {
                continue;
            }
            chunk.push(']');
            let json = std::mem::replace(&mut chunk, String::from("["));
            let ids = IdRow::find_by_statement(statement(
                "INSERT INTO contacts (tenant_id, id, first_name, last_name, email, phone, title, tags, \
                 custom_fields, owner_id, company_id) \
                 SELECT $1, x.i, x.f, x.l, x.e, x.p, x.t, \
                        coalesce(ARRAY(SELECT jsonb_array_elements_text(x.g)), '{}'), \
                        coalesce(x.c, '{}'), x.o, x.y \
                   FROM jsonb_to_recordset($2::text::jsonb) AS x(i uuid, f text, l text, e text, p text, \
                        t text, g jsonb, c jsonb, o uuid, y uuid) \
                 ON CONFLICT (tenant_id, email) WHERE email IS NOT NULL DO NOTHING \
                 RETURNING id",
                vec![self.tenant_id.as_uuid().into(), json.into()],
            ))
            .all(&self.txn)
            .await
            .map_err(write_error)?;
            written.extend(ids.into_iter().map(|row| ContactId::from_uuid(row.id)));
        }
        // The caller's order; rows skipped for a taken e-mail are absent.
        Ok(rows
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| written.contains(id))
            .collect())
    }

    async fn insert_contact(
        &mut self,
        id: ContactId,
        draft: &ContactDraft,
    ) -> Result<Contact, ContactWriteError> {
        // One statement: INSERT … RETURNING every column of the entity.
        let row = contacts::ActiveModel {
            tenant_id: Set(self.tenant_id.as_uuid()),
            id: Set(id.as_uuid()),
            ..draft_model(draft)
        }
        .insert(&self.txn)
        .await
        .map_err(write_error)?;
        Ok(Contact::try_from(row)?)
    }

    async fn update_contact(
        &mut self,
        id: ContactId,
        draft: &ContactDraft,
    ) -> Result<Contact, ContactWriteError> {
        use sea_orm::sea_query::ExprTrait as _;
        // One statement: UPDATE … RETURNING, the version bumped and `updated_at` moved
        // forward (never back, should the clock step) by the database.
        Contacts::update_many()
            .set(draft_model(draft))
            .col_expr(Column::UpdatedAt, touched(Column::UpdatedAt))
            .col_expr(Column::Version, Expr::col(Column::Version).add(1))
            .filter(Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(Column::Id.eq(id.as_uuid()))
            .exec_with_returning(&self.txn)
            .await
            .map_err(write_error)?
            .pop()
            .map(Contact::try_from)
            .transpose()?
            .ok_or(ContactWriteError::NotFound)
    }

    async fn delete_contact(&mut self, id: ContactId) -> Result<(), ContactWriteError> {
        let result = Contacts::delete_by_id((self.tenant_id.as_uuid(), id.as_uuid()))
            .exec(&self.txn)
            .await
            .map_err(write_error)?;
        if result.rows_affected == 0 {
            Err(ContactWriteError::NotFound)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    //! The hot path's statements as the builder renders them: one statement each, keyed
    //! by `(tenant_id, id)` (the primary key index), with `$n` placeholders only, so sqlx
    //! prepares each once per connection and reuses it.

    use super::*;
    use sea_orm::{DbBackend, QueryTrait};

    fn sql(statement: impl QueryTrait) -> String {
        statement.build(DbBackend::Postgres).sql
    }

    const SELECTED: &str = r#""contacts"."tenant_id", "contacts"."id", "contacts"."first_name", "contacts"."last_name", "contacts"."email", "contacts"."phone", "contacts"."title", "contacts"."tags", "contacts"."custom_fields", "contacts"."owner_id", "contacts"."company_id", "contacts"."created_at", "contacts"."updated_at", "contacts"."version""#;

    #[test]
    fn get_one_contact_is_a_primary_key_lookup() {
        let find = Contacts::find_by_id((Uuid::nil(), Uuid::nil()));
        assert_eq!(
            sql(find.clone()),
            format!(
                r#"SELECT {SELECTED} FROM "contacts" WHERE "contacts"."tenant_id" = $1 AND "contacts"."id" = $2"#
            )
        );
        assert_eq!(
            sql(find.lock_exclusive()),
            format!(
                r#"SELECT {SELECTED} FROM "contacts" WHERE "contacts"."tenant_id" = $1 AND "contacts"."id" = $2 FOR UPDATE"#
            )
        );
    }

    #[test]
    fn insert_names_the_same_columns_whatever_the_draft() {
        let draft = ContactDraft {
            first_name: None,
            last_name: None,
            email: None,
            phone: None,
            title: None,
            tags: Tags::parse(&[]).expect("no tags"),
            custom_fields: CustomFields::parse(serde_json::json!({})).expect("empty object"),
            owner_id: None,
            company_id: None,
        };
        let model = contacts::ActiveModel {
            tenant_id: Set(Uuid::nil()),
            id: Set(Uuid::nil()),
            ..draft_model(&draft)
        };
        assert_eq!(
            sql(Contacts::insert(model)),
            r#"INSERT INTO "contacts" ("tenant_id", "id", "first_name", "last_name", "email", "phone", "title", "tags", "custom_fields", "owner_id", "company_id") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#
        );
    }

    #[test]
    fn update_bumps_version_and_time_in_the_database() {
        use sea_orm::sea_query::ExprTrait as _;
        let draft = ContactDraft {
            first_name: Some("Ada".into()),
            last_name: None,
            email: None,
            phone: None,
            title: None,
            tags: Tags::parse(&[]).expect("no tags"),
            custom_fields: CustomFields::parse(serde_json::json!({})).expect("empty object"),
            owner_id: None,
            company_id: None,
        };
        let update = Contacts::update_many()
            .set(draft_model(&draft))
            .col_expr(Column::UpdatedAt, touched(Column::UpdatedAt))
            .col_expr(Column::Version, Expr::col(Column::Version).add(1))
            .filter(Column::TenantId.eq(Uuid::nil()))
            .filter(Column::Id.eq(Uuid::nil()));
        assert_eq!(
            sql(update),
            r#"UPDATE "contacts" SET "first_name" = $1, "last_name" = $2, "email" = $3, "phone" = $4, "title" = $5, "tags" = $6, "custom_fields" = $7, "owner_id" = $8, "company_id" = $9, "updated_at" = GREATEST(now(), "updated_at"), "version" = "version" + $10 WHERE "contacts"."tenant_id" = $11 AND "contacts"."id" = $12"#
        );
    }
}
