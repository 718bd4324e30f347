//! The `contacts` table.

use sea_orm::entity::prelude::*;
use time::OffsetDateTime;

/// A `contacts` row as stored (primary key `(tenant_id, id)`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) tags: Vec<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub(crate) custom_fields: Json,
    pub(crate) owner_id: Option<Uuid>,
    pub(crate) company_id: Option<Uuid>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
    pub(crate) version: i64,
}

/// No relations are declared: the repositories join nothing through the builder.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
