//! The `companies` table.

use sea_orm::entity::prelude::*;
use time::OffsetDateTime;

/// A `companies` row as stored (primary key `(tenant_id, id)`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "companies")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) domain: Option<String>,
    pub(crate) industry: Option<String>,
    pub(crate) size: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub(crate) address: Json,
    pub(crate) tags: Vec<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub(crate) custom_fields: Json,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
    pub(crate) version: i64,
}

/// No relations are declared: the repositories join nothing through the builder.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
