//! Pipelines and stages in PostgreSQL: reads, inserts, renames and deletes through
//! SeaORM's builder; the stage upsert (`ON CONFLICT … DO UPDATE … WHERE`) and the
//! deferred-constraint check stay hand-written.

use domain::pipeline::{
    Pipeline, PipelineDraft, PipelineId, Stage, StageDraft, StageId, StageKind,
};
use ports::{PipelineRepository, PipelineWriteError, RepoError};
use sea_orm::sea_query::{Expr, extension::postgres::PgFunc};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _, Set,
};
use uuid::Uuid;

use crate::entities::pipeline_stages::{self, Entity as PipelineStages};
use crate::entities::pipelines::{self, Entity as Pipelines};
use crate::entities::touched;
use crate::errors::{FOREIGN_KEY_VIOLATION, repo_error, violated_constraint};
use crate::store::{PgUnitOfWork, statement};

impl TryFrom<pipeline_stages::Model> for Stage {
    type Error = RepoError;

    /// A stored kind that no longer parses is a broken invariant, reported as unexpected.
    fn try_from(row: pipeline_stages::Model) -> Result<Self, RepoError> {
        let kind = StageKind::parse(&row.kind)
            .ok_or_else(|| RepoError::Unexpected(format!("stage kind {}", row.kind)))?;
        Ok(Stage {
            id: StageId::from_uuid(row.id),
            name: row.name,
            position: row.position,
            probability: row.probability,
            kind,
        })
    }
}

/// Leads (a later migration) refer to stages with a restricting foreign key.
fn in_use(error: DbErr) -> PipelineWriteError {
    match violated_constraint(&error) {
        Some((_, code)) if code == FOREIGN_KEY_VIOLATION => PipelineWriteError::InUse,
        _ => PipelineWriteError::Repo(repo_error(error)),
    }
}

