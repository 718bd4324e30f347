//! The `activities` table.

use sea_orm::entity::prelude::*;
use time::OffsetDateTime;

/// An `activities` row as stored (primary key `(tenant_id, id)`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "activities")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    /// The activity type (`note`, `call`, ...); `type` is a Rust keyword.
    #[sea_orm(column_name = "type")]
    pub(crate) kind: String,
    pub(crate) subject: String,
    pub(crate) body: Option<String>,
    pub(crate) due_at: Option<OffsetDateTime>,
    pub(crate) completed_at: Option<OffsetDateTime>,
    pub(crate) contact_id: Option<Uuid>,
    pub(crate) company_id: Option<Uuid>,
    pub(crate) lead_id: Option<Uuid>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
    pub(crate) version: i64,
}

/// No relations are declared: the repositories join nothing through the builder.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
