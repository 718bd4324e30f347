//! The `memberships` table: who belongs to a tenant, with which role.

use sea_orm::entity::prelude::*;
use time::OffsetDateTime;

/// A `memberships` row (primary key `(tenant_id, user_id)`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "memberships")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) user_id: Uuid,
    pub(crate) role: String,
    pub(crate) created_at: OffsetDateTime,
}

/// No relations are declared: the repositories join nothing through the builder.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
