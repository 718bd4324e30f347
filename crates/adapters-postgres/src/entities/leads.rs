//! The `leads` table.

use sea_orm::entity::prelude::*;
use time::{Date, OffsetDateTime};

/// A `leads` row as stored (primary key `(tenant_id, id)`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "leads")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) title: String,
    pub(crate) contact_id: Option<Uuid>,
    pub(crate) company_id: Option<Uuid>,
    pub(crate) pipeline_id: Uuid,
    pub(crate) stage_id: Uuid,
    pub(crate) value: Option<i64>,
    pub(crate) currency: Option<String>,
    pub(crate) status: String,
    pub(crate) owner_id: Option<Uuid>,
    pub(crate) expected_close_date: Option<Date>,
    pub(crate) source: Option<String>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
    pub(crate) version: i64,
}

/// No relations are declared: the repositories join nothing through the builder.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
