//! Pipelines in memory, with the default pipeline every tenant starts with; a stage's
//! kind change carries over to its leads' status, as in PostgreSQL. A pipeline's created
//! and updated events are written at commit, with its final stages (`crate::events`).

use domain::ids::TenantId;
use ports::RepoError;
use time::OffsetDateTime;

use crate::store::MemoryUnitOfWork;

/// The pipeline every tenant starts with (the PostgreSQL adapter makes it in a trigger).
pub(crate) fn default_pipeline(
    tenant_id: TenantId,
    now: OffsetDateTime,
) -> domain::pipeline::Pipeline {
    use domain::pipeline::{Pipeline, PipelineId, Stage, StageId, StageKind};
    let stages = [
        ("Qualified", 10, StageKind::Open),
        ("Contact made", 20, StageKind::Open),
        ("Proposal sent", 50, StageKind::Open),
        ("Negotiation", 75, StageKind::Open),
        ("Won", 100, StageKind::Won),
        ("Lost", 0, StageKind::Lost),
    ];
    Pipeline {
        id: PipelineId::new(),
        tenant_id,
        name: "Sales".into(),
        is_default: true,
        stages: stages
            .iter()
            .zip(0..)
            .map(|((name, probability, kind), position)| Stage {
                id: StageId::new(),
                name: (*name).into(),
                position,
                probability: *probability,
                kind: *kind,
            })
            .collect(),
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

impl ports::PipelineRepository for MemoryUnitOfWork {
    async fn list_pipelines(&mut self) -> Result<Vec<domain::pipeline::Pipeline>, RepoError> {
        let mut pipelines: Vec<domain::pipeline::Pipeline> =
            self.data()?.pipelines.values().cloned().collect();
        pipelines.sort_by(|a, b| {
            b.is_default
                .cmp(&a.is_default)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(pipelines)
    }

    async fn get_pipeline(
        &mut self,
        id: domain::pipeline::PipelineId,
        _for_update: bool,
    ) -> Result<Option<domain::pipeline::Pipeline>, RepoError> {
        Ok(self.data()?.pipelines.get(&id).cloned())
    }

    async fn insert_pipeline(
        &mut self,
        id: domain::pipeline::PipelineId,
        draft: &domain::pipeline::PipelineDraft,
    ) -> Result<domain::pipeline::Pipeline, RepoError> {
        let now = self.now();
        let pipeline = domain::pipeline::Pipeline {
            id,
            tenant_id: self.tenant_id,
            name: draft.name.clone(),
            is_default: false,
            stages: draft
                .stages
                .iter()
                .zip(0..)
                .map(|(s, position)| domain::pipeline::Stage {
                    id: domain::pipeline::StageId::new(),
                    name: s.name.clone(),
                    position,
                    probability: s.probability,
                    kind: s.kind,
                })
                .collect(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.data_mut()?.pipelines.insert(id, pipeline.clone());
        self.pipeline_changed(id, None);
        Ok(pipeline)
    }

    async fn rename_pipeline(
        &mut self,
        id: domain::pipeline::PipelineId,
        name: &str,
    ) -> Result<domain::pipeline::Pipeline, ports::PipelineWriteError> {
        let now = self.now();
        let pipeline = self
            .data_mut()?
            .pipelines
            .get_mut(&id)
            .ok_or(ports::PipelineWriteError::NotFound)?;
        let before = pipeline.clone();
        pipeline.name = name.to_owned();
        pipeline.version += 1;
        pipeline.updated_at = now.max(pipeline.updated_at);
        let after = pipeline.clone();
        self.pipeline_changed(id, Some(before));
        Ok(after)
    }

    async fn delete_pipeline(
        &mut self,
        id: domain::pipeline::PipelineId,
    ) -> Result<(), ports::PipelineWriteError> {
        let now = self.now();
        let data = self.data_mut()?;
        let pipeline = data
            .pipelines
            .remove(&id)
            .ok_or(ports::PipelineWriteError::NotFound)?;
        // At once, with its stages (PostgreSQL's trigger fires before the delete).
        data.record_change(now, Some(&pipeline), None)?;
        Ok(())
    }

    async fn set_stages(
        &mut self,
        id: domain::pipeline::PipelineId,
        stages: &[(domain::pipeline::StageId, domain::pipeline::StageDraft)],
    ) -> Result<domain::pipeline::Pipeline, ports::PipelineWriteError> {
        let now = self.now();
        let pipeline = self
            .data_mut()?
            .pipelines
            .get_mut(&id)
            .ok_or(ports::PipelineWriteError::NotFound)?;
        let before = pipeline.clone();
        pipeline.stages = stages
            .iter()
            .zip(0..)
            .map(|((stage, draft), position)| domain::pipeline::Stage {
                id: *stage,
                name: draft.name.clone(),
                position,
                probability: draft.probability,
                kind: draft.kind,
            })
            .collect();
        pipeline.version += 1;
        pipeline.updated_at = now.max(pipeline.updated_at);
        let pipeline = pipeline.clone();
        self.pipeline_changed(id, Some(before));
        // A lead's status follows its stage's kind, also when the kind is edited: an
        // update event each (changedFields ["status"]).
        let in_pipeline = |lead: &&mut domain::lead::Lead| lead.fields.pipeline_id == id;
        let data = self.data_mut()?;
        let mut restatused = Vec::new();
        for lead in data.leads.values_mut().filter(in_pipeline) {
            let kind = pipeline
                .stages
                .iter()
                .find(|s| s.id == lead.fields.stage_id)
                .map(|s| s.kind);
            if let Some(kind) = kind.filter(|kind| *kind != lead.status) {
                let before = lead.clone();
                lead.status = kind;
                lead.version += 1;
                lead.updated_at = now.max(lead.updated_at);
                restatused.push((Some(before), Some(lead.clone())));
            }
        }
        data.record_changes(now, &restatused)?;
        Ok(pipeline)
    }
}
