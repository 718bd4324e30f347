//! Sales pipelines: named, ordered stages a lead moves through. Each stage has a win
//! probability and a kind (open, won, lost) that a lead's status follows.

use thiserror::Error;
use time::OffsetDateTime;

use crate::field_errors::FieldErrors;
use crate::ids::TenantId;
pub use crate::ids::{PipelineId, StageId};
use crate::text::single_line;

/// Longest pipeline name.
pub const PIPELINE_NAME_MAX: usize = 200;
/// Longest stage name.
pub const STAGE_NAME_MAX: usize = 100;
/// Most stages in a pipeline.
pub const STAGES_MAX: usize = 50;

/// What reaching a stage means for a lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StageKind {
    /// Still in play.
    Open,
    /// Closed, won.
    Won,
    /// Closed, lost.
    Lost,
}

impl StageKind {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Won => "won",
            Self::Lost => "lost",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "open" => Some(Self::Open),
            "won" => Some(Self::Won),
            "lost" => Some(Self::Lost),
            _ => None,
        }
    }
}

/// A stage as sent, unchecked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageInput {
    /// Name.
    pub name: String,
    /// Win probability in percent (default: 0 for lost, 100 for won, 50 for open).
    pub probability: Option<i64>,
    /// Kind (default open).
    pub kind: Option<StageKind>,
}

/// A validated stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageDraft {
    /// Name.
    pub name: String,
    /// Win probability, 0-100.
    pub probability: i32,
    /// Kind.
    pub kind: StageKind,
}

/// A stage name or probability out of bounds.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct StageError(pub FieldErrors);

impl StageDraft {
    /// Validates a stage; `prefix` names it in error fields (`stages[2]`).
    ///
    /// # Errors
    /// Field errors under `prefix`.
    pub fn new(input: StageInput, prefix: &str) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.check(
            &format!("{prefix}name"),
            single_line(&input.name, STAGE_NAME_MAX),
        );
        let kind = input.kind.unwrap_or(StageKind::Open);
        let probability = match input.probability {
            None => match kind {
                StageKind::Open => 50,
                StageKind::Won => 100,
                StageKind::Lost => 0,
            },
            Some(p) if (0..=100).contains(&p) => i32::try_from(p).unwrap_or(0),
            Some(_) => {
                errors.add(format!("{prefix}probability"), "must be between 0 and 100");
                0
            }
        };
        match name {
            Some(name) if errors.is_empty() => Ok(Self {
                name,
                probability,
                kind,
            }),
            _ => Err(errors),
        }
    }
}

/// A new pipeline: name and its stages in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineDraft {
    /// Name.
    pub name: String,
    /// Stages, in order (1 to 50).
    pub stages: Vec<StageDraft>,
}

impl PipelineDraft {
    /// Validates a pipeline.
    ///
    /// # Errors
    /// Every problem, by field.
    pub fn new(name: &str, stages: Vec<StageInput>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.check("name", single_line(name, PIPELINE_NAME_MAX));
        if stages.is_empty() || stages.len() > STAGES_MAX {
            errors.add("stages", format!("must hold 1 to {STAGES_MAX} stages"));
        }
        let mut drafts = Vec::with_capacity(stages.len());
        for (index, stage) in stages.into_iter().enumerate() {
            match StageDraft::new(stage, &format!("stages[{index}].")) {
                Ok(draft) => drafts.push(draft),
                Err(stage_errors) => errors.merge(stage_errors),
            }
        }
        match name {
            Some(name) if errors.is_empty() => Ok(Self {
                name,
                stages: drafts,
            }),
            _ => Err(errors),
        }
    }
}

/// A stored stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    /// Id.
    pub id: StageId,
    /// Name.
    pub name: String,
    /// Position in the pipeline, from 0.
    pub position: i32,
    /// Win probability.
    pub probability: i32,
    /// Kind.
    pub kind: StageKind,
}

/// A stored pipeline with its stages in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipeline {
    /// Id.
    pub id: PipelineId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Name.
    pub name: String,
    /// The tenant's default pipeline (exactly one).
    pub is_default: bool,
    /// Stages, by position.
    pub stages: Vec<Stage>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Version (ETag).
    pub version: i64,
}

impl Pipeline {
    /// The entity tag of this version.
    #[must_use]
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

/// Checks a reorder request: the same stage ids as the pipeline has, each once.
///
/// # Errors
/// Field errors on `stageIds`.
pub fn check_reorder(current: &[Stage], requested: &[StageId]) -> Result<(), FieldErrors> {
    let mut wanted: Vec<StageId> = requested.to_vec();
    wanted.sort();
    let mut have: Vec<StageId> = current.iter().map(|s| s.id).collect();
    have.sort();
    if wanted == have {
        Ok(())
    } else {
        let mut errors = FieldErrors::new();
        errors.add(
            "stageIds",
            "must list every stage of the pipeline exactly once",
        );
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str) -> StageInput {
        StageInput {
            name: name.into(),
            probability: None,
            kind: None,
        }
    }

    #[test]
    fn stages_get_probability_defaults_from_their_kind() {
        let won = StageDraft::new(
            StageInput {
                name: "Won".into(),
                probability: None,
                kind: Some(StageKind::Won),
            },
            "",
        )
        .expect("valid");
        assert_eq!(won.probability, 100);
        assert_eq!(
            StageDraft::new(stage("Open"), "")
                .expect("valid")
                .probability,
            50
        );
    }

    #[test]
    fn a_pipeline_needs_a_name_and_stages_within_bounds() {
        assert!(PipelineDraft::new("Sales", vec![stage("A")]).is_ok());
        let errors = PipelineDraft::new(" ", vec![]).expect_err("invalid");
        assert!(errors.fields().contains_key("name"));
        assert!(errors.fields().contains_key("stages"));
        let bad = PipelineDraft::new(
            "Sales",
            vec![StageInput {
                name: "X".into(),
                probability: Some(101),
                kind: None,
            }],
        )
        .expect_err("invalid probability");
        assert!(bad.fields().contains_key("stages[0].probability"));
    }

    #[test]
    fn a_reorder_must_name_every_stage_once() {
        let stages: Vec<Stage> = (0..3)
            .map(|i| Stage {
                id: StageId::new(),
                name: format!("S{i}"),
                position: i,
                probability: 0,
                kind: StageKind::Open,
            })
            .collect();
        let mut ids: Vec<StageId> = stages.iter().map(|s| s.id).rev().collect();
        assert!(check_reorder(&stages, &ids).is_ok());
        ids.pop();
        assert!(check_reorder(&stages, &ids).is_err());
        ids.push(ids[0]);
        assert!(check_reorder(&stages, &ids).is_err());
    }
}
