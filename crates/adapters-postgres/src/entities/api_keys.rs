//! The `api_keys` table, as the application role sees it: every column but `key_hash`,
//! which it may write and never read (column grants; authentication goes through
//! `crm_authenticate_api_key`, SECURITY DEFINER). Because the builder's `RETURNING`
//! names every entity column, the INSERT (which writes the hash) stays hand-written.

use sea_orm::entity::prelude::*;
use time::OffsetDateTime;

/// An `api_keys` row without its hash (primary key `(tenant_id, id)`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) role: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) created_by: Option<Uuid>,
    pub(crate) acts_for: Option<Uuid>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) last_used_at: Option<OffsetDateTime>,
    pub(crate) expires_at: Option<OffsetDateTime>,
    pub(crate) revoked_at: Option<OffsetDateTime>,
}

/// No relations are declared: the repositories join nothing through the builder.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
