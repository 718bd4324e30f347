//! Contacts in PostgreSQL: rows, their conversion into domain contacts, and the SQL.

use domain::contact::{
    Contact, ContactDraft, ContactPage, ContactQuery, ContactSortField, CustomFields, Email, Phone,
    Tags,
};
use domain::ids::{CompanyId, ContactId, TenantId, UserId};
use ports::{ContactRepository, ContactWriteError, RepoError};
use sea_orm::{DbErr, FromQueryResult, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::errors::{FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, repo_error, violated_constraint};
use crate::keyset::{ListSql, into_page};
use crate::store::{PgUnitOfWork, statement};

const COLUMNS: &str = "tenant_id, id, first_name, last_name, email, phone, title, tags, \
                       custom_fields, owner_id, company_id, created_at, updated_at, version";

/// Largest statement the batch insert sends at once (see `insert_contacts`).
const STATEMENT_BYTES: usize = 6 * 1024;

/// The id of a written row, all a batch insert needs back.
#[derive(Debug, FromQueryResult)]
struct IdRow {
    id: Uuid,
}

/// A `contacts` row as stored.
#[derive(Debug, FromQueryResult)]
pub(crate) struct ContactRow {
    tenant_id: Uuid,
    id: Uuid,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    title: Option<String>,
    tags: Vec<String>,
    custom_fields: serde_json::Value,
    owner_id: Option<Uuid>,
    company_id: Option<Uuid>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    version: i64,
}

impl TryFrom<ContactRow> for Contact {
    type Error = RepoError;

    /// Stored rows passed the same rules on the way in; a row that no longer parses is a
    /// broken invariant, reported as unexpected rather than served.
    fn try_from(row: ContactRow) -> Result<Self, RepoError> {
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
fn sort_expression(field: ContactSortField) -> &'static str {
    match field {
        ContactSortField::CreatedAt => "created_at",
        ContactSortField::UpdatedAt => "updated_at",
        ContactSortField::LastName => "coalesce(last_name, '')",
        ContactSortField::Email => "coalesce(email, '')",
    }
}

/// Values of the draft's columns, in the order INSERT and UPDATE use them.
fn draft_values(draft: &ContactDraft) -> Vec<Value> {
    vec![
        draft.first_name.clone().into(),
        draft.last_name.clone().into(),
        draft.email.as_ref().map(|e| e.as_str().to_owned()).into(),
        draft.phone.as_ref().map(|p| p.as_str().to_owned()).into(),
        draft.title.clone().into(),
        draft.tags.as_slice().to_vec().into(),
        draft.custom_fields.to_value().into(),
        draft.owner_id.map(|id| id.as_uuid()).into(),
        draft.company_id.map(|id| id.as_uuid()).into(),
    ]
}

fn write_error(error: DbErr) -> ContactWriteError {
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

impl PgUnitOfWork {
    async fn one_contact(&self, sql: &str, values: Vec<Value>) -> Result<Option<Contact>, DbErr> {
        ContactRow::find_by_statement(statement(sql, values))
            .one(&self.txn)
            .await?
            .map(Contact::try_from)
            .transpose()
            .map_err(|e| DbErr::Custom(e.to_string()))
    }
}

impl ContactRepository for PgUnitOfWork {
    async fn list_contacts(&mut self, query: &ContactQuery) -> Result<ContactPage, RepoError> {
        let mut list = ListSql::new(COLUMNS, "contacts", self.tenant_id.as_uuid());
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
        let limit = usize::from(query.limit.get());
        let (sql, values) = list.page(
            sort_expression(query.sort.field),
            query.sort.descending,
            query.cursor.as_ref(),
            limit,
        );
        let rows = ContactRow::find_by_statement(statement(&sql, values))
            .all(&self.txn)
            .await
            .map_err(repo_error)?;
        let items = rows
            .into_iter()
            .map(Contact::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(items, limit, query.sort, |row| {
            (query.sort.field.value_of(row), row.id.as_uuid())
        }))
    }

    async fn get_contact(
        &mut self,
        id: ContactId,
        for_update: bool,
    ) -> Result<Option<Contact>, RepoError> {
        let lock = if for_update { " FOR UPDATE" } else { "" };
        self.one_contact(
            &format!("SELECT {COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = $2{lock}"),
            vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
        )
        .await
        .map_err(repo_error)
    }

    async fn find_contact_by_email(
        &mut self,
        email: &domain::contact::Email,
    ) -> Result<Option<Contact>, RepoError> {
        self.one_contact(
            &format!(
                "SELECT {COLUMNS} FROM contacts WHERE tenant_id = $1 AND email = $2 FOR UPDATE"
            ),
            vec![
                self.tenant_id.as_uuid().into(),
                email.as_str().to_owned().into(),
            ],
        )
        .await
        .map_err(repo_error)
    }

    async fn find_contacts_by_emails(
        &mut self,
        emails: &[domain::contact::Email],
    ) -> Result<Vec<Contact>, RepoError> {
        let emails: Vec<String> = emails.iter().map(|e| e.as_str().to_owned()).collect();
        ContactRow::find_by_statement(statement(
            &format!(
                "SELECT {COLUMNS} FROM contacts WHERE tenant_id = $1 AND email = ANY($2) FOR UPDATE"
            ),
            vec![self.tenant_id.as_uuid().into(), emails.into()],
        ))
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
        let mut values = vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()];
        values.extend(draft_values(draft));
        self.one_contact(
            &format!(
                "INSERT INTO contacts (tenant_id, id, first_name, last_name, email, phone, \
                 title, tags, custom_fields, owner_id, company_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
            ),
            values,
        )
        .await
        .map_err(write_error)?
        .ok_or_else(|| RepoError::Unexpected("INSERT returned no row".into()).into())
    }

    async fn update_contact(
        &mut self,
        id: ContactId,
        draft: &ContactDraft,
    ) -> Result<Contact, ContactWriteError> {
        let mut values = vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()];
        values.extend(draft_values(draft));
        self.one_contact(
            &format!(
                "UPDATE contacts SET first_name = $3, last_name = $4, email = $5, phone = $6, \
                 title = $7, tags = $8, custom_fields = $9, owner_id = $10, company_id = $11, \
                 updated_at = greatest(now(), updated_at), version = version + 1 \
                 WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
            ),
            values,
        )
        .await
        .map_err(write_error)?
        .ok_or(ContactWriteError::NotFound)
    }

    async fn delete_contact(&mut self, id: ContactId) -> Result<(), ContactWriteError> {
        let result = sea_orm::ConnectionTrait::execute_raw(
            &self.txn,
            statement(
                "DELETE FROM contacts WHERE tenant_id = $1 AND id = $2",
                vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
            ),
        )
        .await
        .map_err(write_error)?;
        if result.rows_affected() == 0 {
            Err(ContactWriteError::NotFound)
        } else {
            Ok(())
        }
    }
}
