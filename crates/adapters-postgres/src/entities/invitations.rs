//! The `invitations` table, as the application role sees it: every column but
//! `token_hash`, which it may write and never read (column grants); the look-up by token
//! is `crm_find_invitation` (SECURITY DEFINER). Because the builder's `RETURNING` names
//! every entity column, the INSERT (which writes the hash) stays hand-written.

use sea_orm::entity::prelude::*;
use time::OffsetDateTime;

/// An `invitations` row without its token hash (primary key `(tenant_id, id)`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) email: String,
    pub(crate) role: String,
    pub(crate) invited_by: Uuid,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) accepted_at: Option<OffsetDateTime>,
    pub(crate) accepted_by: Option<Uuid>,
    pub(crate) revoked_at: Option<OffsetDateTime>,
}

/// No relations are declared: the repositories join nothing through the builder.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
