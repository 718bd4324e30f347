//! Requests that authenticate, scope and do their work in one statement (SPEC §9,
//! issue 14): the read of one contact, the list, and the create.
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
//!
//! `POST /v1/contacts` with such a key (and no `Idempotency-Key`) is one statement too:
//! the check, then an `INSERT … SELECT … FROM auth` in a data-modifying CTE. The insert
//! takes its one row from `auth`, so it runs only after the tenant is set and the key found
//! live, and its `WHERE` also requires the role and scopes the key was remembered with:
//! the use case allowed the write for exactly that caller (`domain::Principal::require`),
//! so the rule stays in the domain and the statement only confirms nothing changed. Row-
//! level security's `WITH CHECK` holds the new row to the tenant set; the statement's
//! triggers write the event and deliveries, all in the statement's own transaction, so a
//! failure leaves nothing. No key row: nothing is written, the key is forgotten and the
//! request takes the unit of work; a key row without the contact: its role or scopes
//! changed, and the unit of work answers for the key as it is now.
//!
//! `GET /v1/contacts` with such a key is one statement too: the check, then the page the
//! unit of work would read (the same builder, `contacts::contact_list`) in a lateral
//! subquery joined only while the key has the remembered role and scopes; the subquery
//! has its own `LIMIT`, so the planner cannot flatten it into the check, and it runs after
//! the tenant is set. The outer `ORDER BY` repeats the page's order on a `sort_key` column
//! the subquery selects, so the rows come back in the page's order by definition, not by
//! the executor's habit.

use domain::contact::{Contact, ContactDraft, ContactPage, ContactQuery};
use domain::ids::ContactId;
use domain::principal::Principal;
use domain::token::TokenHash;
use ports::{
    ContactCreateByApiKey, ContactListByApiKey, ContactReadByApiKey, ContactWriteError,
    RememberedKeys, RepoError,
};
use sea_orm::DbErr;
use uuid::Uuid;

use std::sync::{Arc, LazyLock};

use crate::columns::{Columns, LaneRow};
use crate::contacts::{
    COLUMNS, contact_list, contact_page, model_at, sort_expression, write_error,
};
use crate::errors::repo_error;
use crate::key_cache::{CHECKED_KEY_CTE, KnownKey};
use crate::keyset::ListSql;
use crate::store::{AuthenticatedKey, PgStore, statement};

/// How many of the key's columns come first in [`CONTACT_COLUMNS`].
const KEY_COLUMNS: usize = 8;

/// The contact's columns (`contacts::COLUMNS`' order), after the key's, in every statement.
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
        "/* contact read, known key */ WITH {CHECKED_KEY_CTE}
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
        let remembered = self.keys.get(hash);
        if let Some(known) = remembered.as_ref().and_then(KnownKey::of) {
            let values = vec![
                known.tenant_id.to_string().into(),
                known.key_id.into(),
                id.as_uuid().into(),
            ];
            let read = self
                .read_one(&CONTACT_WITH_KNOWN_KEY, values, remembered.as_ref())
                .await?;
            if let Some(read) = read {
                self.keys.confirm(hash, &read.0);
                return Ok(Some(read));
            }
            // Revoked, expired, or no longer a member: the function decides.
            self.keys.forget(hash);
        }
        let values = vec![hash.0.to_vec().into(), id.as_uuid().into()];
        let read = self.read_one(&CONTACT_WITH_API_KEY, values, None).await?;
        if let Some((principal, _)) = &read {
            self.keys.learn(hash, principal);
        }
        Ok(read)
    }
}

/// `POST /v1/contacts` with a key this process checked a moment ago, in one statement:
/// `$1` the tenant, `$2` the key's id (the check, as `CONTACT_WITH_KNOWN_KEY`'s), `$3` and
/// `$4` the role and scopes the key was remembered with, then the row. The insert reads
/// its one row from `auth`, so it writes only after the tenant is set and the key found
/// live, and only if the key still has exactly the remembered role and scopes (the ones
/// the use case allowed the write for). The result has the key's columns when the key is
/// live, and the contact's when it was written. The leading comment names the statement
/// where PostgreSQL shows it (`pg_stat_activity` keeps only its first kilobyte).
static CREATE_CONTACT_WITH_KNOWN_KEY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "/* contact create, known key */ WITH {CHECKED_KEY_CTE},
         created AS (
             INSERT INTO contacts (tenant_id, id, first_name, last_name, email, phone, title,
                                   tags, custom_fields, owner_id, company_id)
             SELECT auth.tenant_id, $5::uuid, $6::text, $7::text, $8::text, $9::text,
                    $10::text, $11::text[], $12::jsonb, $13::uuid, $14::uuid
               FROM auth
              WHERE auth.role = $3::text AND auth.scopes = $4::text[]
             RETURNING *)
         {CONTACT_COLUMNS}
         LEFT JOIN created c ON true"
    )
});

