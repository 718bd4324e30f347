//! Pipelines and stages in PostgreSQL.

use domain::pipeline::{
    Pipeline, PipelineDraft, PipelineId, Stage, StageDraft, StageId, StageKind,
};
use ports::{PipelineRepository, PipelineWriteError, RepoError};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::errors::{FOREIGN_KEY_VIOLATION, repo_error, violated_constraint};
use crate::store::{PgUnitOfWork, statement};

#[derive(Debug, FromQueryResult)]
struct PipelineRow {
    id: Uuid,
    name: String,
    is_default: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    version: i64,
}

#[derive(Debug, FromQueryResult)]
struct StageRow {
    pipeline_id: Uuid,
    id: Uuid,
    name: String,
    position: i32,
    probability: i32,
    kind: String,
}

fn stage(row: StageRow) -> Result<(Uuid, Stage), RepoError> {
    let kind = StageKind::parse(&row.kind)
        .ok_or_else(|| RepoError::Unexpected(format!("stage kind {}", row.kind)))?;
    Ok((
        row.pipeline_id,
        Stage {
            id: StageId::from_uuid(row.id),
            name: row.name,
            position: row.position,
            probability: row.probability,
            kind,
        },
    ))
}

/// Leads (a later migration) refer to stages with a restricting foreign key.
fn in_use(error: DbErr) -> PipelineWriteError {
    match violated_constraint(&error) {
        Some((_, code)) if code == FOREIGN_KEY_VIOLATION => PipelineWriteError::InUse,
        _ => PipelineWriteError::Repo(repo_error(error)),
    }
}

impl PgUnitOfWork {
    async fn pipelines_where(
        &self,
        condition: &str,
        values: Vec<Value>,
    ) -> Result<Vec<Pipeline>, RepoError> {
        let rows = PipelineRow::find_by_statement(statement(
            &format!(
                "SELECT id, name, is_default, created_at, updated_at, version FROM pipelines \
                 WHERE tenant_id = $1{condition} ORDER BY is_default DESC, created_at, id"
            ),
            values.clone(),
        ))
        .all(&self.txn)
        .await
        .map_err(repo_error)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let stages = StageRow::find_by_statement(statement(
            "SELECT pipeline_id, id, name, position, probability, kind FROM pipeline_stages \
             WHERE tenant_id = $1 AND pipeline_id = ANY($2) ORDER BY position",
            vec![self.tenant_id.as_uuid().into(), ids.into()],
        ))
        .all(&self.txn)
        .await
        .map_err(repo_error)?
        .into_iter()
        .map(stage)
        .collect::<Result<Vec<_>, _>>()?;
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

    async fn upsert_stages(
        &self,
        pipeline: PipelineId,
        stages: &[(StageId, StageDraft)],
    ) -> Result<(), DbErr> {
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
        Ok(self
            .pipelines_where(
                " AND id = $2",
                vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
            )
            .await?
            .pop())
    }
}

impl PipelineRepository for PgUnitOfWork {
    async fn list_pipelines(&mut self) -> Result<Vec<Pipeline>, RepoError> {
        self.pipelines_where("", vec![self.tenant_id.as_uuid().into()])
            .await
    }

    async fn get_pipeline(
        &mut self,
        id: PipelineId,
        for_update: bool,
    ) -> Result<Option<Pipeline>, RepoError> {
        if for_update {
            self.txn
                .execute_raw(statement(
                    "SELECT 1 FROM pipelines WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                    vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
                ))
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
        self.txn
            .execute_raw(statement(
                "INSERT INTO pipelines (tenant_id, id, name) VALUES ($1, $2, $3)",
                vec![
                    self.tenant_id.as_uuid().into(),
                    id.as_uuid().into(),
                    draft.name.clone().into(),
                ],
            ))
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
            .txn
            .execute_raw(statement(
                "UPDATE pipelines SET name = $3, version = version + 1, updated_at = greatest(now(), updated_at) \
                 WHERE tenant_id = $1 AND id = $2",
                vec![self.tenant_id.as_uuid().into(), id.as_uuid().into(), name.to_owned().into()],
            ))
            .await
            .map_err(repo_error)?
            .rows_affected();
        if changed == 0 {
            return Err(PipelineWriteError::NotFound);
        }
        self.one_pipeline(id)
            .await?
            .ok_or(PipelineWriteError::NotFound)
    }

    async fn delete_pipeline(&mut self, id: PipelineId) -> Result<(), PipelineWriteError> {
        let deleted = self
            .txn
            .execute_raw(statement(
                "DELETE FROM pipelines WHERE tenant_id = $1 AND id = $2",
                vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
            ))
            .await
            .map_err(in_use)?
            .rows_affected();
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
        let keep: Vec<Uuid> = stages.iter().map(|(stage, _)| stage.as_uuid()).collect();
        self.txn
            .execute_raw(statement(
                "DELETE FROM pipeline_stages WHERE tenant_id = $1 AND pipeline_id = $2 AND NOT (id = ANY($3))",
                vec![self.tenant_id.as_uuid().into(), id.as_uuid().into(), keep.into()],
            ))
            .await
            .map_err(in_use)?;
        self.upsert_stages(id, stages).await.map_err(in_use)?;
        let bumped = self
            .txn
            .execute_raw(statement(
                "UPDATE pipelines SET version = version + 1, updated_at = greatest(now(), updated_at) \
                 WHERE tenant_id = $1 AND id = $2",
                vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
            ))
            .await
            .map_err(repo_error)?
            .rows_affected();
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
