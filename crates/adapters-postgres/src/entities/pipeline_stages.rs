//! The `pipeline_stages` table.

use sea_orm::entity::prelude::*;

/// A `pipeline_stages` row as stored (primary key `(tenant_id, id)`; the stage belongs
/// to `(tenant_id, pipeline_id)`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "pipeline_stages")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) tenant_id: Uuid,
    pub(crate) pipeline_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) position: i32,
    pub(crate) probability: i32,
    pub(crate) kind: String,
}

/// No relations are declared: the repositories join nothing through the builder.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
