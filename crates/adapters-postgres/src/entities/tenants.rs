//! The `tenants` table (row-level security keys it by `id`). `created_at` is left out: the
//! application role may insert only `id`, `name` and `expires_at`, and reads nothing else.

use sea_orm::entity::prelude::*;
use time::OffsetDateTime;

/// A `tenants` row, as far as the code uses it.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) expires_at: Option<OffsetDateTime>,
}

/// No relations are declared: the repositories join nothing through the builder.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