impl RememberedKeys for PgStore {
    fn remembered_caller(&self, hash: &TokenHash) -> Option<Principal> {
        self.keys.get(hash)
    }
}

impl ContactCreateByApiKey for PgStore {
    async fn create_contact_as(
        &self,
        hash: &TokenHash,
        caller: &Principal,
        id: ContactId,
        draft: &ContactDraft,
    ) -> Result<Option<Contact>, ContactWriteError> {
        let Some(known) = KnownKey::of(caller) else {
            return Ok(None);
        };
        let mut values = acting_for(known, caller);
        values.extend::<[sea_orm::Value; 10]>([
            id.as_uuid().into(),
            draft.first_name.clone().into(),
            draft.last_name.clone().into(),
            draft.email.as_ref().map(|e| e.as_str().to_owned()).into(),
            draft.phone.as_ref().map(|p| p.as_str().to_owned()).into(),
            draft.title.clone().into(),
            draft.tags.as_slice().to_vec().into(),
            draft.custom_fields.to_value().into(),
            draft.owner_id.map(|o| o.as_uuid()).into(),
            draft.company_id.map(|c| c.as_uuid()).into(),
        ]);
        let refusal = |error| match write_error(error) {
            ContactWriteError::Repo(repo) => Err(repo),
            refused => Ok(refused),
        };
        let read = self
            .run_one(&CREATE_CONTACT_WITH_KNOWN_KEY, values, Sent::Write, refusal)
            .await??;
        match read {
            Some(row) => {
                let (principal, contact) = caller_and_contact(&row, Some(caller))?;
                self.keys.confirm(hash, &principal);
                // The key is live but its role or scopes changed: nothing was written.
                Ok(contact)
            }
            None => {
                // Revoked, expired, or no longer a member: nothing was written.
                self.keys.forget(hash);
                Ok(None)
            }
        }
    }
}

/// `GET /v1/contacts` with a key this process checked a moment ago, in one statement: the
/// check (`$1` the tenant, `$2` the key's id), then the page as a unit of work would read
/// it (`contacts::contact_list`, its parameters from `$5`), joined only while the key still
/// has the role `$3` and scopes `$4` it was remembered with. The page is a lateral
/// subquery with its own `LIMIT`, so it is never flattened into the check: it runs after
/// the tenant is set, under row-level security. Its rows come back in the page's order
/// (`sort_key`, the order's expression, then the id); a live key with an empty page, or
/// whose rights changed, is one row without a contact.
fn contact_list_with_known_key(page: &str, descending: bool) -> String {
    let direction = if descending { "DESC" } else { "ASC" };
    format!(
        "/* contact list, known key */ WITH {CHECKED_KEY_CTE}
         {CONTACT_COLUMNS}
         LEFT JOIN LATERAL ({page}) c ON auth.role = $3::text AND auth.scopes = $4::text[]
         ORDER BY c.sort_key {direction}, c.id {direction}"
    )
}

/// The first four parameters of a statement acting for a remembered caller: the key's
/// tenant and id, which the check looks the key up by, and the role and scopes it was
/// remembered with, which the statement requires it still to have.
fn acting_for(known: KnownKey, caller: &Principal) -> Vec<sea_orm::Value> {
    vec![
        known.tenant_id.to_string().into(),
        known.key_id.into(),
        caller.role.as_str().into(),
        caller.scopes.names().to_vec().into(),
    ]
}

impl ContactListByApiKey for PgStore {
    async fn list_contacts_as(
        &self,
        hash: &TokenHash,
        caller: &Principal,
        query: &ContactQuery,
    ) -> Result<Option<ContactPage>, RepoError> {
        let Some(known) = KnownKey::of(caller) else {
            return Ok(None);
        };
        let check = acting_for(known, caller);
        let columns = format!(
            "{COLUMNS}, {} AS sort_key",
            sort_expression(query.sort.field)
        );
        let list = ListSql::following(check, &columns, "contacts", known.tenant_id);
        let (page, values) = contact_list(list, query);
        let sql = contact_list_with_known_key(&page, query.sort.descending);
        let rows = self.run_all(sql, values, Sent::list(query)).await?;
        let Some(first) = rows.first() else {
            // Revoked, expired, or no longer a member: the function decides.
            self.keys.forget(hash);
            return Ok(None);
        };
        let (principal, _) = caller_and_contact(first, Some(caller))?;
        self.keys.confirm(hash, &principal);
        if principal.role != caller.role || principal.scopes != caller.scopes {
            // Live, but its role or scopes changed: the unit of work answers for it.
            return Ok(None);
        }
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(item) = contact(row)? {
                items.push(item);
            }
        }
        Ok(Some(contact_page(items, query)))
    }
}

