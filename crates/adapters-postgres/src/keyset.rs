//! The shape every list query shares: tenant filter, optional filters, keyset cursor,
//! order and limit, with positional parameters.

use domain::list::{Cursor, Page, Sort, SortValue};
use sea_orm::Value;
use uuid::Uuid;

/// A list query under construction.
pub(crate) struct ListSql {
    sql: String,
    values: Vec<Value>,
}

impl ListSql {
    /// `SELECT {columns} FROM {table} WHERE tenant_id = $1`. The tenant is repeated
    /// explicitly (RLS enforces it anyway) so the planner uses the `(tenant_id, …)` indexes.
    pub(crate) fn new(columns: &str, table: &str, tenant: Uuid) -> Self {
        Self::following(Vec::new(), columns, table, tenant)
    }

    /// The same, as part of a statement whose first parameters are `leading`: the list's
    /// own are numbered after them.
    pub(crate) fn following(
        mut leading: Vec<Value>,
        columns: &str,
        table: &str,
        tenant: Uuid,
    ) -> Self {
        leading.push(tenant.into());
        Self {
            sql: format!(
                "SELECT {columns} FROM {table} WHERE tenant_id = ${}",
                leading.len()
            ),
            values: leading,
        }
    }

    /// Adds ` AND {clause}` where `{}` in the clause is the next parameter.
    pub(crate) fn and(&mut self, clause: &str, value: impl Into<Value>) {
        self.values.push(value.into());
        let placeholder = format!("${}", self.values.len());
        self.sql.push_str(" AND ");
        self.sql.push_str(&clause.replace("{}", &placeholder));
    }

    /// Adds the case-insensitive substring search, through the table's
    /// `crm_search_<table>` function so the trigram index is used under RLS.
    pub(crate) fn search(&mut self, function: &str, q: &str) {
        self.and(
            &format!("id IN (SELECT {function}('%' || lower({{}}) || '%'))"),
            like_literal(q),
        );
    }

    /// Adds the tag filter, through the table's `crm_tagged_<table>` function so the GIN
    /// index is used under RLS.
    pub(crate) fn tagged(&mut self, function: &str, tag: &str) {
        self.and(&format!("id IN (SELECT {function}({{}}))"), tag.to_owned());
    }

    /// Adds the keyset condition, the order and the limit (one more row than the page, to
    /// know whether another page exists).
    pub(crate) fn page<F>(
        mut self,
        expression: &str,
        descending: bool,
        cursor: Option<&Cursor<F>>,
        limit: usize,
    ) -> (String, Vec<Value>) {
        let (comparison, direction) = if descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        if let Some(cursor) = cursor {
            let value: Value = match &cursor.value {
                SortValue::Timestamp(at) => (*at).into(),
                SortValue::Text(text) => text.clone().into(),
            };
            self.values.push(value);
            self.values.push(cursor.id.into());
            let (v, i) = (self.values.len() - 1, self.values.len());
            self.sql.push_str(&format!(
                " AND ({expression}, id) {comparison} (${v}, ${i})"
            ));
        }
        self.sql.push_str(&format!(
            " ORDER BY {expression} {direction}, id {direction} LIMIT {}",
            limit + 1
        ));
        (self.sql, self.values)
    }
}

/// Escapes LIKE wildcards so a search matches literally.
pub(crate) fn like_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Cuts a page from the `limit + 1` rows a list query fetched: the extra row only says
/// that another page exists, and the last kept row becomes the cursor.
pub(crate) fn into_page<T, F: Copy>(
    mut rows: Vec<T>,
    limit: usize,
    sort: Sort<F>,
    key: impl Fn(&T) -> (SortValue, Uuid),
) -> Page<T, F> {
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let next = if has_more {
        rows.last().map(|last| {
            let (value, id) = key(last);
            Cursor { sort, value, id }
        })
    } else {
        None
    };
    Page { items: rows, next }
}
