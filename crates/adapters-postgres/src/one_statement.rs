//! Reads that authenticate, scope and read in one statement (SPEC §9, issue 14).
//!
//! A unit of work costs four round trips before a handler sees a byte: `BEGIN`, the
//! authenticating `SELECT … FROM crm_authenticate_api_key($1)` (which sets the tenant),
//! the read, `COMMIT`. A read that is one statement anyway needs no transaction block:
//! sent on its own, a statement is its own transaction, so a `set_config(…, true)` made
//! inside it lasts exactly as long as the statement, as in a unit of work.
//!
//! The statement is
//!
//! ```sql
//! WITH auth AS MATERIALIZED (SELECT … FROM crm_authenticate_api_key($1))
//! SELECT auth.…, c.… FROM auth LEFT JOIN LATERAL (SELECT … FROM contacts c
//!                                                  WHERE c.tenant_id = auth.tenant_id
//!                                                    AND c.id = $2) c ON true
//! ```
//!
//! Why the tenant is set before any contact row is touched: the lateral subquery depends
//! on `auth`, so the executor can only run it for a row `auth` produced (a nested loop
//! with `auth` outside), and the materialised CTE runs the function, which sets
//! `app.tenant_id`, before it yields that row. Row-level security on `contacts` evaluates
//! its `current_setting` only then. And it fails closed: were the setting not there, the
//! policy would match no row (a 404), never another tenant's; an unknown key yields no
//! `auth` row, so nothing is read at all. `tests/api/isolation.rs` holds it to both.
//!
//! A key this process resolved in the last minute skips the function: the statement sets
//! the tenant it remembers and checks the key's row there instead (`key_cache`, which says
//! why that is as strict); the contact's subquery is fenced with `OFFSET 0` like the
//! check's. When the check finds nothing, the function gets the last word.

use domain::contact::Contact;
use domain::ids::ContactId;
use domain::principal::{Actor, Principal};
use domain::token::TokenHash;
use ports::{ContactReadByApiKey, RepoError};
use sea_orm::{FromQueryResult, QueryResult};
use uuid::Uuid;

use std::sync::LazyLock;

use crate::entities::contacts;
use crate::errors::repo_error;
use crate::key_cache::{CHECKED_KEY_CTE, KnownKey};
use crate::store::{AuthenticatedKey, PgStore, statement};

/// The contact's columns, after the key's, in both statements.
const CONTACT_COLUMNS: &str = "\
SELECT auth.tenant_id, auth.tenant_name, auth.key_id, auth.key_name, auth.key_prefix,
       auth.role, auth.scopes, auth.acts_for,
       c.tenant_id AS c_tenant_id, c.id AS c_id, c.first_name AS c_first_name,
       c.last_name AS c_last_name, c.email AS c_email, c.phone AS c_phone, c.title AS c_title,
       c.tags AS c_tags, c.custom_fields AS c_custom_fields, c.owner_id AS c_owner_id,
       c.company_id AS c_company_id, c.created_at AS c_created_at,
       c.updated_at AS c_updated_at, c.version AS c_version
  FROM auth";

/// `GET /v1/contacts/{id}` with an API key, in one statement: `$1` the key's hash,
/// `$2` the contact.
static CONTACT_WITH_API_KEY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH auth AS MATERIALIZED (
             SELECT tenant_id, tenant_name, key_id, key_name, key_prefix, role, scopes, acts_for
               FROM crm_authenticate_api_key($1))
         {CONTACT_COLUMNS}
         LEFT JOIN LATERAL (SELECT * FROM contacts c
                             WHERE c.tenant_id = auth.tenant_id AND c.id = $2) c ON true"
    )
});

/// The same with a key this process resolved recently, checked in its tenant
/// (`key_cache`): `$1` the tenant, `$2` the key's id, `$3` the contact.
static CONTACT_WITH_KNOWN_KEY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH {CHECKED_KEY_CTE}
         {CONTACT_COLUMNS}
         LEFT JOIN LATERAL (SELECT * FROM contacts c
                             WHERE c.tenant_id = auth.tenant_id AND c.id = $3
                            OFFSET 0) c ON true"
    )
});

impl ContactReadByApiKey for PgStore {
    async fn contact_with_api_key(
        &self,
        hash: &TokenHash,
        id: ContactId,
    ) -> Result<Option<(Principal, Option<Contact>)>, RepoError> {
        if let Some(known) = self.keys.get(hash) {
            let values = vec![
                known.tenant_id.to_string().into(),
                known.key_id.into(),
                id.as_uuid().into(),
            ];
            if let Some(read) = self.read_one(&CONTACT_WITH_KNOWN_KEY, values).await? {
                return Ok(Some(read));
            }
            // Revoked, expired, or no longer a member: the function decides.
            self.keys.forget(hash);
        }
        let values = vec![hash.0.to_vec().into(), id.as_uuid().into()];
        let read = self.read_one(&CONTACT_WITH_API_KEY, values).await?;
        if let Some((principal, _)) = &read
            && let Actor::ApiKey { id: key_id, .. } = &principal.actor
        {
            self.keys.learn(
                hash,
                KnownKey {
                    tenant_id: principal.tenant_id.as_uuid(),
                    key_id: key_id.as_uuid(),
                },
            );
        }
        Ok(read)
    }
}

impl PgStore {
    /// Runs one of the statements above: the caller and, if the tenant has it, the contact;
    /// nothing when the key does not authenticate.
    async fn read_one(
        &self,
        sql: &'static str,
        values: Vec<sea_orm::Value>,
    ) -> Result<Option<(Principal, Option<Contact>)>, RepoError> {
        let db = self.db.clone();
        // Run to completion like every other piece of database work (see `availability`).
        let row = self
            .availability
            .run_acquiring(async move {
                use sea_orm::ConnectionTrait as _;
                db.query_one_raw(statement(sql, values))
                    .await
                    .map_err(repo_error)
            })
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let principal = AuthenticatedKey::from_query_result(&row, "")
            .map_err(repo_error)?
            .into_principal()?;
        Ok(Some((principal, contact(&row)?)))
    }
}

/// The contact half of the row: absent (all nulls) when the tenant has no such contact.
fn contact(row: &QueryResult) -> Result<Option<Contact>, RepoError> {
    let id: Option<Uuid> = row.try_get("", "c_id").map_err(repo_error)?;
    if id.is_none() {
        return Ok(None);
    }
    let model = contacts::Model::from_query_result(row, "c_").map_err(repo_error)?;
    Contact::try_from(model).map(Some)
}