impl PgStore {
    /// Sends one statement built for this request on its own and takes all its rows.
    async fn run_all(
        &self,
        sql: String,
        values: Vec<sea_orm::Value>,
        sent: Sent,
    ) -> Result<Vec<LaneRow>, RepoError> {
        match self
            .send_alone::<std::convert::Infallible>(sql, values, sent, |error| {
                Err(repo_error(error))
            })
            .await?
        {
            Ok(rows) => Ok(rows),
            Err(never) => match never {},
        }
    }

    /// Runs one of the statements above: the caller and, if the tenant has it, the contact;
    /// nothing when the key does not authenticate.
    async fn read_one(
        &self,
        sql: &'static str,
        values: Vec<sea_orm::Value>,
        remembered: Option<&Principal>,
    ) -> Result<Option<(Principal, Option<Contact>)>, RepoError> {
        let read = self.run_one::<std::convert::Infallible>(sql, values, Sent::Read, |error| {
            Err(repo_error(error))
        });
        let row = match read.await? {
            Ok(row) => row,
            Err(never) => match never {},
        };
        row.as_ref()
            .map(|row| caller_and_contact(row, remembered))
            .transpose()
    }

    /// Sends one statement on its own (its own transaction) and takes its one row. A
    /// failure `refusal` turns into an answer (a broken rule) is `Ok(Err(_))`; any other
    /// is the storage error it maps to, which the availability watch sees.
    async fn run_one<E: Send + 'static>(
        &self,
        sql: &'static str,
        values: Vec<sea_orm::Value>,
        sent: Sent,
        refusal: fn(DbErr) -> Result<E, RepoError>,
    ) -> Result<Result<Option<LaneRow>, E>, RepoError> {
        let rows = self
            .send_alone(sql.to_owned(), values, sent, refusal)
            .await?;
        Ok(rows.map(|rows| rows.into_iter().next()))
    }

    /// Sends one statement on its own and takes every row: a short read on the pipelined
    /// lane when there is one, else (and a search or a write always) on a connection of
    /// the statement lane when there is one (one round trip), else on the pool's. Runs to
    /// completion like every other piece of database work (see `availability`).
    async fn send_alone<E: Send + 'static>(
        &self,
        sql: String,
        values: Vec<sea_orm::Value>,
        sent: Sent,
        refusal: fn(DbErr) -> Result<E, RepoError>,
    ) -> Result<Result<Vec<LaneRow>, E>, RepoError> {
        let answer = move |rows: Result<Vec<LaneRow>, DbErr>| match rows {
            Ok(rows) => Ok(Ok(rows)),
            Err(error) => refusal(error).map(Err),
        };
        let availability = Arc::clone(&self.availability);
        let values = sea_orm::Values(values);
        if let (Sent::Read, Some(lane)) = (sent, &self.pipelined) {
            let work_lane = Arc::clone(lane);
            return self
                .availability
                .run_in(lane.slots(), async move {
                    let rows = work_lane.fetch_all(&availability, sql, values).await;
                    answer(rows.map(|rows| rows.into_iter().map(LaneRow::Piped).collect()))
                })
                .await;
        }
        if let Some(lane) = &self.lane {
            let work_lane = Arc::clone(lane);
            return self
                .availability
                .run_in(lane.slots(), async move {
                    let rows = work_lane.fetch_all(&availability, sql, values).await;
                    answer(rows.map(|rows| rows.into_iter().map(LaneRow::Sqlx).collect()))
                })
                .await;
        }
        let db = self.db.clone();
        self.availability
            .run_acquiring(async move {
                use sea_orm::ConnectionTrait as _;
                let rows = db.query_all_raw(statement(&sql, values.0)).await;
                answer(rows.map(|rows| rows.into_iter().map(LaneRow::Sqlx).collect()))
            })
            .await
    }
}

/// What a statement sent on its own does, and so where it goes. Statements on a pipelined
/// connection run one after another, so only those whose cost is bounded share one: a
/// read of one row, or a page walked along an index. A search or a filtered list may read
/// as many rows as its tenant has (and a tenant's slow search must hold up no other
/// tenant's read queued behind it); a write waits for its commit's WAL flush, and
/// concurrent writes on connections of their own have their commits flushed together.
/// Those keep a connection to themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    /// Bounded by an index: may share a pipelined connection.
    Read,
    /// A read whose cost grows with the tenant's rows.
    Search,
    /// A write.
    Write,
}

