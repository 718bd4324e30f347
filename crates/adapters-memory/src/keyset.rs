//! Keyset pages in memory, shared by every list: sort, apply the cursor, cut one page,
//! as the SQL adapters do.

use domain::list::{Cursor, Page, SortValue};

/// Sorts, applies the keyset cursor and cuts one page, like the SQL adapters do.
pub(crate) fn page_of<T: Clone, F: Copy>(
    mut rows: Vec<&T>,
    key: impl Fn(&T) -> (SortValue, uuid::Uuid),
    sort: domain::list::Sort<F>,
    cursor: Option<&Cursor<F>>,
    limit: domain::list::Limit,
) -> Page<T, F> {
    let directed = |order: std::cmp::Ordering| {
        if sort.descending {
            order.reverse()
        } else {
            order
        }
    };
    rows.sort_by(|a, b| directed(compare(&key(a), &key(b))));
    if let Some(cursor) = cursor {
        let after = (cursor.value.clone(), cursor.id);
        rows.retain(|row| directed(compare(&key(row), &after)).is_gt());
    }
    let limit = usize::from(limit.get());
    let has_more = rows.len() > limit;
    let items: Vec<T> = rows.into_iter().take(limit).cloned().collect();
    let next = if has_more {
        items.last().map(|last| {
            let (value, id) = key(last);
            Cursor { sort, value, id }
        })
    } else {
        None
    };
    Page { items, next }
}

fn compare(a: &(SortValue, uuid::Uuid), b: &(SortValue, uuid::Uuid)) -> std::cmp::Ordering {
    let values = match (&a.0, &b.0) {
        (SortValue::Timestamp(x), SortValue::Timestamp(y)) => x.cmp(y),
        (SortValue::Text(x), SortValue::Text(y)) => x.cmp(y),
        (SortValue::Timestamp(_), SortValue::Text(_)) => std::cmp::Ordering::Less,
        (SortValue::Text(_), SortValue::Timestamp(_)) => std::cmp::Ordering::Greater,
    };
    values.then(a.1.cmp(&b.1))
}
