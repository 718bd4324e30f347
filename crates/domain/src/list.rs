//! List parameters shared by every collection: limit, sort and keyset cursor.
//!
//! Pagination is by keyset, never by offset: a cursor names the last row seen by its sort
//! value and id, so inserts and deletes elsewhere in the list neither repeat nor skip rows,
//! and the cost of a page does not grow with how deep it is.

use thiserror::Error;
use time::OffsetDateTime;
use uuid::Uuid;

/// Page size when the client names none.
pub const DEFAULT_LIMIT: u16 = 25;
/// Largest page a client may ask for.
pub const MAX_LIMIT: u16 = 100;

/// A page size between 1 and 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(u16);

/// A page size out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("must be between 1 and {MAX_LIMIT}")]
pub struct LimitError;

impl Limit {
    /// Checks the range; `None` gives the default.
    ///
    /// # Errors
    /// [`LimitError`] outside 1..=100.
    pub fn new(requested: Option<i64>) -> Result<Self, LimitError> {
        match requested {
            None => Ok(Self(DEFAULT_LIMIT)),
            Some(n) if (1..=i64::from(MAX_LIMIT)).contains(&n) => {
                u16::try_from(n).map(Self).map_err(|_| LimitError)
            }
            Some(_) => Err(LimitError),
        }
    }

    /// The size.
    #[must_use]
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self(DEFAULT_LIMIT)
    }
}

/// The value of the sort field in the last row of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SortValue {
    /// A timestamp field.
    Timestamp(OffsetDateTime),
    /// A text field (absent text sorts as the empty string).
    Text(String),
}

/// Where the previous page ended: its sort, the last row's sort value and id. The API
/// encodes it opaquely; clients must not build one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor<F> {
    /// The sort the cursor was made for; a cursor is only valid with the same sort.
    pub sort: Sort<F>,
    /// The last row's sort value.
    pub value: SortValue,
    /// The last row's id, the tie-breaker.
    pub id: Uuid,
}

/// A sort field and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort<F> {
    /// The field.
    pub field: F,
    /// Newest/largest first.
    pub descending: bool,
}

/// A sort parameter that names no sortable field.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("must be one of {allowed}, optionally prefixed with '-' for descending")]
pub struct SortError {
    /// The accepted field names, for the message.
    pub allowed: String,
}

/// A resource's sortable fields.
pub trait SortField: Sized + Copy + PartialEq + 'static {
    /// Every sortable field with its API name.
    const FIELDS: &'static [(Self, &'static str)];

    /// Whether the field's cursor values are timestamps (else text).
    fn is_timestamp(self) -> bool;

    /// The API name.
    fn name(self) -> &'static str {
        Self::FIELDS
            .iter()
            .find(|(field, _)| *field == self)
            .map_or("", |(_, name)| name)
    }
}

impl<F: SortField> Sort<F> {
    /// Parses `field` or `-field` against the resource's whitelist.
    ///
    /// # Errors
    /// [`SortError`] listing the accepted names.
    pub fn parse(raw: &str) -> Result<Self, SortError> {
        let (descending, name) = match raw.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, raw),
        };
        F::FIELDS
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(field, _)| Self {
                field: *field,
                descending,
            })
            .ok_or_else(|| SortError {
                allowed: F::FIELDS
                    .iter()
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The parameter form (`-createdAt`).
    #[must_use]
    pub fn to_param(self) -> String {
        if self.descending {
            format!("-{}", self.field.name())
        } else {
            self.field.name().to_owned()
        }
    }
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T, F> {
    /// The rows, in sort order.
    pub items: Vec<T>,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor<F>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Field {
        CreatedAt,
        Email,
    }

    impl SortField for Field {
        const FIELDS: &'static [(Self, &'static str)] =
            &[(Self::CreatedAt, "createdAt"), (Self::Email, "email")];

        fn is_timestamp(self) -> bool {
            self == Self::CreatedAt
        }
    }

    #[test]
    fn limit_defaults_to_25_and_stays_within_1_to_100() {
        assert_eq!(Limit::new(None).map(Limit::get), Ok(25));
        assert_eq!(Limit::new(Some(100)).map(Limit::get), Ok(100));
        assert!(Limit::new(Some(0)).is_err());
        assert!(Limit::new(Some(101)).is_err());
        assert!(Limit::new(Some(-5)).is_err());
    }

    #[test]
    fn sort_parses_whitelisted_fields_in_both_directions() {
        assert_eq!(
            Sort::<Field>::parse("-createdAt"),
            Ok(Sort {
                field: Field::CreatedAt,
                descending: true
            })
        );
        assert_eq!(
            Sort::<Field>::parse("email").map(Sort::to_param),
            Ok("email".to_owned())
        );
        let error = Sort::<Field>::parse("password").expect_err("not whitelisted");
        assert!(error.to_string().contains("createdAt, email"));
    }
}