impl Sent {
    /// A list is a bounded read when nothing but an index walk decides its page: no
    /// filter, or only the exact e-mail (a unique index). `q`, a tag, a company, an
    /// owner or a time may have the page read many rows to find a few.
    fn list(query: &ContactQuery) -> Self {
        let ContactQuery {
            limit: _,
            sort: _,
            cursor: _,
            q,
            email: _,
            company_id,
            owner_id,
            tag,
            created_after,
            updated_after,
        } = query;
        let narrowed = q.is_some()
            || company_id.is_some()
            || owner_id.is_some()
            || tag.is_some()
            || created_after.is_some()
            || updated_after.is_some();
        if narrowed { Self::Search } else { Self::Read }
    }
}

/// The caller (the key's columns; `remembered` as for `AuthenticatedKey::into_principal`)
/// and the contact half of a row.
fn caller_and_contact(
    row: &impl Columns,
    remembered: Option<&Principal>,
) -> Result<(Principal, Option<Contact>), RepoError> {
    let principal = AuthenticatedKey::at(row)
        .map_err(repo_error)?
        .into_principal(remembered)?;
    Ok((principal, contact(row)?))
}

/// The contact half of the row: absent (all nulls) when the tenant has no such contact.
fn contact(row: &impl Columns) -> Result<Option<Contact>, RepoError> {
    let id: Option<Uuid> = row.column(KEY_COLUMNS + 1).map_err(repo_error)?;
    if id.is_none() {
        return Ok(None);
    }
    let model = model_at(row, KEY_COLUMNS).map_err(repo_error)?;
    Contact::try_from(model).map(Some)
}

#[cfg(test)]
mod tests {
    use domain::contact::ContactQuery;

    use super::{CONTACT_COLUMNS, CONTACT_WITH_KNOWN_KEY, KEY_COLUMNS, Sent};
    use crate::contacts::COLUMNS;

    /// Only a page an index walk decides shares a pipelined connection: a search, or a
    /// filter that may read many rows to find a few, keeps a connection to itself.
    #[test]
    fn only_an_index_walk_list_is_sent_as_a_bounded_read() {
        let plain = ContactQuery::default();
        assert_eq!(Sent::list(&plain), Sent::Read);
        let by_email = ContactQuery {
            email: Some(domain::contact::Email::parse("ada@example.com").expect("an address")),
            ..ContactQuery::default()
        };
        assert_eq!(Sent::list(&by_email), Sent::Read);
        let narrowed = [
            ContactQuery {
                q: Some("ada".to_owned()),
                ..ContactQuery::default()
            },
            ContactQuery {
                tag: Some("vip".to_owned()),
                ..ContactQuery::default()
            },
            ContactQuery {
                created_after: Some(time::OffsetDateTime::UNIX_EPOCH),
                ..ContactQuery::default()
            },
        ];
        for query in narrowed {
            assert_eq!(Sent::list(&query), Sent::Search, "{query:?}");
        }
    }

    fn one_line(sql: &str) -> String {
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The SQL statements of a pgbench script, one line each, without comments or
    /// meta-commands.
    fn statements_of(script: &str) -> Vec<String> {
        script
            .lines()
            .filter(|line| !line.starts_with("--") && !line.starts_with('\\'))
            .map(|line| one_line(line.trim_end_matches(';')))
            .collect()
    }

    /// `make bench`'s measure of this statement (`BENCH_STATEMENT_COST`, alone and made
    /// into pipelines by scripts/bench.sh) sends the same SQL with pgbench's variables for
    /// the parameters: a change here that the script does not follow would measure a
    /// statement the API no longer sends.
    #[test]
    fn the_bench_measures_the_known_key_read_the_api_sends() {
        let expected = one_line(
            &CONTACT_WITH_KNOWN_KEY
                .replace("$1", "md5('t' || :t::text)::uuid::text")
                .replace("$2", "md5('ki' || :t::text || ':' || :k::text)::uuid")
                .replace("$3", "md5('c' || :t::text || ':' || :n::text)::uuid"),
        );
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/bench/statement-cost/read-known-key.sql"
        );
        let alone = std::fs::read_to_string(script).expect("the bench's script");
        assert_eq!(statements_of(&alone), [expected]);
    }

    #[test]
    fn the_contact_columns_follow_the_keys_in_the_order_they_are_decoded() {
        let columns: Vec<&str> = CONTACT_COLUMNS
            .trim_start_matches("SELECT")
            .split("FROM")
            .next()
            .expect("a select list")
            .split(',')
            .map(str::trim)
            .collect();
        assert!(
            columns[..KEY_COLUMNS]
                .iter()
                .all(|c| c.starts_with("auth."))
        );
        let contact: Vec<&str> = columns[KEY_COLUMNS..]
            .iter()
            .map(|c| {
                c.trim_start_matches("c.")
                    .split(" AS ")
                    .next()
                    .expect("a column")
            })
            .collect();
        let decoded: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
        assert_eq!(contact, decoded);
    }
}
