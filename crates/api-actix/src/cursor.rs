//! Opaque list cursors: base64url of a small JSON naming the sort, the last row's sort
//! value and its id. Clients pass them back untouched; anything else is a 400.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::FieldErrors;
use domain::list::{Cursor, Sort, SortField, SortValue};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

#[derive(Debug, Serialize, Deserialize)]
struct CursorToken {
    s: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    i: Uuid,
}

/// Encodes a cursor (public for the criterion benches in `benches/`).
pub fn encode<F: SortField>(cursor: &Cursor<F>) -> String {
    let (t, x) = match &cursor.value {
        SortValue::Timestamp(at) => (at.format(&Rfc3339).ok(), None),
        SortValue::Text(text) => (None, Some(text.clone())),
    };
    let token = CursorToken {
        s: cursor.sort.to_param(),
        t,
        x,
        i: cursor.id,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

/// Decodes a cursor this API issued; `None` for anything else, including a value of the
/// wrong kind for its sort field. Public for the criterion benches in `benches/`.
pub fn decode<F: SortField>(raw: &str) -> Option<Cursor<F>> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let token: CursorToken = serde_json::from_slice(&bytes).ok()?;
    let sort = Sort::<F>::parse(&token.s).ok()?;
    let value = match (sort.field.is_timestamp(), token.t, token.x) {
        (true, Some(t), None) => SortValue::Timestamp(OffsetDateTime::parse(&t, &Rfc3339).ok()?),
        (false, None, Some(x)) => SortValue::Text(x),
        _ => return None,
    };
    Some(Cursor {
        sort,
        value,
        id: token.i,
    })
}

/// Resolves a list's `cursor` and `sort` parameters: a cursor carries its sort, so `sort`
/// may be left out; a cursor made for another sort, or not made by this API, is recorded
/// as a `cursor` field error.
pub(crate) fn resolve<F: SortField>(
    raw: Option<&str>,
    sort: Option<Sort<F>>,
    errors: &mut FieldErrors,
) -> (Option<Cursor<F>>, Option<Sort<F>>) {
    let Some(raw) = raw else {
        return (None, sort);
    };
    match decode::<F>(raw) {
        Some(cursor) if sort.is_none_or(|s| s == cursor.sort) => {
            let sort = Some(cursor.sort);
            (Some(cursor), sort)
        }
        Some(_) => {
            errors.add("cursor", "was made for another sort; pass the same sort");
            (None, sort)
        }
        None => {
            errors.add("cursor", "is not a cursor this API issued");
            (None, sort)
        }
    }
}