impl PgUnitOfWork {
    /// The tenant's pipelines (or the one named), default first, each with its stages in
    /// order: two statements, however many pipelines.
    async fn pipelines_with_stages(
        &self,
        only: Option<PipelineId>,
    ) -> Result<Vec<Pipeline>, RepoError> {
        use sea_orm::sea_query::ExprTrait as _;
        let mut find =
            Pipelines::find().filter(pipelines::Column::TenantId.eq(self.tenant_id.as_uuid()));
        if let Some(id) = only {
            find = find.filter(pipelines::Column::Id.eq(id.as_uuid()));
        }
        let rows = find
            .order_by_desc(pipelines::Column::IsDefault)
            .order_by_asc(pipelines::Column::CreatedAt)
            .order_by_asc(pipelines::Column::Id)
            .all(&self.txn)
            .await
            .map_err(repo_error)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        // `= ANY($2)`: one statement text whatever the number of pipelines.
        let stages = PipelineStages::find()
            .filter(pipeline_stages::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(Expr::col(pipeline_stages::Column::PipelineId).eq(PgFunc::any(Expr::val(ids))))
            .order_by_asc(pipeline_stages::Column::Position)
            .all(&self.txn)
            .await
            .map_err(repo_error)?
            .into_iter()
            .map(|row| Ok((row.pipeline_id, Stage::try_from(row)?)))
            .collect::<Result<Vec<_>, RepoError>>()?;
        Ok(rows
            .into_iter()
            .map(|row| Pipeline {
                id: PipelineId::from_uuid(row.id),
                tenant_id: self.tenant_id,
                name: row.name,
                is_default: row.is_default,
                stages: stages
                    .iter()
                    .filter(|(p, _)| *p == row.id)
                    .map(|(_, s)| s.clone())
                    .collect(),
                created_at: row.created_at,
                updated_at: row.updated_at,
                version: row.version,
            })
            .collect())
    }

    /// Bumps the pipeline's version and `updated_at`, setting its name too when given;
    /// the number of rows changed (0: no such pipeline).
    async fn touch_pipeline(&self, id: PipelineId, name: Option<&str>) -> Result<u64, DbErr> {
        use sea_orm::sea_query::ExprTrait as _;
        let mut update = Pipelines::update_many();
        if let Some(name) = name {
            update = update.col_expr(pipelines::Column::Name, Expr::val(name.to_owned()));
        }
        Ok(update
            .col_expr(
                pipelines::Column::Version,
                Expr::col(pipelines::Column::Version).add(1),
            )
            .col_expr(
                pipelines::Column::UpdatedAt,
                touched(pipelines::Column::UpdatedAt),
            )
            .filter(pipelines::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(pipelines::Column::Id.eq(id.as_uuid()))
            .exec(&self.txn)
            .await?
            .rows_affected)
    }

    async fn upsert_stages(
        &self,
        pipeline: PipelineId,
        stages: &[(StageId, StageDraft)],
    ) -> Result<(), DbErr> {
        // Hand-written: `ON CONFLICT … DO UPDATE … WHERE` (a stage id of another pipeline
        // is left alone), which the builder cannot say as plainly.
        for (position, (id, draft)) in stages.iter().enumerate() {
            self.txn
                .execute_raw(statement(
                    "INSERT INTO pipeline_stages (tenant_id, pipeline_id, id, name, position, probability, kind) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET name = EXCLUDED.name, \
                        position = EXCLUDED.position, probability = EXCLUDED.probability, kind = EXCLUDED.kind \
                     WHERE pipeline_stages.pipeline_id = EXCLUDED.pipeline_id",
                    vec![
                        self.tenant_id.as_uuid().into(),
                        pipeline.as_uuid().into(),
                        id.as_uuid().into(),
                        draft.name.clone().into(),
                        i32::try_from(position).unwrap_or(i32::MAX).into(),
                        draft.probability.into(),
                        draft.kind.as_str().to_owned().into(),
                    ],
                ))
                .await?;
        }
        Ok(())
    }

    async fn one_pipeline(&self, id: PipelineId) -> Result<Option<Pipeline>, RepoError> {
        Ok(self.pipelines_with_stages(Some(id)).await?.pop())
    }
}

impl PipelineRepository for PgUnitOfWork {
    async fn list_pipelines(&mut self) -> Result<Vec<Pipeline>, RepoError> {
        self.pipelines_with_stages(None).await
    }

    async fn get_pipeline(
        &mut self,
        id: PipelineId,
        for_update: bool,
    ) -> Result<Option<Pipeline>, RepoError> {
        if for_update {
            Pipelines::find_by_id((self.tenant_id.as_uuid(), id.as_uuid()))
                .select_only()
                .column(pipelines::Column::Id)
                .lock_exclusive()
                .into_tuple::<Uuid>()
                .one(&self.txn)
                .await
                .map_err(repo_error)?;
        }
        self.one_pipeline(id).await
    }

    async fn insert_pipeline(
        &mut self,
        id: PipelineId,
        draft: &PipelineDraft,
    ) -> Result<Pipeline, RepoError> {
        Pipelines::insert(pipelines::ActiveModel {
            tenant_id: Set(self.tenant_id.as_uuid()),
            id: Set(id.as_uuid()),
            name: Set(draft.name.clone()),
            ..Default::default()
        })
        .exec_without_returning(&self.txn)
        .await
        .map_err(repo_error)?;
        let stages: Vec<(StageId, StageDraft)> = draft
            .stages
            .iter()
            .map(|s| (StageId::new(), s.clone()))
            .collect();
        self.upsert_stages(id, &stages).await.map_err(repo_error)?;
        self.one_pipeline(id)
            .await?
            .ok_or_else(|| RepoError::Unexpected("new pipeline not found".into()))
    }

    async fn rename_pipeline(
        &mut self,
        id: PipelineId,
        name: &str,
    ) -> Result<Pipeline, PipelineWriteError> {
        let changed = self
            .touch_pipeline(id, Some(name))
            .await
            .map_err(repo_error)?;
        if changed == 0 {
            return Err(PipelineWriteError::NotFound);
        }
        self.one_pipeline(id)
            .await?
            .ok_or(PipelineWriteError::NotFound)
    }

    async fn delete_pipeline(&mut self, id: PipelineId) -> Result<(), PipelineWriteError> {
        let deleted = Pipelines::delete_by_id((self.tenant_id.as_uuid(), id.as_uuid()))
            .exec(&self.txn)
            .await
            .map_err(in_use)?
            .rows_affected;
        if deleted == 0 {
            Err(PipelineWriteError::NotFound)
        } else {
            Ok(())
        }
    }

    async fn set_stages(
        &mut self,
        id: PipelineId,
        stages: &[(StageId, StageDraft)],
    ) -> Result<Pipeline, PipelineWriteError> {
        use sea_orm::sea_query::ExprTrait as _;
        let keep: Vec<Uuid> = stages.iter().map(|(stage, _)| stage.as_uuid()).collect();
        PipelineStages::delete_many()
            .filter(pipeline_stages::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(pipeline_stages::Column::PipelineId.eq(id.as_uuid()))
            .filter(
                Expr::col(pipeline_stages::Column::Id)
                    .eq(PgFunc::any(Expr::val(keep)))
                    .not(),
            )
            .exec(&self.txn)
            .await
            .map_err(in_use)?;
        self.upsert_stages(id, stages).await.map_err(in_use)?;
        let bumped = self.touch_pipeline(id, None).await.map_err(repo_error)?;
        if bumped == 0 {
            return Err(PipelineWriteError::NotFound);
        }
        // Position uniqueness is checked at commit (deferred); check it now to answer here.
        self.txn
            .execute_unprepared("SET CONSTRAINTS pipeline_stages_position_key IMMEDIATE")
            .await
            .map_err(repo_error)?;
        self.one_pipeline(id)
            .await?
            .ok_or(PipelineWriteError::NotFound)
    }
}
